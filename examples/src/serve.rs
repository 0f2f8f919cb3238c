//! Serving the router on the open internet: HTTP/1.1 with a header-read
//! timeout, a request timeout and a concurrency limit, and a shutdown that
//! ends within its deadline whatever the clients do.
//!
//! At shutdown, [`serve`] stops accepting (the listener is closed), tells
//! every connection to finish: an idle one closes at once, one with a
//! request in flight closes after its response. Connections still open
//! after the drain time (a client stalling its body, say) are dropped.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use sunusav_axum::RouterLayers as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt as _;
use tower::limit::GlobalConcurrencyLimitLayer;

use crate::config::ServerArgs;

/// The HTTP limits of the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// How long a client gets to send a request's headers (`HEADER_READ_TIMEOUT_MS`).
    pub header_read_timeout: Duration,
    /// How long a request, its body included, gets to be answered (`REQUEST_TIMEOUT_MS`).
    pub request_timeout: Duration,
    /// Most requests served at once (`MAX_CONCURRENT_REQUESTS`).
    pub max_concurrent_requests: usize,
}

impl HttpLimits {
    /// The limits of the configuration.
    pub fn from_args(args: &ServerArgs) -> Self {
        Self {
            header_read_timeout: Duration::from_millis(args.header_read_timeout_ms),
            request_timeout: Duration::from_millis(args.request_timeout_ms),
            max_concurrent_requests: args.max_concurrent_requests,
        }
    }

    /// `app` with the concurrency limit and, around it, the request timeout
    /// (waiting for a slot counts): 408 `request_timeout` after it.
    pub fn apply(&self, app: Router) -> Router {
        app.layer(GlobalConcurrencyLimitLayer::new(self.max_concurrent_requests))
            .with_request_timeout(self.request_timeout)
    }
}

/// How the HTTP side stopped.
#[derive(Clone, Copy, Debug)]
pub struct Stopped {
    /// When `shutdown` completed (the start of the shutdown deadline).
    pub signalled_at: Instant,
    /// Connections open when the listener closed.
    pub open: usize,
    /// Connections still open at the end of the drain time, dropped.
    pub dropped: usize,
}

impl Stopped {
    /// Both listeners' figures together.
    #[must_use]
    pub fn and(self, other: Self) -> Self {
        Self {
            signalled_at: self.signalled_at.min(other.signalled_at),
            open: self.open + other.open,
            dropped: self.dropped + other.dropped,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then stops
/// accepting and gives open connections at most `drain` to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> Stopped {
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(connection(stream, peer, app.clone(), builder.clone(), stopping.clone()));
                }
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    let signalled_at = Instant::now();
    drop(listener);
    let open = connections.len();
    tracing::info!(open, drain_ms = millis(drain), "HTTP: stopped accepting; finishing open connections");
    stop.send_replace(true);
    let _ = tokio::time::timeout(drain, async { while connections.join_next().await.is_some() {} }).await;
    let dropped = connections.len();
    connections.shutdown().await;
    if dropped > 0 {
        tracing::warn!(dropped, "HTTP: connections still open at the drain deadline were dropped");
    }
    tracing::info!(open, dropped, "HTTP: stopped");
    Stopped { signalled_at, open, dropped }
}

/// One connection, until it ends or, after `stopping`, until its request in
/// flight is answered.
async fn connection(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    app: Router,
    builder: http1::Builder,
    mut stopping: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    // The client's address, for handlers and layers that ask (the rate limit).
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        app.clone().oneshot(request)
    });
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        () = async { drop(stopping.wait_for(|stop| *stop).await) } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
