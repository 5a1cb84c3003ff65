//! The enrollments ALS learns from: streamed out of PostgreSQL with `COPY … TO STDOUT`, ids
//! mapped to dense indices, confidences from each enrollment's activity, and the held-out
//! enrollments (a seeded per-user hold-out, or a held-out CSV file) it is measured on.

use std::collections::HashMap;
use std::io::Read;

use anyhow::{Context, bail};
use mooc_crds::als::ConfidenceSignal;
use sqlx::PgConnection;

use super::ranking::HeldOut;
use super::sparse::Csr;
use crate::etl::columns::ACTION_COLUMNS;
use crate::seeded;
use crate::stores::copy_out;

/// Dense indices for opaque ids, in order of first appearance.
#[derive(Clone, Debug, Default)]
pub struct IdMap {
    pub ids: Vec<String>,
    index: HashMap<String, u32>,
}

impl IdMap {
    pub fn from_ids(ids: Vec<String>) -> Self {
        let index = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i as u32))
            .collect();
        Self { ids, index }
    }

    pub fn intern(&mut self, id: &str) -> u32 {
        if let Some(&index) = self.index.get(id) {
            return index;
        }
        let index = self.ids.len() as u32;
        self.ids.push(id.to_owned());
        self.index.insert(id.to_owned(), index);
        index
    }

    pub fn get(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// How strongly an enrollment says "interested": c = 1 + α · signal.
#[derive(Clone, Copy, Debug)]
pub struct Confidence {
    pub alpha: f32,
    pub signal: ConfidenceSignal,
}

impl Confidence {
    /// `total` is the sum of the enrollment's action counts, `None` when none is recorded: a
    /// plain enrollment (signal 1), as in enrollment-only data.
    pub fn of(&self, total: Option<u64>) -> f32 {
        let signal = match (self.signal, total) {
            (ConfidenceSignal::Binary, _) | (_, None) => 1.0,
            (ConfidenceSignal::LogActivity, Some(total)) => (total as f64).ln_1p(),
            (ConfidenceSignal::Activity, Some(total)) => total as f64,
        };
        1.0 + self.alpha * signal as f32
    }
}

/// Every enrollment, as confidences over dense ids.
pub struct Enrollments {
    pub users: IdMap,
    pub courses: IdMap,
    pub confidence: Csr,
}

/// `COPY` of every enrollment with the number of action counts recorded and their sum.
fn copy_statement() -> String {
    let present = ACTION_COLUMNS.join(", ");
    let total: Vec<String> = ACTION_COLUMNS
        .iter()
        .map(|c| format!("coalesce({c}, 0)::bigint"))
        .collect();
    format!(
        "COPY (SELECT username, course_id, num_nonnulls({present}), {} FROM enrollments) TO STDOUT",
        total.join(" + ")
    )
}

pub async fn load(conn: &mut PgConnection, confidence: Confidence) -> anyhow::Result<Enrollments> {
    let mut users = IdMap::default();
    let mut courses = IdMap::default();
    let mut triples: Vec<(u32, u32, f32)> = Vec::new();
    copy_out::rows(conn, &copy_statement(), |line| {
        let [username, course_id, present, total] = copy_out::fields::<4>(line)?;
        let username = copy_out::text(username).context("username is NULL")?;
        let course_id = copy_out::text(course_id).context("course_id is NULL")?;
        let present: u32 = copy_out::number(present)?.context("no count of counts")?;
        let total: u64 = copy_out::number(total)?.context("no total")?;
        let user = users.intern(&username);
        let course = courses.intern(&course_id);
        triples.push((user, course, confidence.of((present > 0).then_some(total))));
        Ok(())
    })
    .await
    .context("reading the enrollments")?;
    let confidence = Csr::from_triples(users.len(), courses.len(), &triples);
    Ok(Enrollments {
        users,
        courses,
        confidence,
    })
}

/// Holds out `fraction` of each user's enrollments (at least one, never all: users with a single
/// enrollment stay whole): those with the smallest seeded hash of (user, course), so the choice
/// depends on the ids and the seed only, never on row order.
pub fn hold_out(enrollments: &Enrollments, fraction: f64, seed: u64) -> (Csr, HeldOut) {
    let all = &enrollments.confidence;
    let mut train: Vec<(u32, u32, f32)> = Vec::with_capacity(all.nnz());
    let mut held: Vec<(u32, Option<u32>)> = Vec::new();
    let mut ranked: Vec<(u64, u32, f32)> = Vec::new();
    for user in 0..all.rows() {
        let (courses, values) = all.row(user);
        let name = &enrollments.users.ids[user];
        ranked.clear();
        ranked.extend(courses.iter().zip(values).map(|(&course, &value)| {
            let key = seeded::hash(seed, &[name, &enrollments.courses.ids[course as usize]]);
            (key, course, value)
        }));
        ranked.sort_unstable_by_key(|&(key, course, _)| (key, course));
        let n = ranked.len();
        let count = if n < 2 {
            0
        } else {
            ((fraction * n as f64).round() as usize).clamp(1, n - 1)
        };
        for (i, &(_, course, value)) in ranked.iter().enumerate() {
            if i < count {
                held.push((user as u32, Some(course)));
            } else {
                train.push((user as u32, course, value));
            }
        }
    }
    (
        Csr::from_triples(all.rows(), all.columns, &train),
        HeldOut::from_pairs(all.rows(), &held),
    )
}

/// At most about `max` users' held-out enrollments, chosen by a seeded hash of their ids: ranking
/// every course for a user costs courses × rank, so at scale a sample is measured.
pub fn sample_users(held_out: HeldOut, users: &IdMap, max: usize, seed: u64) -> HeldOut {
    let count = held_out.users();
    if count <= max {
        return held_out;
    }
    let fraction = max as f64 / count as f64;
    held_out.retain_users(|user| {
        seeded::unit(seeded::hash(seed, &["measure", &users.ids[user]])) < fraction
    })
}

/// Held-out enrollments read from a `username,course_id` CSV.
#[derive(Debug)]
pub struct HeldOutFile {
    pub held_out: HeldOut,
    /// Rows whose user is not in the training data: a recommender cannot rank for them.
    pub unknown_users: u64,
    /// Rows that repeat a training enrollment: not a new enrollment to predict.
    pub already_enrolled: u64,
}

/// Parses a held-out CSV (header `username,course_id` in any order and case, more columns
/// allowed). `name` names the file in errors, with the line and field.
pub fn held_out_csv(
    input: impl Read,
    name: &str,
    enrollments: &Enrollments,
) -> anyhow::Result<HeldOutFile> {
    let mut reader = csv::ReaderBuilder::new().from_reader(input);
    let header = reader
        .headers()
        .with_context(|| format!("{name}: reading the header"))?;
    let column = |wanted: &str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(wanted))
            .with_context(|| format!("{name}: line 1: no {wanted} column in the header"))
    };
    let (user_column, course_column) = (column("username")?, column("course_id")?);
    let mut pairs = Vec::new();
    let (mut unknown_users, mut already_enrolled) = (0, 0);
    for (number, record) in reader.records().enumerate() {
        let line = number + 2;
        let record = record.with_context(|| format!("{name}: line {line}"))?;
        let field = |index: usize, field: &str| match record.get(index).map(str::trim) {
            Some(value) if !value.is_empty() => Ok(value.to_owned()),
            _ => Err(anyhow::anyhow!("{name}: line {line}: {field} is empty")),
        };
        let (username, course_id) = (
            field(user_column, "username")?,
            field(course_column, "course_id")?,
        );
        let Some(user) = enrollments.users.get(&username) else {
            unknown_users += 1;
            continue;
        };
        let course = enrollments.courses.get(&course_id);
        if course.is_some_and(|c| enrollments.confidence.contains(user as usize, c)) {
            already_enrolled += 1;
            continue;
        }
        pairs.push((user, course));
    }
    if pairs.is_empty() {
        bail!("{name}: no held-out enrollment of a user in the training data");
    }
    Ok(HeldOutFile {
        held_out: HeldOut::from_pairs(enrollments.users.len(), &pairs),
        unknown_users,
        already_enrolled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enrollments(pairs: &[(&str, &str)]) -> Enrollments {
        let (mut users, mut courses) = (IdMap::default(), IdMap::default());
        let triples: Vec<_> = pairs
            .iter()
            .map(|(u, c)| (users.intern(u), courses.intern(c), 1.0))
            .collect();
        let confidence = Csr::from_triples(users.len(), courses.len(), &triples);
        Enrollments {
            users,
            courses,
            confidence,
        }
    }

    #[test]
    fn confidence_grows_with_activity_and_is_one_plus_alpha_without_counts() {
        let log = Confidence {
            alpha: 10.0,
            signal: ConfidenceSignal::LogActivity,
        };
        assert_eq!(log.of(None), 11.0);
        assert_eq!(log.of(Some(0)), 1.0);
        assert!((log.of(Some(99)) - (1.0 + 10.0 * 100f32.ln())).abs() < 1e-4);
        let raw = Confidence {
            alpha: 0.5,
            signal: ConfidenceSignal::Activity,
        };
        assert_eq!(raw.of(Some(8)), 5.0);
        let binary = Confidence {
            alpha: 2.0,
            signal: ConfidenceSignal::Binary,
        };
        assert_eq!(binary.of(Some(1000)), 3.0);
    }

    #[test]
    fn the_hold_out_keeps_one_course_per_user_and_depends_on_ids_and_seed_only() {
        let mut pairs = Vec::new();
        for u in 0..200 {
            for c in 0..(1 + u % 6) {
                pairs.push((format!("u{u}"), format!("c{c}")));
            }
        }
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(u, c)| (u.as_str(), c.as_str()))
            .collect();
        let data = enrollments(&refs);
        let (train, held) = hold_out(&data, 0.2, 7);
        assert_eq!(train.nnz() + held.total(), data.confidence.nnz());
        for u in 0..200 {
            let n = 1 + u % 6;
            let expected = if n < 2 {
                0
            } else {
                ((0.2 * n as f64).round() as usize).clamp(1, n - 1)
            };
            assert_eq!(held.len(u), expected, "user {u} of {n}");
            assert!(!train.row(u).0.is_empty());
            for course in held.courses(u) {
                assert!(!train.contains(u, *course));
            }
        }
        // Reversed row order: the same ids and courses are held out.
        let reversed: Vec<(&str, &str)> = refs.iter().rev().copied().collect();
        let data_reversed = enrollments(&reversed);
        let (_, held_reversed) = hold_out(&data_reversed, 0.2, 7);
        let names = |d: &Enrollments, h: &HeldOut| {
            let mut out: Vec<(String, String)> = (0..d.users.len())
                .flat_map(|u| h.courses(u).iter().map(move |c| (u, *c)))
                .map(|(u, c)| (d.users.ids[u].clone(), d.courses.ids[c as usize].clone()))
                .collect();
            out.sort();
            out
        };
        assert_eq!(names(&data, &held), names(&data_reversed, &held_reversed));
        let (_, other_seed) = hold_out(&data, 0.2, 8);
        assert_ne!(names(&data, &held), names(&data, &other_seed));
    }

    #[test]
    fn at_scale_a_seeded_sample_of_users_is_measured_with_all_their_held_out_courses() {
        let pairs: Vec<(String, String)> = (0..1000)
            .flat_map(|u| (0..4).map(move |c| (format!("u{u}"), format!("c{c}"))))
            .collect();
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(u, c)| (u.as_str(), c.as_str()))
            .collect();
        let data = enrollments(&refs);
        let (_, held) = hold_out(&data, 0.5, 1);
        assert_eq!(held.users(), 1000);
        let sampled = sample_users(held.clone(), &data.users, 200, 1);
        assert!((150..250).contains(&sampled.users()), "{}", sampled.users());
        for user in (0..1000).filter(|&u| sampled.len(u) > 0) {
            assert_eq!(sampled.courses(user), held.courses(user));
        }
        assert_eq!(sample_users(held.clone(), &data.users, 1000, 1), held);
    }

    #[test]
    fn a_held_out_file_maps_ids_and_counts_what_it_cannot_use() {
        let data = enrollments(&[("u1", "c1"), ("u2", "c2")]);
        let csv = "Course_ID,username\nc2,u1\nc9,u1\nc1,u1\nc1,nobody\n";
        let file = held_out_csv(csv.as_bytes(), "heldout.csv", &data).unwrap();
        assert_eq!(file.unknown_users, 1);
        assert_eq!(file.already_enrolled, 1);
        assert_eq!(file.held_out.courses(0), [1]);
        assert_eq!(
            file.held_out.len(0),
            2,
            "c9 is unseen: a held-out course never ranked"
        );

        let error =
            held_out_csv("username,course_id\nu1,\n".as_bytes(), "heldout.csv", &data).unwrap_err();
        assert_eq!(error.to_string(), "heldout.csv: line 2: course_id is empty");
        let error = held_out_csv("user,course_id\n".as_bytes(), "h.csv", &data).unwrap_err();
        assert!(
            error.to_string().contains("line 1: no username column"),
            "{error}"
        );
    }
}
