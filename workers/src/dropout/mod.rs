//! `mooc-worker train-dropout`: the LightGBM model that predicts whether a learner drops a course.
//!
//! Labelled enrollments are streamed out of PostgreSQL, split by learner into train, validation
//! (early stopping) and test (reported metrics) sets, and the model is written as an immutable
//! bundle with its vocabularies, feature list and metrics, then recorded in `model_registry`.
//! A run on the same data with the same hyperparameters as an earlier version is `skipped`.

pub mod dataset;
pub mod features;
pub mod lgbm;
pub mod metrics;
pub mod parameters;
pub mod serving;
pub mod split;

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;
use serde_json::json;

use crate::bundle::{self, Bundle, Manifest};
use crate::prune::{Target, parse_uri};
use crate::registry;
use crate::settings::{PostgresSettings, S3Settings};
use crate::stores;
use crate::training::{self, TrainArgs};
use dataset::Splits;
use features::FeatureSchema;
use serving::{DropoutModel, FeatureFile};
use split::Fractions;

/// Rows per split.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Samples {
    pub train: usize,
    pub validation: usize,
    pub test: usize,
}

/// What a `train-dropout` run did.
pub type Outcome = training::Outcome<Trained>;

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trained {
    pub version: String,
    pub artifact_uri: String,
    /// Test-split metrics (`auc` decides promotion) and the validation AUC.
    pub metrics: BTreeMap<String, f64>,
    pub data_fingerprint: String,
    pub samples: Samples,
    pub best_iteration: usize,
    pub duration_seconds: f64,
    /// Reading the labelled enrollments into feature matrices.
    pub load_seconds: f64,
    /// Building LightGBM's datasets and boosting.
    pub train_seconds: f64,
    /// `(username, course_id)` and predicted probability of each test row; not reported.
    #[serde(skip)]
    pub test_predictions: Vec<((String, String), f64)>,
}

pub async fn run(
    args: &TrainArgs,
    postgres: &PostgresSettings,
    s3: &S3Settings,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let created = chrono::Utc::now();
    let hyperparameters =
        parameters::parse_hyperparameters(&args.hyperparameters).context("--hyperparameters")?;
    let schema = FeatureSchema {
        demographics: hyperparameters.demographics,
    };
    let threads = args.threads();
    let parameters = lgbm::parameter_string(&parameters::lightgbm_parameters(
        &hyperparameters,
        &schema,
        threads,
    )?)?;
    let artifacts = parse_uri(&args.artifacts, &s3.bucket).context("--artifacts")?;
    // The record of what was asked, defaults filled in, to compare runs by.
    let asked = serde_json::to_value(&hyperparameters)?;

    let pool = stores::postgres::connect(postgres, 1).await?;
    let mut conn = pool.acquire().await?;
    stores::postgres::migrate(&mut conn).await?;
    let fingerprint = match &args.data_fingerprint {
        Some(fingerprint) => fingerprint.clone(),
        // Everything loaded, when the operator passed none.
        None => crate::etl::data_fingerprint(&mut conn, None).await?,
    };
    let model = artifacts.uri();
    if let Some(skipped) = training::trained_before(&mut conn, &model, &fingerprint, &asked).await?
    {
        return Ok(Outcome::Skipped(skipped));
    }

    let load_started = Instant::now();
    let vocabularies = dataset::vocabularies(&mut conn, &schema).await?;
    let fractions = Fractions {
        validation: hyperparameters.validation_fraction,
        test: hyperparameters.test_fraction,
    };
    let splits = dataset::load(
        &mut conn,
        &schema,
        &vocabularies,
        fractions,
        hyperparameters.seed,
    )
    .await?;
    let load_seconds = load_started.elapsed().as_secs_f64();
    tracing::info!(
        train = splits.train.rows(),
        validation = splits.validation.rows(),
        test = splits.test.rows(),
        seconds = load_seconds,
        "loaded the labelled enrollments"
    );
    check_splits(&splits)?;

    let names = schema.names();
    let (max_rounds, patience) = (
        hyperparameters.max_rounds as usize,
        hyperparameters.early_stopping_rounds as usize,
    );
    let train_started = Instant::now();
    let lightgbm = parameters.clone();
    let (splits, trained) = tokio::task::spawn_blocking(move || {
        let parameters = lightgbm;
        let train = lgbm::Dataset::new(
            &splits.train.features,
            &splits.train.labels,
            &names,
            &parameters,
            None,
        )?;
        let validation = lgbm::Dataset::new(
            &splits.validation.features,
            &splits.validation.labels,
            &names,
            &parameters,
            Some(&train),
        )?;
        let trained = lgbm::train(&train, &validation, &parameters, max_rounds, patience)?;
        Ok::<_, lgbm::LgbmError>((splits, trained))
    })
    .await??;
    let train_seconds = train_started.elapsed().as_secs_f64();
    tracing::info!(
        best_iteration = trained.best_iteration,
        rounds = trained.rounds_run,
        validation_auc = trained.best_validation,
        seconds = train_seconds,
        "trained"
    );

    let version = bundle::version_name(created, &args.run_id);
    let directory = Target {
        bucket: artifacts.bucket.clone(),
        prefix: format!("{}{version}/", artifacts.prefix),
    };
    let mut files = vec![
        (serving::MODEL_FILE.to_owned(), trained.model.into_bytes()),
        (
            serving::VOCABULARY_FILE.to_owned(),
            serde_json::to_vec_pretty(&vocabularies)?,
        ),
        (
            serving::FEATURES_FILE.to_owned(),
            serde_json::to_vec_pretty(&FeatureFile::new(&schema))?,
        ),
    ];
    // Scored by the model as the consumer will hold it: read back from the bundle's own files.
    let mut manifest = Manifest {
        format: bundle::FORMAT,
        kind: "dropout".to_owned(),
        version: version.clone(),
        run_id: args.run_id.clone(),
        created: created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        data_fingerprint: Some(fingerprint.clone()),
        hyperparameters: asked.clone(),
        notes: args.notes.clone(),
        metrics: serde_json::Value::Null,
        files: bundle::entries(&files),
    };
    let model = DropoutModel::from_bundle(&Bundle {
        manifest: manifest.clone(),
        files: files.iter().cloned().collect(),
    })?;
    let test_predictions = model.predict(&splits.test.features)?;
    let validation_predictions = model.predict(&splits.validation.features)?;
    let test = metrics::scores(&test_predictions, &splits.test.labels);
    let validation = metrics::scores(&validation_predictions, &splits.validation.labels);
    let summary: BTreeMap<String, f64> = [
        ("auc", test.auc),
        ("logLoss", test.log_loss),
        ("accuracy", test.accuracy),
        ("positiveRate", test.positive_rate),
        ("validationAuc", validation.auc),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let samples = Samples {
        train: splits.train.rows(),
        validation: splits.validation.rows(),
        test: splits.test.rows(),
    };
    let details = json!({
        "test": test,
        "validation": validation,
        "threshold": metrics::THRESHOLD,
        "testRoc": metrics::roc_curve(&test_predictions, &splits.test.labels),
        "bestIteration": trained.best_iteration,
        "roundsRun": trained.rounds_run,
        "samples": samples,
        "lightgbmParameters": parameters.to_string_lossy(),
    });
    files.push((
        serving::METRICS_FILE.to_owned(),
        serde_json::to_vec_pretty(&details)?,
    ));
    manifest.files = bundle::entries(&files);
    manifest.metrics = serde_json::to_value(&summary)?;

    let s3_client = stores::s3::client(s3);
    bundle::write(&s3_client, &directory, &files, &manifest).await?;
    let duration_seconds = started.elapsed().as_secs_f64();
    registry::insert(
        &mut conn,
        &registry::Entry {
            kind: "dropout",
            model: artifacts.uri(),
            version: version.clone(),
            run_id: args.run_id.clone(),
            artifact_uri: directory.uri(),
            data_fingerprint: Some(fingerprint.clone()),
            training_samples: samples.train as i64,
            validation_samples: samples.validation as i64,
            test_samples: samples.test as i64,
            metrics: details,
            hyperparameters: asked,
            duration_seconds,
            notes: args.notes.clone(),
        },
    )
    .await?;
    Ok(Outcome::Trained(Trained {
        version,
        artifact_uri: directory.uri(),
        metrics: summary,
        data_fingerprint: fingerprint,
        samples,
        best_iteration: trained.best_iteration,
        duration_seconds,
        load_seconds,
        train_seconds,
        test_predictions: splits.test.keys.into_iter().zip(test_predictions).collect(),
    }))
}

/// Every split must hold rows, and train and validation both classes, or nothing can be learnt
/// or measured.
fn check_splits(splits: &Splits) -> anyhow::Result<()> {
    for (name, matrix) in [
        ("train", &splits.train),
        ("validation", &splits.validation),
        ("test", &splits.test),
    ] {
        let positives = matrix.labels.iter().filter(|l| **l > 0.5).count();
        anyhow::ensure!(
            positives > 0 && positives < matrix.rows(),
            "the {name} split has {} labelled enrollments, {positives} of them dropouts: both \
             classes are needed (load more data, or change validationFraction/testFraction)",
            matrix.rows()
        );
    }
    Ok(())
}
