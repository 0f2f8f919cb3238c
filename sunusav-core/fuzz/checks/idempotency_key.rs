//! Fuzzes `IdempotencyKey::parse` and `IdempotencyKey::webhook` on arbitrary text.
//!
//! Invariants: no panic; `parse` accepts exactly the non-empty strings of at
//! most 255 printable ASCII bytes, and what it accepts round-trips through
//! `as_str`, `Display` and JSON (serde goes through `parse` too, so a refused
//! string never deserialises); `webhook(Some(s), body)` and `webhook(None, body)`
//! are always valid keys.

use arbitrary::{Arbitrary, Unstructured};
use sunusav_core::domain::keys::MAX_KEY_LEN;
use sunusav_core::{IdempotencyKey, KeyError};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    text: &'a str,
    body: &'a [u8],
}

fn valid(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_KEY_LEN && s.bytes().all(|b| b.is_ascii_graphic())
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

fn run(input: &Input<'_>) {
    let parsed = IdempotencyKey::parse(input.text);
    assert_eq!(parsed.is_ok(), valid(input.text), "parse({:?}) = {parsed:?}", input.text);
    let json = serde_json::to_string(input.text).expect("a str serialises");
    let via_serde = serde_json::from_str::<IdempotencyKey>(&json);
    match parsed {
        Ok(key) => {
            assert_eq!(key.as_str(), input.text);
            assert_eq!(key.to_string(), input.text);
            assert_eq!(via_serde.expect("serde refused a valid key"), key);
            assert_eq!(serde_json::to_string(&key).expect("serialises"), json);
        }
        Err(e) => {
            assert!(matches!(e, KeyError::Empty | KeyError::TooLong | KeyError::NotPrintable), "{e:?}");
            assert!(via_serde.is_err(), "serde accepted an invalid key {:?}", input.text);
        }
    }
    for key in [IdempotencyKey::webhook(Some(input.text), input.body), IdempotencyKey::webhook(None, input.body)] {
        assert!(valid(key.as_str()), "invalid derived key {key:?}");
        assert_eq!(IdempotencyKey::parse(key.as_str()), Ok(key.clone()));
    }
}
