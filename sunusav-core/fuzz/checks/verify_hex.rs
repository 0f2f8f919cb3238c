//! Fuzzes the `sha256=<hex>` scheme: `Verifier::verify_hex_signature` on an
//! arbitrary header value and body, `Verifier::verify` through `HeaderSource`
//! on arbitrary header lists, and the property that a correctly signed body
//! always verifies while a 1-bit flip of the body or of the tag never does.
//!
//! Invariants checked (any violation panics, which libFuzzer reports as a crash):
//! - nothing panics;
//! - every error's `code()` is in `VerifyError::CODES`, and the hex scheme only
//!   ever answers `MissingSignature`, `Malformed(_)` or `InvalidSignature`;
//! - `Ok` exactly when the value is `sha256=` + 64 hex digits (any case) that
//!   decode to HMAC-SHA256(key, body) for one of the keys (independent oracle);
//! - `verify(headers)` agrees with `verify_hex_signature(first matching value)`.

use arbitrary::{Arbitrary, Unstructured};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use sunusav_core::webhook::{HeaderSource, Malformed, Secret, Verifier, VerifyError};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// Raw key bytes; short ones are padded (and also fed to `Secret` raw).
    keys: Vec<&'a [u8]>,
    /// Which key signs in the positive case.
    signer: u8,
    /// An arbitrary header value.
    header_value: &'a [u8],
    /// The raw body.
    body: &'a [u8],
    /// Extra headers around the signature header, in arbitrary order/case.
    headers: Vec<(&'a str, &'a [u8])>,
    /// Custom header name (`with_header`), or the default.
    header_name: Option<&'a str>,
    /// Which bit to flip in the body / the tag / the header text.
    flip: u32,
    /// Upper-case the positive hex digits.
    upper: bool,
    now: i64,
}

fn check_code(e: VerifyError) {
    assert!(VerifyError::CODES.contains(&e.code()), "undocumented code {:?} for {e:?}", e.code());
    // Display must not panic and must never be empty.
    assert!(!e.to_string().is_empty());
}

fn mac(key: &[u8], body: &[u8]) -> [u8; 32] {
    let mut m = <Hmac<Sha256>>::new_from_slice(key).expect("hmac takes any key");
    m.update(body);
    m.finalize().into_bytes().into()
}

/// The oracle: `Some(tag)` when `value` is a well-formed `sha256=<64 hex>`.
fn oracle_tag(value: &[u8]) -> Option<[u8; 32]> {
    let hex_digits = value.strip_prefix(b"sha256=")?;
    if hex_digits.len() != 64 || !hex_digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut tag = [0_u8; 32];
    hex::decode_to_slice(hex_digits, &mut tag).ok()?;
    Some(tag)
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
    // Secrets: raw bytes go through the constructor (errors, no panics);
    // padded copies make the verifier.
    for raw in &input.keys {
        match Secret::from_bytes(*raw) {
            Ok(_) => assert!(raw.len() >= Secret::MIN_LEN),
            Err(e) => {
                assert!(raw.len() < Secret::MIN_LEN);
                assert!(!e.to_string().is_empty());
            }
        }
    }
    let keys: Vec<Vec<u8>> = input.keys.iter().take(4).map(|k| pad_key(k)).collect();
    let Ok(verifier) = Verifier::hex_sha256(keys.iter().map(|k| Secret::from_bytes(k.clone()).unwrap())) else {
        assert!(keys.is_empty(), "a verifier with {} valid secrets was refused", keys.len());
        return;
    };
    let verifier = match input.header_name {
        Some(name) if !name.is_empty() => verifier.with_header(name),
        _ => verifier,
    };
    let name = verifier.signature_header().to_owned();

    // 1. Arbitrary value + body against the oracle.
    let got = verifier.verify_hex_signature(input.header_value, input.body);
    let expected_ok = oracle_tag(input.header_value).is_some_and(|tag| keys.iter().any(|k| mac(k, input.body) == tag));
    match &got {
        Ok(()) => assert!(expected_ok, "accepted a value the oracle rejects"),
        Err(e) => {
            check_code(*e);
            assert!(!expected_ok, "rejected a correct signature: {e:?}");
            match e {
                VerifyError::InvalidSignature => {
                    assert!(oracle_tag(input.header_value).is_some(), "InvalidSignature for a malformed value");
                }
                VerifyError::Malformed(_) => {
                    assert!(oracle_tag(input.header_value).is_none(), "Malformed for a well-formed value");
                }
                other => panic!("unexpected hex-scheme error {other:?}"),
            }
        }
    }

    // 2. `verify` through HeaderSource: the first header named like the
    // verifier's (any case) is the one checked.
    let mut headers: Vec<(&str, &[u8])> = input.headers.iter().take(8).copied().collect();
    let pos = usize::try_from(input.flip).unwrap_or(0) % (headers.len() + 1);
    headers.insert(pos, (name.as_str(), input.header_value));
    let first = headers.as_slice().header(&name);
    let via_headers = verifier.verify(&headers, input.body, input.now);
    match first {
        None => unreachable!("the signature header was inserted"),
        Some(v) => {
            let direct = verifier.verify_hex_signature(v, input.body);
            assert_eq!(via_headers.map(|_| ()), direct, "verify() and verify_hex_signature() disagree");
        }
    }
    if let Ok(verified) = via_headers {
        assert_eq!(verified.webhook_id, None);
        assert_eq!(verified.timestamp, None);
    }
    let without: Vec<(&str, &[u8])> = headers.iter().copied().filter(|(n, _)| !n.eq_ignore_ascii_case(&name)).collect();
    assert_eq!(verifier.verify(&without, input.body, input.now), Err(VerifyError::MissingSignature));

    // 3. Positive property: signed by any one of the keys, it verifies.
    let signer = &keys[usize::from(input.signer) % keys.len()];
    let tag = mac(signer, input.body);
    let mut hex_digits = hex::encode(tag);
    if input.upper {
        hex_digits.make_ascii_uppercase();
    }
    let good = format!("sha256={hex_digits}");
    assert_eq!(verifier.verify_hex_signature(good.as_bytes(), input.body), Ok(()), "a correct signature failed");
    let good_headers = [(name.to_ascii_uppercase(), good.as_bytes())];
    assert!(verifier.verify(&good_headers, input.body, input.now).is_ok(), "header name case matters");

    // 4. A 1-bit flip of the body never verifies (no other key signs it either,
    // barring a 2^-256 collision).
    if !input.body.is_empty() {
        let mut body = input.body.to_vec();
        let bit = usize::try_from(input.flip).unwrap_or(0) % (body.len() * 8);
        body[bit / 8] ^= 1 << (bit % 8);
        assert_eq!(
            verifier.verify_hex_signature(good.as_bytes(), &body),
            Err(VerifyError::InvalidSignature),
            "a body with bit {bit} flipped still verifies"
        );
    }

    // 5. A 1-bit flip of the tag never verifies.
    let mut bad_tag = tag;
    let bit = usize::try_from(input.flip).unwrap_or(0) % 256;
    bad_tag[bit / 8] ^= 1 << (bit % 8);
    let bad = format!("sha256={}", hex::encode(bad_tag));
    assert_eq!(
        verifier.verify_hex_signature(bad.as_bytes(), input.body),
        Err(VerifyError::InvalidSignature),
        "a tag with bit {bit} flipped still verifies"
    );

    // 6. A 1-bit flip of the header *text*: only an ASCII case flip of a hex
    // letter (bit 5 of a-f/A-F) keeps the same tag; anything else is refused.
    let mut text = good.clone().into_bytes();
    let bit = usize::try_from(input.flip).unwrap_or(0) % (text.len() * 8);
    let (i, b) = (bit / 8, bit % 8);
    let before = text[i];
    text[i] ^= 1 << b;
    let case_flip = i >= 7 && b == 5 && before.is_ascii_alphabetic() && text[i].is_ascii_hexdigit();
    match verifier.verify_hex_signature(&text, input.body) {
        Ok(()) => assert!(case_flip, "header text with bit {bit} flipped still verifies"),
        Err(e) => {
            check_code(e);
            assert!(!case_flip, "a case flip of a hex digit was refused: {e:?}");
            if i < 7 {
                // The prefix `sha256=` is damaged (or the value is no longer UTF-8).
                assert!(matches!(e, VerifyError::Malformed(Malformed::Prefix | Malformed::NotUtf8)), "{e:?}");
            }
        }
    }
}
