//! Writes the CustomResourceDefinitions generated from the Rust types: one file per kind into the
//! Helm chart's `crds/` and all four into `manifests/crds.yaml` (a test fails when they drift).

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits in the workspace root");
    for (path, text) in mooc_crds::generated_files(root) {
        if std::fs::read_to_string(&path).is_ok_and(|current| current == text) {
            continue;
        }
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, &text));
        if let Err(error) = written {
            eprintln!("crdgen: writing {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}
