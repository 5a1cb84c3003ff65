//! An ALS bundle as the consumer holds it: factors and id maps read back from the bundle's own
//! files, and the recommendation function.

use anyhow::{Context, ensure};
use serde::{Deserialize, Serialize};

use super::dataset::IdMap;
use super::ranking::top_k;
use super::solver::{Factors, dot};
use crate::bundle::Bundle;

pub const MODEL_FILE: &str = "model.json";
pub const USER_FACTORS_FILE: &str = "user_factors.f32";
pub const COURSE_FACTORS_FILE: &str = "course_factors.f32";
pub const METRICS_FILE: &str = "metrics.json";

/// `model.json`: the shape of the factor files (little-endian f32, one row per id, in order).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelFile {
    pub rank: usize,
    pub users: Vec<String>,
    pub courses: Vec<String>,
    /// Training enrollments per course: the popularity behind the unknown-user fallback.
    pub course_enrollments: Vec<u64>,
}

/// Where a list of recommendations came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    /// The learner's ALS factors: score = user · course factors.
    Factors,
    /// The learner is not in the model (new since training): the most popular courses, score =
    /// the share of the model's learners enrolled in the course.
    Popular,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    pub course_id: String,
    pub score: f32,
}

pub struct AlsModel {
    pub version: String,
    users: IdMap,
    courses: IdMap,
    user_factors: Factors,
    course_factors: Factors,
    /// Share of learners per course.
    popularity: Vec<f32>,
}

impl AlsModel {
    pub fn from_bundle(bundle: &Bundle) -> anyhow::Result<Self> {
        let version = bundle.manifest.version.clone();
        let model: ModelFile = serde_json::from_slice(bundle.file(MODEL_FILE)?)
            .with_context(|| format!("bundle {version}: {MODEL_FILE}"))?;
        let factors = |name: &str, rows: usize| -> anyhow::Result<Factors> {
            let factors = Factors::from_le_bytes(model.rank, bundle.file(name)?)
                .filter(|f| f.rows() == rows)
                .with_context(|| {
                    format!(
                        "bundle {version}: {name} is not {rows} rows of {} f32",
                        model.rank
                    )
                })?;
            Ok(factors)
        };
        let user_factors = factors(USER_FACTORS_FILE, model.users.len())?;
        let course_factors = factors(COURSE_FACTORS_FILE, model.courses.len())?;
        ensure!(
            model.course_enrollments.len() == model.courses.len(),
            "bundle {version}: {MODEL_FILE} has {} course counts for {} courses",
            model.course_enrollments.len(),
            model.courses.len()
        );
        let learners = model.users.len().max(1) as f32;
        let popularity = model
            .course_enrollments
            .iter()
            .map(|&n| n as f32 / learners)
            .collect();
        Ok(Self {
            version,
            users: IdMap::from_ids(model.users),
            courses: IdMap::from_ids(model.courses),
            user_factors,
            course_factors,
            popularity,
        })
    }

    /// The `n` best courses for `user` that are not in `enrolled`.
    pub fn recommend(
        &self,
        user: &str,
        enrolled: &[&str],
        n: usize,
    ) -> (Source, Vec<Recommendation>) {
        let mut exclude: Vec<u32> = enrolled
            .iter()
            .filter_map(|c| self.courses.get(c))
            .collect();
        exclude.sort_unstable();
        let (source, ranked) = match self.users.get(user) {
            Some(index) => {
                let factors = self.user_factors.row(index as usize);
                let scores: Vec<f32> = (0..self.courses.len())
                    .map(|c| dot(factors, self.course_factors.row(c)))
                    .collect();
                (Source::Factors, top_k(&scores, &exclude, n))
            }
            None => (Source::Popular, top_k(&self.popularity, &exclude, n)),
        };
        let recommendations = ranked
            .into_iter()
            .map(|(course, score)| Recommendation {
                course_id: self.courses.ids[course as usize].clone(),
                score,
            })
            .collect();
        (source, recommendations)
    }
}
