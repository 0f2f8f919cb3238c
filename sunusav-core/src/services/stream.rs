//! Settlements reported by the node's stream of settled invoices (LND's
//! `SubscribeInvoices`), a second source beside webhooks.
//!
//! Each settled invoice is recorded and queued exactly as a webhook delivery
//! is ([`Tontine::ingest_webhook`]), under a key of its own
//! (`node-settle:<payment hash>`) and a body derived from what the node said,
//! so a second report of it is a replay; a webhook of the same payment is
//! another delivery whose settlement is a replay (settlement is idempotent by
//! payment hash). The store keeps the settle index of the last invoice whose
//! delivery is durable ([`crate::ports::NodeCursors`]); a new stream resumes
//! after it, so a restart or a cut stream leaves no gap, and what was
//! recorded but not yet indexed arrives again as a replay.

use crate::domain::keys::IdempotencyKey;
use crate::ports::{BackendError, SettledInvoice};

use super::event::{EventStatus, LightningEvent};
use super::settle::Ingested;
use super::{ServiceError, Tontine};

/// The cursor source name of the node's settled-invoice stream.
pub const NODE_SETTLE_SOURCE: &str = "node-settled";

const KEY_PREFIX: &str = "node-settle:";

/// Whether a delivery came from the node's own stream (not a webhook).
pub(super) fn is_from_node(key: &IdempotencyKey) -> bool {
    key.as_str().starts_with(KEY_PREFIX)
}

/// Why a run of the stream ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamCut {
    /// The node ended the stream.
    Ended,
    /// The stream failed or was cut.
    Cut(String),
}

impl Tontine {
    /// The settle index the node's stream resumes after.
    pub async fn settle_index(&self) -> Result<u64, ServiceError> {
        Ok(self.store.settle_index(NODE_SETTLE_SOURCE).await?)
    }

    /// Records and queues one invoice the node reports settled, then moves
    /// the stored settle index past it. Idempotent: a second report of the
    /// same invoice is a replay.
    pub async fn ingest_node_settlement(&self, invoice: &SettledInvoice) -> Result<Ingested, ServiceError> {
        let (ingested, _) = self.record_node_settlement(invoice.payment_hash, invoice.amount_paid).await?;
        self.store.advance_settle_index(NODE_SETTLE_SOURCE, invoice.settle_index).await?;
        Ok(ingested)
    }

    /// Records and queues a settlement the node reported, under the key the
    /// stream uses for it (so the stream's own report of it is a replay);
    /// returns the delivery's job, for a caller that settles it at once.
    pub(super) async fn record_node_settlement(
        &self,
        payment_hash: crate::domain::ids::PaymentHash,
        amount_paid: crate::domain::money::Msat,
    ) -> Result<(Ingested, super::WebhookJob), ServiceError> {
        let event =
            LightningEvent { payment_hash, status: EventStatus::Settled, amount_msat: amount_paid, event_id: None };
        let body =
            serde_json::to_vec(&event).map_err(|e| ServiceError::InvalidPayload(BackendError::from_source(e)))?;
        let key = IdempotencyKey::parse(format!("{KEY_PREFIX}{payment_hash}"))
            .map_err(|e| ServiceError::Invariant(e.to_string()))?;
        let ingested = self.ingest_webhook(key.clone(), &body, event.clone()).await?;
        Ok((ingested, super::WebhookJob::new(key, event)))
    }
}
