//! The train / validation / test split, by learner: every enrollment of a user falls in the same
//! split, so the model is never scored on learners it has seen. The split is a pure function of
//! the user id and the seed (stable across runs, machines and row order); the benchmark's Python
//! peer computes the same one.

/// Where an enrollment goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    /// Early stopping.
    Validation,
    /// Reported metrics only.
    Test,
}

/// The seeded hash of a user id (see [`crate::seeded::hash`]).
pub fn user_hash(user: &str, seed: u64) -> u64 {
    crate::seeded::hash(seed, &[user])
}

/// Test fraction and validation fraction of the users, in (0, 1) and summing below 1.
#[derive(Clone, Copy, Debug)]
pub struct Fractions {
    pub validation: f64,
    pub test: f64,
}

impl Fractions {
    pub fn split(&self, user: &str, seed: u64) -> Split {
        let u = crate::seeded::unit(user_hash(user, seed));
        if u < self.test {
            Split::Test
        } else if u < self.test + self.validation {
            Split::Validation
        } else {
            Split::Train
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_spread_over_the_splits_in_the_asked_proportions() {
        let fractions = Fractions {
            validation: 0.15,
            test: 0.15,
        };
        let mut counts = [0usize; 3];
        for i in 0..100_000 {
            let index = match fractions.split(&format!("user{i}"), 42) {
                Split::Train => 0,
                Split::Validation => 1,
                Split::Test => 2,
            };
            counts[index] += 1;
        }
        for (count, expected) in counts.iter().zip([70_000.0, 15_000.0, 15_000.0]) {
            let share = *count as f64 / expected;
            assert!((0.97..1.03).contains(&share), "{counts:?}");
        }
    }
}
