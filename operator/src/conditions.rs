//! Status conditions in the Kubernetes shape, written so that `kubectl wait --for=condition=Ready`
//! and the health checks of Argo CD and Flux read them: a transition time that moves only when the
//! status changes, and the generation each condition describes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The resource's result is usable (data loaded, a model active, consumers available).
pub const READY: &str = "Ready";
/// The operator is working towards the spec (a run in progress, a rollout).
pub const RECONCILING: &str = "Reconciling";
/// The spec cannot be acted on until a person changes it.
pub const STALLED: &str = "Stalled";
/// Referenced resources are ready.
pub const DEPENDENCIES_READY: &str = "DependenciesReady";

/// One condition's desired state.
#[derive(Clone, Debug, PartialEq)]
pub struct Update<'a> {
    pub type_: &'a str,
    pub status: bool,
    pub reason: &'a str,
    pub message: String,
}

impl<'a> Update<'a> {
    pub fn new(type_: &'a str, status: bool, reason: &'a str, message: impl Into<String>) -> Self {
        Self {
            type_,
            status,
            reason,
            message: message.into(),
        }
    }
}

/// Sets a condition, keeping its transition time when the status does not change.
pub fn set(
    conditions: &mut Vec<Condition>,
    update: Update<'_>,
    generation: Option<i64>,
    now: &Time,
) {
    let status = if update.status { "True" } else { "False" };
    let existing = conditions.iter_mut().find(|c| c.type_ == update.type_);
    let last_transition_time = match &existing {
        Some(old) if old.status == status => old.last_transition_time.clone(),
        _ => now.clone(),
    };
    let condition = Condition {
        type_: update.type_.to_owned(),
        status: status.to_owned(),
        reason: update.reason.to_owned(),
        message: update.message,
        observed_generation: generation,
        last_transition_time,
    };
    match existing {
        Some(old) => *old = condition,
        None => conditions.push(condition),
    }
}

/// Whether the condition `type_` is `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(second: u32) -> Time {
        crate::clock::to_time(
            chrono::Utc
                .with_ymd_and_hms(2026, 12, 3, 12, 0, second)
                .unwrap(),
        )
    }

    #[test]
    fn transition_time_moves_only_when_the_status_changes() {
        let mut conditions = Vec::new();
        set(
            &mut conditions,
            Update::new(READY, false, "Loading", "first load"),
            Some(1),
            &at(0),
        );
        set(
            &mut conditions,
            Update::new(READY, false, "Loading", "still"),
            Some(2),
            &at(5),
        );
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].last_transition_time, at(0));
        assert_eq!(conditions[0].message, "still");
        assert_eq!(conditions[0].observed_generation, Some(2));
        set(
            &mut conditions,
            Update::new(READY, true, "Loaded", "done"),
            Some(2),
            &at(9),
        );
        assert_eq!(conditions[0].last_transition_time, at(9));
        assert_eq!(conditions[0].status, "True");
        assert!(is_true(&conditions, READY));
        assert!(!is_true(&conditions, STALLED));
    }
}
