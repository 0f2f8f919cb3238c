//! Replays the committed fuzz corpus as ordinary tests: every file of
//! `fuzz/corpus/<target>/` goes through the same checks as the libFuzzer target
//! (`fuzz/checks/<target>.rs`, shared with `fuzz/fuzz_targets/<target>.rs`), so
//! `cargo test` keeps every input the fuzzer ever found interesting passing
//! without cargo-fuzz. Long coverage-guided runs stay in `scripts/fuzz.sh`.
//!
//! A missing or empty corpus directory fails the test (a renamed target must not
//! silently stop being replayed). Structured targets skip, as libfuzzer-sys
//! does, an input that does not decode; a corpus none of whose inputs decode
//! fails too.

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

#[path = "../fuzz/checks/event_parse.rs"]
mod event_parse;
#[path = "../fuzz/checks/idempotency_key.rs"]
mod idempotency_key;
#[path = "../fuzz/checks/verify_hex.rs"]
mod verify_hex;
#[path = "../fuzz/checks/verify_standard.rs"]
mod verify_standard;

/// Every regular file of the target's corpus, sorted by name.
fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join("corpus").join(target);
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("no corpus for {target} ({}): {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())).path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the corpus of {target} ({}) is empty", dir.display());
    files
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(non-text panic)".to_owned())
}

/// Runs `check` on every input of the target's corpus, and fails with the names
/// of the inputs that panicked.
fn replay(target: &str, check: fn(&[u8]) -> bool) {
    let (mut replayed, mut skipped) = (0_usize, 0_usize);
    let mut failures = Vec::new();
    for path in corpus(target) {
        let data = fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        match panic::catch_unwind(AssertUnwindSafe(|| check(&data))) {
            Ok(true) => replayed += 1,
            Ok(false) => skipped += 1,
            Err(payload) => failures.push(format!("{}: {}", path.display(), panic_message(payload.as_ref()))),
        }
    }
    eprintln!("{target}: {replayed} inputs replayed, {skipped} skipped (they do not decode)");
    assert!(failures.is_empty(), "{} input(s) of {target} fail:\n{}", failures.len(), failures.join("\n"));
    assert!(replayed > 0, "no input of the {target} corpus decodes ({skipped} skipped)");
}

#[test]
fn event_parse_corpus() {
    replay("event_parse", event_parse::check);
}

#[test]
fn idempotency_key_corpus() {
    replay("idempotency_key", idempotency_key::check);
}

#[test]
fn verify_hex_corpus() {
    replay("verify_hex", verify_hex::check);
}

#[test]
fn verify_standard_corpus() {
    replay("verify_standard", verify_standard::check);
}
