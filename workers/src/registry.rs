//! The model registry (table `model_registry`): one row per version trained, with its samples,
//! metrics, hyperparameters, duration, bundle and notes, and the active flag of the version being
//! served (at most one per model, enforced by a unique partial index).

use anyhow::Context;
use sqlx::PgConnection;

/// A version as recorded after its bundle was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// `dropout` or `als`.
    pub kind: &'static str,
    /// The artifacts URI the version was written under, `s3://<bucket>/<prefix>/`.
    pub model: String,
    pub version: String,
    pub run_id: String,
    pub artifact_uri: String,
    pub data_fingerprint: Option<String>,
    pub training_samples: i64,
    pub validation_samples: i64,
    pub test_samples: i64,
    pub metrics: serde_json::Value,
    pub hyperparameters: serde_json::Value,
    pub duration_seconds: f64,
    pub notes: Option<String>,
}

pub async fn insert(conn: &mut PgConnection, entry: &Entry) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO model_registry (kind, model, version, run_id, artifact_uri, data_fingerprint,
             training_samples, validation_samples, test_samples, metrics, hyperparameters,
             duration_seconds, notes)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(entry.kind)
    .bind(&entry.model)
    .bind(&entry.version)
    .bind(&entry.run_id)
    .bind(&entry.artifact_uri)
    .bind(&entry.data_fingerprint)
    .bind(entry.training_samples)
    .bind(entry.validation_samples)
    .bind(entry.test_samples)
    .bind(&entry.metrics)
    .bind(&entry.hyperparameters)
    .bind(entry.duration_seconds)
    .bind(&entry.notes)
    .execute(conn)
    .await
    .with_context(|| format!("recording version {} in model_registry", entry.version))?;
    Ok(())
}

/// The newest version of `model` trained on `fingerprint` with exactly `hyperparameters`:
/// `(version, artifact_uri)`.
pub async fn trained_alike(
    conn: &mut PgConnection,
    model: &str,
    fingerprint: &str,
    hyperparameters: &serde_json::Value,
) -> anyhow::Result<Option<(String, String)>> {
    sqlx::query_as(
        "SELECT version, artifact_uri FROM model_registry
         WHERE model = $1 AND data_fingerprint = $2 AND hyperparameters = $3
         ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(model)
    .bind(fingerprint)
    .bind(hyperparameters)
    .fetch_optional(conn)
    .await
    .context("looking up model_registry")
}

/// Marks `version` as the one `model` serves, and no other, in one transaction.
pub async fn activate(conn: &mut PgConnection, model: &str, version: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let context = || format!("activating version {version} of {model}");
    let mut tx = conn.begin().await.with_context(context)?;
    sqlx::query("UPDATE model_registry SET is_active = false WHERE model = $1 AND is_active")
        .bind(model)
        .execute(&mut *tx)
        .await
        .with_context(context)?;
    let updated =
        sqlx::query("UPDATE model_registry SET is_active = true WHERE model = $1 AND version = $2")
            .bind(model)
            .bind(version)
            .execute(&mut *tx)
            .await
            .with_context(context)?;
    anyhow::ensure!(
        updated.rows_affected() == 1,
        "model_registry has no version {version} of {model}"
    );
    tx.commit().await.with_context(context)?;
    Ok(())
}
