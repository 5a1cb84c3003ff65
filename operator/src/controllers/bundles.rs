//! The I/O of bundle deletion for TrainingRun and ALSJob (decisions in `crate::cleanup`): follow
//! and start the retention prunes, hold the finalizer, and run the final cleanup on deletion.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use mooc_crds::model::PendingPrune;

use super::model::ModelKind;
use crate::cleanup::{self, final_cleanup, finalizer_patch, prune_job};
use crate::context::{Context, Error, Result};
use crate::jobs::{self, Outcome};
use crate::runner;

/// How often a deleted resource looks at its cleanup Job (it owns no Job whose events would wake it).
const CLEANUP_POLL: Duration = Duration::from_secs(5);
/// Wait before a failed cleanup Job is run again.
const CLEANUP_RETRY: Duration = Duration::from_secs(60);

type Note = (bool, &'static str, String);

/// Adds the finalizer.
pub async fn hold<K: ModelKind>(ctx: &Context, object: &K) -> Result<()> {
    patch_finalizers(ctx, object, true).await
}

async fn patch_finalizers<K: ModelKind>(ctx: &Context, object: &K, hold: bool) -> Result<()> {
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    api.patch(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::Merge(finalizer_patch(object, hold)),
    )
    .await?;
    Ok(())
}

/// Follows the pending prunes: a succeeded one is dropped from `pending`, a failed one's Job is
/// deleted so that [`start`] runs it again. Returns the events to send.
pub async fn settle<K: ModelKind>(
    ctx: &Context,
    object: &K,
    pending: &mut Vec<PendingPrune>,
) -> Result<Vec<Note>> {
    let namespace = object.namespace().unwrap_or_default();
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut notes = Vec::new();
    let mut still = Vec::new();
    for prune in pending.drain(..) {
        match jobs.get_opt(&prune.job).await?.as_ref().map(jobs::outcome) {
            Some(Outcome::Succeeded) => notes.push((
                false,
                "BundlesDeleted",
                format!("the bundles of {} are deleted", prune.versions.join(", ")),
            )),
            Some(Outcome::Failed(reason)) => {
                notes.push((
                    true,
                    "PruneFailed",
                    format!(
                        "Job {} could not delete the bundles of {} ({reason}); it runs again",
                        prune.job,
                        prune.versions.join(", ")
                    ),
                ));
                runner::delete_job(ctx, &namespace, &prune.job).await?;
                still.push(prune);
            }
            Some(Outcome::Active) | None => still.push(prune),
        }
    }
    *pending = still;
    Ok(notes)
}

/// After the status is written: creates the Job of every pending prune that has none.
pub async fn start<K: ModelKind>(
    ctx: &Context,
    object: &K,
    pending: &[PendingPrune],
) -> Result<()> {
    let jobs: Api<Job> =
        Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    for prune in pending {
        if jobs.get_opt(&prune.job).await?.is_some() {
            continue;
        }
        let job = prune_job(
            object,
            prune,
            &ctx.config.worker_image,
            ctx.config.job_ttl_seconds,
            true,
        )?;
        jobs.patch(
            &prune.job,
            &PatchParams::apply(jobs::MANAGED_BY).force(),
            &Patch::Apply(&job),
        )
        .await?;
        let note = format!(
            "Job {} deletes the bundles of {}",
            prune.job,
            prune.versions.join(", ")
        );
        ctx.event(object, false, "VersionsPruned", note).await;
    }
    Ok(())
}

/// A deleted resource: deletes what must go (pending prunes; everything with `Delete`) with a
/// Job of its own, and releases the finalizer once that Job succeeded.
pub async fn finalize<K: ModelKind>(ctx: &Context, object: &K) -> Result<Action> {
    if !cleanup::holds_finalizer(object) {
        return Ok(Action::await_change());
    }
    let status = object.model_status().cloned().unwrap_or_default();
    let policy = object.training().artifacts.deletion_policy;
    let Some(cleanup) = final_cleanup(&object.name_any(), &status, policy) else {
        patch_finalizers(ctx, object, false).await?;
        return Ok(Action::await_change());
    };
    let namespace = object.namespace().unwrap_or_default();
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    let versions = cleanup.versions.join(", ");
    match jobs
        .get_opt(&cleanup.job)
        .await?
        .as_ref()
        .map(jobs::outcome)
    {
        None => {
            let job = prune_job(
                object,
                &cleanup,
                &ctx.config.worker_image,
                ctx.config.job_ttl_seconds,
                false,
            )?;
            match jobs.create(&PostParams::default(), &job).await {
                Ok(_) => {
                    let note = format!("Job {} deletes the bundles of {versions}", cleanup.job);
                    ctx.event(object, false, "CleanupStarted", note).await;
                }
                Err(kube::Error::Api(status)) if namespace_terminating(&status) => {
                    // Nothing can run here any more; holding on would keep the namespace forever.
                    let note = format!(
                        "the namespace is being deleted, so no Job can delete the bundles of \
                         {versions}; left in place: {}",
                        cleanup.artifact_uris.join(" ")
                    );
                    ctx.event(object, true, "BundlesLeftBehind", note).await;
                    patch_finalizers(ctx, object, false).await?;
                    return Ok(Action::await_change());
                }
                Err(error) => return Err(Error::Kube(error)),
            }
        }
        Some(Outcome::Succeeded) => {
            let note = format!("the bundles of {versions} are deleted");
            ctx.event(object, false, "BundlesDeleted", note).await;
            patch_finalizers(ctx, object, false).await?;
            return Ok(Action::await_change());
        }
        Some(Outcome::Failed(reason)) => {
            let note = format!(
                "Job {} could not delete the bundles of {versions} ({reason}); it runs again in \
                 {} s, or remove the finalizer {} to give up",
                cleanup.job,
                CLEANUP_RETRY.as_secs(),
                cleanup::FINALIZER
            );
            ctx.event(object, true, "CleanupFailed", note).await;
            runner::delete_job(ctx, &namespace, &cleanup.job).await?;
            return Ok(Action::requeue(CLEANUP_RETRY));
        }
        Some(Outcome::Active) => {}
    }
    Ok(Action::requeue(CLEANUP_POLL))
}

/// The API server's answer to a create in a namespace that is being deleted.
fn namespace_terminating(status: &kube::core::Status) -> bool {
    status.is_forbidden() && status.message.contains("being terminated")
}
