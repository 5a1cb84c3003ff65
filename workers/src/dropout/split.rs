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

/// FNV-1a (64 bit) of the seed's little-endian bytes followed by the id's bytes, finished with
/// the splitmix64 mixer so that nearby ids spread evenly.
pub fn user_hash(user: &str, seed: u64) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for byte in seed.to_le_bytes().iter().chain(user.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(PRIME);
    }
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// Test fraction and validation fraction of the users, in (0, 1) and summing below 1.
#[derive(Clone, Copy, Debug)]
pub struct Fractions {
    pub validation: f64,
    pub test: f64,
}

impl Fractions {
    pub fn split(&self, user: &str, seed: u64) -> Split {
        // The top 53 bits as a uniform number in [0, 1).
        let u = (user_hash(user, seed) >> 11) as f64 / (1u64 << 53) as f64;
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
    fn the_hash_is_pinned_so_that_peers_and_later_versions_split_alike() {
        // Values the benchmark's Python implementation must reproduce.
        assert_eq!(user_hash("", 0), 0x813f_0174_a236_7c13);
        assert_eq!(user_hash("alice", 42), 0x01d3_29fd_15d7_98c5);
        assert_ne!(user_hash("alice", 42), user_hash("alice", 43));
    }

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
