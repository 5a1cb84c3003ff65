//! Every bad-input kind the loader must survive, as small fixtures on the real PostgreSQL and S3:
//! each checks the message and the rejects row, and that nothing is silently coerced or dropped.

mod support;

use mooc_worker::etl::{Mode, ObjectStatus};
use support::{TRAIN_HEADER, TestBed, train_row};

#[tokio::test]
async fn missing_required_columns_fail_the_object_naming_them() {
    let bed = TestBed::new().await;
    let key = bed
        .upload("train.csv", "username,course_id,truth,timestamp\nu,c,1,0\n")
        .await;
    let summary = bed.load(&bed.args(&[&key])).await;
    assert_eq!(summary.objects_failed, 1);
    let error = summary.objects[0].error.as_deref().unwrap();
    assert!(
        error.contains("missing required column(s) for enrollments input: action_click_about,"),
        "{error}"
    );
    assert!(
        error.contains("unique_session_count, avg_nactions_per_session"),
        "{error}"
    );
    assert!(
        error.contains(&key),
        "the message names the object: {error}"
    );
    assert_eq!(bed.count("SELECT count(*) FROM enrollments").await, 0);
    assert_eq!(
        bed.count("SELECT count(*) FROM load_ledger").await,
        0,
        "retried next run"
    );
}

#[tokio::test]
async fn bom_crlf_header_case_quoted_newlines_and_extra_columns_load() {
    let bed = TestBed::new().await;
    let users = "\u{feff}USER_ID,Gender,Education,Birth,Nickname\r\n\
                 \"7\",female,\"Bachelor's\",1997.0,\"two\r\nlines\"\r\n\
                 course-v1:x+y/z,,,,\r\n";
    let key = bed.upload("user_info.csv", users).await;
    let summary = bed.load(&bed.args(&[&key])).await;
    assert_eq!(
        (
            summary.objects_loaded,
            summary.rows_loaded,
            summary.rows_rejected
        ),
        (1, 2, 0),
        "{:?}",
        summary.objects
    );
    type UserRow = (String, Option<String>, Option<String>, Option<i16>);
    let rows: Vec<UserRow> =
        sqlx::query_as("SELECT user_id, gender, education, birth FROM users ORDER BY user_id")
            .fetch_all(&bed.pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![
            (
                "7".into(),
                Some("female".into()),
                Some("Bachelor's".into()),
                Some(1997)
            ),
            ("course-v1:x+y/z".into(), None, None, None),
        ]
    );
}

#[tokio::test]
async fn bad_values_are_rejected_with_line_column_reason_and_raw_line() {
    let bed = TestBed::new().await;
    let good = train_row(
        "学习者",
        "course-v1:TsinghuaX+0069+2015_T1",
        "1",
        "4",
        "1404345600",
    );
    let train = [
        TRAIN_HEADER.to_owned(),
        good.clone(),
        train_row("u2", "c", "1", "many", "0"),
        train_row("u3", "c", "1", "-1", "0"),
        train_row("u4", "c", "maybe", "1", "0"),
        train_row("u5~", "c", "1", "1", "0"),
        train_row("u6", "c", "1", "1", "0")[..20].to_owned(),
        train_row("u7\0", "c", "1", "1", "0"),
    ]
    .join("\n");
    // Invalid UTF-8 in line 6's username, a NUL byte in line 8's.
    let bytes: Vec<u8> = train
        .replace("u5~", "u5\u{1}")
        .bytes()
        .map(|b| if b == 1 { 0xff } else { b })
        .collect();
    let key = bed.upload("train.csv", bytes).await;
    let mut args = bed.args(&[&key]);
    args.max_reject_ratio = 1.0;
    let summary = bed.load(&args).await;
    assert_eq!(
        (
            summary.rows_read,
            summary.rows_loaded,
            summary.rows_rejected
        ),
        (7, 1, 6),
        "{:?}",
        summary.objects
    );

    let rejects = bed.rejects().await;
    let summary_of = |i: usize| (rejects[i].0, rejects[i].1.clone(), rejects[i].2.as_str());
    assert_eq!(
        summary_of(0),
        (3, Some("action_click_about".into()), "row_rejected")
    );
    assert_eq!(rejects[0].3, "expected a whole number, found \"many\"");
    assert_eq!(rejects[0].4, train_row("u2", "c", "1", "many", "0"));
    assert_eq!(
        summary_of(1),
        (4, Some("action_click_about".into()), "row_rejected")
    );
    assert_eq!(rejects[1].3, "negative count -1");
    assert_eq!(summary_of(2), (5, Some("truth".into()), "row_rejected"));
    assert_eq!(summary_of(3), (6, Some("username".into()), "row_rejected"));
    assert_eq!(rejects[3].3, "not valid UTF-8 (byte 2)");
    assert!(rejects[3].4.starts_with("u5\\xFF,c,1,"), "{}", rejects[3].4);
    assert_eq!(summary_of(4), (7, None, "row_rejected"));
    assert!(rejects[4].3.contains("truncated line?"));
    assert_eq!(summary_of(5), (8, Some("username".into()), "row_rejected"));
    assert_eq!(
        rejects[5].3,
        "contains a NUL byte, which PostgreSQL text cannot hold"
    );

    let stored: (String, String, i16, i32) =
        sqlx::query_as("SELECT username, course_id, truth, action_stop_video FROM enrollments")
            .fetch_one(&bed.pool)
            .await
            .unwrap();
    assert_eq!(
        stored,
        (
            "学习者".into(),
            "course-v1:TsinghuaX+0069+2015_T1".into(),
            1,
            4
        )
    );
}

#[tokio::test]
async fn empty_fields_are_null_and_implausible_births_nulled_with_a_reason() {
    let bed = TestBed::new().await;
    let users = bed
        .upload(
            "user_info.csv",
            "user_id,gender,education,birth\na,,,1850\nb,male,,\n",
        )
        .await;
    let train = bed
        .upload(
            "train.csv",
            format!("{TRAIN_HEADER}\nU_24,mcx-6{}\n", ",".repeat(26)),
        )
        .await;
    let summary = bed.load(&bed.args(&[&train, &users])).await;
    assert_eq!((summary.rows_loaded, summary.rows_rejected), (3, 0));
    assert_eq!(
        summary.users_without_info,
        Some(1),
        "U_24 has no user_info row"
    );
    assert_eq!(
        bed.count("SELECT count(*) FROM enrollments WHERE truth IS NULL AND action_click_about IS NULL AND event_time IS NULL").await,
        1
    );
    assert_eq!(
        bed.count("SELECT count(*) FROM users WHERE birth IS NULL")
            .await,
        2
    );
    let rejects = bed.rejects().await;
    assert_eq!(rejects.len(), 1);
    assert_eq!(
        (rejects[0].0, rejects[0].1.as_deref(), rejects[0].2.as_str()),
        (2, Some("birth"), "field_nulled")
    );
    assert_eq!(
        rejects[0].3,
        "birth year 1850 is outside 1900..=2020; loaded as NULL"
    );
    assert_eq!(rejects[0].4, "a,,,1850");
}

#[tokio::test]
async fn empty_and_header_only_objects() {
    let bed = TestBed::new().await;
    let empty = bed.upload("empty.csv", "").await;
    let header_only = bed
        .upload("user_info.csv", "user_id,gender,education,birth\n")
        .await;
    let summary = bed.load(&bed.args(&[&empty, &header_only])).await;
    let by_key = |key: &str| summary.objects.iter().find(|o| o.key == key).unwrap();
    assert_eq!(by_key(&empty).status, ObjectStatus::Failed);
    assert!(
        by_key(&empty)
            .error
            .as_deref()
            .unwrap()
            .ends_with("the object is empty: no header line")
    );
    assert_eq!(by_key(&header_only).status, ObjectStatus::Loaded);
    assert_eq!(by_key(&header_only).rows_read, 0);
}

#[tokio::test]
async fn a_huge_field_is_rejected_and_its_line_kept_cut() {
    let bed = TestBed::new().await;
    let huge = "x".repeat(200_000);
    let users = format!("user_id,gender,education,birth\n{huge},,,\nok,,,\n");
    let key = bed.upload("user_info.csv", users).await;
    let mut args = bed.args(&[&key]);
    args.max_reject_ratio = 0.5;
    let summary = bed.load(&args).await;
    assert_eq!((summary.rows_loaded, summary.rows_rejected), (1, 1));
    let rejects = bed.rejects().await;
    assert_eq!(
        rejects[0].3,
        "id of 200000 bytes exceeds the 512-byte limit"
    );
    assert!(rejects[0].4.ends_with("[cut at 65536 of 200003 bytes]"));
}

#[tokio::test]
async fn too_many_rejects_fail_the_object_but_keep_the_rejects() {
    let bed = TestBed::new().await;
    let users = "user_id,gender,education,birth\na,,,1990\n,,,1990\nc,,,x\n";
    let key = bed.upload("user_info.csv", users).await;
    let summary = bed.load(&bed.args(&[&key])).await;
    assert_eq!(summary.objects_failed, 1);
    let error = summary.objects[0].error.as_deref().unwrap();
    assert!(
        error.contains("2 of 3 rows rejected (66.67%), more than the allowed 1.00%"),
        "{error}"
    );
    assert_eq!(
        bed.count("SELECT count(*) FROM users").await,
        0,
        "nothing merged"
    );
    assert_eq!(bed.rejects().await.len(), 2);
    assert_eq!(bed.count("SELECT count(*) FROM load_ledger").await, 0);
}

#[tokio::test]
async fn reruns_skip_unchanged_objects_and_remerge_changed_ones_latest_first() {
    let bed = TestBed::new().await;
    let first = [
        TRAIN_HEADER.to_owned(),
        train_row("u1", "c1", "1", "1", "1404345600"),
        // Two rows of one enrollment in one file: the later event time wins, not the later line.
        train_row("u2", "c1", "0", "9", "1404432000"),
        train_row("u2", "c1", "1", "2", "1404345600"),
    ]
    .join("\n");
    let key = bed.upload("train.csv", first).await;
    let args = bed.args(&[&key]);
    let summary = bed.load(&args).await;
    assert_eq!((summary.rows_read, summary.rows_loaded), (3, 2));
    assert_eq!(
        summary.objects[0].path,
        Some("merge"),
        "u2 twice: the bulk copy fell back"
    );
    let truth_of = |user: &'static str| {
        let pool = bed.pool.clone();
        async move {
            sqlx::query_scalar::<_, i16>("SELECT truth FROM enrollments WHERE username = $1")
                .bind(user)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(truth_of("u2").await, 0);

    let again = bed.load(&args).await;
    assert_eq!((again.objects_unchanged, again.rows_loaded), (1, 0));

    // The object changes: u1 gets a newer row, u2 an older one (kept as stored), u3 is new.
    let second = [
        TRAIN_HEADER.to_owned(),
        train_row("u1", "c1", "0", "5", "1404432000"),
        train_row("u2", "c1", "1", "1", "1404000000"),
        train_row("u3", "c1", "1", "1", "1404000000"),
    ]
    .join("\n");
    bed.upload("train.csv", second).await;
    let changed = bed.load(&args).await;
    assert_eq!((changed.objects_loaded, changed.rows_loaded), (1, 2));
    assert_eq!(
        changed.objects[0].path,
        Some("merge"),
        "the table is no longer empty"
    );
    assert_eq!(truth_of("u1").await, 0);
    assert_eq!(truth_of("u2").await, 0);
    assert_eq!(bed.count("SELECT count(*) FROM enrollments").await, 3);
}

#[tokio::test]
async fn a_prefix_picks_up_new_objects_and_full_mode_reloads() {
    let bed = TestBed::new().await;
    bed.upload("part-1.csv", "user_id,gender,education,birth\na,,,\n")
        .await;
    let mut args = bed.args(&[]);
    args.keys.clear();
    args.prefix = Some(bed.prefix.clone());
    assert_eq!(bed.load(&args).await.rows_loaded, 1);

    bed.upload("part-2.csv", "user_id,gender,education,birth\nb,,,\n")
        .await;
    let summary = bed.load(&args).await;
    assert_eq!(
        (summary.objects_unchanged, summary.objects_loaded),
        (1, 1),
        "{:?}",
        summary.objects
    );
    assert_eq!(bed.count("SELECT count(*) FROM users").await, 2);

    sqlx::query("INSERT INTO users (user_id, source_object) VALUES ('stray', 'manual')")
        .execute(&bed.pool)
        .await
        .unwrap();
    args.mode = Mode::Full;
    let full = bed.load(&args).await;
    assert_eq!((full.objects_loaded, full.rows_loaded), (2, 2));
    assert_eq!(
        bed.count("SELECT count(*) FROM users").await,
        2,
        "exactly the objects' rows"
    );
}
