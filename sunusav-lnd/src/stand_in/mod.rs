//! [`StandIn`]: an LND REST stand-in for tests (feature `stand-in`).
//!
//! A TLS server on 127.0.0.1 with a certificate made for it (shaped like
//! LND's `tls.cert`), which checks the macaroon as LND does and speaks the
//! endpoints this crate uses with LND's shapes and encodings. It mints real
//! BOLT 11 invoices on regtest, keeps LND's rules per payment hash
//! ([`payments`]) and per invoice ([`invoices`]), and lets a test script
//! what a real node does on its own ([`script`]): failures, payments in
//! flight, cut streams, error lines, proxies' statuses, slow headers, an
//! outage. A payer settles its invoices; a remote payee mints invoices it
//! can pay and takes keysends.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use sunusav_lnd::stand_in::StandIn;
//!
//! let lnd = StandIn::start().await?;
//! let config = lnd.config(); // its URL, macaroon file and certificate file
//! # let _ = config; Ok(()) }
//! ```

mod bolt11;
mod cert;
mod conformance;
pub mod invoices;
pub mod payments;
mod respond;
mod routes;
pub mod script;
mod send;
mod server;
mod state;
mod subscribe;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use script::{Answer, Outcome, Route, RouteFault, SendScript};

use crate::config::LndConfig;
use crate::wire::InvoiceState;
use server::Shared;
use state::PayeeInvoice;

/// A running stand-in; clones share it; the last one dropped stops it.
#[derive(Clone)]
pub struct StandIn {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    addr: SocketAddr,
    dir: cert::TempDir,
    cert_pem: String,
    macaroon: Vec<u8>,
    shutdown: watch::Sender<bool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

impl std::fmt::Debug for StandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandIn").field("addr", &self.inner.addr).finish_non_exhaustive()
    }
}

fn io_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl StandIn {
    /// Starts a stand-in on 127.0.0.1, on a free port, with a fresh
    /// certificate and macaroon written to a temporary directory.
    pub async fn start() -> std::io::Result<Self> {
        let creds = cert::generate().map_err(io_err)?;
        let macaroon: Vec<u8> = rand::random::<[u8; 32]>().to_vec();
        let dir = cert::TempDir::new()?;
        dir.write("tls.cert", creds.cert_pem.as_bytes())?;
        dir.write("admin.macaroon", &macaroon)?;
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io_err)?
            .with_no_client_auth()
            .with_single_cert(
                vec![creds.cert_der.clone().into()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(creds.key_der.clone().into()),
            )
            .map_err(io_err)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(hex::encode(&macaroon)));
        let (shutdown, rx) = watch::channel(false);
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        tokio::spawn(server::serve(listener, acceptor, Arc::clone(&shared), rx));
        Ok(Self { inner: Arc::new(Inner { shared, addr, dir, cert_pem: creds.cert_pem, macaroon, shutdown }) })
    }

    /// Its REST URL.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.inner.addr.port())
    }

    /// A configuration that reaches it: its URL, macaroon and certificate files.
    pub fn config(&self) -> LndConfig {
        let dir = self.inner.dir.path();
        LndConfig::new(self.url(), dir.join("admin.macaroon"), dir.join("tls.cert"))
    }

    /// A configuration with another macaroon (written beside the right one).
    pub fn config_with_macaroon(&self, macaroon: &[u8]) -> std::io::Result<LndConfig> {
        let path =
            self.inner.dir.write(&format!("other-{}.macaroon", hex::encode(rand::random::<[u8; 4]>())), macaroon)?;
        let dir = self.inner.dir.path();
        Ok(LndConfig::new(self.url(), path, dir.join("tls.cert")))
    }

    /// A configuration trusting another certificate (PEM).
    pub fn config_with_cert(&self, pem: &str) -> std::io::Result<LndConfig> {
        let path =
            self.inner.dir.write(&format!("other-{}.cert", hex::encode(rand::random::<[u8; 4]>())), pem.as_bytes())?;
        Ok(LndConfig::new(self.url(), self.inner.dir.path().join("admin.macaroon"), path))
    }

    /// A fresh certificate of another node, PEM (for wrong-certificate tests).
    pub fn other_certificate() -> std::io::Result<String> {
        cert::generate().map(|c| c.cert_pem).map_err(io_err)
    }

    /// Its certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.inner.cert_pem
    }

    /// Whether `bytes` is its macaroon (tests compare, never print it).
    pub fn is_macaroon(&self, bytes: &[u8]) -> bool {
        self.inner.macaroon == bytes
    }

    /// Its node key (`identity_pubkey`).
    pub fn node_pubkey(&self) -> [u8; 33] {
        self.inner.shared.lock().node.public()
    }

    /// The remote payee's key: the destination of keysends.
    pub fn payee_pubkey(&self) -> [u8; 33] {
        self.inner.shared.lock().payee.public()
    }

    /// The remote payee mints an invoice this node can pay: BOLT 11 and its hash.
    pub fn mint_payee_invoice(
        &self,
        amount_msat: Option<u64>,
        expiry: Duration,
    ) -> std::io::Result<(String, [u8; 32])> {
        let preimage: [u8; 32] = rand::random();
        let hash: [u8; 32] =
            sha2::Digest::finalize(sha2::Digest::chain_update(sha2::Sha256::default(), preimage)).into();
        let mut st = self.inner.shared.lock();
        let bolt11 = st
            .payee
            .invoice(&hash, amount_msat, "sunusav payee", expiry, std::time::SystemTime::now())
            .map_err(io_err)?;
        st.payee_invoices.insert(hash, PayeeInvoice { preimage, amount_msat });
        Ok((bolt11, hash))
    }

    /// A payer pays one of this node's invoices `paid_msat` (its value when
    /// `None`): the settle index it got, or `None` when LND would refuse.
    pub fn pay_invoice(&self, hash: &[u8; 32], paid_msat: Option<u64>) -> Option<u64> {
        let mut st = self.inner.shared.lock();
        st.expire_invoices();
        let value = st.lookup_invoice(hash).ok().and_then(|i| u64::try_from(i.value_msat.0).ok())?;
        st.settle(hash, paid_msat.unwrap_or(value))
    }

    /// The state of one of this node's invoices.
    pub fn invoice_state(&self, hash: &[u8; 32]) -> Option<InvoiceState> {
        let mut st = self.inner.shared.lock();
        st.expire_invoices();
        st.lookup_invoice(hash).ok().map(|i| i.state)
    }

    /// How many payments of `hash` reached the payee.
    pub fn payments_made(&self, hash: &[u8; 32]) -> u32 {
        self.inner.shared.lock().made.get(hash).copied().unwrap_or(0)
    }

    /// The largest number of payments any hash had.
    pub fn max_payments_made(&self) -> u32 {
        self.inner.shared.lock().made.values().copied().max().unwrap_or(0)
    }

    /// How many `SendPaymentV2` calls of `hash` payment control let through.
    pub fn sends(&self, hash: &[u8; 32]) -> u32 {
        self.inner.shared.lock().sends.get(hash).copied().unwrap_or(0)
    }

    /// Requests received, authorised or not.
    pub fn requests(&self) -> u64 {
        self.inner.shared.lock().requests
    }

    /// The next payments of `hash` meet these scripts, in order.
    pub fn script_payment(&self, hash: &[u8; 32], script: SendScript) {
        self.inner.shared.lock().hash_scripts.entry(*hash).or_default().push_back(script);
    }

    /// The next payment sent (of a hash with no script of its own) meets this.
    pub fn script_next_payment(&self, script: SendScript) {
        self.inner.shared.lock().next_scripts.push_back(script);
    }

    /// The next request to `route` meets `fault`.
    pub fn script_route(&self, route: Route, fault: RouteFault) {
        self.inner.shared.lock().route_faults.entry(route).or_default().push_back(fault);
    }

    /// Ends the in-flight payment of `hash`: whether it was in flight.
    pub fn resolve(&self, hash: &[u8; 32], succeed: bool) -> bool {
        let done = self.inner.shared.lock().resolve(hash, succeed);
        self.inner.shared.payments_changed();
        done
    }

    /// Ends every in-flight payment.
    pub fn resolve_all_in_flight(&self, succeed: bool) {
        {
            let mut st = self.inner.shared.lock();
            for hash in st.in_flight() {
                st.resolve(&hash, succeed);
            }
        }
        self.inner.shared.payments_changed();
    }

    /// Takes the node off the network (`false`: new connections are dropped
    /// before TLS, open ones closed) or back (`true`).
    pub async fn set_reachable(&self, reachable: bool) {
        self.inner.shared.lock().unreachable = !reachable;
        if !reachable {
            self.close_connections().await;
        }
    }

    /// Drops the next `n` connections before TLS (and closes the open ones):
    /// the next calls find the node unreachable and send nothing.
    pub async fn refuse_next_connections(&self, n: u32) {
        self.inner.shared.lock().refuse_connections = n;
        self.close_connections().await;
    }

    async fn close_connections(&self) {
        self.inner.shared.close_connections.send_modify(|n| *n += 1);
        // Let clients see their pooled connections close.
        tokio::time::sleep(server::SETTLE).await;
    }

    /// Whether `getinfo` says it is synced to the chain.
    pub fn set_synced_to_chain(&self, synced: bool) {
        self.inner.shared.lock().synced_to_chain = synced;
    }

    /// The fee every route costs (default 1,000 msat).
    pub fn set_route_fee_msat(&self, fee: u64) {
        self.inner.shared.lock().route_fee_msat = fee;
    }

    /// Cuts every open invoice subscription (their connections drop).
    pub fn cut_subscriptions(&self) {
        self.inner.shared.cut_subscriptions.send_modify(|n| *n += 1);
    }
}
