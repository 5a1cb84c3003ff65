//! What the training Jobs (`train-dropout`, `train-als`) share: their arguments, the skip of a
//! run that would repeat an earlier version, and how a run reports itself.

use std::path::PathBuf;

use serde::Serialize;
use sqlx::PgConnection;

use crate::registry;

#[derive(clap::Args, Debug, Clone)]
pub struct TrainArgs {
    /// The run's id (the operator's, e.g. `g3`); recorded with the version.
    #[arg(long, env = "MOOC_RUN_ID")]
    pub run_id: String,
    /// Where versions go: `s3://<bucket>/<prefix>/` (the bucket must be S3_BUCKET).
    #[arg(long)]
    pub artifacts: String,
    /// The resource's `spec.hyperparameters` as JSON; omitted fields take their defaults.
    #[arg(long, default_value = "{}")]
    pub hyperparameters: String,
    /// The DataLoad's data fingerprint; computed from the load ledger when not given.
    #[arg(long, env = "MOOC_DATA_FINGERPRINT")]
    pub data_fingerprint: Option<String>,
    /// Notes recorded with the version.
    #[arg(long, env = "MOOC_RUN_NOTES")]
    pub notes: Option<String>,
    /// Training threads; default: the cores available to the process.
    #[arg(long, env = "MOOC_TRAINING_THREADS")]
    pub threads: Option<usize>,
    /// Where the JSON result goes for the operator.
    #[arg(long, default_value = "/dev/termination-log")]
    pub termination_log: PathBuf,
}

impl TrainArgs {
    pub fn threads(&self) -> usize {
        self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }
}

/// What a run did, for the operator (termination message) and people (stdout).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Outcome<T> {
    Trained(T),
    Skipped(Skipped),
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    pub skipped: bool,
    pub reason: String,
    /// The version already trained on this data with these hyperparameters.
    pub version: String,
    pub artifact_uri: String,
    pub data_fingerprint: String,
}

/// The earlier version of `model` trained on `fingerprint` with exactly `asked`, as the run's
/// outcome: training again would only repeat it.
pub async fn trained_before(
    conn: &mut PgConnection,
    model: &str,
    fingerprint: &str,
    asked: &serde_json::Value,
) -> anyhow::Result<Option<Skipped>> {
    let found = registry::trained_alike(conn, model, fingerprint, asked).await?;
    Ok(found.map(|(version, artifact_uri)| Skipped {
        skipped: true,
        reason: format!(
            "version {version} was trained on this data ({fingerprint}) with these hyperparameters"
        ),
        version,
        artifact_uri,
        data_fingerprint: fingerprint.to_owned(),
    }))
}

/// The process's peak resident memory (Linux `VmHWM`), when known.
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
