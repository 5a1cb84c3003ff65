//! Shared by the ETL tests: each test gets its own PostgreSQL schema (so tests run in parallel
//! without seeing each other's tables) and its own S3 prefix, on the real services of `dev/up`.
#![allow(dead_code)] // each test file uses a different part of this module

use std::path::PathBuf;

use aws_sdk_s3::primitives::ByteStream;
use mooc_worker::etl::{self, EtlArgs, LoadSummary, Mode};
use mooc_worker::settings::{PostgresSettings, S3Settings};
use mooc_worker::stores;
use sqlx::{AssertSqlSafe, PgPool};

/// (line, column, disposition, reason, raw line) of a `load_rejects` row.
pub type RejectRow = (i64, Option<String>, String, String, String);

pub struct TestBed {
    pub postgres: PostgresSettings,
    pub s3: S3Settings,
    pub pool: PgPool,
    pub prefix: String,
    pub schema: String,
}

impl TestBed {
    pub async fn new() -> Self {
        let base = PostgresSettings::from_env().expect("PostgreSQL settings");
        let schema = format!("test_{}", uuid::Uuid::new_v4().simple());
        let admin = stores::postgres::connect(&base, 1)
            .await
            .expect("PostgreSQL must be running (dev/up)");
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let postgres = PostgresSettings {
            url: format!("{}?options=-c%20search_path%3D{schema}", base.url),
        };
        let pool = stores::postgres::connect(&postgres, 4).await.unwrap();
        Self {
            postgres,
            s3: S3Settings::from_env().expect("S3 settings"),
            pool,
            prefix: format!("etl-test/{schema}/"),
            schema,
        }
    }

    pub async fn upload(&self, name: &str, body: impl Into<Vec<u8>>) -> String {
        let key = format!("{}{name}", self.prefix);
        stores::s3::client(&self.s3)
            .put_object()
            .bucket(&self.s3.bucket)
            .key(&key)
            .body(ByteStream::from(body.into()))
            .send()
            .await
            .expect("S3 must be running (dev/up)");
        key
    }

    pub async fn upload_real(&self, set: &str, file: &str) -> String {
        let path = real_data(set).join(file);
        let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        self.upload(&format!("{set}/{file}"), body).await
    }

    pub fn args(&self, keys: &[&str]) -> EtlArgs {
        EtlArgs {
            keys: keys.iter().map(|k| k.to_string()).collect(),
            prefix: None,
            mode: Mode::Incremental,
            max_reject_ratio: 0.01,
            termination_log: PathBuf::from("/nonexistent/termination-log"),
        }
    }

    pub async fn load(&self, args: &EtlArgs) -> LoadSummary {
        etl::run(args, &self.postgres, &self.s3)
            .await
            .expect("the load runs")
    }

    /// The single number `sql` (written by the test itself) returns.
    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Every reject, in line order.
    pub async fn rejects(&self) -> Vec<RejectRow> {
        sqlx::query_as(
            "SELECT line, column_name, disposition, reason, raw_line FROM load_rejects ORDER BY line",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }
}

/// `../shared/data/real/<set>`, relative to the repository root.
pub fn real_data(set: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/real")
        .join(set)
}

/// A train.csv header and a row builder: 22 counts of `count`, 3 sessions, 2.5 actions each.
pub const TRAIN_HEADER: &str = "username,course_id,truth,action_click_about,action_click_courseware,action_click_forum,action_click_info,action_click_progress,action_close_courseware,action_close_forum,action_create_comment,action_create_thread,action_delete_comment,action_delete_thread,action_load_video,action_pause_video,action_play_video,action_problem_check,action_problem_check_correct,action_problem_check_incorrect,action_problem_get,action_problem_save,action_reset_problem,action_seek_video,action_stop_video,unique_session_count,avg_nActions_per_session,timestamp";

pub fn train_row(user: &str, course: &str, truth: &str, count: &str, timestamp: &str) -> String {
    format!(
        "{user},{course},{truth},{count}{},3,2.5,{timestamp}",
        format!(",{count}").repeat(21)
    )
}
