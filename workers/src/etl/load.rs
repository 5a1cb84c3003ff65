//! Loads one object inside the caller's transaction: stream → parse (blocking thread) → COPY
//! into a temporary stage → rejects → merge → ledger. Nothing reaches the targets unless the
//! caller commits, so a crash at any point leaves them as they were.

use aws_sdk_s3::primitives::ByteStream;
// The dynamic SQL here is built only from the fixed identifiers of `columns` and `merge`.
use sqlx::{AssertSqlSafe, PgConnection};
use tokio::sync::mpsc;
use tokio_util::io::SyncIoBridge;

use super::columns::InputKind;
use super::copy_text::CopyRow;
use super::merge;
use super::parse::{self, ParseError, ParseReport, Reject, Staging};
use super::source::ObjectRef;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the parser thread failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// What loading one object did.
#[derive(Debug)]
pub struct Loaded {
    pub kind: InputKind,
    pub report: ParseReport,
    /// Rows inserted or changed in the target; `None` when the merge was withheld.
    pub rows_merged: Option<u64>,
}

impl Loaded {
    pub fn reject_ratio(&self) -> f64 {
        if self.report.rows_read == 0 {
            0.0
        } else {
            self.report.rows_rejected as f64 / self.report.rows_read as f64
        }
    }
}

/// Stages `body` and records its rejects; merges into the target only when at most
/// `max_reject_ratio` of its rows were rejected.
pub async fn load_object(
    conn: &mut PgConnection,
    object: &ObjectRef,
    body: ByteStream,
    max_reject_ratio: f64,
) -> Result<Loaded, LoadError> {
    let (sender, mut receiver) = mpsc::channel(4);
    let name = object.uri();
    let input = SyncIoBridge::new(body.into_async_read());
    let parser = tokio::task::spawn_blocking(move || parse::parse(&name, input, sender));

    let header = match receiver.recv().await {
        Some(Staging::Header(header)) => header,
        // The parser stopped before the header: its error says why.
        _ => return Err(parser.await?.err().unwrap_or(ParseError::Closed).into()),
    };
    let kind = header.kind;
    let stage = merge::stage_table(kind);
    sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {stage}")))
        .execute(&mut *conn)
        .await?;
    sqlx::query(AssertSqlSafe(merge::create_stage_sql(kind)))
        .execute(&mut *conn)
        .await?;

    let mut copy = conn
        .copy_in_raw(&format!("COPY {stage} FROM STDIN"))
        .await?;
    while let Some(message) = receiver.recv().await {
        if let Staging::Rows(rows) = message {
            copy.send(rows).await?;
        }
    }
    let report = match parser.await? {
        Ok(report) => report,
        Err(error) => {
            copy.abort(error.to_string()).await?;
            return Err(error.into());
        }
    };
    copy.finish().await?;

    record_rejects(conn, object, &report.rejects).await?;
    let mut loaded = Loaded {
        kind,
        report,
        rows_merged: None,
    };
    if loaded.reject_ratio() <= max_reject_ratio {
        let merged = sqlx::query(AssertSqlSafe(merge::merge_sql(kind)))
            .bind(object.uri())
            .execute(&mut *conn)
            .await?
            .rows_affected();
        loaded.rows_merged = Some(merged);
        record_in_ledger(conn, object, &loaded, merged).await?;
    }
    Ok(loaded)
}

/// Replaces the object's earlier rejects (from an earlier version of it) with these.
async fn record_rejects(
    conn: &mut PgConnection,
    object: &ObjectRef,
    rejects: &[Reject],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM load_rejects WHERE bucket = $1 AND object_key = $2")
        .bind(&object.bucket)
        .bind(&object.key)
        .execute(&mut *conn)
        .await?;
    if rejects.is_empty() {
        return Ok(());
    }
    let mut rows = Vec::new();
    for reject in rejects {
        let mut row = CopyRow::new(&mut rows);
        row.push_text(Some(&object.bucket));
        row.push_text(Some(&object.key));
        row.push_text(Some(&object.etag));
        row.push_display(reject.line);
        row.push_text(reject.problem.column);
        row.push_text(Some(reject.disposition.as_str()));
        row.push_text(Some(&reject.problem.reason));
        row.push_text(Some(&reject.raw_line));
        row.end();
    }
    let mut copy = conn
        .copy_in_raw(
            "COPY load_rejects (bucket, object_key, etag, line, column_name, disposition, reason, raw_line) FROM STDIN",
        )
        .await?;
    copy.send(rows).await?;
    copy.finish().await?;
    Ok(())
}

async fn record_in_ledger(
    conn: &mut PgConnection,
    object: &ObjectRef,
    loaded: &Loaded,
    merged: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO load_ledger (bucket, object_key, etag, input_kind, rows_read, rows_merged, rows_rejected)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (bucket, object_key) DO UPDATE SET etag = excluded.etag,
           input_kind = excluded.input_kind, rows_read = excluded.rows_read,
           rows_merged = excluded.rows_merged, rows_rejected = excluded.rows_rejected,
           loaded_at = now()",
    )
    .bind(&object.bucket)
    .bind(&object.key)
    .bind(&object.etag)
    .bind(loaded.kind.as_str())
    .bind(loaded.report.rows_read as i64)
    .bind(merged as i64)
    .bind(loaded.report.rows_rejected as i64)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
