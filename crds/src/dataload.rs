//! DataLoad: CSV objects in S3 loaded into PostgreSQL by `mooc-worker etl` Jobs.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::{
    CommonStatus, DatabaseRef, JobPhase, PodSettings, RunStatus, S3Bucket, Scheduling,
};

/// Loads `user_info.csv` / `train.csv`-shaped objects from an S3 bucket into PostgreSQL: users and
/// enrollments with their 22 activity counts. Rejected rows are kept in `load_rejects` and counted.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "mooc.recsys.io",
    version = "v1alpha1",
    kind = "DataLoad",
    namespaced,
    status = "DataLoadStatus",
    shortname = "dl",
    category = "mooc",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "Rows",
        type_ = "integer",
        json_path = ".status.rowsLoaded",
        description = "Rows loaded by the last successful load"
    ),
    printcolumn(
        name = "Rejected",
        type_ = "integer",
        json_path = ".status.rowsRejected"
    ),
    printcolumn(
        name = "Last Load",
        type_ = "date",
        json_path = ".status.lastSuccessfulTime"
    ),
    printcolumn(name = "Next", type_ = "date", json_path = ".status.nextScheduleTime"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new(crate::common::SCHEDULING_RULE).message(crate::common::SCHEDULING_MESSAGE))]
#[serde(rename_all = "camelCase")]
pub struct DataLoadSpec {
    /// Where the CSV objects are.
    pub source: DataSource,
    /// The database loaded into.
    pub target: DatabaseRef,
    /// `Incremental` loads only objects whose ETag changed since their last load; `Full` reloads all.
    #[serde(default)]
    pub mode: LoadMode,
    /// The load fails when more than this fraction of an object's rows is rejected (rejected rows
    /// are kept either way).
    #[serde(default = "default_max_reject_ratio")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub max_reject_ratio: f64,
    #[serde(flatten)]
    pub scheduling: Scheduling,
    /// Shape of the worker pods.
    #[serde(default)]
    pub pod: PodSettings,
}

fn default_max_reject_ratio() -> f64 {
    0.01
}

/// The bucket and the objects in it: exactly one of `keys` or `prefix`.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[x_kube(validation = Rule::new("has(self.keys) != has(self.prefix)").message("set exactly one of keys or prefix"))]
#[serde(rename_all = "camelCase")]
pub struct DataSource {
    #[serde(flatten)]
    pub bucket: S3Bucket,
    /// Object keys, loaded in this order (put `user_info.csv` before `train.csv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub keys: Option<Vec<String>>,
    /// Every object under this prefix, in key order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum LoadMode {
    #[default]
    Incremental,
    Full,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataLoadStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<JobPhase>,
    #[serde(flatten)]
    pub common: CommonStatus,
    #[serde(flatten)]
    pub runs: RunStatus,
    /// Objects loaded by the last successful load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects_loaded: Option<u64>,
    /// Objects skipped as unchanged by the last successful load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects_unchanged: Option<u64>,
    /// Rows inserted or updated by the last successful load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_loaded: Option<u64>,
    /// Rows the last successful load rejected; each is kept in table `load_rejects` with its
    /// object, line and reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_rejected: Option<u64>,
    /// Fingerprint of the loaded data; training records it as lineage, and a new one retrains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_fingerprint: Option<String>,
}
