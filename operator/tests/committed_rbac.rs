//! The ClusterRole committed to manifests/ is exactly what the operator's declared rules make.

use std::path::Path;

#[test]
fn committed_rbac_matches_the_declared_rules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (path, expected) = mooc_operator::rbac::generated_file(&root);
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "{}: {error}; run `cargo run -p mooc-operator --bin rbacgen`",
            path.display()
        )
    });
    assert!(
        committed == expected,
        "{} differs from the operator's rules; run `cargo run -p mooc-operator --bin rbacgen`",
        path.display()
    );
}
