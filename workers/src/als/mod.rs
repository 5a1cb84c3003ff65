//! `mooc-worker train-als`: implicit-feedback ALS course recommendations.
//!
//! Every enrollment is streamed out of PostgreSQL, weighted by its activity (c = 1 + α·signal),
//! and factorised with conjugate-gradient ALS. The factors are measured on held-out enrollments
//! (a seeded per-user hold-out, or a held-out CSV) by recall@10 and NDCG@10, next to the
//! most-popular baseline, then written as an immutable bundle, as rows in PostgreSQL and as a
//! registry row, in that order. The factors served are the ones measured.

pub mod dataset;
pub mod factors_table;
pub mod parallel;
pub mod ranking;
pub mod serving;
pub mod solver;
pub mod sparse;

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, ensure};
use mooc_crds::als::AlsHyperparameters;
use serde::Serialize;
use serde_json::json;
use sqlx::Connection;

use crate::bundle::{self, Bundle, Manifest};
use crate::prune::{Target, parse_uri};
use crate::registry;
use crate::settings::{PostgresSettings, S3Settings};
use crate::stores;
use crate::training::{self, TrainArgs};
use dataset::{Confidence, Enrollments};
use ranking::{HeldOut, RankingMetrics};
use serving::{AlsModel, ModelFile};
use solver::{Model, Settings, dot};
use sparse::Csr;

/// Courses ranked per learner when measuring.
pub const K: usize = 10;

/// Learners measured at most: ranking every course for every learner costs learners × courses ×
/// rank; above this a seeded sample of learners is measured (`samples.evaluatedUsers`).
pub const MAX_MEASURED_USERS: usize = 500_000;

#[derive(clap::Args, Debug, Clone)]
pub struct AlsArgs {
    #[command(flatten)]
    pub training: TrainArgs,
    /// Measure on this `username,course_id` CSV (a local path or `s3://bucket/key`) instead of
    /// holding out `testFraction` of each learner's enrollments; every enrollment is trained on.
    #[arg(long)]
    pub heldout: Option<String>,
}

/// What a `train-als` run did.
pub type Outcome = training::Outcome<Trained>;

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trained {
    pub version: String,
    pub artifact_uri: String,
    /// `recallAt10`, `ndcgAt10` (decides promotion) and the popular baseline's.
    pub metrics: BTreeMap<String, f64>,
    pub data_fingerprint: String,
    pub samples: Samples,
    pub duration_seconds: f64,
    /// Reading the enrollments and building the sparse matrices.
    pub load_seconds: f64,
    /// The ALS iterations alone.
    pub fit_seconds: f64,
    pub evaluate_seconds: f64,
    pub peak_memory_bytes: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Samples {
    pub users: usize,
    pub courses: usize,
    /// Enrollments trained on.
    pub train: usize,
    /// Held-out enrollments measured on, and the learners they belong to.
    pub held_out: usize,
    pub evaluated_users: usize,
    /// Held-out rows not measured: learners unknown to the model, enrollments it trained on.
    pub held_out_unknown_users: u64,
    pub held_out_already_enrolled: u64,
}

/// `spec.hyperparameters` of an ALSJob, checked for what the solver needs.
pub fn parse_hyperparameters(json: &str) -> anyhow::Result<AlsHyperparameters> {
    let h: AlsHyperparameters = crate::hyperparameters::parse(json, &[], "")?;
    ensure!(
        h.factors >= 1 && h.iterations >= 1,
        "factors and iterations must be at least 1"
    );
    ensure!(
        h.regularization >= 0.0 && h.alpha >= 0.0,
        "regularization and alpha must not be negative"
    );
    ensure!(
        h.test_fraction > 0.0 && h.test_fraction < 1.0,
        "testFraction must be between 0 and 1"
    );
    Ok(h)
}

pub async fn run(
    args: &AlsArgs,
    postgres: &PostgresSettings,
    s3: &S3Settings,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let created = chrono::Utc::now();
    let common = &args.training;
    let hyperparameters =
        parse_hyperparameters(&common.hyperparameters).context("--hyperparameters")?;
    let threads = common.threads();
    let artifacts = parse_uri(&common.artifacts, &s3.bucket).context("--artifacts")?;
    let s3_client = stores::s3::client(s3);
    // The record of what was asked, defaults filled in, to compare runs by.
    let mut asked = serde_json::to_value(&hyperparameters)?;
    if let Some(heldout) = &args.heldout {
        asked["heldout"] = json!(heldout);
    }

    let pool = stores::postgres::connect(postgres, 1).await?;
    let mut conn = pool.acquire().await?;
    stores::postgres::migrate(&mut conn).await?;
    let fingerprint = match &common.data_fingerprint {
        Some(fingerprint) => fingerprint.clone(),
        None => crate::etl::data_fingerprint(&mut conn, None).await?,
    };
    let model_uri = artifacts.uri();
    if let Some(skipped) =
        training::trained_before(&mut conn, &model_uri, &fingerprint, &asked).await?
    {
        return Ok(Outcome::Skipped(skipped));
    }

    let load_started = Instant::now();
    let confidence = Confidence {
        alpha: hyperparameters.alpha as f32,
        signal: hyperparameters.confidence,
    };
    let enrollments = dataset::load(&mut conn, confidence).await?;
    ensure!(
        enrollments.users.len() >= 2 && enrollments.courses.len() >= 2,
        "{} learners and {} courses enrolled: nothing to factorise (load enrollments first)",
        enrollments.users.len(),
        enrollments.courses.len()
    );
    let (train, held_out, unknown_users, already_enrolled) = match &args.heldout {
        Some(location) => {
            let bytes = read_location(&s3_client, location).await?;
            let file = dataset::held_out_csv(bytes.as_slice(), location, &enrollments)?;
            let train = enrollments.confidence.clone();
            (
                train,
                file.held_out,
                file.unknown_users,
                file.already_enrolled,
            )
        }
        None => {
            let (train, held_out) = dataset::hold_out(
                &enrollments,
                hyperparameters.test_fraction,
                hyperparameters.seed,
            );
            (train, held_out, 0, 0)
        }
    };
    let held_out = dataset::sample_users(
        held_out,
        &enrollments.users,
        MAX_MEASURED_USERS,
        hyperparameters.seed,
    );
    let load_seconds = load_started.elapsed().as_secs_f64();
    tracing::info!(
        users = enrollments.users.len(),
        courses = enrollments.courses.len(),
        train = train.nnz(),
        held_out = held_out.total(),
        seconds = load_seconds,
        "loaded the enrollments"
    );

    let settings = Settings {
        rank: hyperparameters.factors as usize,
        iterations: hyperparameters.iterations as usize,
        regularization: hyperparameters.regularization as f32,
        scale_regularization: hyperparameters.scale_regularization,
        cg_steps: hyperparameters.cg_steps.max(1) as usize,
        threads,
    };
    let seed = hyperparameters.seed;
    let (train, held_out, model, fit_seconds, metrics, evaluate_seconds) =
        tokio::task::spawn_blocking(move || {
            let fit_started = Instant::now();
            let model = solver::fit(&train, &settings, seed, |iteration| {
                tracing::debug!(
                    iteration,
                    seconds = fit_started.elapsed().as_secs_f64(),
                    "ALS iteration"
                );
            });
            let fit_seconds = fit_started.elapsed().as_secs_f64();
            let evaluate_started = Instant::now();
            let metrics = measure(&model, &train, &held_out, threads);
            let evaluate_seconds = evaluate_started.elapsed().as_secs_f64();
            (
                train,
                held_out,
                model,
                fit_seconds,
                metrics,
                evaluate_seconds,
            )
        })
        .await?;
    tracing::info!(
        recall_at_10 = metrics.als.recall,
        ndcg_at_10 = metrics.als.ndcg,
        popular_recall_at_10 = metrics.popular.recall,
        fit_seconds,
        "trained"
    );

    let version = bundle::version_name(created, &common.run_id);
    let directory = Target {
        bucket: artifacts.bucket.clone(),
        prefix: format!("{}{version}/", artifacts.prefix),
    };
    let course_enrollments = train.column_counts();
    let summary = metrics.summary();
    let samples = Samples {
        users: enrollments.users.len(),
        courses: enrollments.courses.len(),
        train: train.nnz(),
        held_out: held_out.total(),
        evaluated_users: metrics.als.users,
        held_out_unknown_users: unknown_users,
        held_out_already_enrolled: already_enrolled,
    };
    let details = json!({
        "als": metrics.als,
        "popular": metrics.popular,
        "samples": samples,
        "fitSeconds": fit_seconds,
    });
    let files = bundle_files(&enrollments, &model, &course_enrollments, &details)?;
    let manifest = Manifest {
        format: bundle::FORMAT,
        kind: "als".to_owned(),
        version: version.clone(),
        run_id: common.run_id.clone(),
        created: created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        data_fingerprint: Some(fingerprint.clone()),
        hyperparameters: asked.clone(),
        notes: common.notes.clone(),
        metrics: serde_json::to_value(&summary)?,
        files: bundle::entries(&files),
    };
    // The consumer's view must load: fail here, not in the stream.
    AlsModel::from_bundle(&Bundle {
        manifest: manifest.clone(),
        files: files.iter().cloned().collect(),
    })?;
    bundle::write(&s3_client, &directory, &files, &manifest).await?;

    let mut tx = conn
        .begin()
        .await
        .context("starting the factors transaction")?;
    factors_table::replace(
        &mut tx,
        &model_uri,
        &version,
        factors_table::Side {
            ids: &enrollments.users.ids,
            factors: &model.users,
            enrollments: None,
        },
        factors_table::Side {
            ids: &enrollments.courses.ids,
            factors: &model.items,
            enrollments: Some(&course_enrollments),
        },
    )
    .await?;
    let duration_seconds = started.elapsed().as_secs_f64();
    registry::insert(
        &mut tx,
        &registry::Entry {
            kind: "als",
            model: model_uri,
            version: version.clone(),
            run_id: common.run_id.clone(),
            artifact_uri: directory.uri(),
            data_fingerprint: Some(fingerprint.clone()),
            training_samples: samples.train as i64,
            validation_samples: 0,
            test_samples: samples.held_out as i64,
            metrics: details,
            hyperparameters: asked,
            duration_seconds,
            notes: common.notes.clone(),
        },
    )
    .await?;
    tx.commit()
        .await
        .context("committing the factors and the registry row")?;
    Ok(Outcome::Trained(Trained {
        version,
        artifact_uri: directory.uri(),
        metrics: summary,
        data_fingerprint: fingerprint,
        samples,
        duration_seconds: started.elapsed().as_secs_f64(),
        load_seconds,
        fit_seconds,
        evaluate_seconds,
        peak_memory_bytes: training::peak_memory_bytes(),
    }))
}

/// Held-out quality of the factors and of the most-popular baseline, ranked alike.
pub struct Measured {
    pub als: RankingMetrics,
    pub popular: RankingMetrics,
}

impl Measured {
    pub fn summary(&self) -> BTreeMap<String, f64> {
        [
            ("recallAt10", self.als.recall),
            ("ndcgAt10", self.als.ndcg),
            ("popularRecallAt10", self.popular.recall),
            ("popularNdcgAt10", self.popular.ndcg),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

pub fn measure(model: &Model, train: &Csr, held_out: &HeldOut, threads: usize) -> Measured {
    let als = ranking::evaluate(train, held_out, K, threads, |user, scores| {
        let factors = model.users.row(user);
        for (course, score) in scores.iter_mut().enumerate() {
            *score = dot(factors, model.items.row(course));
        }
    });
    let popularity: Vec<f32> = train.column_counts().iter().map(|&n| n as f32).collect();
    let popular = ranking::evaluate(train, held_out, K, threads, |_, scores| {
        scores.copy_from_slice(&popularity);
    });
    Measured { als, popular }
}

/// The bundle's files: id maps, factors, metrics.
fn bundle_files(
    enrollments: &Enrollments,
    model: &Model,
    course_enrollments: &[u64],
    details: &serde_json::Value,
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let model_file = ModelFile {
        rank: model.users.rank,
        users: enrollments.users.ids.clone(),
        courses: enrollments.courses.ids.clone(),
        course_enrollments: course_enrollments.to_vec(),
    };
    Ok(vec![
        (
            serving::MODEL_FILE.to_owned(),
            serde_json::to_vec(&model_file)?,
        ),
        (
            serving::USER_FACTORS_FILE.to_owned(),
            model.users.to_le_bytes(),
        ),
        (
            serving::COURSE_FACTORS_FILE.to_owned(),
            model.items.to_le_bytes(),
        ),
        (
            serving::METRICS_FILE.to_owned(),
            serde_json::to_vec_pretty(details)?,
        ),
    ])
}

/// The bytes of a local file or an `s3://bucket/key` object.
async fn read_location(s3: &aws_sdk_s3::Client, location: &str) -> anyhow::Result<Vec<u8>> {
    let Some(rest) = location.strip_prefix("s3://") else {
        return std::fs::read(location).with_context(|| format!("reading {location}"));
    };
    let (bucket, key) = rest
        .split_once('/')
        .with_context(|| format!("{location}: expected s3://bucket/key"))?;
    stores::s3::read(s3, bucket, key).await
}
