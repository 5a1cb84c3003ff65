//! What TrainingRun and ALSJob share: the data they train on, where bundles go, versions.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use crate::common::{
    CommonStatus, JobPhase, LocalRef, ModelVersion, RunStatus, S3Bucket, VersionPolicy,
};

/// The training inputs and outputs every model kind has, flattened into its spec.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelTraining {
    /// The DataLoad whose tables this trains on; runs wait until it is Ready. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("dataLoadRef is immutable: create a new resource to train on other data"))]
    pub data_load_ref: LocalRef,
    /// Bucket of the model bundles; each version is written once under
    /// `<prefix>/<version>/` and never overwritten.
    pub artifacts: Artifacts,
    /// Train again when the DataLoad reports a new data fingerprint.
    #[serde(default = "default_true")]
    pub retrain_on_new_data: bool,
    /// Retention, promotion and pinning of the trained versions.
    #[serde(default)]
    pub versions: VersionPolicy,
}

fn default_true() -> bool {
    true
}

/// Where model bundles are written.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Artifacts {
    #[serde(flatten)]
    pub bucket: S3Bucket,
    /// Key prefix of the bundles; the kind's default (`models/dropout`, `models/als`) when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[^/].*[^/]$"))]
    pub prefix: Option<String>,
    /// What deleting the resource does to its bundles: `Retain` leaves them (and their registry
    /// rows) in place; `Delete` removes every bundle first, the resource staying until they are gone.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// The fate of a resource's model bundles when the resource is deleted.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum DeletionPolicy {
    /// Keep the bundles; a new resource with the same prefix never overwrites them.
    #[default]
    Retain,
    /// Delete every bundle of the resource before the resource goes away.
    Delete,
}

/// Bundles of versions past retention that are being deleted; kept in status until their prune
/// Job succeeded, so neither a crash nor the resource's deletion leaves them behind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingPrune {
    /// The prune Job, named after what it deletes.
    pub job: String,
    /// The versions whose bundles it deletes.
    pub versions: Vec<String>,
    /// Their bundle prefixes.
    pub artifact_uris: Vec<String>,
}

/// Status of a model kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<JobPhase>,
    #[serde(flatten)]
    pub common: CommonStatus,
    #[serde(flatten)]
    pub runs: RunStatus,
    /// Trained versions, newest first, bounded by `versions.keep` (plus the active and pinned ones).
    #[serde(default)]
    pub versions: Vec<ModelVersion>,
    /// The version consumers serve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_version: Option<String>,
    /// The active version's promotion metric (validation AUC or NDCG@10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_score: Option<f64>,
    /// The DataLoad fingerprint the last run trained on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trained_fingerprint: Option<String>,
    /// Bundles of pruned versions not yet confirmed deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pruning: Vec<PendingPrune>,
}
