//! [`LndRest`]: LND's REST endpoints this crate uses, typed, with LND's
//! encodings: `/v1/invoice/{}` takes the hash in hex, `/v2/router/track/{}`
//! in padded URL-safe base64, bodies carry `bytes` as base64.

use std::time::Duration;

use http::Method;

use crate::transport::{CallError, LateStream, LineStream, Rest};
use crate::wire::{
    AddInvoiceRequest, AddInvoiceResponse, B64, CancelInvoiceMsg, GetInfoResponse, Invoice, ListInvoiceResponse,
    SendPaymentRequest, codec,
};

/// LND's REST API, one method per endpoint.
#[derive(Clone)]
pub struct LndRest {
    rest: Rest,
}

impl LndRest {
    /// Over this client.
    pub fn new(rest: Rest) -> Self {
        Self { rest }
    }

    /// The REST client beneath, for endpoints this type does not cover.
    pub fn raw(&self) -> &Rest {
        &self.rest
    }

    /// The unary calls' time limit.
    pub fn request_timeout(&self) -> Duration {
        self.rest.request_timeout()
    }

    /// `GET /v1/getinfo`.
    pub async fn get_info(&self) -> Result<GetInfoResponse, CallError> {
        self.rest.unary(Method::GET, "/v1/getinfo", None::<&()>).await
    }

    /// `POST /v1/invoices`.
    pub async fn add_invoice(&self, req: &AddInvoiceRequest) -> Result<AddInvoiceResponse, CallError> {
        self.rest.unary(Method::POST, "/v1/invoices", Some(req)).await
    }

    /// `GET /v1/invoice/{r_hash_str}`: the hash in hex.
    pub async fn lookup_invoice(&self, hash: &[u8; 32]) -> Result<Invoice, CallError> {
        self.rest.unary(Method::GET, &format!("/v1/invoice/{}", hex::encode(hash)), None::<&()>).await
    }

    /// `GET /v1/invoices?index_offset=N&num_max_invoices=M`: the invoices
    /// added after add index `N`, at most `M`, oldest first.
    pub async fn list_invoices(&self, index_offset: u64, max: u64) -> Result<ListInvoiceResponse, CallError> {
        let path = format!("/v1/invoices?index_offset={index_offset}&num_max_invoices={max}");
        self.rest.unary(Method::GET, &path, None::<&()>).await
    }

    /// `POST /v2/invoices/cancel`.
    pub async fn cancel_invoice(&self, hash: &[u8; 32]) -> Result<(), CallError> {
        let msg = CancelInvoiceMsg { payment_hash: B64(hash.to_vec()) };
        let _: serde_json::Value = self.rest.unary(Method::POST, "/v2/invoices/cancel", Some(&msg)).await?;
        Ok(())
    }

    /// `POST /v2/router/send`: a stream of `Payment` updates.
    pub async fn send_payment(
        &self,
        req: &SendPaymentRequest,
        head_timeout: Duration,
    ) -> Result<LineStream, CallError> {
        self.rest.stream(Method::POST, "/v2/router/send", Some(req), head_timeout).await
    }

    /// `GET /v2/router/track/{payment_hash}`: a stream of `Payment`
    /// updates, the first one the payment's current state.
    pub async fn track_payment(&self, hash: &[u8; 32]) -> Result<LineStream, CallError> {
        let path = format!("/v2/router/track/{}", codec::encode_base64_url(hash));
        self.rest.stream(Method::GET, &path, None::<&()>, self.rest.request_timeout()).await
    }

    /// `GET /v1/invoices/subscribe?settle_index=N`: the invoices settled
    /// after `N` (none when `N` is 0: LND's backward compatibility), then
    /// live added and settled ones.
    /// It has a connection of its own, and no status line until its first
    /// message ([`LateStream`]).
    pub async fn subscribe_invoices(&self, settle_index: u64) -> Result<LateStream, CallError> {
        let path = format!("/v1/invoices/subscribe?settle_index={settle_index}");
        self.rest.open_stream(Method::GET, &path).await
    }
}
