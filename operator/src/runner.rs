//! The run machinery the Job-running kinds share: follow the recorded runs' Jobs, plan and record
//! the next run, and after the status is written, create the Jobs of pending runs and delete the
//! Jobs of runs dropped from history.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PropagationPolicy};
use kube::{Api, Resource, ResourceExt};
use mooc_crds::common::{
    PAUSED_ANNOTATION, RUN_NOTES_ANNOTATION, RUN_NOW_ANNOTATION, RunPhase, RunRecord, RunStatus,
    Scheduling,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::{from_time, to_time};
use crate::context::{Context, Error, Result};
use crate::jobs::{self, JOB_NAME_LABEL, Outcome};
use crate::rbac::Rule;
use crate::runs::{self, Inputs, Plan, SkipReason};
use crate::schedule::{self, Decision, Schedule};

/// API access the run machinery needs: Jobs, their pods' termination messages, Events.
pub const RULES: &[Rule] = &[
    Rule::new(
        "batch",
        &["jobs"],
        &["get", "list", "watch", "create", "patch", "delete"],
    ),
    Rule::new("", &["pods"], &["get", "list"]),
    Rule::new("events.k8s.io", &["events"], &["create", "patch"]),
];

/// A kind whose runs are Jobs.
pub trait RunKind:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// Lower-case kind, for labels and metrics.
    const LABEL: &'static str;
    fn scheduling(&self) -> &Scheduling;
    /// The spec fields whose change starts a run, serialised (their hash is compared).
    fn run_defining(&self) -> serde_json::Value;
}

/// The `mooc.recsys.io/paused` annotation: reconciliation stops while it is `"true"`.
pub fn paused<K: Resource>(object: &K) -> bool {
    object
        .meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(PAUSED_ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// The parsed schedule, or the message of `Stalled`.
pub fn parse_schedule(scheduling: &Scheduling) -> Result<Option<Schedule>, String> {
    scheduling
        .schedule
        .as_deref()
        .map(|expression| Schedule::parse(expression, scheduling.time_zone.as_deref()))
        .transpose()
        .map_err(|error| error.to_string())
}

/// What happened to the runs in one reconcile.
#[derive(Default)]
pub struct Driven {
    /// Runs that finished since the last reconcile (their records are updated in status).
    pub finished: Vec<RunRecord>,
    /// The run recorded now; its Job is created once the status is written.
    pub started: Option<RunRecord>,
    pub skipped: Option<(chrono::DateTime<chrono::Utc>, SkipReason)>,
    /// Runs dropped from history; their Jobs are deleted once the status is written.
    pub dropped: Vec<RunRecord>,
}

/// Follows the recorded runs, plans the next one and records it in `status`.
pub async fn drive<K: RunKind>(
    ctx: &Context,
    object: &K,
    schedule: Option<&Schedule>,
    status: &mut RunStatus,
    dependencies_ready: bool,
    new_data: Option<&str>,
    parameters: serde_json::Value,
) -> Result<Driven> {
    let namespace = object.namespace().unwrap_or_default();
    let now = ctx.now();
    let mut driven = Driven {
        finished: follow(ctx, &namespace, &mut status.runs).await?,
        ..Driven::default()
    };
    let scheduling = object.scheduling();
    let decision = schedule.map(|schedule| {
        let last = status.last_schedule_time.as_ref().map(from_time);
        let created = object
            .meta()
            .creation_timestamp
            .as_ref()
            .map(from_time)
            .unwrap_or(now);
        let deadline = scheduling
            .starting_deadline_seconds
            .map(chrono::Duration::seconds);
        schedule::decide(schedule, last, created, now, deadline)
    });
    let spec_hash = crate::hash::short(object.run_defining().to_string().as_bytes());
    let annotations = object.annotations();
    let inputs = Inputs {
        generation: object.meta().generation.unwrap_or(0),
        spec_hash: &spec_hash,
        run_now: annotations.get(RUN_NOW_ANNOTATION).map(String::as_str),
        new_data,
        schedule: decision.as_ref(),
        suspended: scheduling.suspend,
        dependencies_ready,
        policy: scheduling.concurrency_policy,
    };
    match runs::plan(status, &inputs) {
        Plan::Idle => {}
        Plan::SkipSchedule { scheduled, reason } => {
            status.last_schedule_time = Some(to_time(scheduled));
            driven.skipped = Some((scheduled, reason));
        }
        Plan::Start(planned) => {
            if planned.replace_active {
                replace_active(ctx, &namespace, &mut status.runs, &planned.id).await?;
            }
            let job = runs::job_name(&object.name_any(), &planned.id);
            let notes = annotations.get(RUN_NOTES_ANNOTATION).cloned();
            if runs::record_start(status, &planned, &inputs, job, parameters, notes, now) {
                driven.started = status.runs.first().cloned();
            }
        }
    }
    status.next_schedule_time = match &decision {
        Some(
            Decision::Wait { next } | Decision::Run { next, .. } | Decision::Missed { next, .. },
        ) => next.map(to_time),
        None => None,
    };
    let (kept, dropped) = runs::trim_history(
        std::mem::take(&mut status.runs),
        scheduling.successful_runs_history_limit,
        scheduling.failed_runs_history_limit,
    );
    status.runs = kept;
    driven.dropped = dropped;
    if let Some(finished) = status
        .runs
        .iter()
        .find(|run| run.phase == RunPhase::Succeeded)
    {
        status.last_successful_time = finished.completion_time.clone();
    }
    Ok(driven)
}

/// Updates each unfinished run from its Job; returns the runs that finished.
async fn follow(ctx: &Context, namespace: &str, runs: &mut [RunRecord]) -> Result<Vec<RunRecord>> {
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), namespace);
    let mut finished = Vec::new();
    for run in runs.iter_mut().filter(|run| !run.phase.is_finished()) {
        let Some(job) = jobs.get_opt(&run.job).await? else {
            if run.phase == RunPhase::Running {
                run.phase = RunPhase::Failed;
                run.completion_time = Some(to_time(ctx.now()));
                run.message = Some(format!("Job {} was deleted before it finished", run.job));
                finished.push(run.clone());
            }
            continue;
        };
        match jobs::outcome(&job) {
            Outcome::Active => run.phase = RunPhase::Running,
            Outcome::Succeeded => {
                run.phase = RunPhase::Succeeded;
                read_result(ctx, namespace, run).await?;
            }
            Outcome::Failed(reason) => {
                run.phase = RunPhase::Failed;
                read_result(ctx, namespace, run).await?;
                run.message.get_or_insert(reason);
            }
        }
        if run.phase.is_finished() {
            run.completion_time = Some(to_time(ctx.now()));
            finished.push(run.clone());
        }
    }
    Ok(finished)
}

/// Reads the worker's termination message into the run.
async fn read_result(ctx: &Context, namespace: &str, run: &mut RunRecord) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let listed = pods
        .list(&ListParams::default().labels(&format!("{JOB_NAME_LABEL}={}", run.job)))
        .await?;
    match jobs::termination_message(&listed.items).map(|m| jobs::parse_message(&m)) {
        Some(Ok(result)) => {
            if let Some(error) = result.get("error").and_then(|e| e.as_str()) {
                run.message = Some(error.to_owned());
            }
            run.result = Some(result);
        }
        Some(Err(text)) => run.message = Some(text),
        None => {}
    }
    Ok(())
}

/// `concurrencyPolicy: Replace`: the active runs' Jobs are deleted and their records closed.
async fn replace_active(
    ctx: &Context,
    namespace: &str,
    runs: &mut [RunRecord],
    by: &str,
) -> Result<()> {
    for run in runs.iter_mut().filter(|run| !run.phase.is_finished()) {
        delete_job(ctx, namespace, &run.job).await?;
        run.phase = RunPhase::Failed;
        run.completion_time = Some(to_time(ctx.now()));
        run.message = Some(format!("replaced by run {by} (concurrencyPolicy: Replace)"));
    }
    Ok(())
}

/// After the status is written: creates the Job of every pending run (also one recorded before a
/// crash) and marks it running, deletes the Jobs of dropped runs. Returns whether `status` changed
/// (it is then written again, so that a Job deleted by its TTL is never taken for one to create).
pub async fn apply_jobs<K: RunKind>(
    ctx: &Context,
    object: &K,
    status: &mut RunStatus,
    dropped: &[RunRecord],
    pod: impl Fn(&RunRecord) -> Result<k8s_openapi::api::core::v1::PodSpec>,
) -> Result<bool> {
    let namespace = object.namespace().unwrap_or_default();
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut changed = false;
    for run in status
        .runs
        .iter_mut()
        .filter(|run| run.phase == RunPhase::Pending)
    {
        if jobs.get_opt(&run.job).await?.is_none() {
            let job = jobs::run_job(object, K::LABEL, run, pod(run)?, ctx.config.job_ttl_seconds);
            jobs.patch(
                &run.job,
                &PatchParams::apply(jobs::MANAGED_BY).force(),
                &Patch::Apply(&job),
            )
            .await?;
            ctx.metrics
                .runs_started
                .get_or_create(&crate::metrics::KindLabel { kind: K::LABEL })
                .inc();
            let note = format!(
                "run {} ({:?}) started as Job {}",
                run.id, run.trigger, run.job
            );
            ctx.event(object, false, "RunStarted", note).await;
        }
        run.phase = RunPhase::Running;
        changed = true;
    }
    for run in dropped {
        delete_job(ctx, &namespace, &run.job).await?;
    }
    Ok(changed)
}

/// Deletes a Job and, in the background, its pods; an absent Job is fine.
pub async fn delete_job(ctx: &Context, namespace: &str, name: &str) -> Result<()> {
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), namespace);
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    match jobs.delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(error) => Err(Error::Kube(error)),
    }
}

/// Events for what `drive` did besides starting runs (that event follows the Job's creation).
pub async fn report<K: RunKind>(ctx: &Context, object: &K, driven: &Driven) {
    for run in &driven.finished {
        let (warning, reason) = match run.phase {
            RunPhase::Succeeded => (false, "RunSucceeded"),
            _ => (true, "RunFailed"),
        };
        let detail = run
            .message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        ctx.event(object, warning, reason, format!("run {}{detail}", run.id))
            .await;
    }
    if let Some((scheduled, reason)) = driven.skipped {
        let why = match reason {
            SkipReason::RunActive => "another run was still active (concurrencyPolicy: Forbid)",
            SkipReason::PastDeadline => "it was past startingDeadlineSeconds",
        };
        ctx.event(
            object,
            true,
            "ScheduledRunSkipped",
            format!("the run scheduled for {scheduled} did not start: {why}"),
        )
        .await;
    }
}
