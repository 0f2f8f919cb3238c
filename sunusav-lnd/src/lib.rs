//! # sunusav-lnd
//!
//! The payments port of sunusav ([`sunusav_core::ports::Payments`]) on
//! LND's REST API.
//!
//! ## Layout
//!
//! - [`wire`]: LND's REST messages and protojson's encodings.
//! - [`transport`]: HTTP/1.1 over TLS (hyper, rustls trusting only LND's
//!   `tls.cert`), the macaroon header, unary calls and line streams.
//! - [`rpc`]: [`LndRest`], one method per endpoint.
//! - [`config`]: [`LndConfig`] and the redacted [`config::Macaroon`].
//! - `stand_in` (feature `stand-in`): an LND stand-in server for tests.

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
