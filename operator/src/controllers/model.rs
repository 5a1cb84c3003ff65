//! TrainingRun and ALSJob: runs wait for their DataLoad, train as `mooc-worker train-dropout` or
//! `train-als` Jobs, and each successful run adds a model version that the promotion policy may
//! make active; versions past retention have their S3 bundles deleted by a prune Job.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use kube::api::ListParams;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use mooc_crds::common::{JobPhase, ModelVersion, PodSettings, RunPhase, RunRecord, Scheduling};
use mooc_crds::model::{ModelStatus, ModelTraining};
use mooc_crds::stream::{ModelRef, PublishedModel};
use mooc_crds::{ALSJob, DataLoad, StreamDeployment, TrainingRun};
use serde_json::json;

use super::bundles;
use super::{
    RunState, apply, instrumented, now_time, ready, requeue_after, run_conditions, stall,
    write_status,
};
use crate::cleanup;
use crate::conditions::{DEPENDENCIES_READY, Update};
use crate::context::{Context, Error, Result};
use crate::metrics::ObjectLabels;
use crate::pods::{self, from_secret, literal};
use crate::rbac::Rule;
use crate::runner::{self, RunKind};
use crate::versions;

/// API access these controllers need: their own kinds, the DataLoad they wait for (their Jobs,
/// prune Jobs included, are the runner's).
pub const RULES: &[Rule] = &[
    Rule::new(
        "mooc.recsys.io",
        &["trainingruns", "alsjobs", "dataloads"],
        &["get", "list", "watch"],
    ),
    Rule::new(
        "mooc.recsys.io",
        &["trainingruns/status", "alsjobs/status"],
        &["get", "update"],
    ),
    // The bundle-cleanup finalizer (`crate::cleanup`).
    Rule::new("mooc.recsys.io", &["trainingruns", "alsjobs"], &["patch"]),
    // Versions the consumers serve are never pruned.
    Rule::new("mooc.recsys.io", &["streamdeployments"], &["list"]),
];

/// A kind that trains model versions.
pub trait ModelKind: RunKind {
    /// The `mooc-worker` subcommand of a run.
    const SUBCOMMAND: &'static str;
    /// The metric promotion compares (higher is better), a key of the worker's `metrics`.
    const METRIC: &'static str;
    /// Bundle prefix when `artifacts.prefix` is unset.
    const DEFAULT_PREFIX: &'static str;
    fn training(&self) -> &ModelTraining;
    fn pod_settings(&self) -> &PodSettings;
    fn hyperparameters(&self) -> serde_json::Value;
    fn model_status(&self) -> Option<&ModelStatus>;
    fn set_model_status(&mut self, status: ModelStatus);
    /// A StreamDeployment's reference to this kind, and the version of it the consumers serve.
    fn served_by(sd: &StreamDeployment) -> (&ModelRef, Option<&PublishedModel>);
}

/// The versions of resource `name` that StreamDeployments serve or pin: retention keeps them,
/// so a bundle is never deleted under a consumer.
pub fn served_versions<K: ModelKind>(name: &str, streams: &[StreamDeployment]) -> Vec<String> {
    streams
        .iter()
        .map(K::served_by)
        .filter(|(reference, _)| reference.name == name)
        .flat_map(|(reference, published)| {
            reference
                .pinned_version
                .iter()
                .chain(published.map(|p| &p.version))
                .cloned()
        })
        .collect()
}

macro_rules! model_kind {
    ($kind:ty, $label:literal, $subcommand:literal, $metric:literal, $prefix:literal, $reference:ident, $published:ident) => {
        impl RunKind for $kind {
            const LABEL: &'static str = $label;

            fn scheduling(&self) -> &Scheduling {
                &self.spec.scheduling
            }

            fn run_defining(&self) -> serde_json::Value {
                json!({ "hyperparameters": self.spec.hyperparameters, "artifacts": self.spec.training.artifacts })
            }
        }

        impl ModelKind for $kind {
            const SUBCOMMAND: &'static str = $subcommand;
            const METRIC: &'static str = $metric;
            const DEFAULT_PREFIX: &'static str = $prefix;

            fn training(&self) -> &ModelTraining {
                &self.spec.training
            }

            fn pod_settings(&self) -> &PodSettings {
                &self.spec.pod
            }

            fn hyperparameters(&self) -> serde_json::Value {
                json!(self.spec.hyperparameters)
            }

            fn model_status(&self) -> Option<&ModelStatus> {
                self.status.as_ref()
            }

            fn set_model_status(&mut self, status: ModelStatus) {
                self.status = Some(status);
            }

            fn served_by(sd: &StreamDeployment) -> (&ModelRef, Option<&PublishedModel>) {
                let published = sd.status.as_ref().and_then(|s| s.models.$published.as_ref());
                (&sd.spec.$reference, published)
            }
        }
    };
}

model_kind!(
    TrainingRun,
    "trainingrun",
    "train-dropout",
    "auc",
    "models/dropout",
    training_run_ref,
    dropout
);
model_kind!(
    ALSJob,
    "alsjob",
    "train-als",
    "ndcgAt10",
    "models/als",
    als_job_ref,
    als
);

/// `s3://<bucket>/<prefix>/`: where the kind's bundles go, one `<version>/` each.
pub fn artifacts_uri<K: ModelKind>(object: &K) -> String {
    let artifacts = &object.training().artifacts;
    let prefix = artifacts.prefix.as_deref().unwrap_or(K::DEFAULT_PREFIX);
    format!(
        "s3://{}/{}/",
        artifacts.bucket.bucket,
        prefix.trim_matches('/')
    )
}

/// The run's parameters, recorded with it; the Job is built from them.
pub fn parameters<K: ModelKind>(object: &K, fingerprint: Option<&str>) -> serde_json::Value {
    json!({
        "hyperparameters": object.hyperparameters(),
        "artifacts": artifacts_uri(object),
        "dataFingerprint": fingerprint,
    })
}

/// The pod of a training run: the database of the DataLoad it trains on, the artifacts bucket.
pub fn training_pod<K: ModelKind>(
    object: &K,
    dataload: &DataLoad,
    run: &RunRecord,
    default_image: &str,
) -> Result<PodSpec> {
    let parameters = run.parameters.clone().unwrap_or_default();
    let database = &dataload.spec.target.uri_secret_ref;
    let mut env = vec![from_secret("DATABASE_URL", &database.name, &database.key)];
    env.extend(pods::s3_env(&object.training().artifacts.bucket));
    env.push(literal("MOOC_RUN_ID", &run.id));
    // LightGBM's OpenMP threads spin while idle by default: up to 10x slower on a busy node.
    env.push(literal("OMP_WAIT_POLICY", "passive"));
    if let Some(fingerprint) = parameters["dataFingerprint"].as_str() {
        env.push(literal("MOOC_DATA_FINGERPRINT", fingerprint));
    }
    if let Some(notes) = &run.notes {
        env.push(literal("MOOC_RUN_NOTES", notes));
    }
    let args = vec![
        K::SUBCOMMAND.to_owned(),
        "--run-id".to_owned(),
        run.id.clone(),
        "--artifacts".to_owned(),
        parameters["artifacts"]
            .as_str()
            .map_or_else(|| artifacts_uri(object), str::to_owned),
        "--hyperparameters".to_owned(),
        parameters["hyperparameters"].to_string(),
    ];
    let container = Container {
        args: Some(args),
        env: Some(env),
        ..Container::default()
    };
    pods::worker_pod(
        object.pod_settings(),
        default_image,
        container,
        PodSpec::default(),
    )
    .map_err(|error| Error::InvalidSpec(error.to_string()))
}

/// A version from a finished run's result (`{version, artifactUri, metrics, dataFingerprint}`);
/// `None` when the run trained nothing (`skipped`: the data was unchanged).
pub fn version_of(run: &RunRecord) -> Result<Option<ModelVersion>, String> {
    let Some(result) = run.result.as_ref() else {
        return Err(format!(
            "run {} succeeded without a result in its termination message",
            run.id
        ));
    };
    if result["skipped"].as_bool() == Some(true) {
        return Ok(None);
    }
    let text = |field: &str| {
        result[field]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("run {}: the result has no {field}", run.id))
    };
    let metrics = result["metrics"]
        .as_object()
        .map(|metrics| {
            metrics
                .iter()
                .filter_map(|(k, v)| v.as_f64().map(|v| (k.clone(), v)))
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(ModelVersion {
        version: text("version")?,
        run: run.id.clone(),
        created: run
            .completion_time
            .clone()
            .unwrap_or_else(|| run.start_time.clone()),
        artifact_uri: text("artifactUri")?,
        data_fingerprint: result["dataFingerprint"]
            .as_str()
            .or(run
                .parameters
                .as_ref()
                .and_then(|p| p["dataFingerprint"].as_str()))
            .map(str::to_owned),
        metrics,
        promotion: None,
    }))
}

/// The DataLoad's fingerprint when it is new to this resource: not trained on, and no run in
/// history was started for it (a failed one is not retried by this trigger).
pub fn new_data<'a>(status: &ModelStatus, fingerprint: Option<&'a str>) -> Option<&'a str> {
    let fingerprint = fingerprint?;
    let trained = status.trained_fingerprint.as_deref() == Some(fingerprint);
    let started = status.runs.runs.iter().any(|run| {
        run.parameters
            .as_ref()
            .and_then(|p| p["dataFingerprint"].as_str())
            == Some(fingerprint)
    });
    (!trained && !started).then_some(fingerprint)
}

/// What a finished run changes in the versions; returns the events to send.
pub fn record_run<K: ModelKind>(
    status: &mut ModelStatus,
    object: &K,
    run: &RunRecord,
) -> Vec<(bool, &'static str, String)> {
    if run.phase != RunPhase::Succeeded {
        return Vec::new();
    }
    let policy = &object.training().versions;
    match version_of(run) {
        Err(message) => vec![(true, "ResultUnreadable", message)],
        Ok(None) => {
            status.trained_fingerprint = run
                .parameters
                .as_ref()
                .and_then(|p| p["dataFingerprint"].as_str())
                .map(str::to_owned);
            vec![(
                false,
                "RunSkipped",
                format!("run {}: the data was unchanged, no new version", run.id),
            )]
        }
        Ok(Some(version)) => {
            let name = version.version.clone();
            status.trained_fingerprint = version.data_fingerprint.clone();
            let before = status.active_version.clone();
            status.active_version = versions::add_version(
                &mut status.versions,
                before.as_deref(),
                policy,
                K::METRIC,
                version,
            );
            let promotion = status
                .versions
                .iter()
                .find(|v| v.version == name)
                .and_then(|v| v.promotion.clone())
                .unwrap_or_default();
            let promoted = status.active_version.as_deref() == Some(name.as_str())
                && before.as_deref() != Some(name.as_str());
            let reason = if promoted {
                "VersionPromoted"
            } else {
                "VersionNotPromoted"
            };
            vec![(false, reason, format!("version {name}: {promotion}"))]
        }
    }
}

pub async fn reconcile<K: ModelKind>(object: Arc<K>, ctx: Arc<Context>) -> Result<Action> {
    instrumented(K::LABEL, &*object, &ctx, reconcile_inner(&*object, &ctx)).await
}

async fn reconcile_inner<K: ModelKind>(object: &K, ctx: &Context) -> Result<Action> {
    if runner::paused(object) {
        return Ok(Action::await_change());
    }
    if cleanup::deleting(object) {
        return bundles::finalize(ctx, object).await;
    }
    if !cleanup::holds_finalizer(object) {
        // Before any Job can write a bundle; the patch's watch event reconciles again.
        bundles::hold(ctx, object).await?;
        return Ok(Action::await_change());
    }
    let generation = object.meta().generation;
    let now = now_time(ctx);
    let mut status = object.model_status().cloned().unwrap_or_default();
    let policy = &object.training().versions;
    let checked = runner::parse_schedule(object.scheduling()).and_then(|schedule| {
        versions::resolve_active(policy, status.active_version.as_deref(), &status.versions)
            .map(|_| schedule)
            .map_err(|error| error.to_string())
    });
    let schedule = match checked {
        Ok(schedule) => schedule,
        Err(message) => {
            let first = stall(&mut status.common, &message, generation, &now);
            status.phase = Some(JobPhase::Invalid);
            write_status(ctx, object, |o| o.set_model_status(status)).await?;
            if first {
                ctx.event(object, true, "InvalidSpec", message).await;
            }
            return Ok(Action::await_change());
        }
    };

    let namespace = object.namespace().unwrap_or_default();
    let reference = &object.training().data_load_ref.name;
    let dataload = Api::<DataLoad>::namespaced(ctx.client.clone(), &namespace)
        .get_opt(reference)
        .await?;
    let dataload_status = dataload.as_ref().and_then(|d| d.status.as_ref());
    let waiting_for = match (&dataload, dataload_status) {
        (None, _) => Some(format!("DataLoad {reference} does not exist")),
        (Some(_), Some(s)) if ready(&s.common.conditions) => None,
        (Some(_), _) => Some(format!("DataLoad {reference} is not Ready")),
    };
    let fingerprint = dataload_status.and_then(|s| s.data_fingerprint.as_deref());
    let new_data = new_data(&status, fingerprint)
        .filter(|_| object.training().retrain_on_new_data && waiting_for.is_none());
    let driven = runner::drive(
        ctx,
        object,
        schedule.as_ref(),
        &mut status.runs,
        waiting_for.is_none(),
        new_data,
        parameters(object, fingerprint),
    )
    .await?;

    let mut events = bundles::settle(ctx, object, &mut status.pruning).await?;
    for run in driven.finished.iter().rev() {
        events.extend(record_run(&mut status, object, run));
    }
    // Checked above against the versions before this reconcile's results; a pinned version is
    // never pruned, so it still resolves.
    status.active_version =
        versions::resolve_active(policy, status.active_version.as_deref(), &status.versions)
            .map_err(|error| Error::InvalidSpec(error.to_string()))?;
    let streams = Api::<StreamDeployment>::namespaced(ctx.client.clone(), &namespace)
        .list(&ListParams::default())
        .await?;
    let served = served_versions::<K>(&object.name_any(), &streams.items);
    let protected: Vec<&str> = status
        .active_version
        .iter()
        .chain(policy.pinned_version.iter())
        .chain(served.iter())
        .map(String::as_str)
        .collect();
    let (kept, pruned) = versions::retain(
        std::mem::take(&mut status.versions),
        policy.keep,
        &protected,
    );
    status.versions = kept;
    if !pruned.is_empty() {
        // Recorded before the status forgets the versions; the Job follows the status write.
        status
            .pruning
            .push(cleanup::retention_prune(&object.name_any(), &pruned));
    }
    let active = status
        .active_version
        .as_ref()
        .and_then(|name| status.versions.iter().find(|v| &v.version == name));
    status.active_score = active.and_then(|v| v.metrics.get(K::METRIC).copied());
    if let Some(score) = status.active_score {
        let labels = ObjectLabels {
            kind: K::LABEL,
            namespace: namespace.clone(),
            name: object.name_any(),
        };
        ctx.metrics.active_score.get_or_create(&labels).set(score);
    }

    let unusable = status
        .active_version
        .is_none()
        .then(|| "no version is active (see status.versions[].promotion)".to_owned());
    let (phase, mut updates) = run_conditions(&RunState {
        runs: &status.runs,
        suspended: object.scheduling().suspend,
        waiting_for: waiting_for.clone(),
        unusable,
    });
    updates.push(match &waiting_for {
        Some(why) => Update::new(DEPENDENCIES_READY, false, "DataLoadNotReady", why.clone()),
        None => Update::new(
            DEPENDENCIES_READY,
            true,
            "DataLoadReady",
            format!("DataLoad {reference} is Ready"),
        ),
    });
    status.phase = Some(phase);
    apply(&mut status.common, updates, generation, &now);

    let written = write_status(ctx, object, |o| o.set_model_status(status.clone())).await?;
    let image = &ctx.config.worker_image;
    let started = runner::apply_jobs(ctx, object, &mut status.runs, &driven.dropped, |run| {
        let dataload = dataload
            .as_ref()
            .ok_or_else(|| Error::InvalidSpec(format!("DataLoad {reference} does not exist")))?;
        training_pod(object, dataload, run, image)
    })
    .await?;
    if started {
        write_status(ctx, &written, |o| o.set_model_status(status.clone())).await?;
    }
    bundles::start(ctx, object, &status.pruning).await?;
    runner::report(ctx, object, &driven).await;
    for (warning, reason, note) in events {
        ctx.event(object, warning, reason, note).await;
    }
    Ok(Action::requeue(requeue_after(ctx.now(), &status.runs)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::to_time;
    use mooc_crds::common::RunTrigger;

    fn training_run(versions: serde_json::Value) -> TrainingRun {
        serde_json::from_value(json!({
            "apiVersion": "mooc.recsys.io/v1alpha1", "kind": "TrainingRun",
            "metadata": { "name": "dropout", "namespace": "ml", "uid": "u-2" },
            "spec": {
                "dataLoadRef": { "name": "mooc-data" },
                "artifacts": { "endpoint": "http://s3:8333", "bucket": "models", "credentialsSecretRef": { "name": "s3" } },
                "versions": versions,
            },
        }))
        .unwrap()
    }

    fn succeeded(id: &str, result: serde_json::Value) -> RunRecord {
        RunRecord {
            id: id.into(),
            job: format!("dropout-{id}"),
            trigger: RunTrigger::Spec,
            phase: RunPhase::Succeeded,
            scheduled_time: None,
            start_time: to_time(chrono::DateTime::UNIX_EPOCH),
            completion_time: None,
            parameters: Some(json!({ "dataFingerprint": "fp1" })),
            notes: None,
            result: Some(result),
            message: None,
        }
    }

    fn result(version: &str, auc: f64) -> serde_json::Value {
        json!({ "version": version, "artifactUri": format!("s3://models/models/dropout/{version}/"), "metrics": { "auc": auc, "logLoss": 0.4 } })
    }

    #[test]
    fn the_training_pod_carries_the_recorded_hyperparameters_and_both_stores() {
        let tr = training_run(json!({}));
        let dataload: DataLoad = serde_json::from_value(json!({
            "metadata": { "name": "mooc-data" },
            "spec": { "source": { "endpoint": "e", "bucket": "data", "credentialsSecretRef": { "name": "s3" }, "prefix": "in/" },
                      "target": { "uriSecretRef": { "name": "pg", "key": "uri" } } },
        }))
        .unwrap();
        let mut run = succeeded("g1", json!({}));
        run.parameters = Some(parameters(&tr, Some("fp9")));
        run.notes = Some("try more leaves".into());
        let pod = training_pod(&tr, &dataload, &run, "img").unwrap();
        let container = &pod.containers[0];
        let args = container.args.as_ref().unwrap();
        assert_eq!(
            args[..5],
            [
                "train-dropout",
                "--run-id",
                "g1",
                "--artifacts",
                "s3://models/models/dropout/"
            ]
        );
        let hyperparameters: serde_json::Value = serde_json::from_str(&args[6]).unwrap();
        assert_eq!(hyperparameters["numLeaves"], 31);
        let env = container.env.as_ref().unwrap();
        let value = |name: &str| {
            env.iter()
                .find(|e| e.name == name)
                .and_then(|e| e.value.clone())
        };
        assert_eq!(value("MOOC_DATA_FINGERPRINT").as_deref(), Some("fp9"));
        assert_eq!(value("MOOC_RUN_NOTES").as_deref(), Some("try more leaves"));
        assert_eq!(value("S3_BUCKET").as_deref(), Some("models"));
    }

    #[test]
    fn a_worse_version_is_kept_but_not_promoted_and_retention_prunes_the_oldest() {
        let tr = training_run(json!({ "keep": 2 }));
        let mut status = ModelStatus::default();
        record_run(
            &mut status,
            &tr,
            &succeeded("g1", result("20261201-020000-a", 0.80)),
        );
        let events = record_run(
            &mut status,
            &tr,
            &succeeded("g2", result("20261202-020000-b", 0.70)),
        );
        assert_eq!(events[0].1, "VersionNotPromoted");
        assert_eq!(status.active_version.as_deref(), Some("20261201-020000-a"));
        record_run(
            &mut status,
            &tr,
            &succeeded("g3", result("20261203-020000-c", 0.81)),
        );
        assert_eq!(status.active_version.as_deref(), Some("20261203-020000-c"));
        assert_eq!(status.trained_fingerprint.as_deref(), Some("fp1"));
        let (kept, pruned) = versions::retain(status.versions.clone(), 2, &["20261203-020000-c"]);
        assert_eq!(kept.len(), 2);
        assert_eq!(
            pruned
                .iter()
                .map(|v| v.version.as_str())
                .collect::<Vec<_>>(),
            ["20261201-020000-a"]
        );
    }

    #[test]
    fn versions_a_stream_serves_or_pins_are_protected_and_only_for_its_own_model() {
        let sd = |training: &str, pinned: Option<&str>, served: Option<&str>| -> StreamDeployment {
            serde_json::from_value(json!({
                "metadata": { "name": "live", "namespace": "ml" },
                "spec": {
                    "kafka": { "bootstrapServers": "k:9092" },
                    "trainingRunRef": { "name": training, "pinnedVersion": pinned },
                    "alsJobRef": { "name": "courses" },
                },
                "status": { "models": { "dropout": served.map(|v| json!({ "version": v, "artifactUri": "s3://b/p/" })) } },
            }))
            .unwrap()
        };
        let streams = [
            sd("dropout", Some("v1"), Some("v2")),
            sd("other", Some("v7"), Some("v8")),
            sd("dropout", None, None),
        ];
        assert_eq!(
            served_versions::<TrainingRun>("dropout", &streams),
            ["v1", "v2"]
        );
        assert!(served_versions::<ALSJob>("dropout", &streams).is_empty());
    }

    #[test]
    fn skipped_runs_and_unreadable_results_add_no_version() {
        let tr = training_run(json!({}));
        let mut status = ModelStatus::default();
        let events = record_run(
            &mut status,
            &tr,
            &succeeded("g1", json!({ "skipped": true })),
        );
        assert_eq!(events[0].1, "RunSkipped");
        assert_eq!(status.trained_fingerprint.as_deref(), Some("fp1"));
        let events = record_run(&mut status, &tr, &succeeded("g2", json!({ "metrics": {} })));
        assert_eq!(events[0].1, "ResultUnreadable");
        assert!(events[0].2.contains("no version"));
        assert!(status.versions.is_empty());
    }

    #[test]
    fn new_data_triggers_once_per_fingerprint() {
        let mut status = ModelStatus::default();
        assert_eq!(new_data(&status, Some("fp1")), Some("fp1"));
        assert_eq!(new_data(&status, None), None);
        status.runs.runs.push(succeeded("g1", json!({})));
        assert_eq!(
            new_data(&status, Some("fp1")),
            None,
            "a run was started for fp1"
        );
        status.trained_fingerprint = Some("fp1".into());
        assert_eq!(new_data(&status, Some("fp2")), Some("fp2"));
    }
}
