//! A server stream's body, one JSON object per line.

use bytes::{Buf, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::de::DeserializeOwned;
use tokio::sync::OwnedSemaphorePermit;

use super::CallError;
use crate::wire::StreamLine;

/// The longest line accepted (an invoice with many route hints is far less).
const LINE_LIMIT: usize = 1 << 20;

/// The lines of a streamed reply.
pub struct LineStream {
    body: Incoming,
    buf: BytesMut,
    done: bool,
    /// The connection's turn, held while the stream is open.
    _permit: Option<OwnedSemaphorePermit>,
}

impl LineStream {
    pub(super) fn new(body: Incoming, permit: Option<OwnedSemaphorePermit>) -> Self {
        Self { body, buf: BytesMut::new(), done: false, _permit: permit }
    }

    /// The next line; `Ok(None)` when the server ended the stream cleanly
    /// (its last line complete); [`CallError::Lost`] when the connection
    /// was cut, mid-line or not.
    pub async fn next_line(&mut self) -> Result<Option<Vec<u8>>, CallError> {
        loop {
            if let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
                let line = self.buf.split_to(end + 1);
                let line = &line[..end];
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Ok(Some(line.to_vec()));
            }
            if self.done {
                if self.buf.iter().all(u8::is_ascii_whitespace) {
                    return Ok(None);
                }
                // A last line without its newline: the gateway always ends one.
                let rest = self.buf.split();
                return Ok(Some(rest.to_vec()));
            }
            if self.buf.len() > LINE_LIMIT {
                return Err(CallError::Decode("a stream line longer than 1 MiB".into()));
            }
            match self.body.frame().await {
                None => self.done = true,
                Some(Ok(frame)) => {
                    if let Ok(mut data) = frame.into_data() {
                        while data.has_remaining() {
                            let chunk = data.chunk();
                            self.buf.extend_from_slice(chunk);
                            let n = chunk.len();
                            data.advance(n);
                        }
                    }
                }
                Some(Err(e)) => return Err(CallError::Lost(format!("the stream was cut: {e}"))),
            }
        }
    }

    /// The next line, decoded: a message or the stream's error.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<StreamLine<T>>, CallError> {
        let Some(line) = self.next_line().await? else { return Ok(None) };
        serde_json::from_slice(&line).map(Some).map_err(|e| CallError::Decode(format!("a stream line: {e}")))
    }
}
