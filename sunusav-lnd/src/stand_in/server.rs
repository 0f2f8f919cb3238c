//! The stand-in's server: TLS on 127.0.0.1, HTTP/1.1, the macaroon check,
//! scripted route faults, and dispatch to [`super::routes`].

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http::{Method, Request};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::respond::{self, Reply};
use super::routes;
use super::script::{Route, RouteFault};
use super::state::{RpcErr, State};
use crate::transport::MACAROON_HEADER;

/// What every connection and stream shares.
pub struct Shared {
    state: Mutex<State>,
    pub macaroon_hex: String,
    /// Bumped when a payment changes: in-flight streams look again.
    pub changed: watch::Sender<u64>,
    /// Bumped to cut every open invoice subscription.
    pub cut_subscriptions: watch::Sender<u64>,
    /// Bumped to drop every open connection.
    pub close_connections: watch::Sender<u64>,
}

impl Shared {
    pub fn new(macaroon_hex: String) -> Self {
        Self {
            state: Mutex::new(State::new()),
            macaroon_hex,
            changed: watch::channel(0).0,
            cut_subscriptions: watch::channel(0).0,
            close_connections: watch::channel(0).0,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Wakes the streams waiting on a payment.
    pub fn payments_changed(&self) {
        self.changed.send_modify(|n| *n += 1);
    }
}

/// Accepts connections until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(_) => continue,
            },
            _ = shutdown.changed() => return,
        };
        {
            let mut st = shared.lock();
            if st.unreachable {
                continue; // dropped before TLS: the client's handshake fails
            }
            if st.refuse_connections > 0 {
                st.refuse_connections -= 1;
                continue;
            }
        }
        let (acceptor, shared, mut shutdown) = (acceptor.clone(), Arc::clone(&shared), shutdown.clone());
        tokio::spawn(async move {
            let mut close = shared.close_connections.subscribe();
            let Ok(tls) = acceptor.accept(tcp).await else { return };
            let svc = {
                let shared = Arc::clone(&shared);
                service_fn(move |req| {
                    let shared = Arc::clone(&shared);
                    async move { handle(shared, req).await }
                })
            };
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), svc);
            tokio::select! {
                _ = conn => {}
                _ = close.changed() => {} // dropped: the socket closes mid-whatever
                _ = shutdown.changed() => {}
            }
        });
    }
}

fn route_of(method: &Method, path: &str) -> Option<Route> {
    Some(match (method, path) {
        (&Method::GET, "/v1/getinfo") => Route::GetInfo,
        (&Method::POST, "/v1/invoices") => Route::AddInvoice,
        (&Method::GET, "/v1/invoices") => Route::ListInvoices,
        (&Method::GET, p) if p.starts_with("/v1/invoice/") => Route::LookupInvoice,
        (&Method::POST, "/v2/invoices/cancel") => Route::CancelInvoice,
        (&Method::POST, "/v2/router/send") => Route::SendPayment,
        (&Method::GET, p) if p.starts_with("/v2/router/track/") => Route::TrackPayment,
        (&Method::GET, "/v1/invoices/subscribe") => Route::SubscribeInvoices,
        _ => return None,
    })
}

fn is_stream(route: Route) -> bool {
    matches!(route, Route::SendPayment | Route::TrackPayment | Route::SubscribeInvoices)
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Reply, std::io::Error> {
    shared.lock().requests += 1;
    let Some(route) = route_of(req.method(), req.uri().path()) else {
        return Ok(respond::unary_error(&RpcErr::new(5, "Not Found")));
    };
    let mut cut = None;
    let fault = shared.lock().take_fault(route);
    match fault {
        Some(RouteFault::Status(code)) => return Ok(respond::foreign(code)),
        Some(RouteFault::Unauthorized) => return Ok(respond::unauthorized()),
        Some(RouteFault::Garbage) => return Ok(respond::garbage()),
        Some(RouteFault::Rpc { code, message }) => {
            let err = RpcErr::new(code, &message);
            return Ok(if is_stream(route) { respond::stream_error(&err) } else { respond::unary_error(&err) });
        }
        Some(RouteFault::SlowHeaders(d)) => tokio::time::sleep(d).await,
        Some(RouteFault::CutAfter(0)) => {
            return Err(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "cut before any answer"));
        }
        Some(RouteFault::CutAfter(n)) => cut = Some(n),
        None => {}
    }
    // LND's macaroon interceptor runs before the RPC, and its errors are
    // plain Go errors (`macaroons/service.go`): gRPC `Unknown`, HTTP 500.
    let given = req.headers().get_all(MACAROON_HEADER).iter().collect::<Vec<_>>();
    let refused = match given.as_slice() {
        [one] if one.as_bytes() == shared.macaroon_hex.as_bytes() => None,
        [_] => Some(RpcErr::unknown("verification failed: signature mismatch after caveat verification")),
        other => Some(RpcErr::unknown(&format!("expected 1 macaroon, got {}", other.len()))),
    };
    if let Some(err) = refused {
        return Ok(if is_stream(route) { respond::stream_error(&err) } else { respond::unary_error(&err) });
    }
    routes::dispatch(&shared, route, req, cut).await
}

/// Reads a request body up to 1 MiB.
pub async fn body_of(req: Request<Incoming>) -> Result<bytes::Bytes, RpcErr> {
    use http_body_util::BodyExt;
    http_body_util::Limited::new(req.into_body(), 1 << 20)
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .map_err(|e| RpcErr::new(3, &format!("reading the body: {e}")))
}

/// How long to let clients see their connections close.
pub const SETTLE: Duration = Duration::from_millis(100);
