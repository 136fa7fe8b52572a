//! Whole-waveform normalisation and the 5-second MERT windows.
//!
//! The reference (`preprocessing/audio/extract_mert.py`, `mert_infr_features`) runs the
//! Hugging Face `Wav2Vec2FeatureExtractor(do_normalize=True)` over the whole waveform once, then
//! slices `wav[:, i : i + 5 * 24000]` for `i` in `range(0, len, 5 * 24000)` and drops the last
//! slice when it is shorter than one second.

use crate::{MIN_WINDOW_SAMPLES, WINDOW_SAMPLES};

/// The variance floor of `Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm`.
pub const NORM_EPSILON: f32 = 1e-7;

/// Normalises `samples` in place to zero mean and unit variance:
/// `(x - mean) / sqrt(var + 1e-7)` with the population variance, as
/// `Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm` does in numpy `float32`.
///
/// The sums are taken in `f64` (numpy uses pairwise `f32` sums; the two agree to a few ulps),
/// the mean and scale are then rounded to `f32` and applied in `f32` as numpy does.
pub fn normalize(samples: &mut [f32]) {
    if samples.is_empty() {
        return;
    }
    let n = samples.len() as f64;
    let mean = (samples.iter().map(|&x| f64::from(x)).sum::<f64>() / n) as f32;
    let var = (samples
        .iter()
        .map(|&x| {
            let d = f64::from(x - mean);
            d * d
        })
        .sum::<f64>()
        / n) as f32;
    let std = (var + NORM_EPSILON).sqrt();
    for x in samples.iter_mut() {
        *x = (*x - mean) / std;
    }
}

/// How many windows [`windows`] yields for a waveform of `len` samples at 24 kHz.
pub fn window_count(len: usize) -> usize {
    let full = len / WINDOW_SAMPLES;
    let tail = len % WINDOW_SAMPLES;
    full + usize::from(tail >= MIN_WINDOW_SAMPLES)
}

/// The 5-second windows of a 24 kHz waveform: consecutive, without overlap or padding; a last
/// window shorter than one second is dropped. Borrowed slices, so nothing is copied.
pub fn windows(samples: &[f32]) -> Windows<'_> {
    Windows {
        samples,
        next: 0,
        count: window_count(samples.len()),
    }
}

/// Iterator returned by [`windows`].
#[derive(Debug, Clone)]
pub struct Windows<'a> {
    samples: &'a [f32],
    next: usize,
    count: usize,
}

impl<'a> Iterator for Windows<'a> {
    type Item = &'a [f32];

    fn next(&mut self) -> Option<&'a [f32]> {
        if self.next >= self.count {
            return None;
        }
        let start = self.next * WINDOW_SAMPLES;
        let end = (start + WINDOW_SAMPLES).min(self.samples.len());
        self.next += 1;
        Some(&self.samples[start..end])
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.count - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Windows<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn lengths(len: usize) -> Vec<usize> {
        windows(&vec![0.0; len]).map(<[f32]>::len).collect()
    }

    #[test]
    fn window_lengths_follow_the_reference() {
        // The golden cases: a01, a07 (exactly 10 s), a08 (5.6 s), a09 (0.7 s), a10 (36 s).
        assert_eq!(lengths(295_200), vec![120_000, 120_000, 55_200]);
        assert_eq!(lengths(240_000), vec![120_000, 120_000]);
        assert_eq!(lengths(134_400), vec![120_000]);
        assert_eq!(lengths(16_800), Vec::<usize>::new());
        assert_eq!(lengths(864_000), [vec![120_000; 7], vec![24_000]].concat());
        assert_eq!(lengths(23_999), Vec::<usize>::new());
        assert_eq!(lengths(143_999), vec![120_000]);
        assert_eq!(lengths(0), Vec::<usize>::new());
        assert_eq!(windows(&[0.0; 150_000]).len(), 2);
    }

    #[test]
    fn normalize_gives_zero_mean_unit_variance() {
        let mut x: Vec<f32> = (0..1000)
            .map(|i| (i as f32 * 0.37).sin() * 3.0 + 2.0)
            .collect();
        normalize(&mut x);
        let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / 1000.0;
        let var = x
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / 1000.0;
        assert!(mean.abs() < 1e-6, "{mean}");
        assert!((var - 1.0).abs() < 1e-5, "{var}");
    }

    #[test]
    fn normalize_silence_stays_finite() {
        let mut x = vec![0.5f32; 10];
        normalize(&mut x);
        assert!(x.iter().all(|v| *v == 0.0));
        normalize(&mut []);
    }
}
