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

use std::cell::{Cell, RefCell};
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Once;

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

thread_local! {
    /// Set while this thread replays an input: its panics are collected, not printed.
    static REPLAYING: Cell<bool> = const { Cell::new(false) };
    /// Where the last collected panic happened.
    static PANIC_AT: RefCell<String> = const { RefCell::new(String::new()) };
}

/// A panic hook that keeps quiet about (and records the location of) the panics
/// of a replayed input, so that a broken check reports one line per input
/// instead of a backtrace each; any other panic goes to the previous hook.
fn quiet_replay_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if REPLAYING.get() {
                let at = info.location().map(ToString::to_string).unwrap_or_default();
                PANIC_AT.with_borrow_mut(|s| *s = at);
            } else {
                previous(info);
            }
        }));
    });
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(non-text panic)".to_owned())
}

/// Runs `check` on every input of the target's corpus, and fails with the names
/// of the inputs that panicked (and where, and why).
fn replay(target: &str, check: fn(&[u8]) -> bool) {
    quiet_replay_panics();
    let (mut replayed, mut skipped) = (0_usize, 0_usize);
    let mut failures = Vec::new();
    for path in corpus(target) {
        let data = fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        REPLAYING.set(true);
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| check(&data)));
        REPLAYING.set(false);
        match outcome {
            Ok(true) => replayed += 1,
            Ok(false) => skipped += 1,
            Err(payload) => {
                let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.display().to_string());
                let at = PANIC_AT.with_borrow(Clone::clone);
                failures.push(format!("{target}/{name}: panicked at {at}: {}", panic_message(payload.as_ref())));
            }
        }
    }
    eprintln!("{target}: {replayed} inputs replayed, {skipped} skipped (they do not decode)");
    if !failures.is_empty() {
        let shown = failures.iter().take(20).cloned().collect::<Vec<_>>().join("\n");
        let more = failures.len().saturating_sub(20);
        let more = if more > 0 { format!("\n... and {more} more") } else { String::new() };
        panic!(
            "{} of the {} inputs of the {target} corpus fail:\n{shown}{more}",
            failures.len(),
            replayed + skipped + failures.len()
        );
    }
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
