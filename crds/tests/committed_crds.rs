//! The CRDs committed to the chart and to manifests/ are exactly what the Rust types generate.

use std::path::Path;

#[test]
fn committed_crds_match_the_rust_types() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (path, expected) in mooc_crds::generated_files(&root) {
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|error| {
            panic!(
                "{}: {error}; run `cargo run -p mooc-crds --bin crdgen`",
                path.display()
            )
        });
        assert!(
            committed == expected,
            "{} differs from the Rust types; run `cargo run -p mooc-crds --bin crdgen`",
            path.display()
        );
    }
}
