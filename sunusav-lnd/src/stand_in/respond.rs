//! The gateway's answers: JSON, errors in their two shapes, and streams.

use std::convert::Infallible;
use std::io;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Response, StatusCode};
use http_body_util::channel::{Channel, Sender};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use serde::Serialize;
use tokio::sync::oneshot;

use super::state::RpcErr;

/// A response of the stand-in.
pub type Reply = Response<BoxBody<Bytes, io::Error>>;

fn full(status: u16, content_type: &str, body: impl Into<Bytes>) -> Reply {
    let body = Full::new(body.into()).map_err(|e: Infallible| match e {}).boxed();
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if !content_type.is_empty() {
        r.headers_mut().insert(CONTENT_TYPE, content_type.parse().expect("a valid content type"));
    }
    r
}

/// `200` and the message.
pub fn json(value: &impl Serialize) -> Reply {
    full(200, "application/json", serde_json::to_vec(value).unwrap_or_default())
}

/// A unary call's error: `google.rpc.Status`, HTTP status from the code.
pub fn unary_error(err: &RpcErr) -> Reply {
    let body = serde_json::json!({ "code": err.code, "message": err.message, "details": [] });
    full(err.http_status(), "application/json", body.to_string())
}

/// A stream's error before its first message: `{"error": status}` and a
/// newline, HTTP status from the code (grpc-gateway's
/// `handleForwardResponseStreamError` with no header written yet).
pub fn stream_error(err: &RpcErr) -> Reply {
    full(err.http_status(), "application/json", format!("{}\n", error_line(err)))
}

/// A stream's error line.
pub fn error_line(err: &RpcErr) -> String {
    serde_json::json!({ "error": { "code": err.code, "message": err.message, "details": [] } }).to_string()
}

/// A stream's message line.
pub fn result_line(value: &impl Serialize) -> String {
    serde_json::json!({ "result": value }).to_string()
}

/// A status with a body that is not LND's (a proxy's page).
pub fn foreign(status: u16) -> Reply {
    full(status, "text/html", format!("<html><body>{status} from a proxy</body></html>"))
}

/// `200` with a body that is not JSON.
pub fn garbage() -> Reply {
    full(200, "application/json", "<html>not json</html>\n")
}

/// `401` with no body.
pub fn unauthorized() -> Reply {
    full(401, "", Bytes::new())
}

/// A streamed `200`: its writer, and the response, to be returned once
/// [`Pending::ready`] says so: grpc-gateway writes a stream's headers with
/// its first message (`ForwardResponseStream`), so a stream with nothing to
/// say yet has no status line either.
pub fn stream() -> (LineWriter, Pending) {
    let (tx, body) = Channel::<Bytes, io::Error>::new(16);
    let mut r = Response::new(body.boxed());
    r.headers_mut().insert(CONTENT_TYPE, "application/json".parse().expect("a valid content type"));
    let (first_tx, first) = oneshot::channel();
    (LineWriter { tx, written: 0, cut_after: None, first: Some(first_tx) }, Pending { reply: r, first })
}

/// A streamed response waiting for its first line.
pub struct Pending {
    reply: Reply,
    first: oneshot::Receiver<bool>,
}

impl Pending {
    /// The response once its first line is written; an error (the
    /// connection drops with no answer) when the stream was cut first.
    pub async fn ready(self) -> Result<Reply, io::Error> {
        match self.first.await {
            Ok(true) => Ok(self.reply),
            _ => Err(io::Error::new(io::ErrorKind::ConnectionAborted, "stream cut before its first line")),
        }
    }
}

/// Writes a stream's lines, and cuts it after a scripted count.
pub struct LineWriter {
    tx: Sender<Bytes, io::Error>,
    written: usize,
    cut_after: Option<usize>,
    first: Option<oneshot::Sender<bool>>,
}

impl LineWriter {
    /// Cut after `lines` lines (0: before the first).
    pub fn cut_after(&mut self, lines: Option<usize>) {
        self.cut_after = lines;
    }

    /// Whether the cut is due: then the writer is spent.
    fn due(&self) -> bool {
        self.cut_after.is_some_and(|n| self.written >= n)
    }

    /// Checks the cut before anything is written. `None`: cut.
    pub fn start(self) -> Option<Self> {
        if self.due() {
            self.cut();
            return None;
        }
        Some(self)
    }

    /// Writes a line. `None` when the stream is cut or the client left.
    pub async fn line(mut self, line: String) -> Option<Self> {
        if self.tx.send_data(Bytes::from(line + "\n")).await.is_err() {
            return None;
        }
        self.written += 1;
        if let Some(first) = self.first.take() {
            let _ = first.send(true);
        }
        if self.due() {
            self.cut();
            return None;
        }
        Some(self)
    }

    /// Cuts the stream: the connection is dropped mid-body (or, before
    /// the first line, with no answer at all).
    pub fn cut(mut self) {
        if let Some(first) = self.first.take() {
            let _ = first.send(false);
        }
        self.tx.abort(io::Error::new(io::ErrorKind::ConnectionAborted, "stream cut by the stand-in"));
    }
}
