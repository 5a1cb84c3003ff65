//! Killing the worker (SIGKILL) in the middle of a load leaves the tables exactly as they were,
//! and a re-run completes the load. The real binary, on the real PostgreSQL and S3.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use mooc_worker::generate::{GenerateArgs, generate};
use support::TestBed;

#[tokio::test]
async fn a_load_killed_mid_copy_changes_nothing_and_a_rerun_completes() {
    let bed = TestBed::new().await;
    let before = bed
        .upload(
            "user_info.csv",
            "user_id,gender,education,birth\nkept,,,1990\n",
        )
        .await;
    bed.load(&bed.args(&[&before])).await;

    let dir = std::env::temp_dir().join(format!("mooc-crash-{}", bed.schema));
    let generated = generate(&GenerateArgs {
        enrollments: 500_000,
        seed: 3,
        out: dir.clone(),
    })
    .unwrap();
    let big = bed
        .upload("train.csv", std::fs::read(dir.join("train.csv")).unwrap())
        .await;
    std::fs::remove_dir_all(&dir).unwrap();

    let application = format!("crash-{}", bed.schema);
    let mut worker = Command::new(env!("CARGO_BIN_EXE_mooc-worker"))
        .args(["etl", "--keys", &big])
        .env(
            "DATABASE_URL",
            format!("{}&application_name={application}", bed.postgres.url),
        )
        .spawn()
        .unwrap();

    // Kill it once its COPY is running.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let copying = bed
            .count(&format!(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = '{application}'
                 AND state = 'active' AND query LIKE 'COPY %'"
            ))
            .await;
        if copying > 0 {
            break;
        }
        assert!(
            worker.try_wait().unwrap().is_none(),
            "the worker ended before its COPY ran"
        );
        assert!(Instant::now() < deadline, "the COPY never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    worker.kill().unwrap();
    let status = worker.wait().unwrap();
    assert!(!status.success(), "killed, not finished");

    assert_eq!(bed.count("SELECT count(*) FROM enrollments").await, 0);
    assert_eq!(bed.count("SELECT count(*) FROM users").await, 1);
    assert_eq!(
        bed.count("SELECT count(*) FROM load_ledger").await,
        1,
        "only the earlier object is in the ledger"
    );

    let rerun = bed.load(&bed.args(&[&before, &big])).await;
    assert_eq!((rerun.objects_unchanged, rerun.objects_loaded), (1, 1));
    assert_eq!(rerun.rows_loaded, generated.enrollments);
    assert_eq!(
        bed.count("SELECT count(*) FROM enrollments").await,
        generated.enrollments as i64
    );
}
