//! A stable hash for names and change detection. Not `DefaultHasher`: its output may change
//! between Rust releases, and these values are persisted in status and in object names.

/// FNV-1a, 64 bits.
pub fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Eight lowercase hex digits of the hash: short enough for names, enough to tell values apart.
pub fn short(bytes: &[u8]) -> String {
    format!("{:08x}", fnv64(bytes) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_values() {
        assert_eq!(fnv64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(short(b"a"), "8601ec8c");
    }
}
