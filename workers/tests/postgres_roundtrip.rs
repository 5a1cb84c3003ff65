//! Proof that the local platform's PostgreSQL works with sqlx: a row written is read back equal.
//! Needs `eval "$(dev/env)"`; fails (never skips) when DATABASE_URL is unset or the server is down.

use mooc_worker::settings::PostgresSettings;
use mooc_worker::stores;

#[tokio::test]
async fn a_row_round_trips_through_postgres() {
    let settings = PostgresSettings::from_env().expect("PostgreSQL settings");
    let pool = stores::postgres::connect(&settings, 2)
        .await
        .expect("PostgreSQL must be running (dev/up)");
    // A temporary table lives in one session, so hold one connection throughout.
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query(
        "CREATE TEMPORARY TABLE proof_enrollment (
            username text, course_id text, truth smallint, avg_actions double precision,
            seen_at timestamptz)",
    )
    .execute(&mut *conn)
    .await
    .unwrap();

    // Ids are opaque UTF-8: non-ASCII and punctuation must survive unchanged.
    let username = "学习者-Ünïcode 42";
    let course_id = "course-v1:TsinghuaX+00690242+2015_T1";
    let seen_at = chrono::DateTime::parse_from_rfc3339("2014-06-14T09:38:29+00:00").unwrap();
    sqlx::query("INSERT INTO proof_enrollment VALUES ($1, $2, $3, $4, $5)")
        .bind(username)
        .bind(course_id)
        .bind(1_i16)
        .bind(3.25_f64)
        .bind(seen_at)
        .execute(&mut *conn)
        .await
        .unwrap();

    let row: (String, String, i16, f64, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as("SELECT * FROM proof_enrollment")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!(
        row,
        (
            username.to_owned(),
            course_id.to_owned(),
            1,
            3.25,
            seen_at.to_utc()
        )
    );
}
