//! The README's "Embedding in a service" example is the compiled example
//! `examples/embed_host.rs` (the part between its `README` markers), word
//! for word: the README cannot show code that does not build.

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap_or_else(|| panic!("{start:?} not found")) + start.len();
    let to = text[from..].find(end).unwrap_or_else(|| panic!("{end:?} not found after {start:?}")) + from;
    &text[from..to]
}

#[test]
fn the_readme_embedding_example_is_the_compiled_example() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README.md");
    let example = std::fs::read_to_string(format!("{root}/examples/examples/embed_host.rs")).expect("embed_host.rs");
    let section = between(&readme, "\n## Embedding in a service\n", "\n## ");
    let shown = between(section, "```rust\n", "```\n");
    let compiled = between(&example, "// README:begin\n", "// README:end\n");
    assert_eq!(shown, compiled, "README.md's embedding example differs from examples/examples/embed_host.rs");
}
