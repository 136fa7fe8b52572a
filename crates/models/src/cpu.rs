//! CPU kernels for the shapes where candle's general ones lose most: dense layers applied to a
//! few rows (a text query is 5–128 tokens), and the exact GELU.
//!
//! candle hands every matmul to `gemm`, which packs the weight matrix before each product. For a
//! 20-row input that packing costs more than the multiplication (a third of a text query's time
//! in `../shared/perf/PROFILE.md`), and it doubles the memory traffic of a pass that is already
//! bound by reading 340 MB of weights. [`matmul_transposed`] instead reads each weight row once,
//! straight from the checkpoint's `[out, in]` layout, and multiplies it with every input row
//! while it is in L1.
//!
//! The kernels are written as plain loops over fixed-size arrays, which LLVM turns into vector
//! code; they are compiled three times (AVX-512, AVX2 + FMA, baseline x86-64) and the widest one
//! the CPU has is chosen at run time, so a binary built for any x86-64 runs everywhere.

use rayon::prelude::*;

/// Weight rows handled by one task: enough work to amortise scheduling, few enough to spread a
/// 768-wide layer over both cores of a small machine.
const ROWS_PER_TASK: usize = 32;

/// Input rows multiplied together: 64 rows of 3072 floats (768 KB) fit a 1 MB L2.
const ROWS_PER_BLOCK: usize = 64;

/// `f` on the values of `x` when it is an f32 tensor on the CPU outside training (made
/// contiguous first), `None` otherwise: the test every kernel here is guarded by, in one place.
pub(crate) fn on_cpu_values<T>(
    x: &candle_core::Tensor,
    f: impl FnOnce(&[f32]) -> T,
) -> candle_core::Result<Option<T>> {
    use candle_core::{DType, Device, Storage};
    if !matches!(x.device(), Device::Cpu) || x.dtype() != DType::F32 || x.track_op() {
        return Ok(None);
    }
    let x = x.contiguous()?;
    let (storage, layout) = x.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return Ok(None);
    };
    let values = &cpu.as_slice::<f32>()?[layout.start_offset()..][..x.elem_count()];
    Ok(Some(f(values)))
}

/// A weight element the kernels read: f32, or bf16 widened to f32 as it is loaded (half the
/// memory traffic of a pass bound by reading its weights; products and sums stay f32).
pub(crate) trait Weight: Copy + Send + Sync + WeightLanes {
    fn widen(self) -> f32;
}

#[cfg(target_arch = "x86_64")]
use x86::Lanes as WeightLanes;

/// Elsewhere no vector loads are needed.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) trait WeightLanes {}
#[cfg(not(target_arch = "x86_64"))]
impl<T> WeightLanes for T {}

impl Weight for f32 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
}

impl Weight for half::bf16 {
    #[inline(always)]
    fn widen(self) -> f32 {
        // bf16 is the top half of an f32; NaN payloads need no care in weights.
        f32::from_bits(u32::from(self.to_bits()) << 16)
    }
}

/// `x · wᵀ (+ bias)`: `x` is `[m, k]`, `w` is `[n, k]` (PyTorch's `nn.Linear` layout), `bias` is
/// `[n]`; returns `[m, n]`, row-major.
pub(crate) fn matmul_transposed<W: Weight>(
    x: &[f32],
    m: usize,
    k: usize,
    w: &[W],
    n: usize,
    bias: Option<&[f32]>,
) -> Vec<f32> {
    debug_assert_eq!(x.len(), m * k);
    debug_assert_eq!(w.len(), n * k);
    let kernel = Kernel::detect();
    let mut y = vec![0f32; m * n];
    // Blocks of rows small enough to stay in L2 while every weight row passes over them.
    for (block, x) in x.chunks(ROWS_PER_BLOCK * k).enumerate() {
        let rows = x.len() / k;
        // Computed as `[n, rows]` so that each task owns a contiguous run of the output.
        let mut transposed = vec![0f32; n * rows];
        transposed
            .par_chunks_mut(ROWS_PER_TASK * rows)
            .enumerate()
            .for_each(|(task, out)| {
                let first = task * ROWS_PER_TASK;
                let outputs = out.len() / rows;
                let w = &w[first * k..(first + outputs) * k];
                let bias = bias.map(|b| &b[first..first + outputs]);
                kernel.run(x, rows, k, w, outputs, bias, out);
            });
        let y = &mut y[block * ROWS_PER_BLOCK * n..];
        for (j, column) in transposed.chunks_exact(rows).enumerate() {
            for (i, v) in column.iter().enumerate() {
                y[i * n + j] = *v;
            }
        }
    }
    y
}

/// The widest instruction set this CPU has, for the kernels below.
#[derive(Clone, Copy)]
enum Kernel {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Portable,
}

impl Kernel {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Self::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Self::Avx2;
            }
        }
        Self::Portable
    }

    /// `out` (`[n, m]`) = `w · xᵀ (+ bias)` for `n` weight rows.
    #[allow(clippy::too_many_arguments, reason = "the operands of one product")]
    fn run<W: Weight>(
        self,
        x: &[f32],
        m: usize,
        k: usize,
        w: &[W],
        n: usize,
        bias: Option<&[f32]>,
        out: &mut [f32],
    ) {
        assert!(x.len() >= m * k && w.len() >= n * k && out.len() >= n * m);
        assert!(bias.is_none_or(|b| b.len() >= n));
        match self {
            // SAFETY: `detect` chose these variants only after checking that the CPU has the
            // features they are compiled for, and the lengths were checked above.
            // A single row (a pooled vector, a decoder step) gets its own tile: the others would
            // multiply it four times over.
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Self::Avx512 if m == 1 => unsafe { x86::one_row_avx512(x, m, k, w, n, bias, out) },
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Self::Avx512 => unsafe { x86::weights_times_rows_avx512(x, m, k, w, n, bias, out) },
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Self::Avx2 if m == 1 => unsafe { x86::one_row_avx2(x, m, k, w, n, bias, out) },
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Self::Avx2 => unsafe { x86::weights_times_rows_avx2(x, m, k, w, n, bias, out) },
            Self::Portable => weights_times_rows_portable(x, m, k, w, n, bias, out),
        }
    }
}

/// One dot product at a time, for CPUs without AVX2 and FMA.
fn weights_times_rows_portable<W: Weight>(
    x: &[f32],
    m: usize,
    k: usize,
    w: &[W],
    n: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    for (j, w_row) in w.chunks_exact(k).take(n).enumerate() {
        let b = bias.map_or(0.0, |b| b[j]);
        for (i, x_row) in x.chunks_exact(k).take(m).enumerate() {
            let dot: f32 = x_row.iter().zip(w_row).map(|(a, w)| a * w.widen()).sum();
            out[j * m + i] = dot + b;
        }
    }
}

/// The AVX-512 and AVX2 kernels. Written with intrinsics because LLVM does not keep a tile of
/// accumulators in registers when the same loops are written over arrays (measured: 3.5 GFLOP/s,
/// every multiply-add a scalar one through the stack).
#[cfg(target_arch = "x86_64")]
mod x86 {
    #![allow(unsafe_code)]

    use super::Weight;
    use std::arch::x86_64::*;

    /// Loading a run of weights, widened to f32 lanes.
    pub(crate) trait Lanes {
        /// # Safety
        /// `p` points at 16 readable elements; the CPU has AVX-512F.
        unsafe fn load16(p: *const Self) -> __m512;
        /// # Safety
        /// `p` points at 8 readable elements; the CPU has AVX2.
        unsafe fn load8(p: *const Self) -> __m256;
    }

    impl Lanes for f32 {
        #[inline(always)]
        unsafe fn load16(p: *const Self) -> __m512 {
            unsafe { _mm512_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn load8(p: *const Self) -> __m256 {
            unsafe { _mm256_loadu_ps(p) }
        }
    }

    impl Lanes for half::bf16 {
        #[inline(always)]
        unsafe fn load16(p: *const Self) -> __m512 {
            unsafe {
                let halves = _mm256_loadu_si256(p.cast::<__m256i>());
                _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(halves)))
            }
        }
        #[inline(always)]
        unsafe fn load8(p: *const Self) -> __m256 {
            unsafe {
                let halves = _mm_loadu_si128(p.cast::<__m128i>());
                _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(halves)))
            }
        }
    }

    #[target_feature(enable = "avx2")]
    fn sum8(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_hadd_ps(s, s);
        _mm_cvtss_f32(_mm_hadd_ps(s, s))
    }

    /// A tile of `$rows` input rows × `$cols` weight rows, `$lanes` floats per step, its
    /// accumulators in registers; edge tiles repeat their last row and keep only the real ones.
    macro_rules! weights_times_rows {
        ($name:ident, $feature:literal, $lanes:literal, $rows:literal, $cols:literal,
         $zero:ident, $load_x:ident, $load_w:ident, $fma:ident, $sum:ident) => {
            /// # Safety
            /// The CPU has the features this is compiled for; `x` holds `m * k` values, `w`
            /// `n * k`, `out` `n * m`, `bias` (if any) `n`.
            #[target_feature(enable = $feature)]
            #[allow(clippy::too_many_arguments, reason = "the operands of one product")]
            pub(super) unsafe fn $name<W: Weight>(
                x: &[f32],
                m: usize,
                k: usize,
                w: &[W],
                n: usize,
                bias: Option<&[f32]>,
                out: &mut [f32],
            ) {
                const R: usize = $rows;
                const C: usize = $cols;
                let mut j = 0;
                while j < n {
                    let cols = C.min(n - j);
                    let mut wp = [w.as_ptr(); C];
                    for (c, p) in wp.iter_mut().enumerate() {
                        *p = unsafe { w.as_ptr().add((j + c.min(cols - 1)) * k) };
                    }
                    let mut i = 0;
                    while i < m {
                        let rows = R.min(m - i);
                        let mut xp = [x.as_ptr(); R];
                        for (r, p) in xp.iter_mut().enumerate() {
                            *p = unsafe { x.as_ptr().add((i + r.min(rows - 1)) * k) };
                        }
                        let mut acc = [[$zero(); C]; R];
                        let mut t = 0;
                        while t + $lanes <= k {
                            let mut wv = [$zero(); C];
                            for c in 0..C {
                                wv[c] = unsafe { W::$load_w(wp[c].add(t)) };
                            }
                            for r in 0..R {
                                let xv = unsafe { $load_x(xp[r].add(t)) };
                                for c in 0..C {
                                    acc[r][c] = $fma(xv, wv[c], acc[r][c]);
                                }
                            }
                            t += $lanes;
                        }
                        for c in 0..cols {
                            let b = match bias {
                                Some(b) => b[j + c],
                                None => 0.0,
                            };
                            for r in 0..rows {
                                let mut s = $sum(acc[r][c]);
                                for tail in t..k {
                                    let (xv, wv) =
                                        unsafe { (*xp[r].add(tail), (*wp[c].add(tail)).widen()) };
                                    s = xv.mul_add(wv, s);
                                }
                                out[(j + c) * m + i + r] = s + b;
                            }
                        }
                        i += R;
                    }
                    j += C;
                }
            }
        };
    }

    weights_times_rows!(
        weights_times_rows_avx512,
        "avx512f,avx2,fma",
        16,
        4,
        4,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        load16,
        _mm512_fmadd_ps,
        _mm512_reduce_add_ps
    );
    weights_times_rows!(
        one_row_avx512,
        "avx512f,avx2,fma",
        16,
        1,
        8,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        load16,
        _mm512_fmadd_ps,
        _mm512_reduce_add_ps
    );
    weights_times_rows!(
        one_row_avx2,
        "avx2,fma",
        8,
        1,
        8,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        load8,
        _mm256_fmadd_ps,
        sum8
    );
    weights_times_rows!(
        weights_times_rows_avx2,
        "avx2,fma",
        8,
        4,
        3,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        load8,
        _mm256_fmadd_ps,
        sum8
    );
}

/// `[B, T, C]` → `[B, frames, K, C]`: output frame `f` holds input frames `f·s … f·s+K-1`, which
/// in a time-major layout are `K · C` consecutive floats (a strided conv's im2col).
pub(crate) fn gather_frames(
    x: &[f32],
    b: usize,
    t: usize,
    c: usize,
    frames: usize,
    k: usize,
    s: usize,
) -> Vec<f32> {
    let run = k * c;
    let mut out = vec![0f32; b * frames * run];
    out.par_chunks_mut(run).enumerate().for_each(|(row, out)| {
        let (window, frame) = (row / frames, row % frames);
        let start = (window * t + frame * s) * c;
        out.copy_from_slice(&x[start..start + run]);
    });
    out
}

/// Rows per task of the channel statistics.
const NORM_ROWS: usize = 1024;

/// `nn.GroupNorm(C, C)` on one time-major `[T, C]` window: each channel centred on its mean over
/// time, divided by its (biased) standard deviation, then scaled by `weight` and shifted by
/// `bias`. The statistics are summed in f64.
pub(crate) fn channel_norm(
    x: &[f32],
    c: usize,
    weight: &[f32],
    bias: &[f32],
    eps: f32,
) -> Vec<f32> {
    let t = x.len() / c;
    let mean: Vec<f32> = column_sums(x, c, |_, v| f64::from(v))
        .iter()
        .map(|sum| (sum / t as f64) as f32)
        .collect();
    let scale: Vec<f32> = column_sums(x, c, |ch, v| f64::from(v - mean[ch]).powi(2))
        .iter()
        .zip(weight)
        .map(|(sum, w)| ((sum / t as f64) as f32 + eps).sqrt().recip() * w)
        .collect();
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(NORM_ROWS * c)
        .zip(x.par_chunks(NORM_ROWS * c))
        .for_each(|(out, rows)| {
            for (out, row) in out.chunks_exact_mut(c).zip(rows.chunks_exact(c)) {
                for ch in 0..c {
                    out[ch] = (row[ch] - mean[ch]) * scale[ch] + bias[ch];
                }
            }
        });
    y
}

/// `Σ_t f(ch, x[t, ch])` for every channel of a time-major `[T, C]` block, on every core.
fn column_sums(x: &[f32], c: usize, f: impl Fn(usize, f32) -> f64 + Sync) -> Vec<f64> {
    x.par_chunks(NORM_ROWS * c)
        .map(|rows| {
            let mut sums = vec![0f64; c];
            for row in rows.chunks_exact(c) {
                for (ch, (sum, &v)) in sums.iter_mut().zip(row).enumerate() {
                    *sum += f(ch, v);
                }
            }
            sums
        })
        .reduce(
            || vec![0f64; c],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                a
            },
        )
}

/// Elements per GELU task.
const GELU_CHUNK: usize = 1 << 14;

/// `x · ½ · (1 + erf(x / √2))`, the exact GELU, into a new buffer, on every core.
///
/// `erf` is Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7) with a Cephes-style `exp`: the
/// formula PyTorch's vectorised CPU GELU uses (`Vectorized<float>::erf`), so the reference's
/// numbers on a CPU come from the same approximation. candle calls libm's scalar `erff` per
/// element, one core only: a fifth of MERT's time on the largest activations.
pub(crate) fn gelu_erf(x: &[f32]) -> Vec<f32> {
    let kernel = Kernel::detect();
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(GELU_CHUNK)
        .zip(x.par_chunks(GELU_CHUNK))
        .for_each(|(out, input)| kernel.gelu_erf(input, out));
    y
}

impl Kernel {
    fn gelu_erf(self, x: &[f32], out: &mut [f32]) {
        match self {
            // SAFETY: as in `run`.
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Self::Avx512 => unsafe { gelu_erf_avx512(x, out) },
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Self::Avx2 => unsafe { gelu_erf_avx2(x, out) },
            Self::Portable => gelu_erf_lanes::<false>(x, out),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn gelu_erf_avx512(x: &[f32], out: &mut [f32]) {
    gelu_erf_lanes::<true>(x, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn gelu_erf_avx2(x: &[f32], out: &mut [f32]) {
    gelu_erf_lanes::<true>(x, out);
}

#[inline(always)]
fn gelu_erf_lanes<const FUSED: bool>(x: &[f32], out: &mut [f32]) {
    for (y, &v) in out.iter_mut().zip(x) {
        *y = v * 0.5 * (1.0 + erf::<FUSED>(v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// `a · b + acc`, fused where the CPU has FMA (without, `mul_add` is a slow library call).
#[inline(always)]
fn multiply_add<const FUSED: bool>(a: f32, b: f32, acc: f32) -> f32 {
    if FUSED {
        a.mul_add(b, acc)
    } else {
        a * b + acc
    }
}

/// Abramowitz & Stegun 7.1.26, branch-free so that it vectorises.
#[inline(always)]
fn erf<const FUSED: bool>(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / multiply_add::<FUSED>(0.327_591_1, a, 1.0);
    let mut r = multiply_add::<FUSED>(1.061_405_4, t, -1.453_152);
    r = multiply_add::<FUSED>(r, t, 1.421_413_8);
    r = multiply_add::<FUSED>(r, t, -0.284_496_74);
    r = multiply_add::<FUSED>(r, t, 0.254_829_6);
    let e = exp::<FUSED>(-(x * x));
    (multiply_add::<FUSED>(-e * t, r, 1.0)).copysign(x)
}

/// `eˣ` to about 1 ulp (Cephes `expf`): `2ⁿ · e^r` with `n = round(x / ln 2)`; inputs below
/// the smallest normal result give a tiny normal, which is all `erf` needs.
#[inline(always)]
fn exp<const FUSED: bool>(x: f32) -> f32 {
    // Rounding by adding 1.5 · 2²³ works without SSE4.1's `roundps`.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = multiply_add::<FUSED>(x, std::f32::consts::LOG2_E, ROUND) - ROUND;
    let r = multiply_add::<FUSED>(n, -0.693_359_4, x);
    let r = multiply_add::<FUSED>(n, 2.121_944_4e-4, r);
    let mut p = multiply_add::<FUSED>(1.987_569_1e-4, r, 1.398_199_9e-3);
    p = multiply_add::<FUSED>(p, r, 8.333_452e-3);
    p = multiply_add::<FUSED>(p, r, 4.166_579_6e-2);
    p = multiply_add::<FUSED>(p, r, 0.166_666_65);
    p = multiply_add::<FUSED>(p, r, 0.5);
    let e = multiply_add::<FUSED>(p, r * r, r) + 1.0;
    e * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &[f32], m: usize, k: usize, w: &[f32], n: usize, bias: &[f32]) -> Vec<f32> {
        let mut y = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k)
                    .map(|t| f64::from(x[i * k + t]) * f64::from(w[j * k + t]))
                    .sum();
                y[i * n + j] = dot as f32 + bias[j];
            }
        }
        y
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let h = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed);
                (h % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn every_kernel_matches_a_float64_product_on_ragged_shapes() {
        // Shapes that leave partial tiles, partial lanes and a partial last task.
        for (m, k, n) in [
            (1, 1, 1),
            (1, 200, 19),
            (3, 17, 5),
            (150, 64, 40),
            (20, 768, 70),
            (7, 100, 33),
            (5, 3072, 9),
        ] {
            let x = values(m * k, 1);
            let w = values(n * k, 2);
            let bias = values(n, 3);
            let expected = naive(&x, m, k, &w, n, &bias);
            let mut kernels = vec![Kernel::Portable];
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    kernels.push(Kernel::Avx2);
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    kernels.push(Kernel::Avx512);
                }
            }
            for kernel in kernels {
                let mut out = vec![0f32; n * m];
                kernel.run(&x, m, k, &w, n, Some(&bias), &mut out);
                for i in 0..m {
                    for j in 0..n {
                        let (got, want) = (out[j * m + i], expected[i * n + j]);
                        assert!(
                            (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                            "{m}x{k}x{n} at ({i},{j}): {got} vs {want}"
                        );
                    }
                }
            }
            let y = matmul_transposed(&x, m, k, &w, n, Some(&bias));
            for (got, want) in y.iter().zip(&expected) {
                assert!((got - want).abs() <= 1e-5 * (1.0 + want.abs()));
            }
        }
    }

    #[test]
    fn bf16_weights_are_widened_exactly() {
        let (m, k, n) = (6, 300, 40);
        let x = values(m * k, 4);
        let w: Vec<half::bf16> = values(n * k, 5)
            .into_iter()
            .map(half::bf16::from_f32)
            .collect();
        let widened: Vec<f32> = w.iter().map(|v| v.to_f32()).collect();
        let bias = values(n, 6);
        let expected = naive(&x, m, k, &widened, n, &bias);
        let y = matmul_transposed(&x, m, k, &w, n, Some(&bias));
        for (got, want) in y.iter().zip(&expected) {
            assert!((got - want).abs() <= 1e-5 * (1.0 + want.abs()));
        }
    }

    #[test]
    fn gelu_is_within_the_approximations_bound_of_the_exact_one() {
        let x: Vec<f32> = (-40_000..40_000).map(|i| i as f32 / 2000.0).collect();
        let y = gelu_erf(&x);
        for (&v, &g) in x.iter().zip(&y) {
            let v64 = f64::from(v);
            let exact = v64 * 0.5 * (1.0 + libm_erf(v64 / std::f64::consts::SQRT_2));
            assert!(
                (f64::from(g) - exact).abs() <= 2e-7 * (1.0 + v64.abs()),
                "gelu({v}) = {g}, exact {exact}"
            );
        }
        let exps: Vec<f32> = [-87.0f32, -20.0, -1.0, 0.0, 0.5, 1.0, 10.0, 80.0]
            .iter()
            .map(|&v| exp::<false>(v))
            .collect();
        for (v, e) in [-87.0f64, -20.0, -1.0, 0.0, 0.5, 1.0, 10.0, 80.0]
            .iter()
            .zip(exps)
        {
            assert!(
                (f64::from(e) - v.exp()).abs() <= 3e-7 * v.exp(),
                "exp({v}) = {e}"
            );
        }
    }

    /// erf by its Taylor series (|x| < 3) or continued fraction, in f64: a reference independent
    /// of the approximation under test.
    fn libm_erf(x: f64) -> f64 {
        let a = x.abs();
        let value = if a < 3.0 {
            let (mut term, mut sum, mut n) = (a, a, 0.0);
            while term.abs() > 1e-17 * sum.abs() {
                n += 1.0;
                term *= -a * a / n;
                sum += term / (2.0 * n + 1.0);
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            // erfc(a) = exp(-a²)/√π · 1/(a + 1/2/(a + 1/(a + 3/2/(a + …))))
            let mut fraction = a;
            for k in (1..60).rev() {
                fraction = a + f64::from(k) / 2.0 / fraction;
            }
            1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / fraction
        };
        value.copysign(x)
    }
}
