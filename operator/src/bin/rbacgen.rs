//! Writes `manifests/rbac.yaml`, the operator's ClusterRole merged from the rules each module
//! declares (a test fails when the committed file drifts).

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits in the workspace root");
    let (path, text) = mooc_operator::rbac::generated_file(root);
    if std::fs::read_to_string(&path).is_ok_and(|current| current == text) {
        return ExitCode::SUCCESS;
    }
    if let Err(error) = std::fs::write(&path, &text) {
        eprintln!("rbacgen: writing {}: {error}", path.display());
        return ExitCode::FAILURE;
    }
    println!("wrote {}", path.display());
    ExitCode::SUCCESS
}
