//! Run Jobs, pure: the Job of a run record, and reading a finished Job and its pod back.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use mooc_crds::common::RunRecord;

use crate::pods::WORKER_CONTAINER;

pub const MANAGED_BY: &str = "mooc-operator";
pub const KIND_LABEL: &str = "mooc.recsys.io/kind";
pub const RUN_LABEL: &str = "mooc.recsys.io/run";
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// Set by the Job controller on its pods.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";

/// The labels of everything the operator creates for `owner`.
pub fn labels(kind: &str, owner: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "mooc-worker".into()),
        ("app.kubernetes.io/managed-by".into(), MANAGED_BY.into()),
        (INSTANCE_LABEL.into(), owner.into()),
        (KIND_LABEL.into(), kind.into()),
    ])
}

/// The Job of `run`: owned by `owner` (deleting it deletes the Job), retried once, deleted
/// `ttl_seconds` after it finishes.
pub fn run_job<K: Resource<DynamicType = ()>>(
    owner: &K,
    kind: &str,
    run: &RunRecord,
    pod: PodSpec,
    ttl_seconds: i32,
) -> Job {
    owned_job(owner, kind, &run.job, &run.id, pod, ttl_seconds)
}

/// A Job named `name` labelled with `run`, owned by `owner`, retried once, deleted
/// `ttl_seconds` after it finishes.
pub fn owned_job<K: Resource<DynamicType = ()>>(
    owner: &K,
    kind: &str,
    name: &str,
    run: &str,
    mut pod: PodSpec,
    ttl_seconds: i32,
) -> Job {
    let owner_name = owner.meta().name.clone().unwrap_or_default();
    let mut labels = labels(kind, &owner_name);
    labels.insert(RUN_LABEL.into(), run.to_owned());
    pod.restart_policy = Some("Never".into());
    Job {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: owner.meta().namespace.clone(),
            labels: Some(labels.clone()),
            owner_references: owner
                .controller_owner_ref(&())
                .map(|reference| vec![reference]),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(1),
            ttl_seconds_after_finished: Some(ttl_seconds),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..JobSpec::default()
        }),
        status: None,
    }
}

/// A Job's outcome.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Active,
    Succeeded,
    /// With the Job controller's reason.
    Failed(String),
}

pub fn outcome(job: &Job) -> Outcome {
    let conditions = job.status.as_ref().and_then(|s| s.conditions.as_ref());
    for condition in conditions.into_iter().flatten() {
        if condition.status != "True" {
            continue;
        }
        match condition.type_.as_str() {
            "Complete" => return Outcome::Succeeded,
            "Failed" => {
                let reason = condition.message.clone().or(condition.reason.clone());
                return Outcome::Failed(reason.unwrap_or_else(|| "the Job failed".into()));
            }
            _ => {}
        }
    }
    Outcome::Active
}

/// The termination message of the worker container of the newest pod that has one.
pub fn termination_message(pods: &[Pod]) -> Option<String> {
    let mut pods: Vec<&Pod> = pods.iter().collect();
    pods.sort_by_key(|pod| pod.metadata.creation_timestamp.as_ref().map(|t| t.0));
    pods.iter().rev().find_map(|pod| {
        let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
        let worker = statuses.iter().find(|s| s.name == WORKER_CONTAINER)?;
        let message = worker
            .state
            .as_ref()?
            .terminated
            .as_ref()?
            .message
            .clone()?;
        (!message.trim().is_empty()).then_some(message)
    })
}

/// A worker's message: its JSON result, or (a crash, `FallbackToLogsOnError`) the log tail.
pub fn parse_message(message: &str) -> Result<serde_json::Value, String> {
    match serde_json::from_str::<serde_json::Value>(message.trim()) {
        Ok(value) if value.is_object() => Ok(value),
        _ => Err(message.trim().to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mooc_crds::DataLoad;
    use mooc_crds::common::{RunPhase, RunTrigger};
    use serde_json::json;

    fn owner() -> DataLoad {
        serde_json::from_value(json!({
            "apiVersion": "mooc.recsys.io/v1alpha1", "kind": "DataLoad",
            "metadata": { "name": "mooc-data", "namespace": "ml", "uid": "u-1" },
            "spec": {
                "source": { "endpoint": "http://s3:8333", "bucket": "data", "credentialsSecretRef": { "name": "s3" }, "prefix": "in/" },
                "target": { "uriSecretRef": { "name": "pg", "key": "uri" } },
            },
        }))
        .unwrap()
    }

    fn record() -> RunRecord {
        RunRecord {
            id: "g1".into(),
            job: "mooc-data-g1".into(),
            trigger: RunTrigger::Spec,
            phase: RunPhase::Pending,
            scheduled_time: None,
            start_time: crate::clock::to_time(chrono::DateTime::UNIX_EPOCH),
            completion_time: None,
            parameters: None,
            notes: None,
            result: None,
            message: None,
        }
    }

    #[test]
    fn the_job_is_named_after_the_run_labelled_and_owned() {
        let job = run_job(&owner(), "dataload", &record(), PodSpec::default(), 600);
        assert_eq!(job.metadata.name.as_deref(), Some("mooc-data-g1"));
        assert_eq!(job.metadata.namespace.as_deref(), Some("ml"));
        let labels = job.metadata.labels.unwrap();
        assert_eq!(labels[RUN_LABEL], "g1");
        assert_eq!(labels[INSTANCE_LABEL], "mooc-data");
        let owners = job.metadata.owner_references.unwrap();
        assert_eq!(
            (owners[0].kind.as_str(), owners[0].uid.as_str()),
            ("DataLoad", "u-1")
        );
        assert_eq!(owners[0].controller, Some(true));
        let spec = job.spec.unwrap();
        assert_eq!(spec.ttl_seconds_after_finished, Some(600));
        assert_eq!(
            spec.template.spec.unwrap().restart_policy.as_deref(),
            Some("Never")
        );
    }

    #[test]
    fn outcomes_and_messages_are_read_back() {
        let job: Job = serde_json::from_value(json!({
            "status": { "conditions": [
                { "type": "FailureTarget", "status": "True" },
                { "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit" },
            ] },
        }))
        .unwrap();
        assert_eq!(
            outcome(&job),
            Outcome::Failed("Job has reached the specified backoff limit".into())
        );
        assert_eq!(outcome(&Job::default()), Outcome::Active);
        let pod = |created: &str, message: &str| -> Pod {
            serde_json::from_value(json!({
                "metadata": { "creationTimestamp": created },
                "status": { "containerStatuses": [{
                    "name": "worker", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                    "state": { "terminated": { "exitCode": 1, "message": message } },
                }] },
            }))
            .unwrap()
        };
        let pods = [
            pod("2026-12-03T12:01:00Z", "{\"rowsLoaded\":3}"),
            pod("2026-12-03T12:00:00Z", "old"),
        ];
        assert_eq!(
            termination_message(&pods).as_deref(),
            Some("{\"rowsLoaded\":3}")
        );
        assert_eq!(
            parse_message("{\"rowsLoaded\":3}\n"),
            Ok(json!({ "rowsLoaded": 3 }))
        );
        assert_eq!(
            parse_message("panicked at main.rs"),
            Err("panicked at main.rs".into())
        );
    }
}
