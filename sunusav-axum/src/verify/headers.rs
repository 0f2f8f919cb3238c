//! The core verifier reads headers through [`HeaderSource`]; this is it for
//! `http::HeaderMap`.

use http::HeaderMap;
use sunusav_core::webhook::HeaderSource;

/// A `&HeaderMap` seen as the verifier's [`HeaderSource`] (names are looked up
/// case-insensitively; the first value of a repeated header wins).
#[derive(Clone, Copy, Debug)]
pub struct HttpHeaders<'a>(pub &'a HeaderMap);

impl HeaderSource for HttpHeaders<'_> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.0.get(name).map(http::HeaderValue::as_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_found_in_any_case() {
        let mut map = HeaderMap::new();
        map.insert("x-sunu-signature", "sha256=00".parse().unwrap());
        let headers = HttpHeaders(&map);
        assert_eq!(headers.header("X-Sunu-Signature"), Some(&b"sha256=00"[..]));
        assert_eq!(headers.header("webhook-id"), None);
        assert_eq!(headers.header("not a header name"), None);
    }
}
