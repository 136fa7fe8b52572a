//! The trainer's random numbers: SplitMix64 streams derived from the run's seed.
//!
//! Every random decision (the sampler's permutation, an item's text and file draws, a dropout
//! mask) comes from a stream keyed by the seed and *where* it is used (epoch, position, step), not
//! from one generator advanced through the run. A resumed run therefore draws exactly what the
//! uninterrupted run drew, with no generator state to save. The reference uses Python's `random`
//! and torch's generators; only the distributions are matched (README of the goldens, §4).

/// A SplitMix64 generator (Steele, Lea & Flood 2014): small, fast, statistically sound for
/// sampling.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator for the stream `keys` of run `seed` (e.g. `[STREAM_ITEM, epoch, index]`).
    pub fn stream(seed: u64, keys: &[u64]) -> Self {
        let mut state = mix(seed ^ GOLDEN_GAMMA);
        for &key in keys {
            state = mix(state ^ mix(key.wrapping_add(GOLDEN_GAMMA)));
        }
        Self { state }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix(self.state)
    }

    /// Uniform in `[0, 1)` with 53 random bits (Python's `random.random()`).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A standard normal draw (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Uniform in `[0, 1)` as f32 with 24 random bits (for dropout masks).
    pub fn uniform_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// Uniform integer in `0..n` (`n > 0`), without modulo bias.
    pub fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next_u64();
            if x < zone {
                return (x % n) as usize;
            }
        }
    }

    /// Fisher-Yates shuffle (`random.shuffle`).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }

    /// A random permutation of `0..n` (`torch.randperm` in the reference's sampler).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        self.shuffle(&mut order);
        order
    }
}

/// Stream keys: one per kind of decision, so streams never overlap.
pub(crate) mod streams {
    /// The epoch's order of the training items.
    pub const SAMPLER: u64 = 1;
    /// One item's draws (text, truncation, file, instrument coin, M3 masking).
    pub const ITEM: u64 = 2;
    /// One forward pass's dropout masks.
    pub const DROPOUT: u64 = 3;
    /// The train/eval split when no eval file is given.
    pub const SPLIT: u64 = 4;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| Rng::stream(7, &[1, 2]).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(
            Rng::stream(7, &[1, 2]).next_u64(),
            Rng::stream(7, &[2, 1]).next_u64()
        );
    }

    #[test]
    fn uniform_and_below_have_the_right_range_and_mean() {
        let mut rng = Rng::stream(1, &[]);
        let n = 20_000;
        let mean = (0..n).map(|_| rng.uniform()).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
        let mut counts = [0usize; 3];
        for _ in 0..n {
            counts[rng.below(3)] += 1;
        }
        assert!(counts
            .iter()
            .all(|&c| (c as f64 / n as f64 - 1.0 / 3.0).abs() < 0.02));
        let perm = rng.permutation(10);
        let mut sorted = perm.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
    }
}
