//! When to start a run, pure: the triggers (spec change, run-now annotation, new data, schedule),
//! the concurrency policy and the run history decide; the controller does the I/O.
//!
//! Each trigger is consumed by writing it into status together with the run record, before the
//! Job is created, and run ids are deterministic: a reconcile repeated after a crash, a restart or
//! the Job's TTL deletion finds the record and starts nothing twice.

use chrono::{DateTime, Utc};
use mooc_crds::common::{ConcurrencyPolicy, RunPhase, RunRecord, RunStatus, RunTrigger};

use crate::clock::to_time;
use crate::hash;
use crate::schedule::{self, Decision};

/// Kubernetes object names that are also label values: at most 63 characters.
const MAX_NAME: usize = 63;

/// What the controller knows when it decides.
#[derive(Clone, Debug)]
pub struct Inputs<'a> {
    pub generation: i64,
    /// Hash of the spec fields that define a run.
    pub spec_hash: &'a str,
    /// The `mooc.recsys.io/run-now` annotation.
    pub run_now: Option<&'a str>,
    /// The dependency's data fingerprint when it differs from the one last trained on and the
    /// resource retrains on new data.
    pub new_data: Option<&'a str>,
    pub schedule: Option<&'a Decision>,
    pub suspended: bool,
    /// Dependencies are ready; until then triggers stay pending.
    pub dependencies_ready: bool,
    pub policy: ConcurrencyPolicy,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// Nothing to start now.
    Idle,
    Start(Planned),
    /// A scheduled time passes without a run; recorded so that it is neither retried nor silent.
    SkipSchedule {
        scheduled: DateTime<Utc>,
        reason: SkipReason,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// `concurrencyPolicy: Forbid` and a run was still active.
    RunActive,
    /// Past `startingDeadlineSeconds`.
    PastDeadline,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    pub id: String,
    pub trigger: RunTrigger,
    /// Set when the run also covers a due schedule time.
    pub scheduled: Option<DateTime<Utc>>,
    /// `concurrencyPolicy: Replace`: stop the active runs first.
    pub replace_active: bool,
}

/// Decides what to start. At most one run per reconcile; the pending trigger that a person caused
/// last wins the label (run-now, then spec, then new data, then the schedule).
pub fn plan(status: &RunStatus, inputs: &Inputs<'_>) -> Plan {
    if inputs.suspended || !inputs.dependencies_ready {
        return Plan::Idle;
    }
    let due = match inputs.schedule {
        Some(Decision::Run { scheduled, .. }) => Some(*scheduled),
        Some(Decision::Missed { scheduled, .. }) => {
            return Plan::SkipSchedule {
                scheduled: *scheduled,
                reason: SkipReason::PastDeadline,
            };
        }
        _ => None,
    };
    let Some((id, trigger)) = pending_trigger(status, inputs, due) else {
        return Plan::Idle;
    };
    let active = status.runs.iter().any(|run| !run.phase.is_finished());
    if active && inputs.policy == ConcurrencyPolicy::Forbid {
        return match (trigger, due) {
            (RunTrigger::Schedule, Some(scheduled)) => Plan::SkipSchedule {
                scheduled,
                reason: SkipReason::RunActive,
            },
            _ => Plan::Idle,
        };
    }
    Plan::Start(Planned {
        id,
        trigger,
        scheduled: due,
        replace_active: active && inputs.policy == ConcurrencyPolicy::Replace,
    })
}

fn pending_trigger(
    status: &RunStatus,
    inputs: &Inputs<'_>,
    due: Option<DateTime<Utc>>,
) -> Option<(String, RunTrigger)> {
    if let Some(token) = inputs
        .run_now
        .filter(|token| status.last_run_now.as_deref() != Some(*token))
    {
        return Some((
            format!("n{}", hash::short(token.as_bytes())),
            RunTrigger::RunNow,
        ));
    }
    if status.last_spec_hash.as_deref() != Some(inputs.spec_hash) {
        return Some((format!("g{}", inputs.generation), RunTrigger::Spec));
    }
    if let Some(fingerprint) = inputs.new_data {
        return Some((
            format!("d{}", hash::short(fingerprint.as_bytes())),
            RunTrigger::NewData,
        ));
    }
    due.map(|scheduled| (schedule::run_id(scheduled), RunTrigger::Schedule))
}

/// Records the run in `status` and consumes every trigger it answers. Returns false when a run
/// with that id was already recorded (the trigger is consumed, nothing is to be started).
pub fn record_start(
    status: &mut RunStatus,
    planned: &Planned,
    inputs: &Inputs<'_>,
    job: String,
    parameters: serde_json::Value,
    notes: Option<String>,
    now: DateTime<Utc>,
) -> bool {
    status.last_spec_hash = Some(inputs.spec_hash.to_owned());
    if let Some(token) = inputs.run_now {
        status.last_run_now = Some(token.to_owned());
    }
    if let Some(scheduled) = planned.scheduled {
        status.last_schedule_time = Some(to_time(scheduled));
    }
    if status.runs.iter().any(|run| run.id == planned.id) {
        return false;
    }
    status.runs.insert(
        0,
        RunRecord {
            id: planned.id.clone(),
            job,
            trigger: planned.trigger,
            phase: RunPhase::Pending,
            scheduled_time: planned.scheduled.map(to_time),
            start_time: to_time(now),
            completion_time: None,
            parameters: Some(parameters),
            notes,
            result: None,
            message: None,
        },
    );
    true
}

/// Splits the history into the records kept (every unfinished one, the newest succeeded and
/// failed ones up to their limits) and the ones dropped (their Jobs are deleted).
pub fn trim_history(
    runs: Vec<RunRecord>,
    successful_limit: u32,
    failed_limit: u32,
) -> (Vec<RunRecord>, Vec<RunRecord>) {
    let (mut succeeded, mut failed) = (0, 0);
    runs.into_iter().partition(|run| {
        let (seen, limit) = match run.phase {
            RunPhase::Succeeded => (&mut succeeded, successful_limit),
            RunPhase::Failed => (&mut failed, failed_limit),
            RunPhase::Pending | RunPhase::Running => return true,
        };
        *seen += 1;
        *seen <= limit
    })
}

/// `<resource>-<run id>`, shortened with a hash of the full name when it would exceed 63
/// characters, so that names stay unique and deterministic.
pub fn job_name(resource: &str, run_id: &str) -> String {
    let full = format!("{resource}-{run_id}");
    if full.len() <= MAX_NAME {
        return full;
    }
    let suffix = format!("-{}-{run_id}", hash::short(full.as_bytes()));
    let keep = MAX_NAME.saturating_sub(suffix.len());
    let mut prefix: String = resource.chars().take(keep).collect();
    while prefix.len() > keep || prefix.ends_with('-') || prefix.ends_with('.') {
        prefix.pop();
    }
    format!("{prefix}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, hour, minute, 0).unwrap()
    }

    fn inputs<'a>() -> Inputs<'a> {
        Inputs {
            generation: 1,
            spec_hash: "h1",
            run_now: None,
            new_data: None,
            schedule: None,
            suspended: false,
            dependencies_ready: true,
            policy: ConcurrencyPolicy::Forbid,
        }
    }

    fn started(status: &mut RunStatus, inputs: &Inputs<'_>) -> Planned {
        let Plan::Start(planned) = plan(status, inputs) else {
            panic!("expected a run, got {:?}", plan(status, inputs));
        };
        assert!(record_start(
            status,
            &planned,
            inputs,
            job_name("dl", &planned.id),
            serde_json::json!({}),
            None,
            at(12, 0)
        ));
        planned
    }

    fn finish(status: &mut RunStatus, phase: RunPhase) {
        status.runs[0].phase = phase;
    }

    #[test]
    fn creation_starts_one_run_and_repeating_the_reconcile_starts_none() {
        let mut status = RunStatus::default();
        let planned = started(&mut status, &inputs());
        assert_eq!(planned.id, "g1");
        assert_eq!(planned.trigger, RunTrigger::Spec);
        assert_eq!(status.runs[0].job, "dl-g1");
        assert_eq!(status.runs[0].phase, RunPhase::Pending);
        finish(&mut status, RunPhase::Succeeded);
        assert_eq!(plan(&status, &inputs()), Plan::Idle);
    }

    #[test]
    fn a_run_now_token_starts_once_and_a_new_token_again() {
        let mut status = RunStatus::default();
        started(&mut status, &inputs());
        finish(&mut status, RunPhase::Succeeded);
        let first = Inputs {
            run_now: Some("2026-12-03T12:00"),
            ..inputs()
        };
        let planned = started(&mut status, &first);
        assert_eq!(planned.trigger, RunTrigger::RunNow);
        assert!(
            planned.id.starts_with('n') && planned.id.len() == 9,
            "{}",
            planned.id
        );
        finish(&mut status, RunPhase::Succeeded);
        assert_eq!(plan(&status, &first), Plan::Idle);
        let second = Inputs {
            run_now: Some("again"),
            ..inputs()
        };
        assert_ne!(started(&mut status, &second).id, planned.id);
    }

    #[test]
    fn forbid_waits_for_the_active_run_and_skips_a_due_schedule() {
        let mut status = RunStatus::default();
        started(&mut status, &inputs());
        let changed = Inputs {
            generation: 2,
            spec_hash: "h2",
            ..inputs()
        };
        assert_eq!(plan(&status, &changed), Plan::Idle, "the spec change waits");
        finish(&mut status, RunPhase::Succeeded);
        started(&mut status, &changed);
        let due = Decision::Run {
            scheduled: at(14, 0),
            skipped: 0,
            next: Some(at(15, 0)),
        };
        let scheduled = Inputs {
            schedule: Some(&due),
            ..changed.clone()
        };
        assert_eq!(
            plan(&status, &scheduled),
            Plan::SkipSchedule {
                scheduled: at(14, 0),
                reason: SkipReason::RunActive
            }
        );
    }

    #[test]
    fn replace_and_allow_start_beside_an_active_run() {
        let mut status = RunStatus::default();
        started(&mut status, &inputs());
        let due = Decision::Run {
            scheduled: at(14, 0),
            skipped: 0,
            next: None,
        };
        for (policy, replace) in [
            (ConcurrencyPolicy::Replace, true),
            (ConcurrencyPolicy::Allow, false),
        ] {
            let scheduled = Inputs {
                schedule: Some(&due),
                policy,
                ..inputs()
            };
            let Plan::Start(planned) = plan(&status, &scheduled) else {
                panic!("{policy:?} starts")
            };
            assert_eq!(planned.id, "s20261203-1400");
            assert_eq!(planned.trigger, RunTrigger::Schedule);
            assert_eq!(planned.replace_active, replace);
        }
    }

    #[test]
    fn a_spec_run_also_consumes_a_due_schedule_time() {
        let mut status = RunStatus::default();
        let due = Decision::Run {
            scheduled: at(14, 0),
            skipped: 0,
            next: None,
        };
        let both = Inputs {
            schedule: Some(&due),
            ..inputs()
        };
        let planned = started(&mut status, &both);
        assert_eq!(
            (planned.trigger, planned.scheduled),
            (RunTrigger::Spec, Some(at(14, 0)))
        );
        assert_eq!(status.last_schedule_time, Some(to_time(at(14, 0))));
    }

    #[test]
    fn past_the_deadline_the_schedule_time_is_skipped_not_run() {
        let status = RunStatus::default();
        let missed = Decision::Missed {
            scheduled: at(2, 0),
            skipped: 3,
            next: None,
        };
        let late = Inputs {
            schedule: Some(&missed),
            ..inputs()
        };
        assert_eq!(
            plan(&status, &late),
            Plan::SkipSchedule {
                scheduled: at(2, 0),
                reason: SkipReason::PastDeadline
            }
        );
    }

    #[test]
    fn suspended_or_waiting_for_dependencies_starts_nothing_and_keeps_triggers() {
        let status = RunStatus::default();
        assert_eq!(
            plan(
                &status,
                &Inputs {
                    suspended: true,
                    ..inputs()
                }
            ),
            Plan::Idle
        );
        assert_eq!(
            plan(
                &status,
                &Inputs {
                    dependencies_ready: false,
                    ..inputs()
                }
            ),
            Plan::Idle
        );
        assert!(matches!(plan(&status, &inputs()), Plan::Start(_)));
    }

    #[test]
    fn new_data_runs_once_per_fingerprint() {
        let mut status = RunStatus::default();
        started(&mut status, &inputs());
        finish(&mut status, RunPhase::Succeeded);
        let fresh = Inputs {
            new_data: Some("fp-2"),
            ..inputs()
        };
        let planned = started(&mut status, &fresh);
        assert_eq!(planned.trigger, RunTrigger::NewData);
        // A stale view that still sees the fingerprint as new, after the run finished.
        let mut replay = status.clone();
        finish(&mut replay, RunPhase::Succeeded);
        let Plan::Start(again) = plan(&replay, &fresh) else {
            panic!()
        };
        assert_eq!(again.id, planned.id);
        assert!(!record_start(
            &mut replay,
            &again,
            &fresh,
            "x".into(),
            serde_json::json!({}),
            None,
            at(13, 0)
        ));
        assert_eq!(replay.runs.len(), status.runs.len());
    }

    #[test]
    fn history_keeps_unfinished_runs_and_the_newest_per_outcome() {
        let record = |id: &str, phase| RunRecord {
            id: id.into(),
            job: id.into(),
            trigger: RunTrigger::Schedule,
            phase,
            scheduled_time: None,
            start_time: to_time(at(1, 0)),
            completion_time: None,
            parameters: None,
            notes: None,
            result: None,
            message: None,
        };
        let runs = vec![
            record("r5", RunPhase::Running),
            record("r4", RunPhase::Succeeded),
            record("r3", RunPhase::Failed),
            record("r2", RunPhase::Succeeded),
            record("r1", RunPhase::Failed),
        ];
        let (kept, dropped) = trim_history(runs, 1, 1);
        let ids = |runs: &[RunRecord]| runs.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&kept), ["r5", "r4", "r3"]);
        assert_eq!(ids(&dropped), ["r2", "r1"]);
    }

    #[test]
    fn job_names_fit_63_characters_and_stay_distinct() {
        assert_eq!(job_name("mooc-data", "g3"), "mooc-data-g3");
        let long = "a".repeat(60);
        let name = job_name(&long, "s20261203-1400");
        assert!(name.len() <= 63, "{name}");
        assert!(name.ends_with("-s20261203-1400"));
        assert_ne!(name, job_name(&format!("{long}b"), "s20261203-1400"));
    }
}
