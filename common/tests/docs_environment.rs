//! Every variable of the environment snapshot is documented in docs/environment.md.

#[test]
fn every_variable_is_documented() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/environment.md"
    ))
    .expect("docs/environment.md");
    let missing: Vec<&str> = common::env::ALL
        .iter()
        .copied()
        .filter(|v| !doc.contains(&format!("`{v}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "not in docs/environment.md: {missing:?}"
    );
}
