//! Long-lived streams on connections of their own, whose status line may
//! come late (invoice subscriptions).

use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::Full;
use serde::de::DeserializeOwned;

use super::{CallError, LineStream, MACAROON_HEADER, Rest, chain, error_of, read_body};
use crate::wire::StreamLine;

impl Rest {
    /// Opens a long-lived stream on a connection of its own and returns as
    /// soon as the request is sent: LND writes a stream's status line with
    /// its first message (grpc-gateway's `ForwardResponseStream`), so a
    /// quiet subscription has no answer at all for a while. A connection
    /// that cannot be opened fails here ([`CallError::NotSent`]); anything
    /// else comes with the first line.
    pub async fn open_stream(&self, method: Method, path: &str) -> Result<LateStream, CallError> {
        let uri: Uri = format!("{}{path}", self.base).parse().map_err(|e| CallError::NotSent(format!("URL: {e}")))?;
        let authority = uri.authority().map(ToString::to_string).unwrap_or_default();
        let io =
            tower::Service::call(&mut self.connector.clone(), uri).await.map_err(|e| CallError::NotSent(chain(&e)))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(io).await.map_err(|e| CallError::NotSent(chain(&e)))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, authority)
            .header(MACAROON_HEADER, self.macaroon.clone())
            .body(Full::new(Bytes::new()))
            .map_err(|e| CallError::NotSent(format!("request: {e}")))?;
        let response = sender.send_request(req);
        let limit = self.request_timeout;
        let head = async move {
            let response = response.await.map_err(|e| CallError::Lost(chain(&e)))?;
            drop(sender);
            let status = response.status();
            if !status.is_success() {
                let bytes = tokio::time::timeout(limit, read_body(response.into_body()))
                    .await
                    .map_err(|_| CallError::TimedOut(limit))??;
                return Err(error_of(status, &bytes));
            }
            Ok(LineStream::new(response.into_body(), None))
        };
        Ok(LateStream { state: Late::Pending(Box::pin(head)) })
    }
}

type Head = std::pin::Pin<Box<dyn std::future::Future<Output = Result<LineStream, CallError>> + Send>>;

enum Late {
    Pending(Head),
    Open(LineStream),
    Failed,
}

/// A stream whose status line may come with its first message.
pub struct LateStream {
    state: Late,
}

impl LateStream {
    /// The next line, decoded (see [`LineStream::next`]); the status line's
    /// error, if any, on the first call.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<StreamLine<T>>, CallError> {
        if let Late::Pending(head) = &mut self.state {
            match head.await {
                Ok(lines) => self.state = Late::Open(lines),
                Err(e) => {
                    self.state = Late::Failed;
                    return Err(e);
                }
            }
        }
        match &mut self.state {
            Late::Open(lines) => lines.next().await,
            Late::Pending(_) | Late::Failed => Err(CallError::Lost("the stream already failed".into())),
        }
    }
}
