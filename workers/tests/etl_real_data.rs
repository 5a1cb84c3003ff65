//! The real data sets of `../shared/data/real`, loaded through the local S3 into PostgreSQL:
//! exact row counts, no rejects, and a second run that loads nothing.

mod support;

use support::TestBed;

#[tokio::test]
async fn kdd2015_loads_every_enrollment_and_a_header_only_user_info() {
    let bed = TestBed::new().await;
    let train = bed.upload_real("kdd2015", "train.csv").await;
    let users = bed.upload_real("kdd2015", "user_info.csv").await;
    let args = bed.args(&[&users, &train]);
    let summary = bed.load(&args).await;
    assert_eq!(
        (
            summary.objects_loaded,
            summary.rows_read,
            summary.rows_loaded,
            summary.rows_rejected
        ),
        (2, 11_493, 11_493, 0)
    );
    assert_eq!(
        summary.users_without_info,
        Some(10_408),
        "user_info.csv is header-only"
    );
    assert_eq!(bed.count("SELECT count(*) FROM enrollments").await, 11_493);
    assert_eq!(
        bed.count("SELECT count(DISTINCT username) FROM enrollments")
            .await,
        10_408
    );
    assert_eq!(
        bed.count("SELECT count(DISTINCT course_id) FROM enrollments")
            .await,
        31
    );
    assert_eq!(
        bed.count("SELECT count(*) FROM enrollments WHERE truth = 1")
            .await,
        9_508
    );
    assert_eq!(bed.count("SELECT count(*) FROM users").await, 0);
    assert!(bed.rejects().await.is_empty());

    let again = bed.load(&args).await;
    assert_eq!((again.objects_unchanged, again.rows_loaded), (2, 0));
    assert_eq!(again.data_fingerprint, summary.data_fingerprint);
}

#[tokio::test]
async fn xuetangx_users_and_features_with_an_extra_column() {
    let bed = TestBed::new().await;
    let users = bed.upload_real("xuetangx", "user_info.csv").await;
    let train = bed.upload_real("xuetangx", "train_sample.csv").await;
    let summary = bed.load(&bed.args(&[&users, &train])).await;
    assert_eq!((summary.rows_loaded, summary.rows_rejected), (101, 0));
    assert_eq!(bed.count("SELECT count(*) FROM users").await, 99);
    let first: (Option<String>, Option<String>, Option<i16>) =
        sqlx::query_as("SELECT gender, education, birth FROM users WHERE user_id = '2631'")
            .fetch_one(&bed.pool)
            .await
            .unwrap();
    assert_eq!(
        first,
        (Some("male".into()), Some("Bachelor's".into()), Some(1990))
    );
    let enrollment: (i16, i32, f64, i64) = sqlx::query_as(
        "SELECT truth, action_play_video, avg_nactions_per_session, extract(epoch FROM event_time)::bigint
         FROM enrollments WHERE username = '1520977'",
    )
    .fetch_one(&bed.pool)
    .await
    .unwrap();
    assert_eq!(enrollment, (1, 12, 19.5, 1_444_947_251));
}

#[tokio::test]
async fn mooccubex_loads_once_and_a_second_run_loads_nothing() {
    let bed = TestBed::new().await;
    let users = bed.upload_real("mooccubex", "user_info.csv").await;
    let train = bed.upload_real("mooccubex", "train.csv").await;
    let args = bed.args(&[&users, &train]);
    let summary = bed.load(&args).await;
    // train.csv lists 552 enrollments twice (identical rows): they merge into one each.
    assert_eq!(
        (
            summary.rows_read,
            summary.rows_loaded,
            summary.rows_rejected
        ),
        (97_722 + 1_182_745, 97_722 + 1_182_193, 0)
    );
    assert_eq!(
        bed.count("SELECT count(*) FROM enrollments").await,
        1_182_193
    );
    assert_eq!(bed.count("SELECT count(*) FROM enrollments WHERE truth IS NOT NULL OR action_play_video IS NOT NULL").await, 0, "empty columns stay NULL");
    assert_eq!(bed.count("SELECT count(*) FROM users").await, 97_722);
    assert_eq!(summary.users_without_info, Some(0));

    let again = bed.load(&args).await;
    assert_eq!((again.objects_unchanged, again.rows_loaded), (2, 0));
}
