//! Band-limited resampling, equal to torchaudio's `Resample(orig_freq, new_freq)` with its
//! defaults: `sinc_interp_hann`, `lowpass_filter_width = 6`, `rolloff = 0.99`, rates reduced by
//! their gcd.
//!
//! torchaudio (v2.4.1, `torchaudio/functional/functional.py`, `_get_sinc_resample_kernel` and
//! `_apply_sinc_resample_kernel`) builds one windowed-sinc kernel per output phase, each
//! `2 * width + orig` taps long, zero-pads the input by `width` on the left and `width + orig` on
//! the right, runs a strided convolution and keeps the first `ceil(len * new / orig)` outputs.
//!
//! Here the same kernel is built in `f64` and rounded to `f32` like torchaudio's, but each phase
//! keeps only its non-zero taps (the Hann window clamps everything beyond six zero crossings to
//! exactly zero in `f32`), so rates with a small gcd (44101 → 24000) cost a few hundred thousand
//! coefficients rather than gigabytes. [`Resampler`] streams: it holds only one kernel's span of
//! input, so decoding and resampling a long file never needs the whole source-rate signal.

/// torchaudio's default `lowpass_filter_width`: zero crossings of the sinc on each side.
pub const LOWPASS_FILTER_WIDTH: f64 = 6.0;
/// torchaudio's default `rolloff`: the cut-off as a fraction of the lower Nyquist frequency.
pub const ROLLOFF: f64 = 0.99;

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// One output phase: its non-zero taps and where they start within the full kernel.
#[derive(Debug, Clone)]
struct Phase {
    start: usize,
    taps: Vec<f32>,
}

/// The resampling kernel for one pair of rates, reduced by their gcd.
#[derive(Debug, Clone)]
struct Kernel {
    /// Input samples per conversion frame (`orig_freq / gcd`).
    orig: usize,
    /// Output samples per conversion frame (`new_freq / gcd`).
    new: usize,
    /// Zero padding on the left; the full kernel is `2 * width + orig` taps.
    width: usize,
    phases: Vec<Phase>,
}

impl Kernel {
    fn new(from: u32, to: u32) -> Self {
        let g = gcd(u64::from(from), u64::from(to));
        let orig = (u64::from(from) / g) as usize;
        let new = (u64::from(to) / g) as usize;
        let lpw = LOWPASS_FILTER_WIDTH;
        let base = orig.min(new) as f64 * ROLLOFF;
        let width = (lpw * orig as f64 / base).ceil() as usize;
        let len = 2 * width + orig;
        let scale = base / orig as f64;
        let phases = (0..new)
            .map(|j| {
                // torchaudio divides the integer phase offsets in float32 (default dtype), then
                // adds the float64 tap positions.
                let shift = f64::from(-(j as f32) / new as f32);
                // Taps with |t * base| >= lpw are clamped and come out exactly zero in f32;
                // evaluate only the span around the window, one tap of margin on each side.
                let centre = width as f64 - shift * orig as f64;
                let half = lpw / base * orig as f64;
                let lo = ((centre - half).floor() as isize - 1).max(0) as usize;
                let hi = ((centre + half).ceil() as usize + 1).min(len - 1);
                let taps: Vec<f32> = (lo..=hi)
                    .map(|k| {
                        let idx = (k as f64 - width as f64) / orig as f64;
                        let t = ((shift + idx) * base).clamp(-lpw, lpw);
                        let window = (t * std::f64::consts::PI / lpw / 2.0).cos().powi(2);
                        let t = t * std::f64::consts::PI;
                        let sinc = if t == 0.0 { 1.0 } else { t.sin() / t };
                        (sinc * (window * scale)) as f32
                    })
                    .collect();
                let first = taps.iter().position(|&v| v != 0.0).unwrap_or(0);
                let last = taps
                    .iter()
                    .rposition(|&v| v != 0.0)
                    .map_or(first, |p| p + 1);
                Phase {
                    start: lo + first,
                    taps: taps[first..last].to_vec(),
                }
            })
            .collect();
        Self {
            orig,
            new,
            width,
            phases,
        }
    }

    fn full_len(&self) -> usize {
        2 * self.width + self.orig
    }

    /// Computes the `new` outputs of the frame whose padded input starts at `x[0]`.
    fn frame(&self, x: &[f32], out: &mut Vec<f32>) {
        for phase in &self.phases {
            let src = &x[phase.start..phase.start + phase.taps.len()];
            let acc: f64 = src
                .iter()
                .zip(&phase.taps)
                .map(|(&s, &k)| f64::from(s) * f64::from(k))
                .sum();
            out.push(acc as f32);
        }
    }
}

/// A streaming resampler from one rate to another, equal to torchaudio's `Resample`.
///
/// Feed input with [`Resampler::push`] in chunks of any size, then call [`Resampler::finish`];
/// the concatenated output equals resampling the whole signal at once.
///
/// ```
/// use clamp3_audio::Resampler;
/// let input = vec![0.25f32; 44_100];
/// let mut out = Vec::new();
/// let mut r = Resampler::new(44_100, 24_000);
/// for chunk in input.chunks(1000) {
///     r.push(chunk, &mut out);
/// }
/// r.finish(&mut out);
/// assert_eq!(out.len(), 24_000);
/// ```
#[derive(Debug, Clone)]
pub struct Resampler {
    /// `None` when the rates are equal: the signal passes through untouched, as in the
    /// reference, which only resamples when the rate differs.
    kernel: Option<Kernel>,
    /// Padded input not yet consumed; `pending[0]` is padded index `offset`.
    pending: Vec<f32>,
    offset: usize,
    /// The next conversion frame to compute.
    frame: usize,
    /// Input samples received so far.
    input_len: usize,
    /// Output samples emitted so far.
    emitted: usize,
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz. Both rates must be non-zero.
    pub fn new(from: u32, to: u32) -> Self {
        let kernel = (from != to && from > 0 && to > 0).then(|| Kernel::new(from, to));
        let pending = kernel
            .as_ref()
            .map(|k| vec![0.0; k.width])
            .unwrap_or_default();
        Self {
            kernel,
            pending,
            offset: 0,
            frame: 0,
            input_len: 0,
            emitted: 0,
        }
    }

    /// Feeds `input` and appends every output sample that is already determined to `out`.
    pub fn push(&mut self, input: &[f32], out: &mut Vec<f32>) {
        self.input_len += input.len();
        let Some(kernel) = &self.kernel else {
            out.extend_from_slice(input);
            self.emitted += input.len();
            return;
        };
        self.pending.extend_from_slice(input);
        let available = self.offset + self.pending.len();
        let before = out.len();
        while self.frame * kernel.orig + kernel.full_len() <= available {
            let at = self.frame * kernel.orig - self.offset;
            kernel.frame(&self.pending[at..], out);
            self.frame += 1;
        }
        self.emitted += out.len() - before;
        // Drop consumed input once it is worth the copy.
        let consumed = self.frame * kernel.orig - self.offset;
        if consumed > 4096 && consumed * 2 > self.pending.len() {
            self.pending.drain(..consumed);
            self.offset += consumed;
        }
    }

    /// Flushes the tail (the input is zero-padded as torchaudio does) and appends the last
    /// output samples, so that the total output is `ceil(input_len * to / from)` samples.
    pub fn finish(mut self, out: &mut Vec<f32>) {
        let Some(kernel) = self.kernel.take() else {
            return;
        };
        self.pending
            .extend(std::iter::repeat_n(0.0, kernel.width + kernel.orig));
        let target = (self.input_len * kernel.new).div_ceil(kernel.orig);
        let frames = self.input_len / kernel.orig + 1;
        let mut tail = Vec::with_capacity((frames - self.frame) * kernel.new);
        while self.frame < frames {
            let at = self.frame * kernel.orig - self.offset;
            kernel.frame(&self.pending[at..], &mut tail);
            self.frame += 1;
        }
        let keep = target.saturating_sub(self.emitted).min(tail.len());
        out.extend_from_slice(&tail[..keep]);
    }
}

/// Resamples a whole signal from `from` Hz to `to` Hz (see [`Resampler`]).
pub fn resample(input: &[f32], from: u32, to: u32) -> Vec<f32> {
    let mut out = Vec::with_capacity(input.len() * to as usize / from.max(1) as usize + 1);
    let mut r = Resampler::new(from, to);
    r.push(input, &mut out);
    r.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// torchaudio's algorithm written out literally: the full `[new, 2 * width + orig]` kernel,
    /// explicit zero padding, a strided convolution over every tap, then truncation.
    fn resample_slow(x: &[f32], from: u32, to: u32) -> Vec<f32> {
        let g = gcd(u64::from(from), u64::from(to)) as u32;
        let (orig, new) = ((from / g) as usize, (to / g) as usize);
        let base = orig.min(new) as f64 * ROLLOFF;
        let width = (LOWPASS_FILTER_WIDTH * orig as f64 / base).ceil() as usize;
        let len = 2 * width + orig;
        let mut kernel = vec![vec![0f32; len]; new];
        for (j, row) in kernel.iter_mut().enumerate() {
            for (k, v) in row.iter_mut().enumerate() {
                let idx = (k as f64 - width as f64) / orig as f64;
                let shift = f64::from(-(j as f32) / new as f32);
                let mut t = (shift + idx) * base;
                t = t.clamp(-LOWPASS_FILTER_WIDTH, LOWPASS_FILTER_WIDTH);
                let w = (t * std::f64::consts::PI / LOWPASS_FILTER_WIDTH / 2.0)
                    .cos()
                    .powi(2);
                t *= std::f64::consts::PI;
                let s = if t == 0.0 { 1.0 } else { t.sin() / t };
                *v = (s * w * base / orig as f64) as f32;
            }
        }
        let mut padded = vec![0f32; width];
        padded.extend_from_slice(x);
        padded.extend(std::iter::repeat_n(0.0, width + orig));
        let mut out = Vec::new();
        let mut i = 0;
        while i * orig + len <= padded.len() {
            for row in &kernel {
                let acc: f64 = row
                    .iter()
                    .zip(&padded[i * orig..])
                    .map(|(&k, &s)| f64::from(k) * f64::from(s))
                    .sum();
                out.push(acc as f32);
            }
            i += 1;
        }
        out.truncate((x.len() * new).div_ceil(orig));
        out
    }

    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            })
            .collect()
    }

    #[test]
    fn fast_kernel_equals_slow_version() {
        let x = noise(5000, 7);
        for (from, to) in [
            (44_100, 24_000),
            (48_000, 24_000),
            (16_000, 24_000),
            (22_050, 24_000),
            (8_000, 24_000),
            (32_000, 24_000),
            (11_025, 24_000),
            // Coprime rates: one phase per output sample, mostly-zero kernels.
            (1_009, 2_000),
            (2_000, 1_009),
        ] {
            let fast = resample(&x, from, to);
            let slow = resample_slow(&x, from, to);
            assert_eq!(fast.len(), slow.len(), "{from} -> {to}");
            let max = fast
                .iter()
                .zip(&slow)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(max <= 1e-7, "{from} -> {to}: max abs diff {max}");
        }
    }

    #[test]
    fn streaming_equals_one_shot() {
        let x = noise(30_011, 3);
        for (from, to) in [(44_100, 24_000), (22_050, 24_000), (24_000, 24_000)] {
            let whole = resample(&x, from, to);
            for chunk in [1, 17, 1152, 4096, 100_000] {
                let mut out = Vec::new();
                let mut r = Resampler::new(from, to);
                for c in x.chunks(chunk) {
                    r.push(c, &mut out);
                }
                r.finish(&mut out);
                assert_eq!(out, whole, "{from} -> {to}, chunks of {chunk}");
            }
        }
    }

    #[test]
    fn output_length_is_ceil_of_ratio() {
        for n in [0, 1, 146, 147, 148, 441, 1000] {
            let out = resample(&vec![0.1; n], 44_100, 24_000);
            assert_eq!(out.len(), (n * 80).div_ceil(147), "n = {n}");
        }
    }

    #[test]
    fn passes_through_at_equal_rates() {
        let x = noise(100, 1);
        assert_eq!(resample(&x, 24_000, 24_000), x);
    }

    #[test]
    fn keeps_a_low_tone_and_dc() {
        // A 440 Hz tone survives 44.1 kHz -> 24 kHz with its amplitude (away from the edges).
        let x: Vec<f32> = (0..44_100)
            .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 44_100.0).sin())
            .collect();
        let y = resample(&x, 44_100, 24_000);
        let peak = y[1000..23_000].iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!((peak - 1.0).abs() < 0.02, "peak {peak}");
        let sample = y[12_000];
        let expected = (2.0 * std::f32::consts::PI * 440.0 * 12_000.0 / 24_000.0).sin();
        assert!((sample - expected).abs() < 0.02, "{sample} vs {expected}");
    }
}
