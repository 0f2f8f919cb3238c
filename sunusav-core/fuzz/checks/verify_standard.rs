//! Fuzzes Standard Webhooks verification: `Verifier::verify_standard_webhooks`
//! on arbitrary id / timestamp / signature-list / body bytes and `now`,
//! `Verifier::verify` through `HeaderSource`, `Secret::from_standard_webhooks`
//! on arbitrary text, and the property that a correctly signed message within
//! the tolerance always verifies (even among junk entries) while a 1-bit flip
//! of the body or of the tag never does.
//!
//! Invariants (a violation panics = a crash for libFuzzer):
//! - nothing panics, for any tolerance and any `now` (including i64::MIN/MAX);
//! - every error's `code()` is in `VerifyError::CODES`;
//! - `Ok` exactly when the id is non-empty UTF-8, the timestamp is ASCII digits
//!   fitting an i64 within `tolerance` of `now`, and one `v1,` entry decodes to
//!   HMAC-SHA256(key, "{id}.{ts}.{body}") for one of the keys (oracle);
//! - `Ok` carries that id and timestamp.

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use sunusav_core::webhook::{
    Malformed, Secret, Verifier, VerifyError, WEBHOOK_ID_HEADER, WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER,
};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    keys: Vec<&'a [u8]>,
    signer: u8,
    id: &'a [u8],
    timestamp: &'a [u8],
    signature: &'a [u8],
    body: &'a [u8],
    now: i64,
    /// `None`: the default tolerance.
    tolerance: Option<u64>,
    /// Text fed to `Secret::from_standard_webhooks`.
    whsec: &'a str,
    /// Positive case: the timestamp's distance from `now`, folded into the tolerance.
    skew: i64,
    leading_zeros: u8,
    /// Positive case: junk entries put around the good one.
    junk_before: &'a str,
    junk_after: &'a str,
    flip: u32,
    /// Drop one of the three headers in the `verify` path.
    drop: u8,
}

fn check_code(e: VerifyError) {
    assert!(VerifyError::CODES.contains(&e.code()), "undocumented code {:?} for {e:?}", e.code());
    assert!(!e.to_string().is_empty());
}

fn mac(key: &[u8], id: &[u8], ts: &[u8], body: &[u8]) -> [u8; 32] {
    let mut m = <Hmac<Sha256>>::new_from_slice(key).expect("hmac takes any key");
    m.update(id);
    m.update(b".");
    m.update(ts);
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().into()
}

/// The oracle's answer: `Ok(ts)` when verification must pass, `Err(())` when it
/// must fail (the reason is checked loosely by the caller).
fn oracle(
    keys: &[Vec<u8>],
    tolerance: u64,
    id: &[u8],
    ts: &[u8],
    sig: &[u8],
    body: &[u8],
    now: i64,
) -> Result<i64, ()> {
    let id_ok = core::str::from_utf8(id).is_ok_and(|s| !s.is_empty());
    let Ok(sig) = core::str::from_utf8(sig) else { return Err(()) };
    let Ok(ts_str) = core::str::from_utf8(ts) else { return Err(()) };
    if !id_ok || ts_str.is_empty() || !ts_str.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    let Ok(t) = ts_str.parse::<i64>() else { return Err(()) };
    if (i128::from(now) - i128::from(t)).unsigned_abs() > u128::from(tolerance.min(i64::MAX as u64)) {
        return Err(());
    }
    let tags: Vec<Vec<u8>> = sig
        .split(' ')
        .filter_map(|e| e.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .filter(|t| t.len() == 32)
        .collect();
    let ok = keys.iter().any(|k| {
        let m = mac(k, id, ts, body);
        tags.iter().any(|t| t.as_slice() == m)
    });
    if ok { Ok(t) } else { Err(()) }
}

fn pad_key(raw: &[u8]) -> Vec<u8> {
    let mut k = raw.to_vec();
    while k.len() < Secret::MIN_LEN {
        k.push(b'k');
    }
    k
}

/// Runs the checks on one input; `false` when the bytes do not decode to an
/// [`Input`] (skipped, as libfuzzer-sys's `fuzz_target!` rejects them: too short
/// for `Input`'s size hint, or `Input::arbitrary_take_rest` fails).
pub fn check(data: &[u8]) -> bool {
    if data.len() < <Input<'_> as Arbitrary<'_>>::size_hint(0).0 {
        return false;
    }
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return false;
    };
    run(&input);
    true
}

// One numbered property after another, as the fuzz target always had them.
#[allow(clippy::too_many_lines)]
fn run(input: &Input<'_>) {
    // `whsec_<base64>` parsing: no panic, and a success is a >= 16-byte key.
    match Secret::from_standard_webhooks(input.whsec) {
        Ok(_) => {
            // The `whsec_` prefix is optional, as in the reference libraries.
            let b64 = input.whsec.strip_prefix("whsec_").unwrap_or(input.whsec);
            let key = STANDARD.decode(b64).expect("accepted invalid base64");
            assert!(key.len() >= Secret::MIN_LEN);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }

    let keys: Vec<Vec<u8>> = input.keys.iter().take(4).map(|k| pad_key(k)).collect();
    let Ok(verifier) = Verifier::standard_webhooks(keys.iter().map(|k| Secret::from_bytes(k.clone()).unwrap())) else {
        assert!(keys.is_empty());
        return;
    };
    let verifier = match input.tolerance {
        Some(t) => verifier.with_tolerance(t),
        None => verifier,
    };
    let tolerance = verifier.tolerance_secs();
    if let Some(t) = input.tolerance {
        assert_eq!(tolerance, t.min(i64::MAX as u64));
    }

    // 1. Arbitrary header values against the oracle.
    let got = verifier.verify_standard_webhooks(input.id, input.timestamp, input.signature, input.body, input.now);
    let expected = oracle(&keys, tolerance, input.id, input.timestamp, input.signature, input.body, input.now);
    match (&got, expected) {
        (Ok(v), Ok(ts)) => {
            assert_eq!(v.webhook_id.map(str::as_bytes), Some(input.id));
            assert_eq!(v.timestamp, Some(ts));
        }
        (Ok(v), Err(())) => panic!("accepted what the oracle rejects: {v:?}"),
        (Err(e), Ok(_)) => panic!("rejected what the oracle accepts: {e:?}"),
        (Err(e), Err(())) => {
            check_code(*e);
            if let VerifyError::InvalidSignature = e {
                // Only after every header parsed and at least one v1 entry decoded.
                assert!(core::str::from_utf8(input.signature).is_ok());
            }
        }
    }

    // 2. The same through `verify` with headers (any case), one maybe missing.
    let drop = input.drop % 4;
    let mut headers: Vec<(&str, &[u8])> = Vec::new();
    if drop != 1 {
        headers.push(("Webhook-Id", input.id));
    }
    if drop != 2 {
        headers.push(("WEBHOOK-TIMESTAMP", input.timestamp));
    }
    if drop != 3 {
        headers.push((WEBHOOK_SIGNATURE_HEADER, input.signature));
    }
    let via = verifier.verify(&headers, input.body, input.now);
    match drop {
        1 => assert_eq!(via, Err(VerifyError::MissingId)),
        2 => assert_eq!(via, Err(VerifyError::MissingTimestamp)),
        // The id and timestamp are looked up first; a missing signature is
        // reported once they are present.
        3 => assert_eq!(via, Err(VerifyError::MissingSignature)),
        _ => assert_eq!(via, got, "verify() and verify_standard_webhooks() disagree"),
    }
    if let Err(e) = &via {
        check_code(*e);
    }

    // 3. Positive property: a correctly signed message within the tolerance.
    let id: String = match core::str::from_utf8(input.id) {
        Ok(s) if !s.is_empty() => s.to_owned(),
        _ => "msg_fuzz".to_owned(),
    };
    let tol = i64::try_from(tolerance).unwrap_or(i64::MAX);
    let skew = if tol == i64::MAX { input.skew } else { input.skew % (tol + 1) };
    let Some(ts) = input.now.checked_sub(skew).filter(|t| *t >= 0) else { return };
    let ts_text = format!("{}{ts}", "0".repeat(usize::from(input.leading_zeros % 4)));
    let signer = &keys[usize::from(input.signer) % keys.len()];
    let tag = mac(signer, id.as_bytes(), ts_text.as_bytes(), input.body);
    let good_entry = format!("v1,{}", STANDARD.encode(tag));
    // Junk entries around it: whatever they hold, they cannot hide a good entry
    // (the list is split on single spaces).
    let list = format!("{} {good_entry} {}", input.junk_before, input.junk_after);
    let ok =
        verifier.verify_standard_webhooks(id.as_bytes(), ts_text.as_bytes(), list.as_bytes(), input.body, input.now);
    let v = ok.unwrap_or_else(|e| panic!("a correct signature failed: {e:?} (list {list:?}, ts {ts_text:?})"));
    assert_eq!(v.webhook_id, Some(id.as_str()));
    assert_eq!(v.timestamp, Some(ts));
    let headers = [
        (WEBHOOK_ID_HEADER, id.as_bytes()),
        (WEBHOOK_TIMESTAMP_HEADER, ts_text.as_bytes()),
        (WEBHOOK_SIGNATURE_HEADER, list.as_bytes()),
    ];
    assert!(verifier.verify(&headers, input.body, input.now).is_ok());

    // 4. A 1-bit flip of the body never verifies.
    if !input.body.is_empty() {
        let mut body = input.body.to_vec();
        let bit = usize::try_from(input.flip).unwrap_or(0) % (body.len() * 8);
        body[bit / 8] ^= 1 << (bit % 8);
        let r = verifier.verify_standard_webhooks(
            id.as_bytes(),
            ts_text.as_bytes(),
            good_entry.as_bytes(),
            &body,
            input.now,
        );
        assert_eq!(r, Err(VerifyError::InvalidSignature), "a body with bit {bit} flipped still verifies");
    }

    // 5. A 1-bit flip of the tag never verifies.
    let mut bad = tag;
    let bit = usize::try_from(input.flip).unwrap_or(0) % 256;
    bad[bit / 8] ^= 1 << (bit % 8);
    let bad_entry = format!("v1,{}", STANDARD.encode(bad));
    let r = verifier.verify_standard_webhooks(
        id.as_bytes(),
        ts_text.as_bytes(),
        bad_entry.as_bytes(),
        input.body,
        input.now,
    );
    assert_eq!(r, Err(VerifyError::InvalidSignature), "a tag with bit {bit} flipped still verifies");

    // 6. Signed over another id never verifies for this one.
    let other = format!("{id}x");
    let r = verifier.verify_standard_webhooks(
        other.as_bytes(),
        ts_text.as_bytes(),
        good_entry.as_bytes(),
        input.body,
        input.now,
    );
    assert_eq!(r, Err(VerifyError::InvalidSignature));

    // 7. Out of tolerance is refused before the signature is looked at.
    if let Some(late) = ts.checked_add(tol).and_then(|t| t.checked_add(1)) {
        let r = verifier.verify_standard_webhooks(
            id.as_bytes(),
            ts_text.as_bytes(),
            good_entry.as_bytes(),
            input.body,
            late,
        );
        assert_eq!(r, Err(VerifyError::TimestampTooOld));
    }
    if let Some(early) = ts.checked_sub(tol).and_then(|t| t.checked_sub(1)) {
        let r = verifier.verify_standard_webhooks(
            id.as_bytes(),
            ts_text.as_bytes(),
            good_entry.as_bytes(),
            input.body,
            early,
        );
        assert_eq!(r, Err(VerifyError::TimestampTooNew));
    }
    let _ = Malformed::Empty; // the reason enum is part of the public API
}
