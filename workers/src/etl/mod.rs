//! `mooc-worker etl`: loads `user_info.csv` and `train.csv` objects from S3 into PostgreSQL.
//!
//! Each object streams through a CSV parser into a temporary stage by COPY and is merged into its
//! target in one transaction with its rejects and its ledger row. Unchanged objects (same ETag)
//! are skipped; `--mode full` replaces the targets with the selected objects in one transaction.

pub mod columns;
pub mod copy_text;
mod fields;
mod load;
mod merge;
mod parse;
mod rows;
mod source;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;
use sqlx::{Connection, PgConnection};

pub use source::Selection;

use crate::settings::{PostgresSettings, S3Settings};
use crate::stores;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Load objects that are new or whose ETag changed; skip the rest.
    Incremental,
    /// Replace users, enrollments, ledger and rejects with the selected objects.
    Full,
}

#[derive(clap::Args, Debug, Clone)]
pub struct EtlArgs {
    /// Object keys to load (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        required_unless_present = "prefix",
        conflicts_with = "prefix"
    )]
    pub keys: Vec<String>,
    /// Load every `.csv` object under this prefix.
    #[arg(long)]
    pub prefix: Option<String>,
    #[arg(long, value_enum, default_value = "incremental")]
    pub mode: Mode,
    /// Fail an object when more than this share of its rows is rejected (its rejects are kept).
    #[arg(long, default_value_t = 0.01, value_parser = share)]
    pub max_reject_ratio: f64,
    /// Where the JSON result goes for the operator.
    #[arg(long, default_value = "/dev/termination-log")]
    pub termination_log: PathBuf,
}

/// A share between 0 and 1.
fn share(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(share) if (0.0..=1.0).contains(&share) => Ok(share),
        _ => Err(format!("expected a number from 0 to 1, found {value:?}")),
    }
}

impl EtlArgs {
    pub fn selection(&self) -> Selection {
        match &self.prefix {
            Some(prefix) => Selection::Prefix(prefix.clone()),
            None => Selection::Keys(self.keys.clone()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectStatus {
    Loaded,
    Unchanged,
    Failed,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectResult {
    pub key: String,
    pub etag: String,
    pub kind: Option<&'static str>,
    pub status: ObjectStatus,
    pub rows_read: u64,
    pub rows_merged: u64,
    pub rows_rejected: u64,
    pub fields_nulled: u64,
    /// `copy` (straight into an empty table) or `merge` (through the stage), once read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The whole load, as reported to the operator.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadSummary {
    pub mode: Mode,
    pub objects_loaded: usize,
    pub objects_unchanged: usize,
    pub objects_failed: usize,
    pub rows_read: u64,
    pub rows_loaded: u64,
    pub rows_rejected: u64,
    /// Distinct learners with enrollments but no user_info row (counted when something loaded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users_without_info: Option<i64>,
    /// Hash of the selected objects' keys and ETags as loaded: training records it as lineage.
    pub data_fingerprint: String,
    pub duration_seconds: f64,
    #[serde(skip)]
    pub objects: Vec<ObjectResult>,
}

impl LoadSummary {
    pub fn failed(&self) -> bool {
        self.objects_failed > 0
    }
}

/// A result the termination message can carry: totals plus the first few failures.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report<'a> {
    #[serde(flatten)]
    summary: &'a LoadSummary,
    failures: Vec<Failure<'a>>,
}

#[derive(Serialize)]
struct Failure<'a> {
    key: &'a str,
    error: String,
}

pub async fn run(
    args: &EtlArgs,
    postgres: &PostgresSettings,
    s3_settings: &S3Settings,
) -> anyhow::Result<LoadSummary> {
    let started = Instant::now();
    let s3 = stores::s3::client(s3_settings);
    let mut conn = PgConnection::connect(&postgres.url)
        .await
        .context("connecting to PostgreSQL (DATABASE_URL)")?;
    stores::postgres::migrate(&mut conn).await?;
    // One load at a time: two jobs merging the same objects would fight over the same rows.
    sqlx::query("SELECT pg_advisory_lock(hashtext('mooc-recsys/etl'))")
        .execute(&mut conn)
        .await?;

    let objects = source::resolve(&s3, &s3_settings.bucket, &args.selection()).await?;
    tracing::info!(objects = objects.len(), mode = ?args.mode, "loading");
    let results = match args.mode {
        Mode::Incremental => load_incrementally(&mut conn, &s3, objects, args).await?,
        Mode::Full => load_fully(&mut conn, &s3, objects, args).await?,
    };
    summarise(&mut conn, args, &s3_settings.bucket, results, started).await
}

async fn load_incrementally(
    conn: &mut PgConnection,
    s3: &aws_sdk_s3::Client,
    objects: Vec<source::ObjectRef>,
    args: &EtlArgs,
) -> anyhow::Result<Vec<ObjectResult>> {
    let mut results = Vec::new();
    for mut object in objects {
        let loaded_etag: Option<String> = sqlx::query_scalar(
            "SELECT etag FROM load_ledger WHERE bucket = $1 AND object_key = $2",
        )
        .bind(&object.bucket)
        .bind(&object.key)
        .fetch_optional(&mut *conn)
        .await?;
        if loaded_etag.as_deref() == Some(object.etag.as_str()) {
            tracing::info!(object = %object.uri(), "unchanged since its last load; skipped");
            results.push(ObjectResult::unchanged(&object));
            continue;
        }
        let mut tx = conn.begin().await?;
        let result = load_one(&mut tx, s3, &mut object, args).await;
        // Commit whenever the object was read to its end, also when the merge was withheld for
        // too many rejects (the rejects are kept); roll back when reading or writing failed.
        if result.kind.is_some() {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        results.push(result);
    }
    Ok(results)
}

async fn load_fully(
    conn: &mut PgConnection,
    s3: &aws_sdk_s3::Client,
    objects: Vec<source::ObjectRef>,
    args: &EtlArgs,
) -> anyhow::Result<Vec<ObjectResult>> {
    let mut tx = conn.begin().await?;
    sqlx::query("TRUNCATE users, enrollments, load_ledger, load_rejects")
        .execute(&mut *tx)
        .await?;
    let mut results = Vec::new();
    for mut object in objects {
        results.push(load_one(&mut tx, s3, &mut object, args).await);
    }
    if results.iter().any(|r| r.status == ObjectStatus::Failed) {
        tracing::error!(
            "an object failed: the full reload is rolled back, the tables are unchanged"
        );
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(results)
}

/// Loads one object in the open transaction; every failure becomes a failed result.
async fn load_one(
    conn: &mut PgConnection,
    s3: &aws_sdk_s3::Client,
    object: &mut source::ObjectRef,
    args: &EtlArgs,
) -> ObjectResult {
    match load::load_object(conn, s3, object, args.max_reject_ratio).await {
        Ok(loaded) => ObjectResult::from_loaded(object, &loaded, args.max_reject_ratio),
        Err(error) => {
            let error = format!("{}: {error}", object.uri());
            tracing::error!("{error}");
            ObjectResult::failed(object, error)
        }
    }
}

impl ObjectResult {
    fn unchanged(object: &source::ObjectRef) -> Self {
        Self::new(object, ObjectStatus::Unchanged)
    }

    fn failed(object: &source::ObjectRef, error: String) -> Self {
        Self {
            error: Some(error),
            ..Self::new(object, ObjectStatus::Failed)
        }
    }

    fn new(object: &source::ObjectRef, status: ObjectStatus) -> Self {
        Self {
            key: object.key.clone(),
            etag: object.etag.clone(),
            kind: None,
            status,
            rows_read: 0,
            rows_merged: 0,
            rows_rejected: 0,
            fields_nulled: 0,
            path: None,
            error: None,
        }
    }

    fn from_loaded(object: &source::ObjectRef, loaded: &load::Loaded, max_ratio: f64) -> Self {
        let report = &loaded.report;
        let fields_nulled = report.rejects.len() as u64 - report.rows_rejected;
        let (status, error) = match loaded.rows_merged {
            Some(_) => (ObjectStatus::Loaded, None),
            None => (
                ObjectStatus::Failed,
                Some(format!(
                    "{}: {} of {} rows rejected ({:.2}%), more than the allowed {:.2}%; nothing \
                     merged, the rejects are in load_rejects",
                    object.uri(),
                    report.rows_rejected,
                    report.rows_read,
                    loaded.reject_ratio() * 100.0,
                    max_ratio * 100.0
                )),
            ),
        };
        if let Some(error) = &error {
            tracing::error!("{error}");
        } else {
            tracing::info!(
                object = %object.uri(), kind = %loaded.kind, rows = report.rows_read,
                merged = loaded.rows_merged, rejected = report.rows_rejected, "loaded"
            );
        }
        Self {
            kind: Some(loaded.kind.as_str()),
            rows_read: report.rows_read,
            rows_merged: loaded.rows_merged.unwrap_or(0),
            rows_rejected: report.rows_rejected,
            fields_nulled,
            path: Some(if loaded.bulk { "copy" } else { "merge" }),
            error,
            ..Self::new(object, status)
        }
    }
}

/// The digest of the loaded objects' keys and ETags: what a load reports and training records as
/// its lineage. `scope` limits it to some objects of a bucket (a DataLoad's); `None` takes every
/// object of the ledger.
pub async fn data_fingerprint(
    conn: &mut PgConnection,
    scope: Option<(&str, &[&str])>,
) -> anyhow::Result<String> {
    let (bucket, keys) = scope.unzip();
    sqlx::query_scalar(
        "SELECT md5(coalesce(string_agg(object_key || '@' || etag, E'\\n' ORDER BY object_key), ''))
         FROM load_ledger
         WHERE ($1::text IS NULL OR bucket = $1) AND ($2::text[] IS NULL OR object_key = ANY($2))",
    )
    .bind(bucket)
    .bind(keys)
    .fetch_one(conn)
    .await
    .context("computing the data fingerprint from load_ledger")
}

async fn summarise(
    conn: &mut PgConnection,
    args: &EtlArgs,
    bucket: &str,
    objects: Vec<ObjectResult>,
    started: Instant,
) -> anyhow::Result<LoadSummary> {
    let count = |status| objects.iter().filter(|o| o.status == status).count();
    let keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    let data_fingerprint = data_fingerprint(conn, Some((bucket, &keys))).await?;
    let users_without_info = if count(ObjectStatus::Loaded) > 0 {
        let without: i64 = sqlx::query_scalar(
            "SELECT count(DISTINCT username) FROM enrollments e
             WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.user_id = e.username)",
        )
        .fetch_one(&mut *conn)
        .await?;
        if without > 0 {
            tracing::warn!(
                learners = without,
                "learners with enrollments but no user_info row"
            );
        }
        Some(without)
    } else {
        None
    };
    Ok(LoadSummary {
        mode: args.mode,
        objects_loaded: count(ObjectStatus::Loaded),
        objects_unchanged: count(ObjectStatus::Unchanged),
        objects_failed: count(ObjectStatus::Failed),
        rows_read: objects.iter().map(|o| o.rows_read).sum(),
        rows_loaded: objects.iter().map(|o| o.rows_merged).sum(),
        rows_rejected: objects.iter().map(|o| o.rows_rejected).sum(),
        users_without_info,
        data_fingerprint,
        duration_seconds: started.elapsed().as_secs_f64(),
        objects,
    })
}

/// Reports `summary` for the operator (termination message) and people (stdout).
pub fn report(args: &EtlArgs, summary: &LoadSummary) -> anyhow::Result<()> {
    const SHOWN_FAILURES: usize = 5;
    const ERROR_CHARS: usize = 400;
    let failures = summary
        .objects
        .iter()
        .filter_map(|o| {
            o.error.as_ref().map(|error| Failure {
                key: &o.key,
                error: error.chars().take(ERROR_CHARS).collect(),
            })
        })
        .take(SHOWN_FAILURES)
        .collect();
    crate::termination::report(&args.termination_log, &Report { summary, failures })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reject_ratio_is_a_share() {
        assert_eq!(share("0.05"), Ok(0.05));
        assert_eq!(share("1"), Ok(1.0));
        assert_eq!(
            share("5"),
            Err("expected a number from 0 to 1, found \"5\"".into())
        );
        assert!(share("NaN").is_err());
    }
}
