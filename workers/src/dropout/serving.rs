//! A dropout model as the consumer uses it: read from its verified bundle, it turns enrollments
//! into vectors with the bundle's own schema and vocabularies and scores them.

use anyhow::{Context, ensure};
use serde::{Deserialize, Serialize};

use super::features::{Enrollment, FeatureSchema, Vocabularies};
use crate::bundle::Bundle;

pub const MODEL_FILE: &str = "model.txt";
pub const VOCABULARY_FILE: &str = "vocabulary.json";
pub const FEATURES_FILE: &str = "features.json";
pub const METRICS_FILE: &str = "metrics.json";

/// `features.json`: the schema and, as a check, the names it produced at training.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureFile {
    pub schema: FeatureSchema,
    pub names: Vec<String>,
    pub categorical: Vec<usize>,
}

impl FeatureFile {
    pub fn new(schema: &FeatureSchema) -> Self {
        Self {
            schema: schema.clone(),
            names: schema.names(),
            categorical: schema.categorical_positions(),
        }
    }
}

pub struct DropoutModel {
    pub version: String,
    schema: FeatureSchema,
    vocabularies: Vocabularies,
    booster: lightgbm3::Booster,
}

impl DropoutModel {
    pub fn from_bundle(bundle: &Bundle) -> anyhow::Result<Self> {
        let version = bundle.manifest.version.clone();
        let features: FeatureFile = serde_json::from_slice(bundle.file(FEATURES_FILE)?)
            .with_context(|| format!("{version}: {FEATURES_FILE}"))?;
        ensure!(
            features.names == features.schema.names(),
            "{version}: the bundle's features {:?} are not what this worker builds ({:?})",
            features.names,
            features.schema.names()
        );
        let vocabularies = Vocabularies::from_json(bundle.file(VOCABULARY_FILE)?)
            .with_context(|| format!("{version}: {VOCABULARY_FILE}"))?;
        let model = std::str::from_utf8(bundle.file(MODEL_FILE)?)
            .with_context(|| format!("{version}: {MODEL_FILE}"))?;
        let booster = lightgbm3::Booster::from_string(model)
            .with_context(|| format!("{version}: loading {MODEL_FILE}"))?;
        ensure!(
            booster.num_features() as usize == features.schema.width(),
            "{version}: the model has {} features, the schema {}",
            booster.num_features(),
            features.schema.width()
        );
        Ok(Self {
            version,
            schema: features.schema,
            vocabularies,
            booster,
        })
    }

    /// Dropout probabilities of `enrollments`.
    pub fn score(&self, enrollments: &[Enrollment]) -> anyhow::Result<Vec<f64>> {
        if enrollments.is_empty() {
            return Ok(Vec::new());
        }
        let mut features = Vec::with_capacity(enrollments.len() * self.schema.width());
        for enrollment in enrollments {
            self.schema
                .vector(enrollment, &self.vocabularies, &mut features);
        }
        self.predict(&features)
    }

    /// Probabilities of row-major feature vectors built with this model's schema.
    pub fn predict(&self, features: &[f64]) -> anyhow::Result<Vec<f64>> {
        self.booster
            .predict(features, self.schema.width() as i32, true)
            .with_context(|| format!("scoring with {}", self.version))
    }
}
