//! A seeded fault injector: middleware around any [`TxDevice`] that drops, duplicates, reorders and
//! corrupts frames. Same seed, same faults: a failing simulation can be replayed exactly.

use super::{TxDevice, TxFull};
use crate::rand::Rng;

/// Probabilities (0.0..=1.0) of each fault, per frame, and the seed.
#[derive(Debug, Clone, Default)]
pub struct FaultConfig {
    /// Drop the frame.
    pub drop: f64,
    /// Send the frame twice.
    pub duplicate: f64,
    /// Hold the frame back and send it after the next one.
    pub reorder: f64,
    /// Flip one random bit of the frame.
    pub corrupt: f64,
    /// Seed of the generator.
    pub seed: u64,
}

/// Wraps a device and injects faults into what is transmitted through it.
#[derive(Debug)]
pub struct FaultInjector<D> {
    inner: D,
    config: FaultConfig,
    rng: Rng,
    scratch: Vec<u8>,
    held: Option<Vec<u8>>,
    /// Frames dropped so far.
    pub dropped: u64,
}

impl<D: TxDevice> FaultInjector<D> {
    /// Wrap `inner`.
    pub fn new(inner: D, config: FaultConfig) -> Self {
        let rng = Rng::with_seed(config.seed);
        FaultInjector { inner, config, rng, scratch: Vec::new(), held: None, dropped: 0 }
    }

    /// The wrapped device.
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// Send the frame held back for reordering, if any.
    pub fn release_held(&mut self) -> Result<(), TxFull> {
        match self.held.take() {
            Some(frame) => copy_out(&mut self.inner, &frame),
            None => Ok(()),
        }
    }
}

fn copy_out<D: TxDevice>(dev: &mut D, frame: &[u8]) -> Result<(), TxFull> {
    dev.transmit(frame.len(), |buf| {
        buf[..frame.len()].copy_from_slice(frame);
        frame.len()
    })
}

impl<D: TxDevice> TxDevice for FaultInjector<D> {
    fn transmit<F: FnOnce(&mut [u8]) -> usize>(&mut self, max_len: usize, fill: F) -> Result<(), TxFull> {
        self.scratch.clear();
        self.scratch.resize(max_len, 0);
        let len = fill(&mut self.scratch).min(max_len);
        self.scratch.truncate(len);
        if self.rng.chance(self.config.drop) {
            self.dropped += 1;
            return Ok(());
        }
        if len > 0 && self.rng.chance(self.config.corrupt) {
            let bit = self.rng.below(len as u64 * 8);
            self.scratch[(bit / 8) as usize] ^= 1 << (bit % 8);
        }
        if self.held.is_none() && self.rng.chance(self.config.reorder) {
            self.held = Some(self.scratch.clone());
            return Ok(());
        }
        copy_out(&mut self.inner, &self.scratch)?;
        if self.rng.chance(self.config.duplicate) {
            copy_out(&mut self.inner, &self.scratch)?;
        }
        self.release_held()
    }

    fn flush(&mut self) {
        self.inner.flush();
    }

    fn can_transmit(&mut self) -> bool {
        self.inner.can_transmit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_numbered(dev: &mut impl TxDevice, n: u8) {
        for i in 0..n {
            dev.transmit(4, |b| {
                b[..4].copy_from_slice(&[i; 4]);
                4
            })
            .unwrap();
        }
    }

    #[test]
    fn no_faults_passes_everything_in_order() {
        let mut f = FaultInjector::new(Vec::new(), FaultConfig { seed: 3, ..Default::default() });
        send_numbered(&mut f, 50);
        let out: Vec<u8> = f.inner_mut().iter().map(|fr| fr[0]).collect();
        assert_eq!(out, (0..50).collect::<Vec<u8>>());
    }

    #[test]
    fn drop_rate_and_replay() {
        let cfg = FaultConfig { drop: 0.2, duplicate: 0.1, reorder: 0.1, corrupt: 0.0, seed: 42 };
        let mut a = FaultInjector::new(Vec::new(), cfg.clone());
        let mut b = FaultInjector::new(Vec::new(), cfg);
        send_numbered(&mut a, 200);
        send_numbered(&mut b, 200);
        assert_eq!(a.inner_mut(), b.inner_mut(), "same seed, same faults");
        assert!((20..60).contains(&a.dropped), "{}", a.dropped);
        let out: Vec<u8> = a.inner_mut().iter().map(|fr| fr[0]).collect();
        assert!(out.windows(2).any(|w| w[0] > w[1]), "some reordering");
        assert!(out.windows(2).any(|w| w[0] == w[1]), "some duplication");
    }

    #[test]
    fn corruption_flips_exactly_one_bit() {
        let cfg = FaultConfig { corrupt: 1.0, seed: 9, ..Default::default() };
        let mut f = FaultInjector::new(Vec::new(), cfg);
        send_numbered(&mut f, 20);
        for (i, fr) in f.inner_mut().iter().enumerate() {
            let flipped: u32 = fr.iter().map(|b| (b ^ i as u8).count_ones()).sum();
            assert_eq!(flipped, 1);
        }
    }
}
