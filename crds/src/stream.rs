//! StreamDeployment: Kafka consumers that score every activity event with the active models.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::{CommonStatus, PodSettings};

/// Runs `mooc-worker consume` replicas in one consumer group: each activity event updates the
/// enrollment's counts, is scored for dropout risk and gets top-N course recommendations. The
/// models follow the referenced resources' active versions (or a pinned one) and are hot-swapped
/// without dropping events.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "mooc.recsys.io",
    version = "v1alpha1",
    kind = "StreamDeployment",
    namespaced,
    status = "StreamDeploymentStatus",
    shortname = "sd",
    category = "mooc",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(
        name = "Available",
        type_ = "integer",
        json_path = ".status.availableReplicas"
    ),
    printcolumn(
        name = "Dropout",
        type_ = "string",
        json_path = ".status.models.dropout.version",
        description = "Dropout model version published to the consumers"
    ),
    printcolumn(
        name = "ALS",
        type_ = "string",
        json_path = ".status.models.als.version",
        description = "ALS version published to the consumers"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct StreamDeploymentSpec {
    pub kafka: KafkaSettings,
    /// Consumer replicas; more than the topic's partitions leaves some idle.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: i32,
    /// The dropout model: the TrainingRun's active version, or `pinnedVersion`.
    pub training_run_ref: ModelRef,
    /// The recommender: the ALSJob's active version, or `pinnedVersion`.
    pub als_job_ref: ModelRef,
    /// Courses recommended per event.
    #[serde(default = "default_top_n")]
    #[schemars(range(min = 1, max = 100))]
    pub top_n: u32,
    /// An event producer replaying enrollments as activity events, for demos and load tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulator: Option<Simulator>,
    /// Shape of the consumer (and simulator) pods.
    #[serde(default)]
    pub pod: PodSettings,
}

fn default_replicas() -> i32 {
    1
}

fn default_top_n() -> u32 {
    10
}

/// The Kafka cluster and topics.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[x_kube(validation = Rule::new("has(self.groupId) == has(oldSelf.groupId) && (!has(self.groupId) || self.groupId == oldSelf.groupId)").message("kafka.groupId is immutable: a new group would lose the committed offsets"))]
#[serde(rename_all = "camelCase")]
pub struct KafkaSettings {
    /// Comma-separated `host:port` list as seen from the pods.
    #[schemars(length(min = 1))]
    pub bootstrap_servers: String,
    /// Activity events in (JSON, key = user id).
    #[serde(default = "default_events_topic")]
    pub events_topic: String,
    /// Scored events with recommendations out.
    #[serde(default = "default_recommendations_topic")]
    pub recommendations_topic: String,
    /// Consumer group; the resource's name when unset. Immutable: a new group would lose the
    /// committed offsets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
}

fn default_events_topic() -> String {
    "mooc-events".into()
}

fn default_recommendations_topic() -> String {
    "mooc-recommendations".into()
}

/// A model resource in the same namespace, followed or pinned.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelRef {
    /// Name of the TrainingRun or ALSJob.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Serve this version instead of the resource's active one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_version: Option<String>,
}

/// The event simulator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Simulator {
    /// Events produced per second.
    #[serde(default = "default_events_per_second")]
    #[schemars(range(min = 1, max = 100000))]
    pub events_per_second: u32,
}

fn default_events_per_second() -> u32 {
    5
}

/// Phase of a StreamDeployment, for `kubectl get`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum ServingPhase {
    /// Waiting for an active version of each model (see `DependenciesReady`).
    Waiting,
    /// Consumers are starting or rolling out.
    Progressing,
    /// All consumers are available.
    Available,
    /// Scaled to zero.
    Scaled,
    /// The spec cannot be acted on (see `Stalled`).
    Invalid,
}

/// A model version published to the consumers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublishedModel {
    /// The version being served.
    pub version: String,
    /// Its bundle, `s3://<bucket>/<prefix>/<version>/`.
    pub artifact_uri: String,
}

/// The model versions in the pointer ConfigMap the consumers watch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublishedModels {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout: Option<PublishedModel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub als: Option<PublishedModel>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamDeploymentStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ServingPhase>,
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Consumer pods (for the scale subresource).
    #[serde(default)]
    pub replicas: i32,
    /// Consumer pods available (ready for the Deployment's minReadySeconds).
    #[serde(default)]
    pub available_replicas: i32,
    /// Label selector of the consumer pods (for the scale subresource and autoscalers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// The versions published to the consumers.
    #[serde(default)]
    pub models: PublishedModels,
}
