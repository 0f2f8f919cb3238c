//! Where the verifier reads headers from.

/// A read-only view of request headers, looked up by name **case-insensitively**.
///
/// Values are raw bytes; the verifier rejects non-UTF-8 values as malformed. When
/// a name occurs more than once, implementations return the first value. The
/// axum adapter implements this for `http::HeaderMap`; slices, arrays and vectors
/// of `(name, value)` pairs implement it here (handy in tests).
///
/// ```
/// use sunusav_core::webhook::HeaderSource;
///
/// let headers = [("X-Sunu-Signature", "sha256=00")];
/// assert_eq!(headers.header("x-sunu-signature"), Some(&b"sha256=00"[..]));
/// assert_eq!(headers.header("webhook-id"), None);
/// ```
pub trait HeaderSource {
    /// The value of the first header called `name` (any case), if any.
    fn header(&self, name: &str) -> Option<&[u8]>;
}

impl<N: AsRef<str>, V: AsRef<[u8]>> HeaderSource for [(N, V)] {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.iter().find(|(n, _)| n.as_ref().eq_ignore_ascii_case(name)).map(|(_, v)| v.as_ref())
    }
}

impl<N: AsRef<str>, V: AsRef<[u8]>, const K: usize> HeaderSource for [(N, V); K] {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.as_slice().header(name)
    }
}

impl<N: AsRef<str>, V: AsRef<[u8]>> HeaderSource for Vec<(N, V)> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.as_slice().header(name)
    }
}

impl<H: HeaderSource + ?Sized> HeaderSource for &H {
    fn header(&self, name: &str) -> Option<&[u8]> {
        (**self).header(name)
    }
}
