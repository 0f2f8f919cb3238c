//! The REST client: HTTP/1.1 over TLS (hyper, rustls), the macaroon header,
//! unary calls and line-delimited streams, and [`CallError`], which says
//! whether the request could have reached the node.

mod connector;
mod late;
mod lines;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use connector::Connector;
pub use late::LateStream;
pub use lines::LineStream;

use crate::wire::{RpcStatus, StreamLine};

/// The largest reply body read (an LND error, an invoice): 4 MiB.
const BODY_LIMIT: usize = 4 << 20;

/// The macaroon's header, as LND's gateway forwards it to gRPC metadata.
pub const MACAROON_HEADER: &str = "grpc-metadata-macaroon";

/// Why a call failed, by what it means for the request.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The connection could not be opened (refused, TLS refused, connect
    /// time-out): nothing of the request was sent.
    #[error("not sent: {0}")]
    NotSent(String),
    /// The connection failed after the request may have been sent (a reset,
    /// a cut stream).
    #[error("connection lost: {0}")]
    Lost(String),
    /// No (complete) answer in time, after the request was sent.
    #[error("no answer in {0:?}")]
    TimedOut(Duration),
    /// The gateway's error: its HTTP status and the gRPC status it carries.
    #[error("LND answered {http}: gRPC code {}: {}", status.code, status.message)]
    Rpc {
        /// The HTTP status.
        http: StatusCode,
        /// The gRPC status.
        status: RpcStatus,
    },
    /// A non-success status without a gateway error body (a proxy's page).
    #[error("HTTP {http} without an LND error body: {snippet}")]
    Http {
        /// The HTTP status.
        http: StatusCode,
        /// The start of the body, for the log.
        snippet: String,
    },
    /// A reply that does not read as LND's.
    #[error("unreadable reply: {0}")]
    Decode(String),
}

impl CallError {
    /// The gRPC code of a gateway error.
    pub fn rpc_code(&self) -> Option<i32> {
        match self {
            Self::Rpc { status, .. } => Some(status.code),
            _ => None,
        }
    }

    /// Whether the gateway's error has this gRPC code and its message
    /// contains `needle` (LND's messages vary between versions: a
    /// substring at most).
    pub fn is_rpc(&self, code: i32, needle: &str) -> bool {
        matches!(self, Self::Rpc { status, .. } if status.code == code && status.message.contains(needle))
    }
}

/// The REST client. Cheap to clone.
#[derive(Clone)]
pub struct Rest {
    client: Client<Connector, Full<Bytes>>,
    connector: Connector,
    base: String,
    macaroon: HeaderValue,
    request_timeout: Duration,
    /// One per request in progress: at most this many connections.
    permits: Arc<Semaphore>,
}

impl Rest {
    /// A client of `base` (`https://host:port`), sending `macaroon_hex`,
    /// with at most `max_connections` requests (hence connections) at once;
    /// more wait their turn.
    pub fn new(
        connector: Connector,
        base: &str,
        macaroon_hex: &str,
        request_timeout: Duration,
        max_connections: usize,
    ) -> Result<Self, String> {
        let uri: Uri = base.parse().map_err(|e| format!("invalid REST URL: {e}"))?;
        if uri.scheme_str() != Some("https") || uri.host().is_none() {
            return Err("the REST URL must be https://host[:port]".into());
        }
        let mut macaroon =
            HeaderValue::from_str(macaroon_hex).map_err(|_| "the macaroon is not a valid header value".to_owned())?;
        macaroon.set_sensitive(true);
        let client =
            Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_mins(1)).build(connector.clone());
        let permits = Arc::new(Semaphore::new(max_connections.max(1)));
        Ok(Self { client, connector, base: base.trim_end_matches('/').to_owned(), macaroon, request_timeout, permits })
    }

    /// The time limit of a unary call.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    async fn permit(&self) -> Result<OwnedSemaphorePermit, CallError> {
        Arc::clone(&self.permits).acquire_owned().await.map_err(|_| CallError::NotSent("the client is closed".into()))
    }

    /// Sends a request and returns the response head, with no time limit.
    async fn send(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Response<Incoming>, CallError> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(MACAROON_HEADER, self.macaroon.clone());
        if body.is_some() {
            req = req.header(CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| CallError::NotSent(format!("request: {e}")))?;
        self.client
            .request(req)
            .await
            .map_err(|e| if e.is_connect() { CallError::NotSent(chain(&e)) } else { CallError::Lost(chain(&e)) })
    }

    /// A unary call: the reply, decoded, within the request timeout.
    pub async fn unary<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, CallError> {
        let body = body.map(encode).transpose()?;
        let limit = self.request_timeout;
        tokio::time::timeout(limit, async {
            let _permit = self.permit().await?;
            let response = self.send(method, path, body).await?;
            let status = response.status();
            let bytes = read_body(response.into_body()).await?;
            if !status.is_success() {
                return Err(error_of(status, &bytes));
            }
            serde_json::from_slice(&bytes).map_err(|e| CallError::Decode(format!("{path}: {e}")))
        })
        .await
        .map_err(|_| CallError::TimedOut(limit))?
    }

    /// Opens a server stream: its lines once the status is 200. An error
    /// before the first message comes with a non-200 status. `head_timeout`
    /// bounds the wait for the status line.
    pub async fn stream(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
        head_timeout: Duration,
    ) -> Result<LineStream, CallError> {
        let body = body.map(encode).transpose()?;
        let (permit, response) = tokio::time::timeout(head_timeout, async {
            let permit = self.permit().await?;
            Ok::<_, CallError>((permit, self.send(method, path, body).await?))
        })
        .await
        .map_err(|_| CallError::TimedOut(head_timeout))??;
        let status = response.status();
        if !status.is_success() {
            let bytes = tokio::time::timeout(self.request_timeout, read_body(response.into_body()))
                .await
                .map_err(|_| CallError::TimedOut(self.request_timeout))??;
            return Err(error_of(status, &bytes));
        }
        Ok(LineStream::new(response.into_body(), Some(permit)))
    }
}

fn encode(body: &impl Serialize) -> Result<Vec<u8>, CallError> {
    serde_json::to_vec(body).map_err(|e| CallError::NotSent(format!("encoding the request: {e}")))
}

async fn read_body(body: Incoming) -> Result<Bytes, CallError> {
    Limited::new(body, BODY_LIMIT)
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .map_err(|e| CallError::Lost(format!("reading the reply: {e}")))
}

/// The error a non-success reply carries: the gateway's `google.rpc.Status`
/// (unary), or `{"error": status}` (a stream that failed before its first
/// message), or neither.
fn error_of(http: StatusCode, body: &[u8]) -> CallError {
    let text = String::from_utf8_lossy(body);
    let first = text.lines().next().unwrap_or_default();
    if let Ok(StreamLine::<serde_json::Value>::Error(status)) = serde_json::from_str(first) {
        return CallError::Rpc { http, status };
    }
    if let Ok(status) = serde_json::from_slice::<RpcStatus>(body)
        && (status.code != 0 || !status.message.is_empty())
    {
        return CallError::Rpc { http, status };
    }
    CallError::Http { http, snippet: text.chars().take(120).collect() }
}

/// An error and its sources, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
