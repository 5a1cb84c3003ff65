//! `train-dropout` on the real kdd2015 data, loaded through the local S3 into PostgreSQL by the
//! real ETL: honest held-out metrics, an immutable verified bundle, a registry row, the skip on
//! unchanged data, and the consumer's view of the bundle scoring exactly like the trainer.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;

use aws_sdk_s3::primitives::ByteStream;
use mooc_worker::bundle::{self, Manifest};
use mooc_worker::dropout::features::{ACTIVITY_FEATURES, Enrollment, activity_columns};
use mooc_worker::dropout::serving::DropoutModel;
use mooc_worker::dropout::{self, Outcome, Trained};
use mooc_worker::prune::{Target, parse_uri};
use mooc_worker::registry;
use mooc_worker::stores;
use mooc_worker::training::TrainArgs;
use sqlx::{AssertSqlSafe, Row};
use support::TestBed;

async fn loaded_kdd2015() -> TestBed {
    let bed = TestBed::new().await;
    let train = bed.upload_real("kdd2015", "train.csv").await;
    let users = bed.upload_real("kdd2015", "user_info.csv").await;
    let summary = bed.load(&bed.args(&[&users, &train])).await;
    assert_eq!(summary.rows_loaded, 11_493);
    bed
}

fn train_args(bed: &TestBed, hyperparameters: &str) -> TrainArgs {
    TrainArgs {
        run_id: "g1".into(),
        artifacts: format!("s3://{}/{}models/dropout/", bed.s3.bucket, bed.prefix),
        hyperparameters: hyperparameters.into(),
        data_fingerprint: None,
        notes: Some("first real-data run".into()),
        threads: Some(2),
        termination_log: PathBuf::from("/nonexistent/termination-log"),
    }
}

async fn train(bed: &TestBed, args: &TrainArgs) -> Outcome {
    dropout::run(args, &bed.postgres, &bed.s3)
        .await
        .expect("training runs")
}

fn trained(outcome: Outcome) -> Trained {
    match outcome {
        Outcome::Trained(trained) => trained,
        Outcome::Skipped(skipped) => panic!("skipped: {}", skipped.reason),
    }
}

#[tokio::test]
async fn kdd2015_trains_a_versioned_bundle_with_held_out_metrics_and_skips_unchanged_data() {
    let bed = loaded_kdd2015().await;
    let args = train_args(&bed, r#"{"maxRounds": 300, "earlyStoppingRounds": 30}"#);
    let first = trained(train(&bed, &args).await);

    // All 11,493 labelled enrollments are used, ~70/15/15 by learner.
    let samples = &first.samples;
    assert_eq!(samples.train + samples.validation + samples.test, 11_493);
    for (split, rows) in [("validation", samples.validation), ("test", samples.test)] {
        assert!((1_400..2_100).contains(&rows), "{split}: {rows} rows");
    }
    // Real, held-out quality; the base rate is 83% dropouts, so accuracy must beat it.
    let auc = first.metrics["auc"];
    assert!((0.80..0.99).contains(&auc), "test AUC {auc}");
    assert!(first.metrics["accuracy"] > first.metrics["positiveRate"]);
    assert!((0.75..0.90).contains(&first.metrics["positiveRate"]));
    assert!(first.metrics["validationAuc"] > 0.8);
    assert!(first.best_iteration >= 1 && first.best_iteration <= 300);
    assert_eq!(first.test_predictions.len(), samples.test);

    // The bundle reads back whole and verified, under the reported URI.
    let s3 = stores::s3::client(&bed.s3);
    let directory = parse_uri(&first.artifact_uri, &bed.s3.bucket).unwrap();
    assert!(directory.prefix.ends_with(&format!("/{}/", first.version)));
    let bundle = bundle::read(&s3, &directory).await.unwrap();
    let names: Vec<&str> = bundle.manifest.files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "features.json",
            "metrics.json",
            "model.txt",
            "vocabulary.json"
        ]
    );
    assert_eq!(bundle.manifest.kind, "dropout");
    assert_eq!(
        bundle.manifest.notes.as_deref(),
        Some("first real-data run")
    );
    assert_eq!(bundle.manifest.metrics["auc"], auc);
    assert_eq!(bundle.manifest.hyperparameters["maxRounds"], 300);
    assert_eq!(bundle.manifest.hyperparameters["learningRate"], 0.05);
    let details: serde_json::Value =
        serde_json::from_slice(bundle.file("metrics.json").unwrap()).unwrap();
    let roc = details["testRoc"].as_array().unwrap();
    assert!(
        roc.len() > 10 && roc.len() <= 200,
        "{} ROC points",
        roc.len()
    );
    assert_eq!(roc.last().unwrap()["tpr"], 1.0);
    let vocabulary: serde_json::Value =
        serde_json::from_slice(bundle.file("vocabulary.json").unwrap()).unwrap();
    assert_eq!(
        vocabulary["course_id"]["values"].as_array().unwrap().len(),
        31,
        "kdd2015 has 31 courses, each with at least 10 enrollments"
    );

    // The registry row, with the seed's history fields.
    let row = sqlx::query(
        "SELECT version, run_id, training_samples, test_samples, metrics, hyperparameters,
                duration_seconds, notes, is_active, data_fingerprint FROM model_registry",
    )
    .fetch_one(&bed.pool)
    .await
    .unwrap();
    assert_eq!(row.get::<String, _>("version"), first.version);
    assert_eq!(row.get::<String, _>("run_id"), "g1");
    assert_eq!(row.get::<i64, _>("training_samples"), samples.train as i64);
    assert_eq!(row.get::<i64, _>("test_samples"), samples.test as i64);
    assert_eq!(
        row.get::<serde_json::Value, _>("metrics")["test"]["auc"],
        auc
    );
    assert!(row.get::<f64, _>("duration_seconds") > 0.0);
    assert!(
        !row.get::<bool, _>("is_active"),
        "the operator decides what is served"
    );
    assert_eq!(
        row.get::<Option<String>, _>("data_fingerprint").as_deref(),
        Some(first.data_fingerprint.as_str())
    );

    // Unchanged data, same hyperparameters: skipped, pointing at the version it already has.
    let again = train(
        &bed,
        &TrainArgs {
            run_id: "g2".into(),
            ..args.clone()
        },
    )
    .await;
    let Outcome::Skipped(skipped) = again else {
        panic!("a second run on unchanged data trains again")
    };
    assert!(skipped.skipped);
    assert_eq!(skipped.version, first.version);
    let reported = serde_json::to_value(Outcome::Skipped(skipped)).unwrap();
    assert_eq!(reported["skipped"], true, "what the operator reads");

    // New hyperparameters on the same data: a new version, the first one untouched.
    let faster = train_args(&bed, r#"{"maxRounds": 300, "learningRate": 0.2}"#);
    let second = trained(train(&bed, &faster).await);
    assert_ne!(second.version, first.version);
    assert_eq!(bed.count("SELECT count(*) FROM model_registry").await, 2);
    let first_again = bundle::read(&s3, &directory).await.unwrap();
    assert_eq!(first_again.manifest, bundle.manifest);
}

/// The test rows as the consumer reads them: with SQL from the tables, not the trainer's COPY.
async fn enrollments_from_sql(bed: &TestBed, keys: &[(String, String)]) -> Vec<Stored> {
    let activity: Vec<String> = activity_columns()
        .map(|c| format!("e.{c}::float8"))
        .collect();
    let sql = format!(
        "SELECT e.username, e.course_id, {}, u.gender, u.education, u.birth::float8
         FROM enrollments e LEFT JOIN users u ON u.user_id = e.username
         WHERE e.username = $1 AND e.course_id = $2",
        activity.join(", ")
    );
    let mut rows = Vec::with_capacity(keys.len());
    for (user, course) in keys {
        let row = sqlx::query(AssertSqlSafe(sql.clone()))
            .bind(user)
            .bind(course)
            .fetch_one(&bed.pool)
            .await
            .unwrap();
        let mut activity = [None; ACTIVITY_FEATURES];
        for (i, value) in activity.iter_mut().enumerate() {
            *value = row.get::<Option<f64>, _>(2 + i);
        }
        rows.push(Stored {
            activity,
            course_id: row.get(1),
            gender: row.get(2 + ACTIVITY_FEATURES),
            education: row.get(3 + ACTIVITY_FEATURES),
            birth: row.get(4 + ACTIVITY_FEATURES),
        });
    }
    rows
}

/// An enrollment as read back, owning its strings.
struct Stored {
    activity: [Option<f64>; ACTIVITY_FEATURES],
    course_id: String,
    gender: Option<String>,
    education: Option<String>,
    birth: Option<f64>,
}

#[tokio::test]
async fn the_consumer_scores_the_bundle_exactly_as_the_trainer_scored_its_test_split() {
    let bed = loaded_kdd2015().await;
    let first = trained(
        train(
            &bed,
            &train_args(&bed, r#"{"maxRounds": 200, "demographics": false}"#),
        )
        .await,
    );
    let s3 = stores::s3::client(&bed.s3);
    let directory = parse_uri(&first.artifact_uri, &bed.s3.bucket).unwrap();
    let model = DropoutModel::from_bundle(&bundle::read(&s3, &directory).await.unwrap()).unwrap();
    assert_eq!(model.version, first.version);

    let keys: Vec<(String, String)> = first
        .test_predictions
        .iter()
        .map(|(k, _)| k.clone())
        .collect();
    let rows = enrollments_from_sql(&bed, &keys).await;
    let enrollments: Vec<Enrollment> = rows
        .iter()
        .map(|r| Enrollment {
            activity: r.activity,
            course_id: &r.course_id,
            gender: r.gender.as_deref(),
            education: r.education.as_deref(),
            birth: r.birth,
        })
        .collect();
    let scored = model.score(&enrollments).unwrap();
    let expected: Vec<f64> = first.test_predictions.iter().map(|(_, p)| *p).collect();
    assert_eq!(
        scored, expected,
        "same vectors, same model, same probabilities"
    );
    // Not a constant model: the probabilities spread and differ row by row.
    let (low, high) = expected
        .iter()
        .fold((1.0f64, 0.0f64), |(l, h), p| (l.min(*p), h.max(*p)));
    let mut distinct = expected.clone();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    assert!(
        high - low > 0.3 && distinct.len() > 50,
        "{low}..{high}, {} distinct",
        distinct.len()
    );
}

fn manifest(version: &str, files: &[(String, Vec<u8>)]) -> Manifest {
    Manifest {
        format: bundle::FORMAT,
        kind: "dropout".into(),
        version: version.into(),
        run_id: "g1".into(),
        created: "2026-12-04T10:00:00Z".into(),
        data_fingerprint: None,
        hyperparameters: serde_json::json!({}),
        notes: None,
        metrics: serde_json::json!({}),
        files: bundle::entries(files),
    }
}

#[tokio::test]
async fn a_bundle_is_never_read_partial_or_damaged_and_never_overwritten() {
    let bed = TestBed::new().await;
    let s3 = stores::s3::client(&bed.s3);
    let directory = Target {
        bucket: bed.s3.bucket.clone(),
        prefix: format!("{}models/dropout/v1/", bed.prefix),
    };
    let files = vec![("model.txt".to_owned(), b"tree".to_vec())];

    // Files written, manifest not yet: not a bundle.
    s3.put_object()
        .bucket(&directory.bucket)
        .key(format!("{}model.txt", directory.prefix))
        .body(ByteStream::from_static(b"tree"))
        .send()
        .await
        .unwrap();
    let error = bundle::read(&s3, &directory).await.err().unwrap();
    assert!(
        format!("{error:#}").contains("not a complete bundle"),
        "{error:#}"
    );

    bundle::write(&s3, &directory, &files, &manifest("v1", &files))
        .await
        .unwrap();
    assert_eq!(
        bundle::read(&s3, &directory).await.unwrap().files["model.txt"],
        b"tree"
    );

    let error = bundle::write(&s3, &directory, &files, &manifest("v1", &files))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("never overwritten"), "{error:#}");

    // A file changed behind the manifest's back is refused.
    s3.put_object()
        .bucket(&directory.bucket)
        .key(format!("{}model.txt", directory.prefix))
        .body(ByteStream::from_static(b"TREE"))
        .send()
        .await
        .unwrap();
    let error = bundle::read(&s3, &directory).await.err().unwrap();
    assert!(
        format!("{error:#}").contains("does not match the manifest"),
        "{error:#}"
    );
}

#[tokio::test]
async fn the_database_allows_one_active_version_per_model() {
    let bed = TestBed::new().await;
    let mut conn = bed.pool.acquire().await.unwrap();
    stores::postgres::migrate(&mut conn).await.unwrap();
    let entry = |model: &str, version: &str| registry::Entry {
        kind: "dropout",
        model: model.into(),
        version: version.into(),
        run_id: "g1".into(),
        artifact_uri: format!("{model}{version}/"),
        data_fingerprint: None,
        training_samples: 1,
        validation_samples: 1,
        test_samples: 1,
        metrics: serde_json::json!({}),
        hyperparameters: serde_json::json!({}),
        duration_seconds: 1.0,
        notes: None,
    };
    for (model, version) in [
        ("s3://m/a/", "v1"),
        ("s3://m/a/", "v2"),
        ("s3://m/b/", "v1"),
    ] {
        registry::insert(&mut conn, &entry(model, version))
            .await
            .unwrap();
    }
    registry::activate(&mut conn, "s3://m/a/", "v1")
        .await
        .unwrap();
    registry::activate(&mut conn, "s3://m/b/", "v1")
        .await
        .unwrap();
    registry::activate(&mut conn, "s3://m/a/", "v2")
        .await
        .unwrap();
    let active: Vec<(String, String)> =
        sqlx::query_as("SELECT model, version FROM model_registry WHERE is_active ORDER BY model")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    let active: BTreeMap<String, String> = active.into_iter().collect();
    assert_eq!(
        active,
        BTreeMap::from([
            ("s3://m/a/".to_owned(), "v2".to_owned()),
            ("s3://m/b/".to_owned(), "v1".to_owned())
        ])
    );
    let error = sqlx::query("UPDATE model_registry SET is_active = true WHERE model = 's3://m/a/'")
        .execute(&mut *conn)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("model_registry_one_active"),
        "{error}"
    );
    let missing = registry::activate(&mut conn, "s3://m/a/", "v9")
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("no version v9"), "{missing}");
}
