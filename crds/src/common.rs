//! Types every kind shares: credentials by Secret reference, where objects live, how worker pods
//! are shaped, schedules, run history, model versions and the status conditions.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Any JSON object, kept as written (`x-kubernetes-preserve-unknown-fields`).
pub(crate) fn free_form_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// Conditions are a map keyed by `type`, so that server-side apply merges them one by one.
fn condition_list(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<Vec<Condition>>();
    schema.insert("x-kubernetes-list-type".into(), "map".into());
    schema.insert(
        "x-kubernetes-list-map-keys".into(),
        serde_json::json!(["type"]),
    );
    schema
}

/// A key of a Secret in the resource's namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Key within the Secret.
    #[schemars(length(min = 1))]
    pub key: String,
}

/// A Secret holding S3 credentials under the keys `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`
/// (the names the AWS tools use), unless other keys are given.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3CredentialsRef {
    /// Name of the Secret.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Key holding the access key id.
    #[serde(default = "default_access_key_id_key")]
    pub access_key_id_key: String,
    /// Key holding the secret access key.
    #[serde(default = "default_secret_access_key_key")]
    pub secret_access_key_key: String,
}

fn default_access_key_id_key() -> String {
    "AWS_ACCESS_KEY_ID".into()
}

fn default_secret_access_key_key() -> String {
    "AWS_SECRET_ACCESS_KEY".into()
}

/// A bucket of an S3-compatible store (AWS S3, SeaweedFS, MinIO, Ceph RGW, ...), addressed
/// path-style so that any endpoint works.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Bucket {
    /// Endpoint URL as seen from the worker pods, e.g. `http://seaweedfs.storage:8333`.
    #[schemars(regex(pattern = r"^https?://"))]
    pub endpoint: String,
    /// Bucket name.
    #[schemars(length(min = 3, max = 63))]
    pub bucket: String,
    /// Region to sign requests for; most self-hosted stores accept any.
    #[serde(default = "default_region")]
    pub region: String,
    /// Secret with the credentials; never inline.
    pub credentials_secret_ref: S3CredentialsRef,
}

fn default_region() -> String {
    "us-east-1".into()
}

/// The PostgreSQL database, as a connection URI in a Secret
/// (`postgres://user:password@host:5432/db`; CloudNativePG's `<cluster>-app` Secret has it under `uri`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseRef {
    /// Secret and key holding the connection URI.
    pub uri_secret_ref: SecretKeyRef,
}

/// A resource of another kind in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalRef {
    /// Name of the referenced resource.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// How the worker pods are shaped. Typed fields cover the usual needs; `podOverrides` is merged
/// last, as a strategic merge of a PodSpec, for anything else.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodSettings {
    /// Worker image; defaults to the `mooc-worker` image the operator was installed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Image pull policy of the worker container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,
    /// CPU and memory requests and limits of the worker container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Node labels the pods must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Tolerations of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    /// Service account the pods run as; the namespace's `default` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// A partial PodSpec merged over the generated one, last: containers merge by name, other
    /// lists and maps by strategic-merge rules (e.g. extra `volumes`, an `affinity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub pod_overrides: Option<serde_json::Value>,
}

/// When to pull the worker image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

/// What to do when a scheduled run is due while the previous one still runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConcurrencyPolicy {
    /// Skip the new run (it is recorded as skipped).
    #[default]
    Forbid,
    /// Stop the running one and start the new run.
    Replace,
    /// Run both.
    Allow,
}

/// Runs on a cron schedule, like a CronJob. Shared by the kinds that run Jobs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Scheduling {
    /// Cron schedule of five fields (minute hour day-of-month month day-of-week) or a macro such as
    /// `@daily`. Without it the resource runs when created, when its spec changes and on demand
    /// (annotation `mooc.recsys.io/run-now`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// IANA time zone of `schedule`, e.g. `Europe/Berlin`; UTC when unset. Runs at a wall-clock
    /// time skipped by a DST change happen once at the shifted time; repeated times run once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// What to do when a run is due while another is still running.
    #[serde(default)]
    pub concurrency_policy: ConcurrencyPolicy,
    /// A scheduled run that could not start within this many seconds of its time (for example,
    /// the operator was down) is recorded as missed instead of started late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub starting_deadline_seconds: Option<i64>,
    /// Stop starting scheduled and triggered runs; a running run finishes.
    #[serde(default)]
    pub suspend: bool,
    /// Succeeded runs kept in `status.runs` (their Jobs are deleted beyond it).
    #[serde(default = "default_successful_history")]
    #[schemars(range(min = 0, max = 50))]
    pub successful_runs_history_limit: u32,
    /// Failed runs kept in `status.runs` (their Jobs, and so their logs, are deleted beyond it).
    #[serde(default = "default_failed_history")]
    #[schemars(range(min = 0, max = 50))]
    pub failed_runs_history_limit: u32,
}

fn default_successful_history() -> u32 {
    3
}

fn default_failed_history() -> u32 {
    3
}

/// The CEL rules that a `Scheduling` flattened into a spec adds to it.
pub const SCHEDULING_RULE: &str = "!has(self.timeZone) || has(self.schedule)";
pub const SCHEDULING_MESSAGE: &str = "timeZone is only valid together with schedule";

/// Phase of a resource that runs Jobs, for `kubectl get`; conditions carry the detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum JobPhase {
    /// Nothing has run yet.
    Pending,
    /// Waiting for a referenced resource (see the `DependenciesReady` condition).
    Waiting,
    /// A run is in progress.
    Running,
    /// The last run succeeded.
    Succeeded,
    /// The last run failed.
    Failed,
    /// `suspend` is set.
    Suspended,
    /// The spec cannot be acted on (see the `Stalled` condition).
    Invalid,
}

/// How a run was started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RunTrigger {
    /// The resource was created or its spec changed.
    Spec,
    /// The cron schedule came due.
    Schedule,
    /// The `mooc.recsys.io/run-now` annotation got a new value.
    RunNow,
    /// The referenced DataLoad produced new data (a new data fingerprint).
    NewData,
}

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RunPhase {
    /// Recorded; its Job is being created.
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl RunPhase {
    pub fn is_finished(self) -> bool {
        matches!(self, RunPhase::Succeeded | RunPhase::Failed)
    }
}

/// One run: its trigger, its Job, its inputs and what the worker reported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// Run id, unique within the resource; the Job is named after it.
    pub id: String,
    /// Name of the run's Job.
    pub job: String,
    pub trigger: RunTrigger,
    pub phase: RunPhase,
    /// The schedule time this run is for (scheduled runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_time: Option<Time>,
    /// When the run was recorded.
    pub start_time: Time,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// The parameters the run was started with (hyperparameters, mode, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub parameters: Option<serde_json::Value>,
    /// Free text from the `mooc.recsys.io/run-notes` annotation at the time the run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// The worker's result: the JSON of its termination message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub result: Option<serde_json::Value>,
    /// Why the run failed, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Model versions: how many to keep, which to serve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionPolicy {
    /// Versions kept; older bundles are deleted from S3. The active and the pinned version are
    /// always kept.
    #[serde(default = "default_keep")]
    #[schemars(range(min = 1, max = 100))]
    pub keep: u32,
    /// When a newly trained version becomes the active one.
    #[serde(default)]
    pub promotion: Promotion,
    /// Serve exactly this version (rollback); automatic promotion is off while set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_version: Option<String>,
}

impl Default for VersionPolicy {
    fn default() -> Self {
        Self {
            keep: default_keep(),
            promotion: Promotion::default(),
            pinned_version: None,
        }
    }
}

fn default_keep() -> u32 {
    5
}

/// Promotion of new versions, judged on the held-out metric the kind reports (validation AUC for
/// the dropout model, NDCG@10 for ALS).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Promotion {
    /// `IfNotWorse` (default): promote unless the held-out metric is worse than the active
    /// version's by more than `maxRegression`; `Always`: every successful run; `Manual`: none.
    #[serde(default)]
    pub policy: PromotionPolicy,
    /// With `IfNotWorse`: the largest drop of the metric against the active version still promoted.
    #[serde(default = "default_max_regression")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub max_regression: f64,
}

impl Default for Promotion {
    fn default() -> Self {
        Self {
            policy: PromotionPolicy::default(),
            max_regression: default_max_regression(),
        }
    }
}

fn default_max_regression() -> f64 {
    0.005
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PromotionPolicy {
    /// Promote unless the metric is worse than the active version's by more than `maxRegression`.
    #[default]
    IfNotWorse,
    /// Promote every successful run.
    Always,
    /// Never promote on its own; choose with `pinnedVersion`.
    Manual,
}

/// A trained model version: an immutable bundle in S3.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelVersion {
    /// `YYYYMMDD-HHMMSS-<suffix>`, UTC.
    pub version: String,
    /// The run that trained it.
    pub run: String,
    pub created: Time,
    /// `s3://bucket/models/<kind>/<version>/`.
    pub artifact_uri: String,
    /// Fingerprint of the data it was trained on (the DataLoad's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_fingerprint: Option<String>,
    /// Held-out metrics as the worker reported them.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// The promotion decision, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<String>,
}

/// The fields every status has.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommonStatus {
    /// The spec generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Reconciling`, `Stalled` and the kind's own conditions.
    #[serde(default)]
    #[schemars(schema_with = "condition_list")]
    pub conditions: Vec<Condition>,
}

/// Status of the kinds that run Jobs: run history and the schedule's bookkeeping.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunStatus {
    /// Recent runs, newest first, bounded by the history limits.
    #[serde(default)]
    pub runs: Vec<RunRecord>,
    /// The last schedule time acted on (run, skipped or missed); schedules resume after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,
    /// When the schedule next comes due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_schedule_time: Option<Time>,
    /// The last `mooc.recsys.io/run-now` value acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_now: Option<String>,
    /// Hash of the spec fields that define a run, as of the last spec-triggered run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_spec_hash: Option<String>,
    /// When the last run succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<Time>,
}

/// Annotation whose new value starts a run at once; any string (a timestamp works well).
pub const RUN_NOW_ANNOTATION: &str = "mooc.recsys.io/run-now";
/// Annotation copied into the next run's record.
pub const RUN_NOTES_ANNOTATION: &str = "mooc.recsys.io/run-notes";
/// Annotation that pauses reconciliation of the resource while `"true"`.
pub const PAUSED_ANNOTATION: &str = "mooc.recsys.io/paused";
