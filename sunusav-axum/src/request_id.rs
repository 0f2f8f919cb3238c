//! Request ids and the per-request tracing span.
//!
//! An incoming `x-request-id` is kept when it is sane (1 to 128 characters of
//! `A-Z a-z 0-9 - _ . :`), otherwise a UUID v4 replaces it. The id is put in
//! the request's extensions ([`RequestId`]), in the span, and echoed in the
//! response.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use tracing::Instrument as _;

/// The request id header.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest request id kept from a client.
const MAX_LEN: usize = 128;

/// A request's id, in its extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

fn is_sane(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Middleware: gives each request an id and runs it inside a `request` span.
pub async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .map(HeaderValue::as_bytes)
        .filter(|v| is_sane(v))
        .and_then(|v| std::str::from_utf8(v).ok())
        // A v4 UUID from the thread's generator, without a system call per request.
        .map_or_else(|| uuid::Builder::from_random_bytes(rand::random()).into_uuid().to_string(), str::to_owned);
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %id,
    );
    if let Ok(value) = HeaderValue::from_str(&id) {
        request.headers_mut().insert(REQUEST_ID_HEADER, value.clone());
        request.extensions_mut().insert(RequestId(id));
        let mut response = next.run(request).instrument(span.clone()).await;
        span.in_scope(|| tracing::debug!(status = response.status().as_u16(), "response"));
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
        response
    } else {
        next.run(request).instrument(span).await
    }
}

#[cfg(test)]
mod tests {
    use super::is_sane;

    #[test]
    fn only_short_plain_ids_are_kept() {
        assert!(is_sane(b"abc-123_x.y:z"));
        assert!(!is_sane(b""));
        assert!(!is_sane(b"has space"));
        assert!(!is_sane(b"new\nline"));
        assert!(!is_sane("é".as_bytes()));
        assert!(!is_sane(&[b'a'; 129]));
    }
}
