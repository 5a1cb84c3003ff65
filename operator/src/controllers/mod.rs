//! The four controllers and what they share: the status write, the conditions and phase of a
//! Job-running kind, requeue timing and the per-object error backoff.

pub mod bundles;
pub mod dataload;
pub mod model;
pub mod stream;

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::PostParams;
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use mooc_crds::common::{CommonStatus, JobPhase, RunPhase, RunStatus};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::{from_time, to_time};
use crate::conditions::{self, READY, RECONCILING, STALLED, Update};
use crate::context::{Context, Error, Result};
use crate::metrics::{ErrorLabels, KindLabel};

/// Longest wait between two reconciles of an idle object (a resync against missed events).
const RESYNC: Duration = Duration::from_secs(3600);
/// How often an object with an active run is looked at besides its Job's events.
const ACTIVE_RESYNC: Duration = Duration::from_secs(60);
const BACKOFF_BASE: Duration = Duration::from_secs(2);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Writes `object` with the status `set` gives it. The write carries the resourceVersion that
/// was read, so a concurrent change fails it with a conflict rather than being overwritten.
pub async fn write_status<K>(ctx: &Context, object: &K, set: impl FnOnce(&mut K)) -> Result<K>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    let mut updated = object.clone();
    set(&mut updated);
    Ok(api
        .replace_status(&object.name_any(), &PostParams::default(), &updated)
        .await?)
}

/// Marks the spec as one that cannot be acted on; returns whether `Stalled` was not already set
/// with this message (an event is worth sending).
pub fn stall(
    common: &mut CommonStatus,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) -> bool {
    let already = common
        .conditions
        .iter()
        .any(|c| c.type_ == STALLED && c.status == "True" && c.message == message);
    let updates = [
        Update::new(STALLED, true, "InvalidSpec", message),
        Update::new(READY, false, "InvalidSpec", message),
        Update::new(
            RECONCILING,
            false,
            "InvalidSpec",
            "waiting for the spec to be fixed",
        ),
    ];
    apply(common, updates, generation, now);
    !already
}

/// Sets `updates` and the observed generation.
pub fn apply<'a>(
    common: &mut CommonStatus,
    updates: impl IntoIterator<Item = Update<'a>>,
    generation: Option<i64>,
    now: &Time,
) {
    for update in updates {
        conditions::set(&mut common.conditions, update, generation, now);
    }
    common.observed_generation = generation;
}

/// What the conditions of a Job-running kind are built from.
pub struct RunState<'a> {
    pub runs: &'a RunStatus,
    pub suspended: bool,
    /// Why the resource waits for a dependency, if it does.
    pub waiting_for: Option<String>,
    /// Why a finished run's result is not usable yet (a model without an active version).
    pub unusable: Option<String>,
}

/// The phase and the `Ready`, `Reconciling` and `Stalled` conditions: `Ready` once the newest
/// finished run succeeded and its result is usable, `Reconciling` while a run is pending or
/// running (so that kstatus, Argo CD and Flux see progress).
pub fn run_conditions(state: &RunState<'_>) -> (JobPhase, Vec<Update<'static>>) {
    let runs = &state.runs.runs;
    let active = runs.iter().find(|run| !run.phase.is_finished());
    let finished = runs.iter().find(|run| run.phase.is_finished());
    let reconciling = match active {
        Some(run) => Update::new(
            RECONCILING,
            true,
            "RunInProgress",
            format!("run {} is {:?}", run.id, run.phase),
        ),
        None => Update::new(RECONCILING, false, "Idle", "no run in progress"),
    };
    let ready = match (finished, &state.unusable) {
        (Some(run), _) if run.phase == RunPhase::Failed => Update::new(
            READY,
            false,
            "RunFailed",
            format!(
                "run {} failed: {}",
                run.id,
                run.message.as_deref().unwrap_or("no message")
            ),
        ),
        (Some(_), Some(why)) => Update::new(READY, false, "NotUsable", why.clone()),
        (Some(run), None) => Update::new(
            READY,
            true,
            "RunSucceeded",
            format!("run {} succeeded", run.id),
        ),
        (None, _) => match (&state.waiting_for, active) {
            (Some(why), _) => Update::new(READY, false, "WaitingForDependencies", why.clone()),
            (None, Some(run)) => Update::new(
                READY,
                false,
                "FirstRunInProgress",
                format!("run {} has not finished", run.id),
            ),
            (None, None) => Update::new(READY, false, "NoRun", "no run has been started"),
        },
    };
    let phase = match (active, finished) {
        (Some(run), _) if run.phase == RunPhase::Running => JobPhase::Running,
        (Some(_), _) => JobPhase::Pending,
        _ if state.suspended => JobPhase::Suspended,
        _ if state.waiting_for.is_some() => JobPhase::Waiting,
        (None, Some(run)) if run.phase == RunPhase::Succeeded => JobPhase::Succeeded,
        (None, Some(_)) => JobPhase::Failed,
        (None, None) => JobPhase::Pending,
    };
    let valid = Update::new(STALLED, false, "SpecValid", "the spec is valid");
    (phase, vec![ready, reconciling, valid])
}

/// When to look again: at the next scheduled time, soon while a run is active, else at the resync.
pub fn requeue_after(now: DateTime<Utc>, runs: &RunStatus) -> Duration {
    let active = runs.runs.iter().any(|run| !run.phase.is_finished());
    let mut wait = if active { ACTIVE_RESYNC } else { RESYNC };
    if let Some(next) = &runs.next_schedule_time {
        let until = (from_time(next) - now).to_std().unwrap_or(Duration::ZERO);
        // A second past the scheduled time, so that the schedule is surely due.
        wait = wait.min(until + Duration::from_secs(1));
    }
    wait
}

/// Exponential backoff per object: 2 s doubling up to 5 min, reset by a successful reconcile.
pub fn backoff(failures: u32) -> Duration {
    BACKOFF_BASE
        .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1)))
        .min(BACKOFF_MAX)
}

/// Runs one reconcile with its metrics, logs and backoff bookkeeping.
pub async fn instrumented<K, F>(
    kind: &'static str,
    object: &K,
    ctx: &Context,
    reconcile: F,
) -> Result<Action>
where
    K: Resource<DynamicType = ()>,
    F: Future<Output = Result<Action>>,
{
    let started = Instant::now();
    let key = format!(
        "{kind}/{}/{}",
        object.meta().namespace.as_deref().unwrap_or(""),
        object.meta().name.as_deref().unwrap_or("")
    );
    ctx.metrics
        .reconciles
        .get_or_create(&KindLabel { kind })
        .inc();
    let result = reconcile.await;
    ctx.metrics
        .duration
        .get_or_create(&KindLabel { kind })
        .observe(started.elapsed().as_secs_f64());
    match &result {
        Ok(_) => ctx.reset_failures(&key),
        Err(error) => {
            ctx.metrics
                .errors
                .get_or_create(&ErrorLabels {
                    kind,
                    category: error.category(),
                })
                .inc();
            tracing::warn!(object = %key, %error, "reconcile failed");
        }
    }
    result
}

/// The error policy of every controller: retry with the object's own backoff.
pub fn error_policy<K: Resource<DynamicType = ()>>(
    kind: &'static str,
) -> impl Fn(Arc<K>, &Error, Arc<Context>) -> Action {
    move |object, _error, ctx| {
        let key = format!(
            "{kind}/{}/{}",
            object.meta().namespace.as_deref().unwrap_or(""),
            object.meta().name.as_deref().unwrap_or("")
        );
        Action::requeue(backoff(ctx.count_failure(&key)))
    }
}

/// The current time as a condition timestamp.
pub fn now_time(ctx: &Context) -> Time {
    to_time(ctx.now())
}

/// Whether `conditions` hold `Ready=True`.
pub fn ready(conditions: &[Condition]) -> bool {
    conditions::is_true(conditions, READY)
}

/// Where the controllers watch: one namespace, or all of them.
#[derive(Clone, Debug)]
pub struct Scope(pub Option<String>);

impl Scope {
    pub fn api<K>(&self, client: &kube::Client) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        match &self.0 {
            Some(namespace) => Api::namespaced(client.clone(), namespace),
            None => Api::all(client.clone()),
        }
    }
}

/// Consumes a controller's results; its reconcile errors are logged and counted where they happen.
async fn drain<S: futures::Stream + Unpin>(results: S) {
    use futures::StreamExt;
    results.for_each(|_| async {}).await;
}

/// Runs the four controllers until SIGTERM or Ctrl-C.
pub async fn run(ctx: Arc<Context>, scope: Scope) {
    use futures::StreamExt;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::batch::v1::Job;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::{Controller, reflector::ObjectRef, watcher};
    use mooc_crds::{ALSJob, DataLoad, StreamDeployment, TrainingRun};

    let client = ctx.client.clone();
    let all = watcher::Config::default();
    let ours = watcher::Config::default().labels(&format!(
        "app.kubernetes.io/managed-by={}",
        crate::jobs::MANAGED_BY
    ));

    let dataloads = Controller::new(scope.api::<DataLoad>(&client), all.clone())
        .owns(scope.api::<Job>(&client), ours.clone())
        .shutdown_on_signal()
        .run(
            dataload::reconcile,
            error_policy(dataload::LABEL),
            ctx.clone(),
        )
        .boxed();

    fn model_controller<K: model::ModelKind>(
        ctx: Arc<Context>,
        scope: &Scope,
        all: &watcher::Config,
        ours: &watcher::Config,
    ) -> impl Future<Output = ()> + Send + 'static {
        let client = ctx.client.clone();
        let controller = Controller::new(scope.api::<K>(&client), all.clone())
            .owns(scope.api::<Job>(&client), ours.clone());
        let store = controller.store();
        let results = controller
            .watches(
                scope.api::<DataLoad>(&client),
                all.clone(),
                move |dataload: DataLoad| {
                    store
                        .state()
                        .into_iter()
                        .filter(|object| {
                            object.namespace() == dataload.namespace()
                                && object.training().data_load_ref.name == dataload.name_any()
                        })
                        .map(|object| ObjectRef::from_obj(&*object))
                        .collect::<Vec<_>>()
                },
            )
            .shutdown_on_signal()
            .run(model::reconcile::<K>, error_policy(K::LABEL), ctx)
            .boxed();
        drain(results)
    }
    let training_runs = model_controller::<TrainingRun>(ctx.clone(), &scope, &all, &ours);
    let als_jobs = model_controller::<ALSJob>(ctx.clone(), &scope, &all, &ours);

    let streams = Controller::new(scope.api::<StreamDeployment>(&client), all.clone())
        .owns(scope.api::<Deployment>(&client), ours.clone())
        .owns(scope.api::<ConfigMap>(&client), ours.clone());
    let (by_training, by_als) = (streams.store(), streams.store());
    let referencing = |store: kube::runtime::reflector::Store<StreamDeployment>,
                       pick: fn(&StreamDeployment) -> &str| {
        move |namespace: Option<String>, name: String| {
            store
                .state()
                .into_iter()
                .filter(|sd| sd.namespace() == namespace && pick(sd) == name)
                .map(|sd| ObjectRef::from_obj(&*sd))
                .collect::<Vec<_>>()
        }
    };
    let by_training = referencing(by_training, |sd| &sd.spec.training_run_ref.name);
    let by_als = referencing(by_als, |sd| &sd.spec.als_job_ref.name);
    let streams = streams
        .watches(
            scope.api::<TrainingRun>(&client),
            all.clone(),
            move |tr: TrainingRun| by_training(tr.namespace(), tr.name_any()),
        )
        .watches(scope.api::<ALSJob>(&client), all, move |als: ALSJob| {
            by_als(als.namespace(), als.name_any())
        })
        .shutdown_on_signal()
        .run(stream::reconcile, error_policy(stream::LABEL), ctx.clone())
        .boxed();

    futures::join!(drain(dataloads), training_runs, als_jobs, drain(streams));
}

#[cfg(test)]
mod tests {
    use super::*;
    use mooc_crds::common::{RunRecord, RunTrigger};

    fn run(id: &str, phase: RunPhase) -> RunRecord {
        RunRecord {
            id: id.into(),
            job: format!("x-{id}"),
            trigger: RunTrigger::Spec,
            phase,
            scheduled_time: None,
            start_time: to_time(DateTime::UNIX_EPOCH),
            completion_time: None,
            parameters: None,
            notes: None,
            result: None,
            message: Some("boom".into()),
        }
    }

    fn state(runs: &RunStatus) -> RunState<'_> {
        RunState {
            runs,
            suspended: false,
            waiting_for: None,
            unusable: None,
        }
    }

    fn status_of(updates: &[Update<'_>], type_: &str) -> (bool, String) {
        let update = updates.iter().find(|u| u.type_ == type_).unwrap();
        (update.status, update.reason.to_owned())
    }

    #[test]
    fn ready_follows_the_newest_finished_run_and_reconciling_the_active_one() {
        let runs = RunStatus {
            runs: vec![run("g2", RunPhase::Running), run("g1", RunPhase::Succeeded)],
            ..RunStatus::default()
        };
        let (phase, updates) = run_conditions(&state(&runs));
        assert_eq!(phase, JobPhase::Running);
        assert_eq!(status_of(&updates, READY), (true, "RunSucceeded".into()));
        assert_eq!(
            status_of(&updates, RECONCILING),
            (true, "RunInProgress".into())
        );
        assert_eq!(status_of(&updates, STALLED), (false, "SpecValid".into()));

        let runs = RunStatus {
            runs: vec![run("g2", RunPhase::Failed), run("g1", RunPhase::Succeeded)],
            ..RunStatus::default()
        };
        let (phase, updates) = run_conditions(&state(&runs));
        assert_eq!(phase, JobPhase::Failed);
        assert_eq!(status_of(&updates, READY), (false, "RunFailed".into()));
        assert!(updates[0].message.contains("boom"));
        assert_eq!(status_of(&updates, RECONCILING), (false, "Idle".into()));
    }

    #[test]
    fn waiting_suspended_and_unusable_results_are_told_apart() {
        let empty = RunStatus::default();
        let waiting = RunState {
            waiting_for: Some("DataLoad d is not Ready".into()),
            ..state(&empty)
        };
        let (phase, updates) = run_conditions(&waiting);
        assert_eq!(phase, JobPhase::Waiting);
        assert_eq!(
            status_of(&updates, READY),
            (false, "WaitingForDependencies".into())
        );

        let suspended = RunState {
            suspended: true,
            ..state(&empty)
        };
        assert_eq!(run_conditions(&suspended).0, JobPhase::Suspended);

        let runs = RunStatus {
            runs: vec![run("g1", RunPhase::Succeeded)],
            ..RunStatus::default()
        };
        let unusable = RunState {
            unusable: Some("no active version".into()),
            ..state(&runs)
        };
        let (phase, updates) = run_conditions(&unusable);
        assert_eq!(phase, JobPhase::Succeeded);
        assert_eq!(status_of(&updates, READY), (false, "NotUsable".into()));
    }

    #[test]
    fn requeue_waits_for_the_next_schedule_but_never_past_the_resync() {
        let now = DateTime::UNIX_EPOCH;
        let mut runs = RunStatus::default();
        assert_eq!(requeue_after(now, &runs), RESYNC);
        runs.next_schedule_time = Some(to_time(now + chrono::Duration::seconds(90)));
        assert_eq!(requeue_after(now, &runs), Duration::from_secs(91));
        runs.next_schedule_time = Some(to_time(now - chrono::Duration::seconds(5)));
        assert_eq!(requeue_after(now, &runs), Duration::from_secs(1));
        runs.next_schedule_time = None;
        runs.runs.push(run("g1", RunPhase::Pending));
        assert_eq!(requeue_after(now, &runs), ACTIVE_RESYNC);
    }

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let seconds: Vec<u64> = [1, 2, 3, 4, 8, 9, 40]
            .map(|n| backoff(n).as_secs())
            .to_vec();
        assert_eq!(seconds, [2, 4, 8, 16, 256, 300, 300]);
    }
}
