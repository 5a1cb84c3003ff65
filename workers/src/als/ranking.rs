//! Top-N ranking and its held-out quality: recall@K and NDCG@K over held-out enrollments, with
//! each user's training courses excluded from the ranking (they are not recommendations).

use serde::Serialize;

use super::parallel::for_each_chunk;
use super::sparse::Csr;

/// The best `k` columns by score, best first (ties: lower index first), skipping `exclude`
/// (ascending).
pub fn top_k(scores: &[f32], exclude: &[u32], k: usize) -> Vec<(u32, f32)> {
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    let mut excluded = exclude.iter().peekable();
    for (index, &score) in scores.iter().enumerate() {
        let index = index as u32;
        while excluded.next_if(|&&e| e < index).is_some() {}
        if excluded.next_if_eq(&&index).is_some() {
            continue;
        }
        if best.len() == k && best.last().is_none_or(|&(_, worst)| score <= worst) {
            continue;
        }
        // Strictly better than every later entry: equal scores keep their earlier index first.
        let at = best.partition_point(|&(_, s)| s >= score);
        best.insert(at, (index, score));
        best.truncate(k);
    }
    best
}

/// Held-out enrollments per user (rows as in training): courses known to the model, ascending,
/// and a count of courses it never saw (always misses).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HeldOut {
    pub offsets: Vec<usize>,
    pub courses: Vec<u32>,
    pub unseen: Vec<u32>,
}

impl HeldOut {
    /// From `(user, course)` pairs, `None` for a course the model does not know; repeated pairs
    /// count once.
    pub fn from_pairs(users: usize, pairs: &[(u32, Option<u32>)]) -> Self {
        let mut unseen = vec![0u32; users];
        let mut known: Vec<(u32, u32)> = Vec::with_capacity(pairs.len());
        for &(user, course) in pairs {
            match course {
                Some(course) => known.push((user, course)),
                None => unseen[user as usize] += 1,
            }
        }
        known.sort_unstable();
        known.dedup();
        let mut offsets = vec![0usize; users + 1];
        for &(user, _) in &known {
            offsets[user as usize + 1] += 1;
        }
        for u in 0..users {
            offsets[u + 1] += offsets[u];
        }
        Self {
            offsets,
            courses: known.into_iter().map(|(_, course)| course).collect(),
            unseen,
        }
    }

    pub fn courses(&self, user: usize) -> &[u32] {
        &self.courses[self.offsets[user]..self.offsets[user + 1]]
    }

    /// Held-out enrollments of `user`, known and unseen.
    pub fn len(&self, user: usize) -> usize {
        self.courses(user).len() + self.unseen[user] as usize
    }

    pub fn total(&self) -> usize {
        self.courses.len() + self.unseen.iter().map(|&n| n as usize).sum::<usize>()
    }

    /// How many users have held-out enrollments.
    pub fn users(&self) -> usize {
        (0..self.unseen.len()).filter(|&u| self.len(u) > 0).count()
    }

    /// The held-out enrollments of the users `keep` accepts; the others' are dropped.
    pub fn retain_users(&self, keep: impl Fn(usize) -> bool) -> Self {
        let mut pairs = Vec::new();
        for user in (0..self.unseen.len()).filter(|&u| keep(u)) {
            let id = user as u32;
            pairs.extend(self.courses(user).iter().map(|&c| (id, Some(c))));
            pairs.extend(std::iter::repeat_n((id, None), self.unseen[user] as usize));
        }
        Self::from_pairs(self.unseen.len(), &pairs)
    }
}

/// Mean recall@K and NDCG@K over the users with held-out enrollments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RankingMetrics {
    pub k: usize,
    pub users: usize,
    pub recall: f64,
    pub ndcg: f64,
}

/// Ranks every course for every user with held-out enrollments by `score(user, scores)`,
/// excluding the user's training courses, and measures the top `k`.
pub fn evaluate(
    train: &Csr,
    held_out: &HeldOut,
    k: usize,
    threads: usize,
    score: impl Fn(usize, &mut [f32]) + Sync,
) -> RankingMetrics {
    const BLOCK_USERS: usize = 512;
    let mut per_user: Vec<Option<(f64, f64)>> = vec![None; train.rows()];
    for_each_chunk(&mut per_user, BLOCK_USERS, threads, |block, results| {
        let mut scores = vec![0f32; train.columns];
        for (offset, result) in results.iter_mut().enumerate() {
            let user = block * BLOCK_USERS + offset;
            if held_out.len(user) == 0 {
                continue;
            }
            score(user, &mut scores);
            let ranked = top_k(&scores, train.row(user).0, k);
            *result = Some(user_metrics(
                &ranked,
                held_out.courses(user),
                held_out.len(user),
                k,
            ));
        }
    });
    let measured: Vec<(f64, f64)> = per_user.into_iter().flatten().collect();
    let users = measured.len();
    let mean = |pick: fn(&(f64, f64)) -> f64| {
        if users == 0 {
            0.0
        } else {
            measured.iter().map(pick).sum::<f64>() / users as f64
        }
    };
    RankingMetrics {
        k,
        users,
        recall: mean(|m| m.0),
        ndcg: mean(|m| m.1),
    }
}

/// (recall, NDCG) of one ranking against `relevant` (ascending) out of `held` held-out courses.
fn user_metrics(ranked: &[(u32, f32)], relevant: &[u32], held: usize, k: usize) -> (f64, f64) {
    let gain = |position: usize| 1.0 / ((position + 2) as f64).log2();
    let mut hits = 0usize;
    let mut dcg = 0.0;
    for (position, (course, _)) in ranked.iter().enumerate() {
        if relevant.binary_search(course).is_ok() {
            hits += 1;
            dcg += gain(position);
        }
    }
    let ideal: f64 = (0..held.min(k)).map(gain).sum();
    (hits as f64 / held as f64, dcg / ideal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_skips_excluded_columns_and_breaks_ties_by_index() {
        let scores = [0.5, 0.9, 0.1, 0.9, 0.7, 0.8];
        assert_eq!(top_k(&scores, &[], 3), [(1, 0.9), (3, 0.9), (5, 0.8)]);
        assert_eq!(top_k(&scores, &[1, 5], 3), [(3, 0.9), (4, 0.7), (0, 0.5)]);
        assert_eq!(top_k(&scores, &[0, 1, 2, 3, 4, 5], 3), []);
        assert_eq!(top_k(&scores, &[], 10).len(), 6);
    }

    #[test]
    fn recall_and_ndcg_are_measured_against_every_held_out_course() {
        // Hit at positions 0 and 2 of 3 held-out courses, one of them unseen by the model.
        let ranked = [(4, 0.9), (7, 0.8), (2, 0.5)];
        let (recall, ndcg) = user_metrics(&ranked, &[2, 4], 3, 10);
        assert!((recall - 2.0 / 3.0).abs() < 1e-12);
        let ideal = 1.0 + 1.0 / 3f64.log2() + 0.5;
        assert!((ndcg - (1.0 + 0.5) / ideal).abs() < 1e-12);
        assert_eq!(user_metrics(&ranked, &[], 1, 10), (0.0, 0.0));
    }

    #[test]
    fn evaluation_excludes_training_courses_and_skips_users_without_held_out_ones() {
        // User 0 trained on course 0; its held-out course 1 ranks first once 0 is excluded.
        let train = Csr::from_triples(3, 3, &[(0, 0, 1.0), (1, 2, 1.0), (2, 1, 1.0)]);
        let held_out = HeldOut::from_pairs(3, &[(0, Some(1)), (0, Some(1)), (1, None)]);
        assert_eq!(held_out.total(), 2);
        let scores = [3.0, 2.0, 1.0];
        let metrics = evaluate(&train, &held_out, 1, 2, |_, out| {
            out.copy_from_slice(&scores)
        });
        assert_eq!(metrics.users, 2);
        // User 0: hit at 1 (recall 1, NDCG 1); user 1: its only course is unseen (0, 0).
        assert_eq!((metrics.recall, metrics.ndcg), (0.5, 0.5));
    }
}
