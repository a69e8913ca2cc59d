//! Randomness: a fast seeded generator for simulations and non-secret choices, and secret keys from the
//! kernel for what must not be predictable (ephemeral ports, RFC 6056; later initial sequence numbers).

/// SplitMix64: small, fast, and good enough for fault injection and port probing. Not for secrets.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator with a fixed seed (reproducible runs).
    pub fn with_seed(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A generator seeded from the kernel's random source.
    pub fn from_entropy() -> Rng {
        Rng(secret_u64())
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform value in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        // Lemire's multiply-shift; the tiny bias is irrelevant here.
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// True with probability `p` (0.0..=1.0).
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// 64 bits from getrandom(2). Panics only if the kernel cannot provide randomness at all.
pub fn secret_u64() -> u64 {
    let mut buf = [0u8; 8];
    let mut filled = 0;
    while filled < buf.len() {
        match crate::sys::getrandom(&mut buf[filled..]) {
            Ok(n) => filled += n,
            Err(err) => assert!(err.kind() == std::io::ErrorKind::Interrupted, "getrandom failed: {err}"),
        }
    }
    u64::from_ne_bytes(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = Rng::with_seed(7);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            let v = rng.below(10) as usize;
            seen[v] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn chance_is_roughly_right() {
        let mut rng = Rng::with_seed(1);
        let hits = (0..100_000).filter(|_| rng.chance(0.2)).count();
        assert!((18_000..22_000).contains(&hits), "{hits}");
    }

    #[test]
    fn secrets_differ() {
        assert_ne!(secret_u64(), secret_u64());
    }
}
