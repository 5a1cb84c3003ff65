//! The one definition of the dropout model's input: which features, in which order, and how an
//! enrollment becomes a vector. Training builds every row through [`FeatureSchema::vector`], and
//! so does serving, from the schema and vocabularies stored in the bundle.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::etl::columns::ACTION_COLUMNS;

/// The two session aggregates that follow the 22 counts.
pub const SESSION_COLUMNS: [&str; 2] = ["unique_session_count", "avg_nactions_per_session"];

/// Number of numeric activity features: the 22 counts and the two session aggregates.
pub const ACTIVITY_FEATURES: usize = ACTION_COLUMNS.len() + SESSION_COLUMNS.len();

/// The activity columns of table `enrollments`, in feature order.
pub fn activity_columns() -> impl Iterator<Item = &'static str> {
    ACTION_COLUMNS.iter().chain(&SESSION_COLUMNS).copied()
}

/// Code of the unknown bucket of every categorical feature: values not in the vocabulary (unseen
/// in training, or too rare there to learn from) and missing values.
pub const UNKNOWN: u32 = 0;

/// The features of one enrollment as stored (table `enrollments` joined with `users`); `None` is
/// a missing value, which the model sees as missing, never as zero.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Enrollment<'a> {
    /// The 22 action counts, then `unique_session_count` and `avg_nactions_per_session`.
    pub activity: [Option<f64>; ACTIVITY_FEATURES],
    pub course_id: &'a str,
    pub gender: Option<&'a str>,
    pub education: Option<&'a str>,
    pub birth: Option<f64>,
}

/// The categorical features, each with a vocabulary in the bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Categorical {
    CourseId,
    Gender,
    Education,
}

impl Categorical {
    pub fn name(self) -> &'static str {
        match self {
            Categorical::CourseId => "course_id",
            Categorical::Gender => "gender",
            Categorical::Education => "education",
        }
    }

    fn value<'a>(self, enrollment: &Enrollment<'a>) -> Option<&'a str> {
        match self {
            Categorical::CourseId => Some(enrollment.course_id),
            Categorical::Gender => enrollment.gender,
            Categorical::Education => enrollment.education,
        }
    }
}

/// Known values of a categorical feature. Value `i` of `values` is code `i + 1`; everything else
/// is [`UNKNOWN`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Vocabulary {
    pub values: Vec<String>,
    #[serde(skip)]
    codes: HashMap<String, u32>,
}

impl Vocabulary {
    pub fn new(values: Vec<String>) -> Self {
        let codes = values
            .iter()
            .enumerate()
            .map(|(i, value)| (value.clone(), i as u32 + 1))
            .collect();
        Self { values, codes }
    }

    /// The values seen at least `min_count` times, most frequent first (ties by value), so that
    /// codes are reproducible.
    pub fn from_counts<'a>(
        counts: impl IntoIterator<Item = (&'a str, u64)>,
        min_count: u64,
    ) -> Self {
        let mut kept: Vec<(&str, u64)> = counts
            .into_iter()
            .filter(|(_, count)| *count >= min_count)
            .collect();
        kept.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        Self::new(
            kept.into_iter()
                .map(|(value, _)| value.to_owned())
                .collect(),
        )
    }

    pub fn code(&self, value: Option<&str>) -> u32 {
        value
            .and_then(|value| self.codes.get(value).copied())
            .unwrap_or(UNKNOWN)
    }

    /// Rebuilds the lookup after deserialising.
    fn indexed(self) -> Self {
        Self::new(self.values)
    }
}

/// The vocabularies of a model, stored as `vocabulary.json` in its bundle.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Vocabularies(pub BTreeMap<Categorical, Vocabulary>);

impl Vocabularies {
    pub fn from_json(bytes: &[u8]) -> serde_json::Result<Self> {
        let read: Self = serde_json::from_slice(bytes)?;
        Ok(Self(
            read.0
                .into_iter()
                .map(|(feature, vocabulary)| (feature, vocabulary.indexed()))
                .collect(),
        ))
    }

    fn code(&self, feature: Categorical, value: Option<&str>) -> u32 {
        self.0
            .get(&feature)
            .map_or(UNKNOWN, |vocabulary| vocabulary.code(value))
    }
}

/// Which features a model uses; stored as `features.json` in its bundle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureSchema {
    /// Whether gender, education and birth year are features.
    pub demographics: bool,
}

impl FeatureSchema {
    pub fn categoricals(&self) -> Vec<Categorical> {
        if self.demographics {
            vec![
                Categorical::CourseId,
                Categorical::Gender,
                Categorical::Education,
            ]
        } else {
            vec![Categorical::CourseId]
        }
    }

    /// Feature names in vector order.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = activity_columns().map(str::to_owned).collect();
        names.extend(self.categoricals().iter().map(|c| c.name().to_owned()));
        if self.demographics {
            names.push("birth".to_owned());
        }
        names
    }

    /// Number of features.
    pub fn width(&self) -> usize {
        ACTIVITY_FEATURES + self.categoricals().len() + usize::from(self.demographics)
    }

    /// Positions of the categorical features (LightGBM's `categorical_feature`).
    pub fn categorical_positions(&self) -> Vec<usize> {
        (ACTIVITY_FEATURES..ACTIVITY_FEATURES + self.categoricals().len()).collect()
    }

    /// Appends the vector of `enrollment` to `out`: missing numbers are NaN (LightGBM's missing),
    /// categoricals are vocabulary codes.
    pub fn vector(&self, enrollment: &Enrollment, vocabularies: &Vocabularies, out: &mut Vec<f64>) {
        out.extend(enrollment.activity.iter().map(|v| v.unwrap_or(f64::NAN)));
        for feature in self.categoricals() {
            out.push(f64::from(
                vocabularies.code(feature, feature.value(enrollment)),
            ));
        }
        if self.demographics {
            out.push(enrollment.birth.unwrap_or(f64::NAN));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enrollment() -> Enrollment<'static> {
        let mut activity = [Some(1.0); ACTIVITY_FEATURES];
        activity[3] = None;
        activity[23] = Some(2.5);
        Enrollment {
            activity,
            course_id: "course-v1:TsinghuaX+00740043X+2015_T1",
            gender: Some("female"),
            education: None,
            birth: Some(1990.0),
        }
    }

    fn vocabularies() -> Vocabularies {
        Vocabularies(BTreeMap::from([
            (
                Categorical::CourseId,
                Vocabulary::from_counts(
                    [
                        ("rare", 1),
                        ("course-v1:TsinghuaX+00740043X+2015_T1", 40),
                        ("big", 90),
                    ],
                    10,
                ),
            ),
            (
                Categorical::Gender,
                Vocabulary::from_counts([("male", 5), ("female", 5)], 1),
            ),
        ]))
    }

    #[test]
    fn vocabularies_keep_frequent_values_in_a_reproducible_order_and_bucket_the_rest() {
        let vocabulary = &vocabularies().0[&Categorical::CourseId];
        assert_eq!(
            vocabulary.values,
            ["big", "course-v1:TsinghuaX+00740043X+2015_T1"]
        );
        assert_eq!(vocabulary.code(Some("big")), 1);
        assert_eq!(vocabulary.code(Some("rare")), UNKNOWN);
        assert_eq!(vocabulary.code(Some("never seen")), UNKNOWN);
        assert_eq!(vocabulary.code(None), UNKNOWN);
        let gender = &vocabularies().0[&Categorical::Gender];
        assert_eq!(gender.values, ["female", "male"], "ties ordered by value");
    }

    #[test]
    fn a_vector_has_the_schema_order_missing_as_nan_and_categorical_codes() {
        let schema = FeatureSchema { demographics: true };
        let mut out = Vec::new();
        schema.vector(&enrollment(), &vocabularies(), &mut out);
        assert_eq!(out.len(), schema.width());
        assert_eq!(schema.names().len(), schema.width());
        assert_eq!(schema.names()[24], "course_id");
        assert_eq!(schema.categorical_positions(), [24, 25, 26]);
        assert!(out[3].is_nan(), "a missing count stays missing, not 0");
        assert_eq!(out[0], 1.0);
        assert_eq!(out[23], 2.5);
        assert_eq!(out[24], 2.0, "the course's code");
        assert_eq!(out[25], 1.0, "female");
        assert_eq!(
            out[26],
            f64::from(UNKNOWN),
            "no education vocabulary: unknown"
        );
        assert_eq!(out[27], 1990.0);

        let without = FeatureSchema {
            demographics: false,
        };
        let mut out = Vec::new();
        without.vector(&enrollment(), &vocabularies(), &mut out);
        assert_eq!(out.len(), 25);
        assert_eq!(without.names().last().unwrap(), "course_id");
    }

    #[test]
    fn vocabularies_read_back_from_json_give_the_same_codes() {
        let written = serde_json::to_vec(&vocabularies()).unwrap();
        let read = Vocabularies::from_json(&written).unwrap();
        assert_eq!(
            read.code(Categorical::CourseId, Some("big")),
            vocabularies().code(Categorical::CourseId, Some("big"))
        );
        assert_eq!(read.code(Categorical::Gender, Some("male")), 2);
    }
}
