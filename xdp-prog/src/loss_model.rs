//! A Rust model of loss.h's per-CPU random streams, checked bit for bit against the header compiled
//! for the host, so that the program tests can predict the exact drop pattern of a seed on a CPU.

use crate::abi::PPM_ONE;
use crate::host::{self, LossState};

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's output function, as `loss_mix64()`.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One CPU's stream from its start, as `loss_draw()` runs it while the settings stay the same.
#[derive(Debug, Clone)]
pub(crate) struct LossStream {
    rng: u64,
    drop_ppm: u32,
}

impl LossStream {
    pub(crate) fn new(seed: u64, cpu: u32, drop_ppm: u32) -> LossStream {
        LossStream { rng: mix64(seed.wrapping_add(u64::from(cpu).wrapping_mul(GOLDEN))), drop_ppm }
    }

    /// Whether the next candidate frame is dropped.
    pub(crate) fn drops(&mut self) -> bool {
        if self.drop_ppm == 0 {
            return false;
        }
        self.rng = self.rng.wrapping_add(GOLDEN);
        let r = (mix64(self.rng) >> 32) as u32;
        u64::from(r) * u64::from(PPM_ONE) < u64::from(self.drop_ppm) << 32
    }

    /// The next `n` decisions.
    pub(crate) fn pattern(&mut self, n: usize) -> Vec<bool> {
        (0..n).map(|_| self.drops()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64: a deterministic stream of test inputs without a dependency.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn model_matches_loss_h() {
        let mut inputs = 0x2545_f491_4f6c_dd1d;
        for case in 0..200 {
            let seed = xorshift(&mut inputs);
            let cpu = (xorshift(&mut inputs) % 64) as u32;
            let ppm = match case % 4 {
                0 => 0,
                1 => PPM_ONE,
                _ => (xorshift(&mut inputs) % u64::from(PPM_ONE + 1)) as u32,
            };
            let generation = 1 + case;
            let mut model = LossStream::new(seed, cpu, ppm);
            // A state that drew from other settings before: the new generation restarts it.
            let mut st = LossState { rng: !seed, seed: seed ^ 1, generation: 0, pad: 0 };
            for i in 0..500 {
                let c = host::loss_draw(&mut st, ppm, seed, generation, cpu);
                assert_eq!(model.drops(), c, "case {case} (seed {seed:#x} cpu {cpu} ppm {ppm}), draw {i}");
            }
        }
    }

    #[test]
    fn loss_h_restarts_on_a_new_generation_or_seed_only() {
        let (seed, cpu, ppm) = (99, 1, 500_000);
        let mut st = LossState::default();
        let first: Vec<bool> = (0..64).map(|_| host::loss_draw(&mut st, ppm, seed, 1, cpu)).collect();
        assert_eq!(first, LossStream::new(seed, cpu, ppm).pattern(64));
        // Same settings: the stream goes on (so the next 64 differ from the first 64).
        let more: Vec<bool> = (0..64).map(|_| host::loss_draw(&mut st, ppm, seed, 1, cpu)).collect();
        assert_ne!(more, first);
        // New generation, same seed: starts over.
        let again: Vec<bool> = (0..64).map(|_| host::loss_draw(&mut st, ppm, seed, 2, cpu)).collect();
        assert_eq!(again, first);
        // Same generation, but a seed written since (a torn read of the config): starts over too.
        let other: Vec<bool> = (0..64).map(|_| host::loss_draw(&mut st, ppm, seed + 1, 2, cpu)).collect();
        assert_eq!(other, LossStream::new(seed + 1, cpu, ppm).pattern(64));
    }

    #[test]
    fn drop_rate_edges_are_exact() {
        let mut none = LossStream::new(5, 0, 0);
        let mut all = LossStream::new(5, 0, PPM_ONE);
        assert!((0..10_000).all(|_| !none.drops()));
        assert!((0..10_000).all(|_| all.drops()));
        let mut st = LossState::default();
        assert!((0..1000).all(|_| !host::loss_draw(&mut st, 0, 5, 1, 0)));
        assert_eq!(st, LossState::default(), "0 ppm draws nothing");
        assert!((0..1000).all(|_| host::loss_draw(&mut st, PPM_ONE, 5, 1, 0)));
    }

    #[test]
    fn streams_differ_per_seed_and_cpu() {
        let base = LossStream::new(1, 0, 300_000).pattern(256);
        assert_ne!(base, LossStream::new(2, 0, 300_000).pattern(256));
        assert_ne!(base, LossStream::new(1, 1, 300_000).pattern(256));
    }
}
