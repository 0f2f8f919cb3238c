//! Verifying a webhook allocates nothing, in either scheme.
//!
//! `allocation-counter` installs a counting global allocator (the crate forbids
//! `unsafe`, so the allocator comes from that dev-dependency) and counts the
//! allocations of the current thread only.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use sunusav_core::webhook::{Secret, Verifier, VerifyError};

const ROUNDS: usize = 1_000;
const NOW: i64 = 1_700_000_000;

fn tag(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn assert_no_allocation(verifier: &Verifier, good: &[(&str, &[u8])], bad: &[(&str, &[u8])], body: &[u8]) {
    // The counter is live: one box is one allocation.
    let probe = allocation_counter::measure(|| drop(std::hint::black_box(Box::new(1_u8))));
    assert_eq!(probe.count_total, 1, "the counting allocator is not installed");
    // Warm-up, outside the measure.
    assert!(verifier.verify(good, body, NOW).is_ok());
    assert_eq!(verifier.verify(bad, body, NOW), Err(VerifyError::InvalidSignature));

    let info = allocation_counter::measure(|| {
        for _ in 0..ROUNDS {
            let ok = verifier.verify(std::hint::black_box(good), std::hint::black_box(body), NOW);
            assert!(ok.is_ok());
            let err = verifier.verify(std::hint::black_box(bad), body, NOW);
            assert!(err.is_err());
        }
    });

    assert_eq!(info.count_total, 0, "{info:?}");
}

#[test]
fn verifying_hex_signatures_allocates_nothing() {
    let body = vec![b'x'; 4096];
    let keys = ["old-secret-before-rotation", "current-secret-of-the-group"];
    let verifier = Verifier::hex_sha256(keys.map(|k| Secret::from_text(k).unwrap())).unwrap();
    let good = format!("sha256={}", hex::encode(tag(keys[1].as_bytes(), &[&body])));
    let bad = format!("sha256={}", hex::encode(tag(b"not-one-of-the-secrets", &[&body])));

    assert_no_allocation(
        &verifier,
        &[("X-Sunu-Signature", good.as_bytes())],
        &[("x-sunu-signature", bad.as_bytes())],
        &body,
    );
}

#[test]
fn verifying_standard_webhooks_allocates_nothing() {
    let body = vec![b'x'; 4096];
    let key = [42_u8; 32];
    let secret = format!("whsec_{}", STANDARD.encode(key));
    let other = Secret::from_text("old-secret-before-rotation").unwrap();
    let verifier = Verifier::standard_webhooks([other, Secret::from_standard_webhooks(&secret).unwrap()]).unwrap();
    let id = "msg_2b9Wz";
    let ts = NOW.to_string();
    let good = tag(&key, &[id.as_bytes(), b".", ts.as_bytes(), b".", &body]);
    let bad = tag(b"not-one-of-the-secrets", &[id.as_bytes(), b".", ts.as_bytes(), b".", &body]);
    let good = format!("v1a,ignored v1,{} v1,{}", STANDARD.encode(bad), STANDARD.encode(good));
    let bad = format!("v1,{}", STANDARD.encode(bad));

    assert_no_allocation(
        &verifier,
        &[("webhook-id", id.as_bytes()), ("webhook-timestamp", ts.as_bytes()), ("webhook-signature", good.as_bytes())],
        &[("webhook-id", id.as_bytes()), ("webhook-timestamp", ts.as_bytes()), ("webhook-signature", bad.as_bytes())],
        &body,
    );
}
