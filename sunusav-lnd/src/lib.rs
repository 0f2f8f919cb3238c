//! # sunusav-lnd
//!
//! The payments port of sunusav ([`sunusav_core::ports::Payments`] and
//! [`sunusav_core::ports::payments::SettleEvents`]) on LND's REST API:
//! invoices, payouts by keysend or BOLT 11 invoice over `SendPaymentV2`,
//! look-ups by payment hash over `TrackPaymentV2`, and settle events from
//! `SubscribeInvoices`, resumable by settle index.
//!
//! It speaks LND's REST gateway as it is: proto field names, 64-bit
//! integers as strings, `bytes` as base64 (hex or URL-safe base64 where a
//! path takes them), one JSON object per line on streams, errors matched on
//! their gRPC code. TLS trusts LND's `tls.cert` and nothing else; the
//! macaroon goes in `Grpc-Metadata-macaroon` and never into a log, an error
//! or a `Debug` output. No gRPC toolchain: hyper, rustls and serde.
//!
//! ## Layout
//!
//! - [`config`]: [`LndConfig`] and the redacted [`config::Macaroon`].
//! - [`transport`]: HTTP/1.1 over TLS (hyper, rustls on `ring`, the
//!   certificate pinned), unary calls and line streams, and
//!   [`transport::CallError`], which says whether a request could have
//!   reached the node.
//! - [`wire`]: LND's REST messages and protojson's encodings.
//! - [`rpc`]: [`LndRest`], one method per endpoint.
//! - [`error`]: [`ConnectError`], and the table of LND's answers to the
//!   port's errors.
//! - `node`, `pay`, `settle`, `port`: [`LndNode`] and its implementation of
//!   the port.
//! - `stand_in` (feature `stand-in`): `StandIn`, an LND stand-in server for
//!   tests, with LND's rules per payment hash, real BOLT 11 invoices and
//!   scriptable faults; it is also the conformance suite's `NodeScript`.
//!
//! ## Example
//!
//! ```no_run
//! use std::time::Duration;
//! use sunusav_core::Msat;
//! use sunusav_core::ports::payments::Payments;
//! use sunusav_lnd::{LndConfig, LndNode};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = LndConfig::new("https://127.0.0.1:8080", "admin.macaroon", "tls.cert");
//! let node = LndNode::connect(config).await?;
//! node.ping().await?;
//! let invoice = node.create_invoice(Msat::new(30_000), "cycle 1", Duration::from_hours(1)).await?;
//! println!("{}", invoice.bolt11);
//! # Ok(()) }
//! ```

// Every dependency is used (tests excepted: they see the dev-dependencies
// too); scripts/unused-deps.sh checks the binaries.
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

pub mod config;
pub mod error;
mod node;
mod pay;
mod port;
pub mod rpc;
mod settle;
pub mod transport;
pub mod wire;

#[cfg(feature = "stand-in")]
pub mod stand_in;

pub use config::LndConfig;
pub use error::ConnectError;
pub use node::LndNode;
pub use rpc::LndRest;
