//! Deleting model bundles so that none is left behind. Versions past retention are recorded in
//! `status.pruning` until their prune Job has succeeded (a crash repeats the same Job, a failed
//! one is run again), and a finalizer holds a deleted TrainingRun or ALSJob until its pending
//! prunes, and with `deletionPolicy: Delete` every bundle it still has, are gone.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Container, PodSpec};
use mooc_crds::common::ModelVersion;
use mooc_crds::model::{DeletionPolicy, ModelStatus, PendingPrune};

use crate::context::{Error, Result};
use crate::controllers::model::ModelKind;
use crate::jobs;
use crate::pods;

/// Held by every TrainingRun and ALSJob until its bundles are dealt with.
pub const FINALIZER: &str = "mooc.recsys.io/bundle-cleanup";
/// Annotation of a prune Job: the versions whose bundles it deletes.
pub const PRUNED_ANNOTATION: &str = "mooc.recsys.io/pruned-versions";

/// The record of pruning `versions` of resource `owner`. The Job is named after the bundles it
/// deletes, so recording the same prune twice names the same Job.
pub fn pending_prune(owner: &str, purpose: &str, versions: &[(&str, &str)]) -> PendingPrune {
    let uris: Vec<String> = versions.iter().map(|(_, uri)| (*uri).to_owned()).collect();
    let id = format!(
        "{purpose}-{}",
        crate::hash::short(uris.join(" ").as_bytes())
    );
    PendingPrune {
        job: crate::runs::job_name(owner, &id),
        versions: versions
            .iter()
            .map(|(name, _)| (*name).to_owned())
            .collect(),
        artifact_uris: uris,
    }
}

/// The prune of versions dropped by retention.
pub fn retention_prune(owner: &str, pruned: &[ModelVersion]) -> PendingPrune {
    let versions: Vec<(&str, &str)> = pruned
        .iter()
        .map(|v| (v.version.as_str(), v.artifact_uri.as_str()))
        .collect();
    pending_prune(owner, "prune", &versions)
}

/// What deleting the resource must still delete: the pending prunes' bundles, and with
/// `Delete` those of every version it keeps. `None` when nothing is left to delete.
pub fn final_cleanup(
    owner: &str,
    status: &ModelStatus,
    policy: DeletionPolicy,
) -> Option<PendingPrune> {
    let pending = status.pruning.iter().flat_map(|prune| {
        prune
            .versions
            .iter()
            .map(String::as_str)
            .zip(prune.artifact_uris.iter().map(String::as_str))
    });
    let kept = status
        .versions
        .iter()
        .filter(|_| policy == DeletionPolicy::Delete)
        .map(|v| (v.version.as_str(), v.artifact_uri.as_str()));
    let mut versions: Vec<(&str, &str)> = pending.chain(kept).collect();
    versions.sort_unstable();
    versions.dedup();
    (!versions.is_empty()).then(|| pending_prune(owner, "cleanup", &versions))
}

/// The Job that runs `mooc-worker prune` on a prune's bundles. A retention prune is owned by the
/// resource; the final cleanup is not, so that a foreground deletion (which deletes dependents
/// first) cannot remove it before it ran; its TTL removes it afterwards.
pub fn prune_job<K: ModelKind>(
    object: &K,
    prune: &PendingPrune,
    default_image: &str,
    ttl_seconds: i32,
    owned: bool,
) -> Result<Job> {
    let mut args = vec!["prune".to_owned()];
    for uri in &prune.artifact_uris {
        args.extend(["--uri".to_owned(), uri.clone()]);
    }
    let container = Container {
        args: Some(args),
        env: Some(pods::s3_env(&object.training().artifacts.bucket)),
        ..Container::default()
    };
    let pod = pods::worker_pod(
        object.pod_settings(),
        default_image,
        container,
        PodSpec::default(),
    )
    .map_err(|error| Error::InvalidSpec(error.to_string()))?;
    let mut job = jobs::owned_job(object, K::LABEL, &prune.job, &prune.job, pod, ttl_seconds);
    if !owned {
        job.metadata.owner_references = None;
    }
    // For people (and tests): what the Job deletes, whatever its pod runs.
    job.metadata.annotations =
        Some([(PRUNED_ANNOTATION.to_owned(), prune.versions.join(","))].into());
    Ok(job)
}

/// Whether `object` is being deleted.
pub fn deleting<K: kube::Resource>(object: &K) -> bool {
    object.meta().deletion_timestamp.is_some()
}

/// Whether `object` holds the finalizer.
pub fn holds_finalizer<K: kube::Resource>(object: &K) -> bool {
    object
        .meta()
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == FINALIZER))
}

/// The finalizers of `object` with ours added or removed, for a patch that carries the
/// resourceVersion read (a concurrent change fails it instead of losing someone's finalizer).
pub fn finalizer_patch<K: kube::Resource>(object: &K, hold: bool) -> serde_json::Value {
    let mut finalizers: Vec<String> = object
        .meta()
        .finalizers
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f != FINALIZER)
        .collect();
    if hold {
        finalizers.push(FINALIZER.to_owned());
    }
    serde_json::json!({
        "metadata": {
            "resourceVersion": object.meta().resource_version,
            "finalizers": finalizers,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::to_time;
    use mooc_crds::TrainingRun;
    use serde_json::json;

    fn version(name: &str) -> ModelVersion {
        ModelVersion {
            version: name.into(),
            run: "g1".into(),
            created: to_time(chrono::DateTime::UNIX_EPOCH),
            artifact_uri: format!("s3://models/models/dropout/{name}/"),
            data_fingerprint: None,
            metrics: Default::default(),
            promotion: None,
        }
    }

    fn training_run(finalizers: serde_json::Value) -> TrainingRun {
        serde_json::from_value(json!({
            "apiVersion": "mooc.recsys.io/v1alpha1", "kind": "TrainingRun",
            "metadata": { "name": "dropout", "namespace": "ml", "uid": "u-2", "resourceVersion": "7", "finalizers": finalizers },
            "spec": {
                "dataLoadRef": { "name": "mooc-data" },
                "artifacts": { "endpoint": "http://s3:8333", "bucket": "models", "credentialsSecretRef": { "name": "s3" } },
            },
        }))
        .unwrap()
    }

    #[test]
    fn a_prune_is_named_after_its_bundles_and_its_job_deletes_exactly_them() {
        let prune = retention_prune("dropout", &[version("v1"), version("v2")]);
        assert_eq!(
            prune,
            retention_prune("dropout", &[version("v1"), version("v2")])
        );
        assert_ne!(prune.job, retention_prune("dropout", &[version("v1")]).job);
        assert!(prune.job.starts_with("dropout-prune-"), "{}", prune.job);
        assert_eq!(prune.versions, ["v1", "v2"]);

        let tr = training_run(json!([]));
        let job = prune_job(&tr, &prune, "img", 60, true).unwrap();
        let args = job
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .args
            .clone()
            .unwrap();
        assert_eq!(
            args,
            [
                "prune",
                "--uri",
                "s3://models/models/dropout/v1/",
                "--uri",
                "s3://models/models/dropout/v2/"
            ]
        );
        assert_eq!(
            job.metadata.annotations.as_ref().unwrap()[PRUNED_ANNOTATION],
            "v1,v2"
        );
        assert_eq!(
            job.metadata.owner_references.as_ref().unwrap()[0].uid,
            "u-2"
        );
        let unowned = prune_job(&tr, &prune, "img", 60, false).unwrap();
        assert_eq!(unowned.metadata.owner_references, None);
    }

    #[test]
    fn the_final_cleanup_takes_pending_prunes_and_with_delete_every_version() {
        let mut status = ModelStatus {
            versions: vec![version("v3"), version("v2")],
            ..ModelStatus::default()
        };
        assert_eq!(
            final_cleanup("dropout", &status, DeletionPolicy::Retain),
            None
        );

        status
            .pruning
            .push(retention_prune("dropout", &[version("v1")]));
        let retain = final_cleanup("dropout", &status, DeletionPolicy::Retain).unwrap();
        assert_eq!(retain.versions, ["v1"]);
        assert!(retain.job.starts_with("dropout-cleanup-"), "{}", retain.job);

        let delete = final_cleanup("dropout", &status, DeletionPolicy::Delete).unwrap();
        assert_eq!(delete.versions, ["v1", "v2", "v3"]);
        assert_eq!(delete.artifact_uris.len(), 3);
    }

    #[test]
    fn the_finalizer_patch_keeps_other_finalizers_and_the_resource_version() {
        let tr = training_run(json!(["example.com/other"]));
        assert!(!holds_finalizer(&tr));
        let hold = finalizer_patch(&tr, true);
        assert_eq!(
            hold,
            json!({ "metadata": { "resourceVersion": "7", "finalizers": ["example.com/other", FINALIZER] } })
        );
        let held = training_run(json!([FINALIZER, "example.com/other"]));
        assert!(holds_finalizer(&held));
        assert_eq!(
            finalizer_patch(&held, false)["metadata"]["finalizers"],
            json!(["example.com/other"])
        );
    }
}
