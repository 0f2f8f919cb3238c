//! The stand-in node's state, behind one lock: its invoices
//! ([`super::invoices`]), its payments ([`super::payments`]), the remote
//! payee, the scripts, and the switches of its reachability.

use std::collections::{HashMap, VecDeque};
use std::time::SystemTime;

use tokio::sync::broadcast;

use super::bolt11::NodeKey;
use super::invoices::OwnInvoice;
use super::payments::PaymentRecord;
use super::script::{Route, RouteFault, SendScript};
use crate::wire::Invoice;

/// A gRPC error as the gateway will write it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcErr {
    /// The gRPC code.
    pub code: i32,
    /// The message.
    pub message: String,
}

impl RpcErr {
    /// An error with this code.
    pub fn new(code: i32, message: &str) -> Self {
        Self { code, message: message.to_owned() }
    }

    /// A plain Go error: gRPC `Unknown` (2), HTTP 500.
    pub fn unknown(message: &str) -> Self {
        Self::new(2, message)
    }

    /// The gateway's HTTP status for the code (grpc-gateway's `HTTPStatusFromCode`).
    pub fn http_status(&self) -> u16 {
        match self.code {
            0 => 200,
            1 => 499,
            3 | 9 | 11 => 400,
            4 => 504,
            5 => 404,
            6 | 10 => 409,
            7 => 403,
            8 => 429,
            12 => 501,
            14 => 503,
            16 => 401,
            _ => 500,
        }
    }
}

/// A payee invoice the remote node minted.
#[derive(Clone, Copy)]
pub struct PayeeInvoice {
    pub preimage: [u8; 32],
    pub amount_msat: Option<u64>,
}

/// Everything the stand-in knows.
pub struct State {
    pub node: NodeKey,
    pub payee: NodeKey,
    pub invoices: HashMap<[u8; 32], OwnInvoice>,
    pub add_index: u64,
    pub settle_index: u64,
    pub invoice_events: broadcast::Sender<Invoice>,
    pub payments: HashMap<[u8; 32], PaymentRecord>,
    pub payment_index: u64,
    /// Payments that reached the payee, per hash.
    pub made: HashMap<[u8; 32], u32>,
    /// `SendPaymentV2` calls per hash that payment control let through.
    pub sends: HashMap<[u8; 32], u32>,
    pub payee_invoices: HashMap<[u8; 32], PayeeInvoice>,
    pub hash_scripts: HashMap<[u8; 32], VecDeque<SendScript>>,
    pub next_scripts: VecDeque<SendScript>,
    pub route_faults: HashMap<Route, VecDeque<RouteFault>>,
    /// Connections dropped before TLS while set, and this many more after.
    pub unreachable: bool,
    pub refuse_connections: u32,
    pub synced_to_chain: bool,
    pub route_fee_msat: u64,
    /// Requests received (any route, authorised or not).
    pub requests: u64,
}

impl State {
    pub fn new() -> Self {
        Self {
            node: NodeKey::random(),
            payee: NodeKey::random(),
            invoices: HashMap::new(),
            add_index: 0,
            settle_index: 0,
            invoice_events: broadcast::channel(1024).0,
            payments: HashMap::new(),
            payment_index: 0,
            made: HashMap::new(),
            sends: HashMap::new(),
            payee_invoices: HashMap::new(),
            hash_scripts: HashMap::new(),
            next_scripts: VecDeque::new(),
            route_faults: HashMap::new(),
            unreachable: false,
            refuse_connections: 0,
            synced_to_chain: true,
            route_fee_msat: 1_000,
            requests: 0,
        }
    }

    /// The next fault scripted for `route`.
    pub fn take_fault(&mut self, route: Route) -> Option<RouteFault> {
        self.route_faults.get_mut(&route).and_then(VecDeque::pop_front)
    }
}

/// Seconds since the Unix epoch.
pub fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
