//! libFuzzer entry point of the `verify_standard` target: the checks live in
//! `checks/verify_standard.rs` (shared with the corpus replay test of sunusav-core,
//! `tests/fuzz_corpus.rs`), which says what is checked.
#![no_main]

use libfuzzer_sys::{Corpus, fuzz_target};

#[path = "../checks/verify_standard.rs"]
mod check;

// `Reject` for an input that does not decode, as `fuzz_target!(|input: Input| ..)` does.
fuzz_target!(|data: &[u8]| -> Corpus { if check::check(data) { Corpus::Keep } else { Corpus::Reject } });
