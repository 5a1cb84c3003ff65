//! TrainingRun: the LightGBM dropout model, trained by `mooc-worker train-dropout` Jobs.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::{PodSettings, Scheduling};
use crate::model::{ModelStatus, ModelTraining};

/// Trains the model that predicts whether a learner drops a course, on a schedule, on demand and
/// when the data changes; keeps versioned bundles and promotes the better ones.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "mooc.recsys.io",
    version = "v1alpha1",
    kind = "TrainingRun",
    namespaced,
    status = "ModelStatus",
    shortname = "tr",
    category = "mooc",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "Active",
        type_ = "string",
        json_path = ".status.activeVersion",
        description = "Version being served"
    ),
    printcolumn(
        name = "AUC",
        type_ = "number",
        json_path = ".status.activeScore",
        description = "Test AUC of the active version"
    ),
    printcolumn(
        name = "Last Run",
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
pub struct TrainingRunSpec {
    #[serde(flatten)]
    pub training: ModelTraining,
    /// LightGBM settings; a change starts a run.
    #[serde(default)]
    pub hyperparameters: DropoutHyperparameters,
    #[serde(flatten)]
    pub scheduling: Scheduling,
    /// Shape of the worker pods.
    #[serde(default)]
    pub pod: PodSettings,
}

/// LightGBM hyperparameters. Learners are split by user into train, validation (early stopping)
/// and test (reported metrics) sets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DropoutHyperparameters {
    /// Shrinkage of each boosting round (LightGBM `learning_rate`).
    #[serde(default = "default_learning_rate")]
    #[schemars(range(min = 0.0001, max = 1.0))]
    pub learning_rate: f64,
    /// Leaves per tree at most (LightGBM `num_leaves`).
    #[serde(default = "default_num_leaves")]
    #[schemars(range(min = 2, max = 131072))]
    pub num_leaves: u32,
    /// Boosting rounds at most; early stopping usually ends sooner.
    #[serde(default = "default_max_rounds")]
    #[schemars(range(min = 1, max = 100000))]
    pub max_rounds: u32,
    /// Stop after this many rounds without improvement on the validation split.
    #[serde(default = "default_early_stopping_rounds")]
    #[schemars(range(min = 1, max = 10000))]
    pub early_stopping_rounds: u32,
    /// Enrollments per leaf at least (LightGBM `min_data_in_leaf`).
    #[serde(default = "default_min_data_in_leaf")]
    #[schemars(range(min = 1))]
    pub min_data_in_leaf: u32,
    /// Fraction of features sampled per tree.
    #[serde(default = "default_feature_fraction")]
    #[schemars(range(min = 0.01, max = 1.0))]
    pub feature_fraction: f64,
    /// L2 regularisation.
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub lambda_l2: f64,
    /// Fraction of users held out for validation (early stopping).
    #[serde(default = "default_holdout")]
    #[schemars(range(min = 0.01, max = 0.5))]
    pub validation_fraction: f64,
    /// Fraction of users held out for the reported test metrics.
    #[serde(default = "default_holdout")]
    #[schemars(range(min = 0.01, max = 0.5))]
    pub test_fraction: f64,
    /// Seed of the split and of LightGBM, for reproducible runs.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Whether the learner's gender, education and birth year are features (the 22 action
    /// counts, the two session aggregates and the course always are).
    #[serde(default = "default_demographics")]
    pub demographics: bool,
    /// Any other LightGBM parameter by its LightGBM name, e.g. `max_bin: "127"` or
    /// `bagging_fraction: "0.8"`. Parameters set by the fields above, the objective, the metric
    /// and the categorical features are refused by the worker.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_parameters: BTreeMap<String, String>,
}

impl Default for DropoutHyperparameters {
    fn default() -> Self {
        Self {
            learning_rate: default_learning_rate(),
            num_leaves: default_num_leaves(),
            max_rounds: default_max_rounds(),
            early_stopping_rounds: default_early_stopping_rounds(),
            min_data_in_leaf: default_min_data_in_leaf(),
            feature_fraction: default_feature_fraction(),
            lambda_l2: 0.0,
            validation_fraction: default_holdout(),
            test_fraction: default_holdout(),
            seed: default_seed(),
            demographics: default_demographics(),
            extra_parameters: BTreeMap::new(),
        }
    }
}

fn default_learning_rate() -> f64 {
    0.05
}
fn default_num_leaves() -> u32 {
    31
}
fn default_max_rounds() -> u32 {
    1000
}
fn default_early_stopping_rounds() -> u32 {
    50
}
fn default_min_data_in_leaf() -> u32 {
    20
}
fn default_feature_fraction() -> f64 {
    0.9
}
fn default_holdout() -> f64 {
    0.15
}
fn default_demographics() -> bool {
    true
}
pub(crate) fn default_seed() -> u64 {
    42
}
