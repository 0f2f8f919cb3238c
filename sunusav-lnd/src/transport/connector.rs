//! The connector of the hyper client: TCP, then the TLS handshake, both
//! within the connect timeout. Any failure here is a connect error
//! (`hyper_util` says `is_connect`): nothing of the request was sent.
//!
//! TCP keepalive is on: an invoice subscription may be quiet for hours,
//! and a peer that vanished must not leave it waiting forever.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Opens TLS connections to LND.
#[derive(Clone)]
pub struct Connector {
    tls: TlsConnector,
    timeout: Duration,
}

impl Connector {
    /// A connector with this TLS configuration and connect timeout.
    pub fn new(config: ClientConfig, timeout: Duration) -> Self {
        Self { tls: TlsConnector::from(Arc::new(config)), timeout }
    }
}

/// One TLS connection.
pub struct Conn(TokioIo<TlsStream<TcpStream>>);

impl Connection for Conn {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Probes after 30 s of silence (every 10 s, 3 times, where the system lets us say).
fn keepalive() -> socket2::TcpKeepalive {
    let k = socket2::TcpKeepalive::new().with_time(Duration::from_secs(30));
    #[cfg(any(target_os = "linux", target_os = "macos", target_os = "freebsd"))]
    let k = k.with_interval(Duration::from_secs(10)).with_retries(3);
    k
}

type ConnectFuture = Pin<Box<dyn Future<Output = io::Result<Conn>> + Send>>;

impl tower::Service<Uri> for Connector {
    type Response = Conn;
    type Error = io::Error;
    type Future = ConnectFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let (tls, timeout) = (self.tls.clone(), self.timeout);
        Box::pin(async move {
            let host = uri.host().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no host"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
            let port = uri.port_u16().unwrap_or(443);
            let name = ServerName::try_from(host.clone())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("server name {host:?}: {e}")))?;
            let connect = async {
                let tcp = TcpStream::connect((host.as_str(), port)).await?;
                tcp.set_nodelay(true)?;
                socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive())?;
                tls.connect(name, tcp).await
            };
            let stream = tokio::time::timeout(timeout, connect)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
            Ok(Conn(TokioIo::new(stream)))
        })
    }
}
