//! Labelled enrollments from PostgreSQL, streamed with `COPY … TO STDOUT` (no per-row protocol
//! round trips, no ORM) straight into the three splits' feature matrices.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use sqlx::PgConnection;

use super::features::{
    ACTIVITY_FEATURES, Enrollment, FeatureSchema, Vocabularies, Vocabulary, activity_columns,
};
use super::split::{Fractions, Split};
use crate::stores::copy_out;

/// A category is learnt only when it occurs this often among labelled enrollments; rarer ones
/// share the unknown bucket, which therefore is learnt too.
pub const MIN_CATEGORY_COUNT: u64 = 10;

/// The feature matrix (row-major) and labels of one split.
#[derive(Default)]
pub struct Matrix {
    pub features: Vec<f64>,
    pub labels: Vec<f32>,
    /// `(username, course_id)` of each row; kept for the test split only.
    pub keys: Vec<(String, String)>,
}

impl Matrix {
    pub fn rows(&self) -> usize {
        self.labels.len()
    }
}

/// The three splits of a training run.
#[derive(Default)]
pub struct Splits {
    pub train: Matrix,
    pub validation: Matrix,
    pub test: Matrix,
}

/// Vocabularies of the categorical features, from how often each value occurs among labelled
/// enrollments (the labels themselves play no part).
pub async fn vocabularies(
    conn: &mut PgConnection,
    schema: &FeatureSchema,
) -> anyhow::Result<Vocabularies> {
    let counts: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT 'course_id', course_id, count(*) FROM enrollments
           WHERE truth IS NOT NULL GROUP BY course_id
         UNION ALL
         SELECT 'gender', u.gender, count(*) FROM enrollments e JOIN users u ON u.user_id = e.username
           WHERE e.truth IS NOT NULL AND u.gender IS NOT NULL GROUP BY u.gender
         UNION ALL
         SELECT 'education', u.education, count(*) FROM enrollments e JOIN users u ON u.user_id = e.username
           WHERE e.truth IS NOT NULL AND u.education IS NOT NULL GROUP BY u.education",
    )
    .fetch_all(&mut *conn)
    .await
    .context("counting the categorical values")?;
    let mut vocabularies = BTreeMap::new();
    for feature in schema.categoricals() {
        let values = counts
            .iter()
            .filter(|(name, _, _)| name == feature.name())
            .map(|(_, value, count)| (value.as_str(), *count as u64));
        vocabularies.insert(feature, Vocabulary::from_counts(values, MIN_CATEGORY_COUNT));
    }
    Ok(Vocabularies(vocabularies))
}

/// The `COPY` of every labelled enrollment with its learner's demographics.
fn copy_statement() -> String {
    let activity: Vec<String> = activity_columns().map(|c| format!("e.{c}")).collect();
    let activity = activity.join(", ");
    format!(
        "COPY (SELECT e.username, e.course_id, e.truth, {activity}, u.gender, u.education, u.birth
               FROM enrollments e LEFT JOIN users u ON u.user_id = e.username
               WHERE e.truth IS NOT NULL) TO STDOUT"
    )
}

/// Streams the labelled enrollments into the splits.
pub async fn load(
    conn: &mut PgConnection,
    schema: &FeatureSchema,
    vocabularies: &Vocabularies,
    fractions: Fractions,
    seed: u64,
) -> anyhow::Result<Splits> {
    let mut splits = Splits::default();
    copy_out::rows(conn, &copy_statement(), |line| {
        add_row(line, schema, vocabularies, fractions, seed, &mut splits)
    })
    .await
    .context("reading the labelled enrollments")?;
    Ok(splits)
}

/// Number of columns of [`copy_statement`].
const COPY_COLUMNS: usize = 3 + ACTIVITY_FEATURES + 3;

fn add_row(
    line: &str,
    schema: &FeatureSchema,
    vocabularies: &Vocabularies,
    fractions: Fractions,
    seed: u64,
    splits: &mut Splits,
) -> anyhow::Result<()> {
    let raw = copy_out::fields::<COPY_COLUMNS>(line)?;
    let number = |i: usize| copy_out::number::<f64>(raw[i]);
    let at = 3 + ACTIVITY_FEATURES;
    let [username, course_id, gender, education] =
        [0, 1, at, at + 1].map(|i| copy_out::text(raw[i]));
    let username = username.as_deref().context("username is NULL")?;
    let course_id = course_id.as_deref().context("course_id is NULL")?;
    let label: f32 = match raw[2] {
        "1" => 1.0,
        "0" => 0.0,
        other => bail!("truth is {other:?}"),
    };
    let mut activity = [None; ACTIVITY_FEATURES];
    for (i, value) in activity.iter_mut().enumerate() {
        *value = number(3 + i)?;
    }
    let enrollment = Enrollment {
        activity,
        course_id,
        gender: gender.as_deref(),
        education: education.as_deref(),
        birth: number(at + 2)?,
    };
    let split = fractions.split(username, seed);
    let matrix = match split {
        Split::Train => &mut splits.train,
        Split::Validation => &mut splits.validation,
        Split::Test => &mut splits.test,
    };
    schema.vector(&enrollment, vocabularies, &mut matrix.features);
    matrix.labels.push(label);
    if split == Split::Test {
        matrix
            .keys
            .push((username.to_owned(), course_id.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dropout::features::Categorical;

    #[test]
    fn a_row_goes_to_its_users_split_with_missing_values_kept_missing() {
        let schema = FeatureSchema { demographics: true };
        let vocabularies = Vocabularies(BTreeMap::from([(
            Categorical::CourseId,
            Vocabulary::new(vec!["c\t1".into()]),
        )]));
        let fractions = Fractions {
            validation: 0.0,
            test: 1.0,
        };
        let mut counts = vec!["7"; ACTIVITY_FEATURES];
        counts[5] = "\\N";
        let line = format!("u1\tc\\t1\t1\t{}\tmale\t\\N\t1990", counts.join("\t"));
        let mut splits = Splits::default();
        add_row(&line, &schema, &vocabularies, fractions, 1, &mut splits).unwrap();
        assert_eq!(splits.test.labels, [1.0]);
        assert_eq!(splits.test.keys, [("u1".to_owned(), "c\t1".to_owned())]);
        let row = &splits.test.features;
        assert_eq!(row.len(), schema.width());
        assert!(row[5].is_nan());
        assert_eq!(row[0], 7.0);
        assert_eq!(row[24], 1.0, "the unescaped course id is known");
        assert_eq!(row[27], 1990.0);

        let bad = line.replace("\t1\t7", "\tyes\t7");
        let error = add_row(&bad, &schema, &vocabularies, fractions, 1, &mut splits).unwrap_err();
        assert!(error.to_string().contains("truth"), "{error}");
    }
}
