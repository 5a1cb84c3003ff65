//! ALSJob: implicit-feedback ALS course recommendations, trained by `mooc-worker train-als` Jobs.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::{PodSettings, Scheduling};
use crate::model::{ModelStatus, ModelTraining};

/// Factorises the user × course enrollment matrix (implicit feedback weighted by activity) into
/// user and course factors for top-N course recommendations; versions as TrainingRun.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "mooc.recsys.io",
    version = "v1alpha1",
    kind = "ALSJob",
    plural = "alsjobs",
    namespaced,
    status = "ModelStatus",
    shortname = "als",
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
        name = "NDCG@10",
        type_ = "number",
        json_path = ".status.activeScore",
        description = "Held-out NDCG@10 of the active version"
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
pub struct ALSJobSpec {
    #[serde(flatten)]
    pub training: ModelTraining,
    /// ALS settings; a change starts a run.
    #[serde(default)]
    pub hyperparameters: AlsHyperparameters,
    #[serde(flatten)]
    pub scheduling: Scheduling,
    /// Shape of the worker pods.
    #[serde(default)]
    pub pod: PodSettings,
}

/// Implicit ALS (Hu, Koren, Volinsky 2008): confidence = 1 + alpha × signal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlsHyperparameters {
    /// Number of latent factors.
    #[serde(default = "default_factors")]
    #[schemars(range(min = 1, max = 1024))]
    pub factors: u32,
    /// Alternating sweeps over users and courses.
    #[serde(default = "default_iterations")]
    #[schemars(range(min = 1, max = 1000))]
    pub iterations: u32,
    /// L2 regularisation of the factors.
    #[serde(default = "default_regularization")]
    #[schemars(range(min = 0.0))]
    pub regularization: f64,
    /// Multiply `regularization` by each learner's and course's enrollment count (weighted-λ
    /// ALS, as Spark MLlib does) instead of applying it alike to every row (as `implicit` does).
    #[serde(default)]
    pub scale_regularization: bool,
    /// Conjugate-gradient steps per row update; more approach the exact least-squares solve.
    #[serde(default = "default_cg_steps")]
    #[schemars(range(min = 1, max = 64))]
    pub cg_steps: u32,
    /// Confidence scale of an observed enrollment.
    #[serde(default = "default_alpha")]
    #[schemars(range(min = 0.0))]
    pub alpha: f64,
    /// What counts as the strength of an enrollment.
    #[serde(default)]
    pub confidence: ConfidenceSignal,
    /// Fraction of each user's enrollments held out to measure recall@10 and NDCG@10.
    #[serde(default = "default_holdout")]
    #[schemars(range(min = 0.01, max = 0.5))]
    pub test_fraction: f64,
    /// Seed of the hold-out and of the initial factors; the same seed gives the same factors.
    #[serde(default = "crate::training::default_seed")]
    pub seed: u64,
}

impl Default for AlsHyperparameters {
    fn default() -> Self {
        Self {
            factors: default_factors(),
            iterations: default_iterations(),
            regularization: default_regularization(),
            scale_regularization: false,
            cg_steps: default_cg_steps(),
            alpha: default_alpha(),
            confidence: ConfidenceSignal::default(),
            test_fraction: default_holdout(),
            seed: crate::training::default_seed(),
        }
    }
}

/// The implicit signal of an enrollment.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum ConfidenceSignal {
    /// log(1 + total activity count): heavy users do not drown the rest.
    #[default]
    LogActivity,
    /// The total activity count.
    Activity,
    /// 1 for every enrollment.
    Binary,
}

fn default_factors() -> u32 {
    64
}
fn default_iterations() -> u32 {
    15
}
fn default_regularization() -> f64 {
    0.05
}
fn default_cg_steps() -> u32 {
    3
}
fn default_alpha() -> f64 {
    10.0
}
fn default_holdout() -> f64 {
    0.2
}
