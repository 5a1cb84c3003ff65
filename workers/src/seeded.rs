//! Seeded randomness that is the same on every machine and in the benchmarks' Python peers:
//! the SplitMix64 generator and a keyed FNV-1a hash finished with its mixer.

/// The SplitMix64 finaliser: spreads nearby inputs over all 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64: small, fast, seedable; statistical quality is ample for synthetic data, hold-outs
/// and initial factors.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.unit().max(f64::MIN_POSITIVE);
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * self.unit()).cos()
    }

    pub fn log_normal(&mut self, mu: f64, sigma: f64) -> f64 {
        (mu + sigma * self.normal()).exp()
    }
}

/// FNV-1a (64 bit) of the seed's little-endian bytes followed by each part's bytes (parts after
/// the first preceded by a 0 byte, which no id contains), finished with the SplitMix64 mixer.
pub fn hash(seed: u64, parts: &[&str]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    let mut feed = |byte: u8| {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(PRIME);
    };
    seed.to_le_bytes().into_iter().for_each(&mut feed);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            feed(0);
        }
        part.bytes().for_each(&mut feed);
    }
    mix(hash)
}

/// The top 53 bits of a hash as a uniform number in [0, 1).
pub fn unit(hash: u64) -> f64 {
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_pinned_so_that_peers_and_later_versions_agree() {
        // Values the benchmarks' Python implementations must reproduce.
        assert_eq!(hash(0, &[""]), 0x813f_0174_a236_7c13);
        assert_eq!(hash(42, &["alice"]), 0x01d3_29fd_15d7_98c5);
        assert_ne!(hash(42, &["alice"]), hash(43, &["alice"]));
        // A pair is not the concatenation of its parts.
        assert_ne!(hash(7, &["ab", "c"]), hash(7, &["a", "bc"]));
        assert_ne!(hash(7, &["ab", "c"]), hash(7, &["abc"]));
    }

    #[test]
    fn the_generator_is_pinned() {
        let mut rng = Rng(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert!((0.0..1.0).contains(&Rng(1).unit()));
    }
}
