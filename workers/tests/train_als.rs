//! `train-als` on real data loaded through the local S3 into PostgreSQL by the real ETL:
//! MOOCCubeX measured on its real `heldout.csv`, kdd2015 with a seeded per-user hold-out and
//! activity-weighted confidence; the bundle as the consumer reads it, the factors in PostgreSQL,
//! the registry row, the skip on unchanged data, and identical factors from the same seed.

mod support;

use std::path::PathBuf;

use mooc_worker::als::serving::{AlsModel, Source};
use mooc_worker::als::{self, AlsArgs, Outcome, Trained};
use mooc_worker::bundle;
use mooc_worker::prune::parse_uri;
use mooc_worker::stores;
use mooc_worker::training::TrainArgs;
use sqlx::Row;
use support::TestBed;

async fn loaded(set: &str, rows: u64) -> TestBed {
    let bed = TestBed::new().await;
    let train = bed.upload_real(set, "train.csv").await;
    let users = bed.upload_real(set, "user_info.csv").await;
    let summary = bed.load(&bed.args(&[&users, &train])).await;
    assert_eq!(summary.rows_loaded, rows);
    bed
}

fn als_args(
    bed: &TestBed,
    model: &str,
    hyperparameters: &str,
    heldout: Option<PathBuf>,
) -> AlsArgs {
    AlsArgs {
        training: TrainArgs {
            run_id: "a1".into(),
            artifacts: format!("s3://{}/{}models/{model}/", bed.s3.bucket, bed.prefix),
            hyperparameters: hyperparameters.into(),
            data_fingerprint: None,
            notes: None,
            threads: Some(2),
            termination_log: PathBuf::from("/nonexistent/termination-log"),
        },
        heldout: heldout.map(|p| p.display().to_string()),
    }
}

async fn train(bed: &TestBed, args: &AlsArgs) -> Outcome {
    als::run(args, &bed.postgres, &bed.s3)
        .await
        .expect("training runs")
}

fn trained(outcome: Outcome) -> Trained {
    match outcome {
        Outcome::Trained(trained) => trained,
        Outcome::Skipped(skipped) => panic!("skipped: {}", skipped.reason),
    }
}

async fn read_bundle(bed: &TestBed, uri: &str) -> bundle::Bundle {
    let directory = parse_uri(uri, &bed.s3.bucket).unwrap();
    bundle::read(&stores::s3::client(&bed.s3), &directory)
        .await
        .unwrap()
}

#[tokio::test]
async fn mooccubex_is_measured_on_its_real_heldout_file_and_beats_the_popular_baseline() {
    // 97,722 users and 1,182,193 distinct enrollments (train.csv repeats 552).
    let bed = loaded("mooccubex", 97_722 + 1_182_193).await;
    let heldout = support::real_data("mooccubex").join("heldout.csv");
    let args = als_args(&bed, "als", "{}", Some(heldout));
    let first = trained(train(&bed, &args).await);

    let samples = &first.samples;
    assert_eq!(samples.train, 1_182_193, "every enrollment is trained on");
    assert_eq!(samples.users, 97_722);
    assert_eq!(samples.held_out_unknown_users, 0);
    assert_eq!(
        samples.held_out + samples.held_out_already_enrolled as usize,
        97_722
    );
    assert!(samples.evaluated_users > 97_000, "{samples:?}");
    let m = &first.metrics;
    for key in [
        "recallAt10",
        "ndcgAt10",
        "popularRecallAt10",
        "popularNdcgAt10",
    ] {
        assert!((0.0..=1.0).contains(&m[key]), "{key} = {}", m[key]);
    }
    // Learnt, not just popular: the factors rank held-out courses well above popularity.
    assert!(m["recallAt10"] > 1.2 * m["popularRecallAt10"], "{m:?}");
    assert!(m["ndcgAt10"] > 1.2 * m["popularNdcgAt10"], "{m:?}");
    assert!(first.fit_seconds > 0.0 && first.peak_memory_bytes.is_some());

    // The bundle, verified, as the consumer reads it.
    let bundle = read_bundle(&bed, &first.artifact_uri).await;
    let names: Vec<&str> = bundle.manifest.files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "course_factors.f32",
            "metrics.json",
            "model.json",
            "user_factors.f32"
        ]
    );
    assert_eq!(bundle.manifest.kind, "als");
    assert_eq!(bundle.manifest.metrics["ndcgAt10"], m["ndcgAt10"]);
    assert_eq!(bundle.manifest.hyperparameters["factors"], 64);
    let model = AlsModel::from_bundle(&bundle).unwrap();
    let enrolled: Vec<String> = sqlx::query_scalar(
        "SELECT course_id FROM enrollments WHERE username = 'U_24' ORDER BY course_id",
    )
    .fetch_all(&bed.pool)
    .await
    .unwrap();
    let enrolled: Vec<&str> = enrolled.iter().map(String::as_str).collect();
    let (source, known) = model.recommend("U_24", &enrolled, 10);
    assert_eq!(source, Source::Factors);
    assert_eq!(known.len(), 10);
    assert!(known.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(
        known
            .iter()
            .all(|r| !enrolled.contains(&r.course_id.as_str()))
    );
    // A learner the model has never seen gets the most popular courses, minus their own.
    let most_popular: Vec<String> = sqlx::query_scalar(
        "SELECT course_id FROM enrollments GROUP BY course_id ORDER BY count(*) DESC, course_id LIMIT 3",
    )
    .fetch_all(&bed.pool)
    .await
    .unwrap();
    let (source, fallback) = model.recommend("new-learner", &[most_popular[0].as_str()], 2);
    assert_eq!(source, Source::Popular);
    let fallback: Vec<&str> = fallback.iter().map(|r| r.course_id.as_str()).collect();
    assert_eq!(
        fallback,
        [most_popular[1].as_str(), most_popular[2].as_str()]
    );

    // The factors in PostgreSQL, for this version, match the bundle's.
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM als_user_factors WHERE version = $1")
        .bind(&first.version)
        .fetch_one(&bed.pool)
        .await
        .unwrap();
    assert_eq!(users, 97_722);
    let row = sqlx::query(
        "SELECT c.factors, c.enrollments FROM als_course_factors c WHERE version = $1 AND course_id = $2",
    )
    .bind(&first.version)
    .bind(&most_popular[0])
    .fetch_one(&bed.pool)
    .await
    .unwrap();
    let stored: Vec<f32> = row.get("factors");
    assert_eq!(stored.len(), 64);
    let registry =
        sqlx::query("SELECT kind, training_samples, test_samples, is_active FROM model_registry")
            .fetch_one(&bed.pool)
            .await
            .unwrap();
    assert_eq!(registry.get::<String, _>("kind"), "als");
    assert_eq!(registry.get::<i64, _>("training_samples"), 1_182_193);
    assert!(!registry.get::<bool, _>("is_active"));

    // Unchanged data and hyperparameters: skipped.
    let Outcome::Skipped(skipped) = train(&bed, &args).await else {
        panic!("a second run on unchanged data trains again")
    };
    assert_eq!(skipped.version, first.version);
}

#[tokio::test]
async fn kdd2015_with_a_seeded_hold_out_gives_identical_factors_for_the_same_seed() {
    let bed = loaded("kdd2015", 11_493).await;
    let hyperparameters = r#"{"factors": 16, "iterations": 8, "seed": 7}"#;
    let first = trained(train(&bed, &als_args(&bed, "one", hyperparameters, None)).await);
    let mut single_thread = als_args(&bed, "two", hyperparameters, None);
    single_thread.training.threads = Some(1);
    let second = trained(train(&bed, &single_thread).await);
    let other = trained(
        train(
            &bed,
            &als_args(
                &bed,
                "three",
                r#"{"factors": 16, "iterations": 8, "seed": 8}"#,
                None,
            ),
        )
        .await,
    );

    // 20% of each learner's enrollments held out (learners with one enrollment keep theirs).
    let samples = &first.samples;
    assert_eq!(samples.train + samples.held_out, 11_493);
    assert!((500..2_500).contains(&samples.held_out), "{samples:?}");
    assert_eq!(second.samples, first.samples);
    assert_eq!(second.metrics, first.metrics);

    let files = |b: &bundle::Bundle, name: &str| b.manifest.files[name].sha256.clone();
    let (a, b, c) = (
        read_bundle(&bed, &first.artifact_uri).await,
        read_bundle(&bed, &second.artifact_uri).await,
        read_bundle(&bed, &other.artifact_uri).await,
    );
    for name in ["user_factors.f32", "course_factors.f32", "model.json"] {
        assert_eq!(
            files(&a, name),
            files(&b, name),
            "{name}: same seed, 2 threads vs 1"
        );
    }
    assert_ne!(
        files(&a, "course_factors.f32"),
        files(&c, "course_factors.f32")
    );
    assert_ne!(first.version, second.version);
}
