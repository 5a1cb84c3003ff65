//! Model versions of a TrainingRun or ALSJob as pure decisions: whether a newly trained version is
//! promoted, which version is served, and which versions (and so which S3 bundles) are dropped.
//!
//! Status lists versions newest first; a version name (`YYYYMMDD-HHMMSS-<suffix>`, UTC) sorts by
//! time, so the list is ordered by name. `versions.pinnedVersion` is the rollback switch: while it
//! is set it is served and automatic promotion is off.

use mooc_crds::common::{ModelVersion, Promotion, PromotionPolicy, VersionPolicy};

/// Slack on the `IfNotWorse` comparison. `active - maxRegression` is computed in binary floating
/// point, so a candidate exactly at the allowed drop can land an ulp below it (0.8 - 0.1 is
/// 0.7000000000000001, above 0.7). 1e-12 absorbs that rounding while staying far below any metric
/// difference that matters (reasons print 4 decimals).
const EPSILON: f64 = 1e-12;

/// What a person does to serve a version that was not promoted.
const PIN_HINT: &str = "set versions.pinnedVersion to serve it";

/// Outcome of judging a new version against the active one.
#[derive(Debug, Clone, PartialEq)]
pub struct PromotionDecision {
    pub promote: bool,
    /// For people; stored in the version's `promotion` field.
    pub reason: String,
}

impl PromotionDecision {
    fn promoted(detail: String) -> Self {
        Self {
            promote: true,
            reason: format!("{detail}: promoted"),
        }
    }

    fn rejected(detail: String) -> Self {
        Self {
            promote: false,
            reason: format!("{detail}: not promoted"),
        }
    }

    /// Not promoted for a reason the metrics cannot fix, so the reason says how to serve it anyway.
    fn left_to_pin(detail: String) -> Self {
        Self {
            promote: false,
            reason: format!("{detail}: not promoted; {PIN_HINT}"),
        }
    }
}

/// Judges `candidate` against `active` on `metric` (higher is better).
///
/// With no active version there is nothing to regress against, so the candidate is promoted
/// unless the policy is `Manual`, even when it lacks the metric: serving it beats serving nothing.
/// Under `IfNotWorse` a candidate lacking the metric is otherwise never promoted, and an active
/// version lacking it is replaced.
pub fn judge(
    policy: &Promotion,
    metric: &str,
    active: Option<&ModelVersion>,
    candidate: &ModelVersion,
) -> PromotionDecision {
    let value = metric_of(candidate, metric);
    match policy.policy {
        PromotionPolicy::Manual => PromotionDecision::left_to_pin(format!(
            "{}, promotion policy Manual",
            describe(metric, value)
        )),
        PromotionPolicy::Always => PromotionDecision::promoted(format!(
            "{}, promotion policy Always",
            describe(metric, value)
        )),
        PromotionPolicy::IfNotWorse => if_not_worse(policy.max_regression, metric, active, value),
    }
}

fn if_not_worse(
    max_regression: f64,
    metric: &str,
    active: Option<&ModelVersion>,
    candidate: Option<f64>,
) -> PromotionDecision {
    let Some(active) = active else {
        return PromotionDecision::promoted(format!(
            "{}, no active version",
            describe(metric, candidate)
        ));
    };
    let Some(candidate) = candidate else {
        return PromotionDecision::left_to_pin(format!("{metric} missing from the run's metrics"));
    };
    let Some(current) = metric_of(active, metric) else {
        return PromotionDecision::promoted(format!(
            "{metric} {candidate:.4} vs active without {metric}"
        ));
    };
    let detail = format!(
        "{metric} {candidate:.4} vs active {current:.4} (allowed drop {max_regression:.4})"
    );
    if candidate >= current - max_regression - EPSILON {
        PromotionDecision::promoted(detail)
    } else {
        PromotionDecision::rejected(detail)
    }
}

fn metric_of(version: &ModelVersion, metric: &str) -> Option<f64> {
    version.metrics.get(metric).copied()
}

/// `auc 0.8712`, or `auc missing`.
fn describe(metric: &str, value: Option<f64>) -> String {
    match value {
        Some(value) => format!("{metric} {value:.4}"),
        None => format!("{metric} missing"),
    }
}

/// Adds a newly trained version with its promotion decision in `promotion`, and returns the
/// version to serve next.
///
/// A version already present (same name) is left as it is, so handling the same run result twice
/// is harmless. A set `pinnedVersion` wins over everything: the candidate is recorded, not
/// promoted, and the pinned name is returned (whether it exists is [`resolve_active`]'s check).
/// An `active` name missing from `versions` counts as no active version: there is nothing to
/// compare against.
pub fn add_version(
    versions: &mut Vec<ModelVersion>,
    active: Option<&str>,
    policy: &VersionPolicy,
    metric: &str,
    mut candidate: ModelVersion,
) -> Option<String> {
    if versions.iter().any(|v| v.version == candidate.version) {
        return policy
            .pinned_version
            .clone()
            .or_else(|| active.map(String::from));
    }
    if let Some(pinned) = &policy.pinned_version {
        candidate.promotion = Some(format!(
            "{}, versions.pinnedVersion {pinned} is served: not promoted",
            describe(metric, metric_of(&candidate, metric))
        ));
        insert_newest_first(versions, candidate);
        return Some(pinned.clone());
    }
    let current = active.and_then(|name| versions.iter().find(|v| v.version == name));
    let decision = judge(&policy.promotion, metric, current, &candidate);
    let next = if decision.promote {
        Some(candidate.version.clone())
    } else {
        active.map(String::from)
    };
    candidate.promotion = Some(decision.reason);
    insert_newest_first(versions, candidate);
    next
}

/// Inserts before the first older version rather than at the front, so that runs finishing out of
/// order (concurrency policy `Allow`) still leave the list newest first.
fn insert_newest_first(versions: &mut Vec<ModelVersion>, candidate: ModelVersion) {
    let at = versions
        .iter()
        .position(|v| v.version < candidate.version)
        .unwrap_or(versions.len());
    versions.insert(at, candidate);
}

/// A pinned version that does not exist; the operator reports it rather than serving nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error(
        "versions.pinnedVersion {pinned} is not a version of this resource; known versions: {}",
        list_or_none(.known)
    )]
    UnknownPinned { pinned: String, known: Vec<String> },
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none yet".into()
    } else {
        names.join(", ")
    }
}

/// The version to serve: the pinned one when set (it must be in `versions`), else `active`.
pub fn resolve_active(
    policy: &VersionPolicy,
    active: Option<&str>,
    versions: &[ModelVersion],
) -> Result<Option<String>, VersionError> {
    let Some(pinned) = &policy.pinned_version else {
        return Ok(active.map(String::from));
    };
    if versions.iter().any(|v| &v.version == pinned) {
        Ok(Some(pinned.clone()))
    } else {
        Err(VersionError::UnknownPinned {
            pinned: pinned.clone(),
            known: versions.iter().map(|v| v.version.clone()).collect(),
        })
    }
}

/// Splits newest-first `versions` into (kept, pruned), both still newest first. Kept are the
/// newest `keep` and every `protected` one (the active and the pinned version, however old), so a
/// rollback target is never deleted; the pruned versions' bundles are to be deleted from S3.
pub fn retain(
    versions: Vec<ModelVersion>,
    keep: u32,
    protected: &[&str],
) -> (Vec<ModelVersion>, Vec<ModelVersion>) {
    let keep = keep as usize;
    let (kept, pruned): (Vec<_>, Vec<_>) = versions
        .into_iter()
        .enumerate()
        .partition(|(position, v)| *position < keep || protected.contains(&v.version.as_str()));
    (without_positions(kept), without_positions(pruned))
}

fn without_positions(numbered: Vec<(usize, ModelVersion)>) -> Vec<ModelVersion> {
    numbered.into_iter().map(|(_, v)| v).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    const V1: &str = "20250101-020000-aaaa";
    const V2: &str = "20250102-020000-bbbb";
    const V3: &str = "20250103-020000-cccc";
    const V4: &str = "20250104-020000-dddd";

    fn version(name: &str, auc: Option<f64>) -> ModelVersion {
        ModelVersion {
            version: name.into(),
            run: format!("run-{name}"),
            created: Time(Timestamp::UNIX_EPOCH),
            artifact_uri: format!("s3://models/models/dropout/{name}/"),
            data_fingerprint: None,
            metrics: auc.map(|v| ("auc".to_string(), v)).into_iter().collect(),
            promotion: None,
        }
    }

    fn promotion(policy: PromotionPolicy, max_regression: f64) -> Promotion {
        Promotion {
            policy,
            max_regression,
        }
    }

    fn if_not_worse() -> Promotion {
        promotion(PromotionPolicy::IfNotWorse, 0.005)
    }

    fn version_policy(policy: PromotionPolicy, pinned: Option<&str>) -> VersionPolicy {
        VersionPolicy {
            keep: 5,
            promotion: promotion(policy, 0.005),
            pinned_version: pinned.map(String::from),
        }
    }

    fn names(versions: &[ModelVersion]) -> Vec<&str> {
        versions.iter().map(|v| v.version.as_str()).collect()
    }

    fn decision(promote: bool, reason: &str) -> PromotionDecision {
        PromotionDecision {
            promote,
            reason: reason.into(),
        }
    }

    #[test]
    fn first_version_is_promoted() {
        let got = judge(&if_not_worse(), "auc", None, &version(V1, Some(0.8712)));
        assert_eq!(
            got,
            decision(true, "auc 0.8712, no active version: promoted")
        );
    }

    #[test]
    fn first_version_without_the_metric_is_promoted() {
        let got = judge(&if_not_worse(), "auc", None, &version(V1, None));
        assert_eq!(
            got,
            decision(true, "auc missing, no active version: promoted")
        );
    }

    #[test]
    fn better_version_is_promoted() {
        let active = version(V1, Some(0.8690));
        let got = judge(
            &if_not_worse(),
            "auc",
            Some(&active),
            &version(V2, Some(0.8712)),
        );
        assert_eq!(
            got,
            decision(
                true,
                "auc 0.8712 vs active 0.8690 (allowed drop 0.0050): promoted"
            )
        );
    }

    #[test]
    fn drop_within_margin_is_promoted() {
        let active = version(V1, Some(0.8690));
        let got = judge(
            &if_not_worse(),
            "auc",
            Some(&active),
            &version(V2, Some(0.8660)),
        );
        assert_eq!(
            got,
            decision(
                true,
                "auc 0.8660 vs active 0.8690 (allowed drop 0.0050): promoted"
            )
        );
    }

    #[test]
    fn drop_beyond_margin_is_rejected() {
        let active = version(V1, Some(0.8690));
        let got = judge(
            &if_not_worse(),
            "auc",
            Some(&active),
            &version(V2, Some(0.8630)),
        );
        assert_eq!(
            got,
            decision(
                false,
                "auc 0.8630 vs active 0.8690 (allowed drop 0.0050): not promoted"
            )
        );
    }

    #[test]
    fn drop_exactly_at_margin_is_promoted_despite_rounding() {
        let (current, allowed, at_margin) = (0.8, 0.1, 0.7);
        // Without the epsilon this would be rejected: 0.8 - 0.1 rounds to 0.7000000000000001.
        assert!(at_margin < current - allowed);
        let policy = promotion(PromotionPolicy::IfNotWorse, allowed);
        let active = version(V1, Some(current));
        let got = judge(&policy, "auc", Some(&active), &version(V2, Some(at_margin)));
        assert_eq!(
            got,
            decision(
                true,
                "auc 0.7000 vs active 0.8000 (allowed drop 0.1000): promoted"
            )
        );
    }

    #[test]
    fn candidate_without_the_metric_is_not_promoted() {
        let active = version(V1, Some(0.8690));
        let got = judge(&if_not_worse(), "auc", Some(&active), &version(V2, None));
        assert_eq!(
            got,
            decision(
                false,
                "auc missing from the run's metrics: not promoted; set versions.pinnedVersion to serve it"
            )
        );
    }

    #[test]
    fn active_without_the_metric_is_replaced() {
        let active = version(V1, None);
        let got = judge(
            &if_not_worse(),
            "auc",
            Some(&active),
            &version(V2, Some(0.8)),
        );
        assert_eq!(
            got,
            decision(true, "auc 0.8000 vs active without auc: promoted")
        );
    }

    #[test]
    fn always_promotes_a_worse_version() {
        let active = version(V1, Some(0.9));
        let policy = promotion(PromotionPolicy::Always, 0.005);
        let got = judge(&policy, "auc", Some(&active), &version(V2, Some(0.5)));
        assert_eq!(
            got,
            decision(true, "auc 0.5000, promotion policy Always: promoted")
        );
    }

    #[test]
    fn manual_never_promotes() {
        let policy = promotion(PromotionPolicy::Manual, 0.005);
        let expected = decision(
            false,
            "auc 0.9500, promotion policy Manual: not promoted; set versions.pinnedVersion to serve it",
        );
        let active = version(V1, Some(0.5));
        let candidate = version(V2, Some(0.95));
        assert_eq!(judge(&policy, "auc", None, &candidate), expected);
        assert_eq!(judge(&policy, "auc", Some(&active), &candidate), expected);
    }

    #[test]
    fn add_version_records_the_decision_and_moves_active() {
        let policy = version_policy(PromotionPolicy::IfNotWorse, None);
        let mut versions = Vec::new();
        let active = add_version(&mut versions, None, &policy, "auc", version(V1, Some(0.86)));
        assert_eq!(active.as_deref(), Some(V1));
        let active = add_version(
            &mut versions,
            active.as_deref(),
            &policy,
            "auc",
            version(V2, Some(0.80)),
        );
        assert_eq!(active.as_deref(), Some(V1));
        assert_eq!(names(&versions), [V2, V1]);
        assert_eq!(
            versions[0].promotion.as_deref(),
            Some("auc 0.8000 vs active 0.8600 (allowed drop 0.0050): not promoted")
        );
        assert_eq!(
            versions[1].promotion.as_deref(),
            Some("auc 0.8600, no active version: promoted")
        );
    }

    #[test]
    fn add_version_keeps_pinned_active() {
        let policy = version_policy(PromotionPolicy::Always, Some(V1));
        let mut versions = vec![version(V1, Some(0.8))];
        let active = add_version(
            &mut versions,
            Some(V1),
            &policy,
            "auc",
            version(V2, Some(0.9)),
        );
        assert_eq!(active.as_deref(), Some(V1));
        assert_eq!(names(&versions), [V2, V1]);
        assert_eq!(
            versions[0].promotion.as_deref(),
            Some("auc 0.9000, versions.pinnedVersion 20250101-020000-aaaa is served: not promoted")
        );
    }

    #[test]
    fn add_version_ignores_a_duplicate() {
        let policy = version_policy(PromotionPolicy::IfNotWorse, None);
        let mut versions = Vec::new();
        let first = add_version(&mut versions, None, &policy, "auc", version(V1, Some(0.8)));
        let before = versions.clone();
        let again = add_version(
            &mut versions,
            first.as_deref(),
            &policy,
            "auc",
            version(V1, Some(0.8)),
        );
        assert_eq!(again.as_deref(), Some(V1));
        assert_eq!(versions, before);
    }

    #[test]
    fn add_version_keeps_newest_first_when_runs_finish_out_of_order() {
        let policy = version_policy(PromotionPolicy::Always, None);
        let mut versions = vec![version(V3, Some(0.8)), version(V1, Some(0.8))];
        let active = add_version(
            &mut versions,
            Some(V3),
            &policy,
            "auc",
            version(V2, Some(0.8)),
        );
        assert_eq!(active.as_deref(), Some(V2));
        assert_eq!(names(&versions), [V3, V2, V1]);
    }

    #[test]
    fn resolve_active_prefers_the_pinned_version() {
        let versions = vec![version(V2, None), version(V1, None)];
        let pinned = version_policy(PromotionPolicy::IfNotWorse, Some(V1));
        let unpinned = version_policy(PromotionPolicy::IfNotWorse, None);
        assert_eq!(
            resolve_active(&pinned, Some(V2), &versions),
            Ok(Some(V1.to_string()))
        );
        assert_eq!(
            resolve_active(&unpinned, Some(V2), &versions),
            Ok(Some(V2.to_string()))
        );
        assert_eq!(resolve_active(&unpinned, None, &versions), Ok(None));
    }

    #[test]
    fn unknown_pinned_version_is_an_error() {
        let policy = version_policy(PromotionPolicy::IfNotWorse, Some("20240101-000000-zzzz"));
        let versions = vec![version(V2, None), version(V1, None)];
        let err = resolve_active(&policy, Some(V2), &versions).unwrap_err();
        assert_eq!(
            err.to_string(),
            "versions.pinnedVersion 20240101-000000-zzzz is not a version of this resource; \
             known versions: 20250102-020000-bbbb, 20250101-020000-aaaa"
        );
        let err = resolve_active(&policy, None, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "versions.pinnedVersion 20240101-000000-zzzz is not a version of this resource; \
             known versions: none yet"
        );
    }

    #[test]
    fn retain_keeps_newest_and_protected_in_order() {
        let versions = [V4, V3, V2, V1].map(|v| version(v, None)).to_vec();
        let (kept, pruned) = retain(versions, 2, &[V1]);
        assert_eq!(names(&kept), [V4, V3, V1]);
        assert_eq!(names(&pruned), [V2]);
        assert_eq!(
            pruned[0].artifact_uri,
            format!("s3://models/models/dropout/{V2}/")
        );
    }

    #[test]
    fn retain_with_keep_beyond_length_prunes_nothing() {
        let versions = [V2, V1].map(|v| version(v, None)).to_vec();
        let (kept, pruned) = retain(versions, 5, &[]);
        assert_eq!(names(&kept), [V2, V1]);
        assert!(pruned.is_empty());
    }

    #[test]
    fn rollback_by_pinning_an_older_version() {
        let mut policy = version_policy(PromotionPolicy::IfNotWorse, None);
        let mut versions = Vec::new();
        let active = add_version(&mut versions, None, &policy, "auc", version(V1, Some(0.87)));
        let active = add_version(
            &mut versions,
            active.as_deref(),
            &policy,
            "auc",
            version(V2, Some(0.85)),
        );
        assert_eq!(active.as_deref(), Some(V1));
        let active = add_version(
            &mut versions,
            active.as_deref(),
            &policy,
            "auc",
            version(V3, Some(0.88)),
        );
        assert_eq!(active.as_deref(), Some(V3));

        policy.pinned_version = Some(V1.into());
        let active = resolve_active(&policy, active.as_deref(), &versions);
        assert_eq!(active, Ok(Some(V1.to_string())));

        let (kept, pruned) = retain(versions, 1, &[V1]);
        assert_eq!(names(&kept), [V3, V1]);
        assert_eq!(names(&pruned), [V2]);
    }

    #[test]
    fn metrics_other_than_the_promotion_metric_are_ignored() {
        let mut active = version(V1, Some(0.8));
        active.metrics = BTreeMap::from([("ndcgAt10".to_string(), 0.9)]);
        let candidate = version(V2, Some(0.1));
        let got = judge(&if_not_worse(), "ndcgAt10", Some(&active), &candidate);
        assert_eq!(
            got,
            decision(
                false,
                "ndcgAt10 missing from the run's metrics: not promoted; set versions.pinnedVersion to serve it"
            )
        );
    }
}
