//! The Lightning node's webhook event and the job payloads.

use serde::{Deserialize, Serialize};

use crate::domain::attempt::PaymentAttempt;
use crate::domain::ids::{GroupId, PaymentHash};
use crate::domain::keys::IdempotencyKey;
use crate::domain::money::Msat;
use crate::domain::outcome::DeliveryOutcome;

/// The longest `status` or `event_id` accepted.
const MAX_FIELD: usize = 128;

/// An "invoice settled" (or other status) event from the node, parsed only
/// after its signature was verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LightningEvent {
    /// The invoice's payment hash.
    pub payment_hash: PaymentHash,
    /// `settled`; other values are recorded and ignored.
    pub status: EventStatus,
    /// The amount received.
    pub amount_msat: Msat,
    /// The sender's event id, when it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// What an event says of its invoice.
///
/// `settled` (in any case) is [`EventStatus::Settled`]; anything else is kept
/// as sent, recorded and ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventStatus {
    /// The invoice was paid.
    Settled,
    /// Any other status (`open`, `canceled`, `accepted`, …), as sent.
    Other(String),
}

impl EventStatus {
    /// The name sent on the wire (`settled` for [`EventStatus::Settled`]).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Settled => "settled",
            Self::Other(s) => s,
        }
    }
}

impl From<&str> for EventStatus {
    fn from(s: &str) -> Self {
        if s.eq_ignore_ascii_case("settled") { Self::Settled } else { Self::Other(s.to_owned()) }
    }
}

impl Serialize for EventStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(Self::from(s.as_ref()))
    }
}

/// Why a body is not an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// Not JSON, or not an object of the right shape.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// JSON, but a field's value is out of bounds.
    #[error("invalid event: {0}")]
    InvalidEvent(&'static str),
}

impl EventError {
    /// The outcome recorded for a delivery whose body is not an event.
    pub const fn outcome(&self) -> DeliveryOutcome {
        match self {
            Self::InvalidJson(_) => DeliveryOutcome::InvalidJson,
            Self::InvalidEvent(_) => DeliveryOutcome::InvalidEvent,
        }
    }

    /// A stable code.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::InvalidJson(_) => "invalid_json",
            Self::InvalidEvent(_) => "invalid_event",
        }
    }
}

impl LightningEvent {
    /// Parses and checks a body. Unknown fields are ignored (forward compatible).
    pub fn parse(body: &[u8]) -> Result<Self, EventError> {
        let ev: Self = serde_json::from_slice(body).map_err(|e| {
            let msg = e.to_string();
            if e.is_data() {
                EventError::InvalidJson(format!("wrong field: {msg}"))
            } else {
                EventError::InvalidJson(msg)
            }
        })?;
        if let EventStatus::Other(other) = &ev.status
            && (other.is_empty() || other.len() > MAX_FIELD)
        {
            return Err(EventError::InvalidEvent("status must be 1 to 128 characters"));
        }
        if ev.event_id.as_ref().is_some_and(|id| id.is_empty() || id.len() > MAX_FIELD) {
            return Err(EventError::InvalidEvent("event_id must be 1 to 128 characters"));
        }
        Ok(ev)
    }

    /// Whether the event says the invoice was paid.
    pub fn is_settled(&self) -> bool {
        self.status == EventStatus::Settled
    }
}

/// The payload of a webhook job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookJob {
    /// The delivery's key (its record's key; the job id of generation 0).
    pub key: IdempotencyKey,
    /// The event.
    pub event: LightningEvent,
    /// The delivery's generation this job runs (0, the first, is left out of
    /// the payload).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: u32,
}

impl WebhookJob {
    /// The first job of a delivery.
    pub const fn new(key: IdempotencyKey, event: LightningEvent) -> Self {
        Self { key, event, generation: 0 }
    }

    /// Its job id: the key's, for its generation.
    pub fn job_id(&self) -> IdempotencyKey {
        self.key.for_generation(self.generation)
    }
}

/// The payload of a payout job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutJob {
    /// `payout:<group>:<cycle>` (the attempt's key; the job id of generation 0).
    pub key: IdempotencyKey,
    /// The group.
    pub group: GroupId,
    /// The cycle.
    pub cycle: u32,
    /// The attempt's generation this job runs: a job of an older one does
    /// nothing (0, the first, is left out of the payload).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: u32,
}

impl PayoutJob {
    /// The job of an attempt's current generation.
    pub fn of(attempt: &PaymentAttempt) -> Self {
        Self { key: attempt.key.clone(), group: attempt.group, cycle: attempt.cycle, generation: attempt.generation() }
    }

    /// Its job id: the key's, for its generation.
    pub fn job_id(&self) -> IdempotencyKey {
        self.key.for_generation(self.generation)
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
const fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse_and_bad_ones_get_a_code() {
        let ok = format!(r#"{{"payment_hash":"{}","status":"settled","amount_msat":5000,"extra":1}}"#, "ab".repeat(32));
        let ev = LightningEvent::parse(ok.as_bytes()).unwrap();
        assert!(ev.is_settled());
        assert_eq!(ev.amount_msat, Msat::new(5_000));
        let cases: &[(&[u8], &str)] = &[
            (b"{", "invalid_json"),
            (b"[]", "invalid_json"),
            (b"\xff\xfe", "invalid_json"),
            (br#"{"payment_hash":"zz","status":"settled","amount_msat":1}"#, "invalid_json"),
            (br#"{"status":"settled","amount_msat":1}"#, "invalid_json"),
        ];
        for (body, code) in cases {
            assert_eq!(LightningEvent::parse(body).unwrap_err().code(), *code, "{}", String::from_utf8_lossy(body));
        }
        let huge = format!(
            r#"{{"payment_hash":"{}","status":"settled","amount_msat":99999999999999999999999}}"#,
            "ab".repeat(32)
        );
        assert_eq!(LightningEvent::parse(huge.as_bytes()).unwrap_err().code(), "invalid_json");
        let empty = format!(r#"{{"payment_hash":"{}","status":"","amount_msat":1}}"#, "ab".repeat(32));
        assert_eq!(LightningEvent::parse(empty.as_bytes()).unwrap_err().code(), "invalid_event");
    }

    #[test]
    fn a_job_of_generation_zero_keeps_its_payload_and_id_and_a_later_one_gets_its_own() {
        let key = IdempotencyKey::payout(GroupId::random(), 1);
        let mut job = PayoutJob { key: key.clone(), group: GroupId::random(), cycle: 1, generation: 0 };
        let json = serde_json::to_string(&job).unwrap();
        assert!(!json.contains("generation"), "{json}");
        assert_eq!(job.job_id(), key);
        job.generation = 2;
        let back: PayoutJob = serde_json::from_slice(&serde_json::to_vec(&job).unwrap()).unwrap();
        assert_eq!((back.generation, back.job_id()), (2, key.for_generation(2)));
    }
}
