//! A job's result for the operator: JSON in the container's termination message (Kubernetes keeps
//! at most 4096 bytes of it) and on stdout for people reading the logs.

use std::path::Path;

use serde::Serialize;

/// Kubernetes truncates termination messages beyond this.
pub const MAX_BYTES: usize = 4096;

/// Writes `result` to `path` when its directory exists (inside a pod), and to stdout always.
pub fn report(path: &Path, result: &impl Serialize) -> anyhow::Result<()> {
    let json = serde_json::to_string(result)?;
    println!("{json}");
    if json.len() > MAX_BYTES {
        tracing::warn!(
            bytes = json.len(),
            "the result exceeds the termination message limit"
        );
    }
    if path.parent().is_some_and(Path::is_dir) {
        std::fs::write(path, &json)
            .map_err(|error| anyhow::anyhow!("writing {}: {error}", path.display()))?;
    }
    Ok(())
}
