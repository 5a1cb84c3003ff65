//! DataLoad: each run is a `mooc-worker etl` Job; its summary (objects, rows loaded and rejected,
//! the data fingerprint) lands in status, and `Ready` means the newest load succeeded.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use mooc_crds::DataLoad;
use mooc_crds::common::{RunPhase, RunRecord, Scheduling};
use mooc_crds::dataload::{DataLoadSpec, DataLoadStatus};
use serde_json::json;

use super::{
    RunState, apply, instrumented, now_time, requeue_after, run_conditions, stall, write_status,
};
use crate::context::{Context, Error, Result};
use crate::metrics::ObjectLabels;
use crate::pods::{self, from_secret, literal};
use crate::rbac::Rule;
use crate::runner::{self, RunKind};

/// API access this controller needs (its Jobs' access is the runner's).
pub const RULES: &[Rule] = &[
    Rule::new("mooc.recsys.io", &["dataloads"], &["get", "list", "watch"]),
    Rule::new("mooc.recsys.io", &["dataloads/status"], &["get", "update"]),
];

pub const LABEL: &str = "dataload";

impl RunKind for DataLoad {
    const LABEL: &'static str = LABEL;

    fn scheduling(&self) -> &Scheduling {
        &self.spec.scheduling
    }

    fn run_defining(&self) -> serde_json::Value {
        json!({ "source": self.spec.source, "target": self.spec.target, "mode": self.spec.mode,
                "maxRejectRatio": self.spec.max_reject_ratio })
    }
}

/// The run's parameters, recorded with it; the Job is built from them.
pub fn parameters(spec: &DataLoadSpec) -> serde_json::Value {
    json!({
        "keys": spec.source.keys,
        "prefix": spec.source.prefix,
        "mode": spec.mode,
        "maxRejectRatio": spec.max_reject_ratio,
    })
}

/// `mooc-worker etl` arguments for a run's recorded parameters.
pub fn etl_args(parameters: &serde_json::Value) -> Vec<String> {
    let mode = match parameters["mode"].as_str() {
        Some("Full") => "full",
        _ => "incremental",
    };
    let mut args = vec!["etl".to_owned(), "--mode".to_owned(), mode.to_owned()];
    if let Some(ratio) = parameters["maxRejectRatio"].as_f64() {
        args.extend(["--max-reject-ratio".to_owned(), ratio.to_string()]);
    }
    match (parameters["keys"].as_array(), parameters["prefix"].as_str()) {
        (Some(keys), _) => {
            let keys: Vec<&str> = keys.iter().filter_map(|k| k.as_str()).collect();
            args.extend(["--keys".to_owned(), keys.join(",")]);
        }
        (None, Some(prefix)) => args.extend(["--prefix".to_owned(), prefix.to_owned()]),
        (None, None) => {}
    }
    args
}

/// The pod of a load run.
pub fn etl_pod(dataload: &DataLoad, run: &RunRecord, default_image: &str) -> Result<PodSpec> {
    let spec = &dataload.spec;
    let target = &spec.target.uri_secret_ref;
    let mut env = vec![from_secret("DATABASE_URL", &target.name, &target.key)];
    env.extend(pods::s3_env(&spec.source.bucket));
    env.push(literal("MOOC_RUN_ID", &run.id));
    let container = Container {
        args: Some(etl_args(
            run.parameters.as_ref().unwrap_or(&serde_json::Value::Null),
        )),
        env: Some(env),
        ..Container::default()
    };
    pods::worker_pod(&spec.pod, default_image, container, PodSpec::default())
        .map_err(|error| Error::InvalidSpec(error.to_string()))
}

/// What the schema cannot check; the message tells a person what to change.
pub fn validate(spec: &DataLoadSpec) -> Result<Option<crate::schedule::Schedule>, String> {
    if spec
        .source
        .keys
        .as_ref()
        .is_some_and(|keys| keys.iter().any(|k| k.trim().is_empty() || k.contains(',')))
    {
        return Err("spec.source.keys: every key must be non-empty and contain no comma".into());
    }
    runner::parse_schedule(&spec.scheduling)
}

/// Copies a finished load's summary into status.
pub fn record_result(status: &mut DataLoadStatus, run: &RunRecord) {
    let Some(result) = run
        .result
        .as_ref()
        .filter(|_| run.phase == RunPhase::Succeeded)
    else {
        return;
    };
    let count = |field: &str| result[field].as_u64();
    status.objects_loaded = count("objectsLoaded").or(status.objects_loaded);
    status.objects_unchanged = count("objectsUnchanged").or(status.objects_unchanged);
    status.rows_loaded = count("rowsLoaded").or(status.rows_loaded);
    status.rows_rejected = count("rowsRejected").or(status.rows_rejected);
    if let Some(fingerprint) = result["dataFingerprint"].as_str() {
        status.data_fingerprint = Some(fingerprint.to_owned());
    }
}

pub async fn reconcile(dataload: Arc<DataLoad>, ctx: Arc<Context>) -> Result<Action> {
    instrumented(LABEL, &*dataload, &ctx, reconcile_inner(&dataload, &ctx)).await
}

async fn reconcile_inner(dataload: &DataLoad, ctx: &Context) -> Result<Action> {
    if runner::paused(dataload) {
        return Ok(Action::await_change());
    }
    let generation = dataload.meta().generation;
    let now = now_time(ctx);
    let mut status = dataload.status.clone().unwrap_or_default();
    let schedule = match validate(&dataload.spec) {
        Ok(schedule) => schedule,
        Err(message) => {
            let first = stall(&mut status.common, &message, generation, &now);
            status.phase = Some(mooc_crds::common::JobPhase::Invalid);
            write_status(ctx, dataload, |d| d.status = Some(status)).await?;
            if first {
                ctx.event(dataload, true, "InvalidSpec", message).await;
            }
            return Ok(Action::await_change());
        }
    };
    let driven = runner::drive(
        ctx,
        dataload,
        schedule.as_ref(),
        &mut status.runs,
        true,
        None,
        parameters(&dataload.spec),
    )
    .await?;
    for run in driven.finished.iter().rev() {
        record_result(&mut status, run);
    }
    let (phase, updates) = run_conditions(&RunState {
        runs: &status.runs,
        suspended: dataload.spec.scheduling.suspend,
        waiting_for: None,
        unusable: None,
    });
    status.phase = Some(phase);
    apply(&mut status.common, updates, generation, &now);
    if let Some(rows) = status.rows_loaded {
        let labels = ObjectLabels {
            kind: LABEL,
            namespace: dataload.namespace().unwrap_or_default(),
            name: dataload.name_any(),
        };
        ctx.metrics
            .rows_loaded
            .get_or_create(&labels)
            .set(rows as i64);
    }
    let written = write_status(ctx, dataload, |d| d.status = Some(status.clone())).await?;
    let image = &ctx.config.worker_image;
    if runner::apply_jobs(ctx, dataload, &mut status.runs, &driven.dropped, |run| {
        etl_pod(dataload, run, image)
    })
    .await?
    {
        write_status(ctx, &written, |d| d.status = Some(status.clone())).await?;
    }
    runner::report(ctx, dataload, &driven).await;
    Ok(Action::requeue(requeue_after(ctx.now(), &status.runs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataload(source: serde_json::Value) -> DataLoad {
        serde_json::from_value(json!({
            "apiVersion": "mooc.recsys.io/v1alpha1", "kind": "DataLoad",
            "metadata": { "name": "mooc-data", "namespace": "ml" },
            "spec": {
                "source": source,
                "target": { "uriSecretRef": { "name": "pg", "key": "uri" } },
                "mode": "Full", "maxRejectRatio": 0.05,
            },
        }))
        .unwrap()
    }

    fn source(selection: serde_json::Value) -> serde_json::Value {
        let mut source = json!({ "endpoint": "http://s3:8333", "bucket": "data", "credentialsSecretRef": { "name": "s3" } });
        source
            .as_object_mut()
            .unwrap()
            .extend(selection.as_object().unwrap().clone());
        source
    }

    #[test]
    fn the_etl_arguments_come_from_the_recorded_parameters() {
        let by_keys = dataload(source(
            json!({ "keys": ["in/user_info.csv", "in/train.csv"] }),
        ));
        assert_eq!(
            etl_args(&parameters(&by_keys.spec)),
            [
                "etl",
                "--mode",
                "full",
                "--max-reject-ratio",
                "0.05",
                "--keys",
                "in/user_info.csv,in/train.csv"
            ]
        );
        let by_prefix = dataload(source(json!({ "prefix": "in/" })));
        assert_eq!(
            etl_args(&parameters(&by_prefix.spec))[5..],
            ["--prefix", "in/"]
        );
    }

    #[test]
    fn the_pod_reads_secrets_by_reference_and_names_the_run() {
        let load = dataload(source(json!({ "prefix": "in/" })));
        let run = RunRecord {
            id: "g3".into(),
            job: "mooc-data-g3".into(),
            trigger: mooc_crds::common::RunTrigger::Spec,
            phase: RunPhase::Pending,
            scheduled_time: None,
            start_time: crate::clock::to_time(chrono::DateTime::UNIX_EPOCH),
            completion_time: None,
            parameters: Some(parameters(&load.spec)),
            notes: None,
            result: None,
            message: None,
        };
        let pod = etl_pod(&load, &run, "mooc.local/mooc-worker:dev").unwrap();
        let container = &pod.containers[0];
        assert_eq!(
            container.image.as_deref(),
            Some("mooc.local/mooc-worker:dev")
        );
        let env = container.env.as_ref().unwrap();
        let find = |name: &str| env.iter().find(|e| e.name == name).unwrap();
        let database = find("DATABASE_URL")
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap();
        assert_eq!(
            (database.name.as_str(), database.key.as_str()),
            ("pg", "uri")
        );
        assert!(find("AWS_SECRET_ACCESS_KEY").value.is_none());
        assert_eq!(find("S3_BUCKET").value.as_deref(), Some("data"));
        assert_eq!(find("MOOC_RUN_ID").value.as_deref(), Some("g3"));
    }

    #[test]
    fn keys_with_commas_are_refused_and_bad_schedules_named() {
        let load = dataload(source(json!({ "keys": ["a.csv,b.csv"] })));
        assert!(
            validate(&load.spec)
                .unwrap_err()
                .contains("spec.source.keys")
        );
        let mut load = dataload(source(json!({ "prefix": "in/" })));
        load.spec.scheduling.schedule = Some("61 * * * *".into());
        assert!(validate(&load.spec).is_err());
    }

    #[test]
    fn a_succeeded_run_fills_the_summary_and_a_failed_one_does_not() {
        let mut status = DataLoadStatus::default();
        let mut run = RunRecord {
            id: "g1".into(),
            job: "j".into(),
            trigger: mooc_crds::common::RunTrigger::Spec,
            phase: RunPhase::Failed,
            scheduled_time: None,
            start_time: crate::clock::to_time(chrono::DateTime::UNIX_EPOCH),
            completion_time: None,
            parameters: None,
            notes: None,
            result: Some(
                json!({ "objectsLoaded": 2, "objectsUnchanged": 0, "rowsLoaded": 11493, "rowsRejected": 1, "dataFingerprint": "abc" }),
            ),
            message: None,
        };
        record_result(&mut status, &run);
        assert_eq!(status.rows_loaded, None);
        run.phase = RunPhase::Succeeded;
        record_result(&mut status, &run);
        assert_eq!(
            (
                status.rows_loaded,
                status.rows_rejected,
                status.objects_loaded
            ),
            (Some(11493), Some(1), Some(2))
        );
        assert_eq!(status.data_fingerprint.as_deref(), Some("abc"));
    }
}
