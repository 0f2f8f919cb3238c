//! Example binaries.
fn main() {}
