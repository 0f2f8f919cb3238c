//! Table-driven tests of the signed-webhook verifier, both schemes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use sunusav_core::webhook::{Malformed, Secret, SecretError, Verified, Verifier, VerifyError};

const KEY_A: &str = "first-secret-of-the-tontine";
const KEY_B: &str = "second-secret-after-rotation";
const BODY: &[u8] = br#"{"payment_hash":"ab","amount_msat":10000}"#;
const NOW: i64 = 1_700_000_000;

/// Standard Webhooks test secret (the one published in the Standard Webhooks / svix docs).
const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SW_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";

type Headers = Vec<(String, Vec<u8>)>;

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn hex_value(key: &str, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(mac(key.as_bytes(), &[body])))
}

fn sw_key() -> Vec<u8> {
    STANDARD.decode(SW_SECRET.strip_prefix("whsec_").unwrap()).unwrap()
}

fn sw_entry(key: &[u8], id: &str, ts: i64, body: &[u8]) -> String {
    let ts = ts.to_string();
    let tag = mac(key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    format!("v1,{}", STANDARD.encode(tag))
}

fn headers(pairs: &[(&str, &[u8])]) -> Headers {
    pairs.iter().map(|(n, v)| ((*n).to_owned(), v.to_vec())).collect()
}

fn hex_verifier() -> Verifier {
    Verifier::hex_sha256([Secret::from_text(KEY_A).unwrap()]).unwrap()
}

fn sw_verifier() -> Verifier {
    Verifier::standard_webhooks([Secret::from_standard_webhooks(SW_SECRET).unwrap()]).unwrap()
}

fn sw_headers(id: &str, ts: &str, sig: &str) -> Headers {
    headers(&[
        ("webhook-id", id.as_bytes()),
        ("webhook-timestamp", ts.as_bytes()),
        ("webhook-signature", sig.as_bytes()),
    ])
}

struct Case {
    name: &'static str,
    headers: Headers,
    body: &'static [u8],
    expected: Result<(), VerifyError>,
}

fn run(verifier: &Verifier, cases: Vec<Case>) {
    for case in cases {
        let got = verifier.verify(&case.headers, case.body, NOW).map(|_: Verified<'_>| ());
        assert_eq!(got, case.expected, "case: {}", case.name);
        if let Err(e) = got {
            assert!(VerifyError::CODES.contains(&e.code()), "case: {}", case.name);
        }
    }
}

#[test]
#[allow(clippy::too_many_lines)] // one table of cases
fn every_hex_scheme_rejection_has_its_typed_error() {
    let good = hex_value(KEY_A, BODY);
    let upper = format!("sha256={}", good["sha256=".len()..].to_uppercase());
    let sha1 = format!("sha1={}", &good["sha256=".len()..]);
    let bare = good["sha256=".len()..].to_owned();
    let other_key = hex_value("a-completely-different-key", BODY);
    let odd = &good[..good.len() - 1];
    let short = &good[..good.len() - 2];
    let mut not_hex = good.clone();
    not_hex.replace_range(good.len() - 2.., "zz");
    let h = |v: &[u8]| headers(&[("x-sunu-signature", v)]);
    let m = |r| Err(VerifyError::Malformed(r));
    run(
        &hex_verifier(),
        vec![
            Case { name: "a valid signature passes", headers: h(good.as_bytes()), body: BODY, expected: Ok(()) },
            Case { name: "uppercase hex digits pass", headers: h(upper.as_bytes()), body: BODY, expected: Ok(()) },
            Case {
                name: "a missing header is missing_signature",
                headers: vec![],
                body: BODY,
                expected: Err(VerifyError::MissingSignature),
            },
            Case {
                name: "the signature in another header is missing_signature",
                headers: headers(&[("x-other", good.as_bytes())]),
                body: BODY,
                expected: Err(VerifyError::MissingSignature),
            },
            Case { name: "an empty value has no prefix", headers: h(b""), body: BODY, expected: m(Malformed::Prefix) },
            Case {
                name: "a value without prefix is malformed",
                headers: h(bare.as_bytes()),
                body: BODY,
                expected: m(Malformed::Prefix),
            },
            Case {
                name: "a sha1 prefix is malformed",
                headers: h(sha1.as_bytes()),
                body: BODY,
                expected: m(Malformed::Prefix),
            },
            Case {
                name: "an empty digest is malformed",
                headers: h(b"sha256="),
                body: BODY,
                expected: m(Malformed::Empty),
            },
            Case {
                name: "an odd-length digest is malformed",
                headers: h(odd.as_bytes()),
                body: BODY,
                expected: m(Malformed::OddLength),
            },
            Case {
                name: "a short digest is malformed",
                headers: h(short.as_bytes()),
                body: BODY,
                expected: m(Malformed::WrongLength),
            },
            Case {
                name: "a non-hex digest is malformed",
                headers: h(not_hex.as_bytes()),
                body: BODY,
                expected: m(Malformed::NotHex),
            },
            Case {
                name: "a non-utf8 value is malformed",
                headers: h(b"sha256=\xff\xfe"),
                body: BODY,
                expected: m(Malformed::NotUtf8),
            },
            Case {
                name: "another key's signature is invalid",
                headers: h(other_key.as_bytes()),
                body: BODY,
                expected: Err(VerifyError::InvalidSignature),
            },
            Case {
                name: "a changed body is invalid",
                headers: h(good.as_bytes()),
                body: b"{\"amount_msat\":1}",
                expected: Err(VerifyError::InvalidSignature),
            },
        ],
    );
}

#[test]
#[allow(clippy::too_many_lines)] // one table of cases
fn every_standard_webhooks_rejection_has_its_typed_error() {
    let key = sw_key();
    let ts = NOW.to_string();
    let good = sw_entry(&key, SW_ID, NOW, BODY);
    let b64 = good.strip_prefix("v1,").unwrap().to_owned();
    let other = sw_entry(b"a-completely-different-key", SW_ID, NOW, BODY);
    let old = (NOW - 301).to_string();
    let new = (NOW + 301).to_string();
    let edge_old = (NOW - 300).to_string();
    let edge_new = (NOW + 300).to_string();
    let old_sig = sw_entry(&key, SW_ID, NOW - 300, BODY);
    let new_sig = sw_entry(&key, SW_ID, NOW + 300, BODY);
    let short_b64 = format!("v1,{}", STANDARD.encode([7_u8; 16]));
    let m = |r| Err(VerifyError::Malformed(r));
    run(
        &sw_verifier(),
        vec![
            Case {
                name: "a valid signature passes",
                headers: sw_headers(SW_ID, &ts, &good),
                body: BODY,
                expected: Ok(()),
            },
            Case {
                name: "a valid v1 anywhere in the list passes",
                headers: sw_headers(SW_ID, &ts, &format!("v1a,abc {other} v2,xyz {good}")),
                body: BODY,
                expected: Ok(()),
            },
            Case {
                name: "a timestamp exactly at the past edge passes",
                headers: sw_headers(SW_ID, &edge_old, &old_sig),
                body: BODY,
                expected: Ok(()),
            },
            Case {
                name: "a timestamp exactly at the future edge passes",
                headers: sw_headers(SW_ID, &edge_new, &new_sig),
                body: BODY,
                expected: Ok(()),
            },
            Case {
                name: "a missing signature header is missing_signature",
                headers: headers(&[("webhook-id", SW_ID.as_bytes()), ("webhook-timestamp", ts.as_bytes())]),
                body: BODY,
                expected: Err(VerifyError::MissingSignature),
            },
            Case {
                name: "a missing webhook-id is missing_signature",
                headers: headers(&[("webhook-timestamp", ts.as_bytes()), ("webhook-signature", good.as_bytes())]),
                body: BODY,
                expected: Err(VerifyError::MissingId),
            },
            Case {
                name: "an empty webhook-id counts as missing",
                headers: sw_headers("", &ts, &good),
                body: BODY,
                expected: Err(VerifyError::MissingId),
            },
            Case {
                name: "a missing webhook-timestamp is missing_signature",
                headers: headers(&[("webhook-id", SW_ID.as_bytes()), ("webhook-signature", good.as_bytes())]),
                body: BODY,
                expected: Err(VerifyError::MissingTimestamp),
            },
            Case {
                name: "a non-integer timestamp is invalid",
                headers: sw_headers(SW_ID, "17e8", &good),
                body: BODY,
                expected: Err(VerifyError::InvalidTimestamp),
            },
            Case {
                name: "a negative timestamp is invalid",
                headers: sw_headers(SW_ID, "-5", &good),
                body: BODY,
                expected: Err(VerifyError::InvalidTimestamp),
            },
            Case {
                name: "an empty timestamp is invalid",
                headers: sw_headers(SW_ID, "", &good),
                body: BODY,
                expected: Err(VerifyError::InvalidTimestamp),
            },
            Case {
                name: "an overflowing timestamp is invalid",
                headers: sw_headers(SW_ID, "99999999999999999999999", &good),
                body: BODY,
                expected: Err(VerifyError::InvalidTimestamp),
            },
            Case {
                name: "a timestamp past the window is too old",
                headers: sw_headers(SW_ID, &old, &good),
                body: BODY,
                expected: Err(VerifyError::TimestampTooOld),
            },
            Case {
                name: "a timestamp beyond the window is too new",
                headers: sw_headers(SW_ID, &new, &good),
                body: BODY,
                expected: Err(VerifyError::TimestampTooNew),
            },
            Case {
                name: "a list with only other versions is an unknown version",
                headers: sw_headers(SW_ID, &ts, &format!("v1a,{b64} v2,{b64}")),
                body: BODY,
                expected: m(Malformed::UnknownVersion),
            },
            Case {
                name: "an entry without a version is an unknown version",
                headers: sw_headers(SW_ID, &ts, &b64),
                body: BODY,
                expected: m(Malformed::UnknownVersion),
            },
            Case {
                name: "an empty signature header is malformed",
                headers: sw_headers(SW_ID, &ts, ""),
                body: BODY,
                expected: m(Malformed::Empty),
            },
            Case {
                name: "an empty v1 entry is malformed",
                headers: sw_headers(SW_ID, &ts, "v1,"),
                body: BODY,
                expected: m(Malformed::Empty),
            },
            Case {
                name: "a v1 entry that is not base64 is malformed",
                headers: sw_headers(SW_ID, &ts, "v1,!!!not*base64!!!"),
                body: BODY,
                expected: m(Malformed::NotBase64),
            },
            Case {
                name: "a v1 entry of the wrong length is malformed",
                headers: sw_headers(SW_ID, &ts, &short_b64),
                body: BODY,
                expected: m(Malformed::WrongLength),
            },
            Case {
                name: "a non-utf8 signature is malformed",
                headers: sw_headers(SW_ID, &ts, "v1,\u{0}")
                    .into_iter()
                    .map(|(n, v)| if n == "webhook-signature" { (n, b"v1,\xff".to_vec()) } else { (n, v) })
                    .collect(),
                body: BODY,
                expected: m(Malformed::NotUtf8),
            },
            Case {
                name: "another key's signature is invalid",
                headers: sw_headers(SW_ID, &ts, &other),
                body: BODY,
                expected: Err(VerifyError::InvalidSignature),
            },
            Case {
                name: "a well-formed but wrong v1 beside a malformed one is invalid",
                headers: sw_headers(SW_ID, &ts, &format!("v1,%% {other}")),
                body: BODY,
                expected: Err(VerifyError::InvalidSignature),
            },
            Case {
                name: "a changed body is invalid",
                headers: sw_headers(SW_ID, &ts, &good),
                body: b"{}",
                expected: Err(VerifyError::InvalidSignature),
            },
            Case {
                name: "a changed id is invalid",
                headers: sw_headers("msg_other", &ts, &good),
                body: BODY,
                expected: Err(VerifyError::InvalidSignature),
            },
        ],
    );
}

#[test]
fn error_codes_are_stable() {
    let cases = [
        (VerifyError::MissingSignature, "missing_signature"),
        (VerifyError::MissingId, "missing_signature"),
        (VerifyError::MissingTimestamp, "missing_signature"),
        (VerifyError::Malformed(Malformed::Prefix), "malformed_signature"),
        (VerifyError::InvalidSignature, "invalid_signature"),
        (VerifyError::TimestampTooOld, "timestamp_out_of_tolerance"),
        (VerifyError::TimestampTooNew, "timestamp_out_of_tolerance"),
        (VerifyError::InvalidTimestamp, "invalid_timestamp"),
    ];
    for (error, code) in cases {
        assert_eq!(error.code(), code, "{error:?}");
    }
}

#[test]
fn github_published_vector_verifies() {
    // https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
    let verifier = Verifier::hex_sha256([Secret::from_text("It's a Secret to Everybody").unwrap()])
        .unwrap()
        .with_header("x-hub-signature-256");
    let headers = [("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")];

    let outcome = verifier.verify(&headers, b"Hello, World!", NOW).unwrap();

    assert_eq!(outcome, Verified { webhook_id: None, timestamp: None });
}

#[test]
fn standard_webhooks_vector_computed_independently_verifies() {
    // Expected value computed once with Python's standard library:
    //   key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    //   msg = b'msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}'
    //   base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest())
    // (it is also the vector of the svix / Standard Webhooks reference libraries).
    let headers = [
        ("Webhook-Id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
        ("Webhook-Timestamp", "1614265330"),
        ("Webhook-Signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
    ];

    let verified = sw_verifier().verify(&headers, br#"{"test": 2432232314}"#, 1_614_265_330 + 10).unwrap();

    assert_eq!(verified.webhook_id, Some("msg_p5jXN8AQM9LWM0D4loKWxJek"));
    assert_eq!(verified.timestamp, Some(1_614_265_330));
}

#[test]
fn a_second_secret_matching_passes_after_rotation() {
    let secrets = || [Secret::from_text(KEY_B).unwrap(), Secret::from_text(KEY_A).unwrap()];
    let hex = Verifier::hex_sha256(secrets()).unwrap();
    let sw = Verifier::standard_webhooks(secrets()).unwrap();
    let hex_headers = [("x-sunu-signature", hex_value(KEY_A, BODY))];
    let entry = sw_entry(KEY_A.as_bytes(), SW_ID, NOW, BODY);
    let sw_hdrs = sw_headers(SW_ID, &NOW.to_string(), &entry);

    assert!(hex.verify(&hex_headers, BODY, NOW).is_ok());
    assert!(sw.verify(&sw_hdrs, BODY, NOW).is_ok());
    let only_b = Verifier::hex_sha256([Secret::from_text(KEY_B).unwrap()]).unwrap();
    assert_eq!(only_b.verify(&hex_headers, BODY, NOW), Err(VerifyError::InvalidSignature));
}

#[test]
fn header_names_match_in_any_case() {
    let value = hex_value(KEY_A, BODY);
    let entry = sw_entry(&sw_key(), SW_ID, NOW, BODY);
    let ts = NOW.to_string();
    for name in ["x-sunu-signature", "X-Sunu-Signature", "X-SUNU-SIGNATURE", "x-SuNu-sIgNaTuRe"] {
        let headers = [(name, value.as_str())];
        assert!(hex_verifier().verify(&headers, BODY, NOW).is_ok(), "{name}");
    }
    let upper = [("WEBHOOK-ID", SW_ID), ("WEBHOOK-TIMESTAMP", ts.as_str()), ("WEBHOOK-SIGNATURE", entry.as_str())];
    assert!(sw_verifier().verify(&upper, BODY, NOW).is_ok());
    let custom = hex_verifier().with_header("X-Hub-Signature-256");
    let headers = [("x-hub-signature-256", value.as_str())];
    assert!(custom.verify(&headers, BODY, NOW).is_ok());
}

#[test]
fn a_wider_tolerance_accepts_older_timestamps() {
    let key = sw_key();
    let ts = NOW - 3_600;
    let headers = sw_headers(SW_ID, &ts.to_string(), &sw_entry(&key, SW_ID, ts, BODY));

    assert_eq!(sw_verifier().verify(&headers, BODY, NOW), Err(VerifyError::TimestampTooOld));
    let verified = sw_verifier().with_tolerance(3_600).verify(&headers, BODY, NOW).unwrap();
    assert_eq!(verified.timestamp, Some(ts));
}

#[test]
fn secrets_that_are_empty_or_short_are_refused() {
    let cases: [(&str, Result<(), SecretError>); 4] = [
        ("", Err(SecretError::Empty)),
        ("fifteen-bytes!!", Err(SecretError::TooShort { len: 15, min: 16 })),
        ("sixteen-bytes!!!", Ok(())),
        ("a much longer secret than needed", Ok(())),
    ];
    for (text, expected) in cases {
        assert_eq!(Secret::from_text(text).map(|_| ()), expected, "{text:?}");
        assert_eq!(Secret::from_bytes(text.as_bytes()).map(|_| ()), expected, "{text:?}");
    }
}

#[test]
fn standard_webhooks_secrets_are_checked_at_construction() {
    let short = format!("whsec_{}", STANDARD.encode([1_u8; 8]));
    let bare_short = STANDARD.encode([1_u8; 8]);
    let cases: [(&str, Result<(), SecretError>); 9] = [
        (SW_SECRET, Ok(())),
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", Ok(())),
        ("whsec_***", Err(SecretError::InvalidBase64)),
        ("***", Err(SecretError::InvalidBase64)),
        ("whsec_whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", Err(SecretError::InvalidBase64)),
        ("whsec_", Err(SecretError::Empty)),
        ("", Err(SecretError::Empty)),
        (&short, Err(SecretError::TooShort { len: 8, min: 16 })),
        (&bare_short, Err(SecretError::TooShort { len: 8, min: 16 })),
    ];
    for (text, expected) in cases {
        assert_eq!(Secret::from_standard_webhooks(text).map(|_| ()), expected, "{text:?}");
    }
}

#[test]
fn a_standard_webhooks_secret_signs_the_same_with_or_without_its_whsec_prefix() {
    let bare = SW_SECRET.strip_prefix("whsec_").unwrap();
    let body: &[u8] = br#"{"test": 2432232314}"#;
    let entry = sw_entry(&sw_key(), SW_ID, NOW, body);
    let hdrs = sw_headers(SW_ID, &NOW.to_string(), &entry);
    for text in [SW_SECRET, bare] {
        let verifier = Verifier::standard_webhooks([Secret::from_standard_webhooks(text).unwrap()]).unwrap();
        let ok = verifier.verify(&hdrs, body, NOW).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(ok.webhook_id, Some(SW_ID));
        assert_eq!(verifier.verify(&hdrs, b"tampered", NOW).err(), Some(VerifyError::InvalidSignature));
    }
}

#[test]
fn the_hex_signature_is_read_from_a_configured_header_such_as_btcpay_servers() {
    let verifier = hex_verifier().with_header("BTCPay-Sig");
    let value = hex_value(KEY_A, BODY);
    assert_eq!(verifier.signature_header(), "BTCPay-Sig");
    assert!(verifier.verify(&headers(&[("btcpay-sig", value.as_bytes())]), BODY, NOW).is_ok());
    assert!(verifier.verify(&headers(&[("BTCPAY-SIG", value.as_bytes())]), BODY, NOW).is_ok());
    let in_default = headers(&[("x-sunu-signature", value.as_bytes())]);
    assert_eq!(verifier.verify(&in_default, BODY, NOW).err(), Some(VerifyError::MissingSignature));
}

#[test]
fn a_verifier_without_secrets_is_refused() {
    assert_eq!(Verifier::hex_sha256([]).err(), Some(SecretError::NoSecrets));
    assert_eq!(Verifier::standard_webhooks(Vec::new()).err(), Some(SecretError::NoSecrets));
}

#[test]
fn secrets_and_verifiers_never_print_key_material() {
    let secret = Secret::from_text(KEY_A).unwrap();
    let sw_secret = Secret::from_standard_webhooks(SW_SECRET).unwrap();
    let verifier = Verifier::hex_sha256([secret.clone()]).unwrap();

    let printed = format!("{secret:?} {sw_secret:?} {verifier:?} {verifier:#?}");

    assert!(printed.contains("redacted"), "{printed}");
    for needle in [KEY_A, "first-secret", "MfKQ9r8G", &format!("{:?}", KEY_A.as_bytes())] {
        assert!(!printed.contains(needle), "{printed}");
    }
}

#[test]
fn error_messages_never_contain_the_expected_signature() {
    let expected_hex = hex_value(KEY_A, BODY);
    let expected_b64 = sw_entry(&sw_key(), SW_ID, NOW, BODY);
    let wrong_hex = [("x-sunu-signature", hex_value(KEY_B, BODY))];
    let wrong_sw = sw_headers(SW_ID, &NOW.to_string(), &sw_entry(b"another-key-entirely", SW_ID, NOW, BODY));

    let errors = [
        hex_verifier().verify(&wrong_hex, BODY, NOW).unwrap_err(),
        sw_verifier().verify(&wrong_sw, BODY, NOW).unwrap_err(),
    ];

    for error in errors {
        let text = format!("{error} {error:?}");
        assert!(!text.contains(&expected_hex["sha256=".len()..]), "{text}");
        assert!(!text.contains(&expected_b64["v1,".len()..]), "{text}");
        assert!(!text.contains(KEY_A), "{text}");
    }
}
