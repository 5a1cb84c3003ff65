use std::time::Duration;

use anyhow::Context;
use sqlx::PgConnection;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::settings::PostgresSettings;

/// A connection pool. The first connection is opened here, so a wrong URL or a server that is
/// down fails now, with the cause, rather than at the first query.
pub async fn connect(settings: &PostgresSettings, max_connections: u32) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&settings.url)
        .await
        .context("connecting to PostgreSQL (DATABASE_URL)")
}

/// Applies the schema migrations that are not applied yet. Safe to run from several jobs at once:
/// sqlx serialises them with an advisory lock.
pub async fn migrate(conn: &mut PgConnection) -> anyhow::Result<()> {
    sqlx::migrate!("./migrations")
        .run(conn)
        .await
        .context("applying the database migrations")
}
