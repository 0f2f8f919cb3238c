//! Fuzzes `LightningEvent::parse` on arbitrary bytes, and what is derived from
//! an event: its idempotency key and its `WebhookJob` payload.
//!
//! Invariants (a violation panics = a crash for libFuzzer):
//! - nothing panics;
//! - an error's `code()` is `invalid_json` or `invalid_event`;
//! - an event's `status` is 1..=128 bytes, its `event_id` absent or 1..=128 bytes;
//! - re-serialising an event and parsing it again gives an equal event (and the
//!   same bytes when serialised again);
//! - `IdempotencyKey::webhook(event_id, body)` is non-empty, at most 255 bytes of
//!   printable ASCII (`!`..=`~`), round-trips through `IdempotencyKey::parse`
//!   and through JSON, and is `webhook:<id>` exactly when the id is printable
//!   and short enough;
//! - a `WebhookJob::new(key, event)` round-trips through JSON.

use sunusav_core::IdempotencyKey;
use sunusav_core::domain::keys::MAX_KEY_LEN;
use sunusav_core::services::{LightningEvent, WebhookJob};

const CODES: [&str; 2] = ["invalid_json", "invalid_event"];

fn check_key(key: &IdempotencyKey, event_id: Option<&str>) {
    let s = key.as_str();
    assert!(!s.is_empty() && s.len() <= MAX_KEY_LEN, "key of {} bytes: {s:?}", s.len());
    assert!(s.bytes().all(|b| b.is_ascii_graphic()), "unprintable key {s:?}");
    assert!(s.starts_with("webhook:"), "{s:?}");
    let raw_ok = event_id.is_some_and(|id| {
        !id.is_empty() && "webhook:".len() + id.len() <= MAX_KEY_LEN && id.bytes().all(|b| b.is_ascii_graphic())
    });
    if raw_ok {
        assert_eq!(Some(&s["webhook:".len()..]), event_id);
    } else {
        let digest = s.strip_prefix("webhook:sha256:").expect("hashed form");
        assert_eq!(digest.len(), 64);
        assert!(digest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    }
    assert_eq!(IdempotencyKey::parse(s), Ok(key.clone()));
    let json = serde_json::to_string(key).expect("a key serialises");
    assert_eq!(serde_json::from_str::<IdempotencyKey>(&json).expect("a key deserialises"), *key);
}

/// Runs the checks on one input (raw bytes: every input is replayed, so the
/// answer is always `true`).
pub fn check(data: &[u8]) -> bool {
    run(data);
    true
}

fn run(body: &[u8]) {
    let event = match LightningEvent::parse(body) {
        Ok(event) => event,
        Err(e) => {
            assert!(CODES.contains(&e.code()), "undocumented code {:?} for {e:?}", e.code());
            assert!(!e.to_string().is_empty());
            // Even a refused body gets a key (hashed) if a caller wants one.
            check_key(&IdempotencyKey::webhook(None, body), None);
            return;
        }
    };
    let status = event.status.as_str();
    assert!(!status.is_empty() && status.len() <= 128, "status {:?}", event.status);
    if let Some(id) = &event.event_id {
        assert!(!id.is_empty() && id.len() <= 128, "event_id {id:?}");
    }
    let _ = event.is_settled();

    // Round trip through JSON.
    let bytes = serde_json::to_vec(&event).expect("an event serialises");
    let again = LightningEvent::parse(&bytes)
        .unwrap_or_else(|e| panic!("re-serialised event does not parse: {e:?}: {}", String::from_utf8_lossy(&bytes)));
    assert_eq!(again, event, "round trip changed the event");
    assert_eq!(serde_json::to_vec(&again).expect("serialises"), bytes, "serialisation is not stable");
    let pretty = serde_json::to_vec_pretty(&event).expect("serialises");
    assert_eq!(LightningEvent::parse(&pretty).expect("pretty JSON parses"), event);

    // The delivery's idempotency key.
    let key = IdempotencyKey::webhook(event.event_id.as_deref(), body);
    check_key(&key, event.event_id.as_deref());
    // Deterministic.
    assert_eq!(IdempotencyKey::webhook(event.event_id.as_deref(), body), key);

    // The job payload that carries it through the queue.
    let job = WebhookJob::new(key, event);
    let json = serde_json::to_vec(&job).expect("a job serialises");
    let back: WebhookJob = serde_json::from_slice(&json).expect("a job deserialises");
    assert_eq!(back, job);
}
