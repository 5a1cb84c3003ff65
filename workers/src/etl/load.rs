//! Loads one object inside the caller's transaction: stream → parse (blocking thread) → COPY →
//! rejects → ledger. Nothing reaches the targets unless the caller commits, so a crash at any point
//! leaves them as they were.
//!
//! Two paths. When the target table is empty (a first or full load), rows are copied straight into
//! it, the fastest PostgreSQL can take them; a duplicate key in the object (two rows of one
//! enrollment) rolls that back to a savepoint and the object is read again by the merge path.
//! Otherwise rows go to a temporary stage and are merged by the rule in [`super::merge`].

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
// The dynamic SQL here is built only from the fixed identifiers of `columns` and `merge`.
use sqlx::{AssertSqlSafe, PgConnection};
use tokio::sync::{mpsc, oneshot};
use tokio_util::io::SyncIoBridge;

use super::columns::InputKind;
use super::copy_text::CopyRow;
use super::merge;
use super::parse::{self, ParseError, ParseReport, Reject, Staging};
use super::rows::Layout;
use super::source::{self, ObjectRef};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the parser thread failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Source(#[from] anyhow::Error),
}

/// What loading one object did.
#[derive(Debug)]
pub struct Loaded {
    pub kind: InputKind,
    pub report: ParseReport,
    /// Rows inserted or changed in the target; `None` when the merge was withheld.
    pub rows_merged: Option<u64>,
    /// Copied straight into the empty target rather than merged through the stage.
    pub bulk: bool,
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

const SAVEPOINT: &str = "mooc_bulk_load";

/// Loads `object` (its ETag is updated to the version read); merges into the target only when at
/// most `max_reject_ratio` of its rows were rejected.
pub async fn load_object(
    conn: &mut PgConnection,
    s3: &Client,
    object: &mut ObjectRef,
    max_reject_ratio: f64,
) -> Result<Loaded, LoadError> {
    let empty_targets = EmptyTargets::read(conn).await?;
    let (body, etag) = source::open(s3, object).await?;
    object.etag = etag;
    let copied = match copy(conn, object, body, Some(&empty_targets)).await? {
        Some(copied) => copied,
        None => {
            tracing::info!(object = %object.uri(), "a key occurs twice: merging through the stage");
            let (body, etag) = source::open(s3, object).await?;
            if etag != object.etag {
                let changed = anyhow::anyhow!("{} changed while it was loaded", object.uri());
                return Err(changed.into());
            }
            copy(conn, object, body, None)
                .await?
                .ok_or_else(|| anyhow::anyhow!("the stage path cannot meet a duplicate key"))?
        }
    };
    let Copied { kind, report, bulk } = copied;

    let mut loaded = Loaded {
        kind,
        report,
        rows_merged: None,
        bulk,
    };
    let accepted = loaded.reject_ratio() <= max_reject_ratio;
    if bulk && !accepted {
        exec(conn, format!("ROLLBACK TO SAVEPOINT {SAVEPOINT}")).await?;
    }
    record_rejects(conn, object, &loaded.report.rejects).await?;
    if accepted {
        let merged = if bulk {
            loaded.report.rows_staged
        } else {
            sqlx::query(AssertSqlSafe(merge::merge_sql(kind)))
                .bind(object.uri())
                .execute(&mut *conn)
                .await?
                .rows_affected()
        };
        loaded.rows_merged = Some(merged);
        record_in_ledger(conn, object, &loaded, merged).await?;
    }
    Ok(loaded)
}

/// Which targets hold no rows yet, read before loading: those take the bulk path.
struct EmptyTargets {
    users: bool,
    enrollments: bool,
}

impl EmptyTargets {
    async fn read(conn: &mut PgConnection) -> Result<Self, sqlx::Error> {
        let (users, enrollments) = sqlx::query_as(
            "SELECT NOT EXISTS (SELECT 1 FROM users), NOT EXISTS (SELECT 1 FROM enrollments)",
        )
        .fetch_one(&mut *conn)
        .await?;
        Ok(Self { users, enrollments })
    }

    fn includes(&self, kind: InputKind) -> bool {
        match kind {
            InputKind::Users => self.users,
            InputKind::Enrollments => self.enrollments,
        }
    }
}

struct Copied {
    kind: InputKind,
    report: ParseReport,
    /// Whether the rows went straight into the target (inside the savepoint).
    bulk: bool,
}

async fn exec(conn: &mut PgConnection, sql: String) -> Result<(), sqlx::Error> {
    sqlx::query(AssertSqlSafe(sql)).execute(&mut *conn).await?;
    Ok(())
}

fn is_duplicate_key(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.code().as_deref() == Some("23505"))
}

/// Parses `body` and COPYs its rows: into the target when `bulk_into` says it is empty, else into
/// a fresh stage table. `None` when the bulk path met a key twice (and was rolled back).
async fn copy(
    conn: &mut PgConnection,
    object: &ObjectRef,
    body: ByteStream,
    bulk_into: Option<&EmptyTargets>,
) -> Result<Option<Copied>, LoadError> {
    let (sender, mut receiver) = mpsc::channel(4);
    let (choose_layout, layout) = oneshot::channel();
    let name = object.uri();
    let input = SyncIoBridge::new(body.into_async_read());
    let parser = tokio::task::spawn_blocking(move || parse::parse(&name, input, sender, layout));

    let header = match receiver.recv().await {
        Some(Staging::Header(header)) => header,
        // The parser stopped before the header: its error says why.
        _ => return Err(parser.await?.err().unwrap_or(ParseError::Closed).into()),
    };
    let kind = header.kind;
    let bulk = bulk_into.is_some_and(|empty| empty.includes(kind));
    let statement = if bulk {
        exec(conn, format!("SAVEPOINT {SAVEPOINT}")).await?;
        merge::copy_into_target_sql(kind)
    } else {
        let stage = merge::stage_table(kind);
        exec(conn, format!("DROP TABLE IF EXISTS {stage}")).await?;
        exec(conn, merge::create_stage_sql(kind)).await?;
        format!("COPY {stage} FROM STDIN")
    };
    let layout = if bulk {
        Layout::Target {
            source: object.uri(),
        }
    } else {
        Layout::Stage
    };
    // The parser waits for this; it cannot have gone away before sending the header.
    let _ = choose_layout.send(layout);

    let mut copy = conn.copy_in_raw(&statement).await?;
    let mut sent = Ok(());
    while let Some(message) = receiver.recv().await {
        if let Staging::Rows(rows) = message {
            sent = copy.send(rows).await.map(|_| ());
            if sent.is_err() {
                break;
            }
        }
    }
    drop(receiver); // stops the parser if we broke off
    let report = match (parser.await?, &sent) {
        (Ok(report), _) => Some(report),
        // The parser was cut off by the database error in `sent`, handled below (a duplicate key
        // on the bulk path is not a failure).
        (Err(_), Err(_)) => None,
        (Err(error), Ok(())) => {
            copy.abort(error.to_string()).await?;
            return Err(error.into());
        }
    };
    let finished = match sent {
        Ok(()) => copy.finish().await.map(|_| ()),
        Err(error) => {
            // The server already refused the COPY; ending it returns that same error.
            let _ = copy.abort("stopped after a database error").await;
            Err(error)
        }
    };
    match finished {
        Ok(()) => match report {
            Some(report) => Ok(Some(Copied { kind, report, bulk })),
            None => Err(ParseError::Closed.into()),
        },
        Err(error) if bulk && is_duplicate_key(&error) => {
            exec(conn, format!("ROLLBACK TO SAVEPOINT {SAVEPOINT}")).await?;
            Ok(None)
        }
        Err(error) => Err(error.into()),
    }
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
