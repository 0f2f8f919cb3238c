//! [`BackendError`]: what a port keeps of a backend's failure.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// A backend failure (a connection refused, a time-out, a reply that makes no
/// sense), with its source kept for the error chain.
///
/// Its message says what failed, and includes the source's own message so that
/// a log line of the error alone tells the story; [`Error::source`] still
/// returns the original error, for callers that walk the chain or downcast.
/// Adapters build it from errors that never carry secrets (no connection
/// string, no password, no macaroon).
///
/// Cheap to clone; equality compares messages only.
#[derive(Clone)]
#[non_exhaustive]
pub struct BackendError {
    message: String,
    source: Option<Arc<dyn Error + Send + Sync + 'static>>,
}

impl BackendError {
    /// A failure described by `message` alone.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), source: None }
    }

    /// A failure caused by `source`, described as `context: source`.
    pub fn caused_by(context: &str, source: impl Error + Send + Sync + 'static) -> Self {
        Self { message: format!("{context}: {source}"), source: Some(Arc::new(source)) }
    }

    /// A failure that is `source` itself.
    pub fn from_source(source: impl Error + Send + Sync + 'static) -> Self {
        Self { message: source.to_string(), source: Some(Arc::new(source)) }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("BackendError");
        d.field("message", &self.message);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl Error for BackendError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

impl PartialEq for BackendError {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
    }
}

impl Eq for BackendError {}

impl From<String> for BackendError {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

impl From<&str> for BackendError {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_is_kept_and_the_message_includes_it() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = BackendError::caused_by("connecting to the store", io);
        assert_eq!(e.to_string(), "connecting to the store: refused");
        let source = e.source().expect("source kept");
        assert!(source.downcast_ref::<std::io::Error>().is_some());
        assert_eq!(e, BackendError::new("connecting to the store: refused"));
    }
}
