//! Dense layers on few rows: clamp3's kernel (`clamp3_models::linear::Linear`, used up to its
//! row limit) against candle's `gemm` product (`candle_nn::Linear`), on the layer shapes of the
//! CLaMP 3 encoders (768 → 768, 768 → 3072, 3072 → 768), for row counts around the limit.
//!
//! `cargo bench -p clamp3-models --bench linear`. Prints the median time of each and the achieved
//! GFLOP/s; nothing is asserted.
#![allow(clippy::print_stdout, reason = "a benchmark reports by printing")]

use candle_core::{Device, Module, Tensor};
use std::time::Instant;

fn median_ms(mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..15)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() -> candle_core::Result<()> {
    let device = Device::Cpu;
    println!(
        "rows   in→out      gemm ms  GFLOP/s   kernel ms  GFLOP/s  (kernel used up to {} rows)",
        64
    );
    for (k, n) in [(768, 768), (768, 3072), (3072, 768)] {
        let weight = Tensor::randn(0f32, 0.02, (n, k), &device)?;
        let bias = Tensor::randn(0f32, 0.02, n, &device)?;
        let ours = clamp3_models::linear::Linear::new(weight.clone(), Some(bias.clone()));
        let theirs = candle_nn::Linear::new(weight, Some(bias));
        for m in [1, 8, 20, 32, 64, 128, 256] {
            let x = Tensor::randn(0f32, 1.0, (1, m, k), &device)?;
            let gflop = 2.0 * (m * k * n) as f64 / 1e9;
            let gemm = median_ms(|| {
                theirs.forward(&x).map(drop).ok();
            });
            let kernel = median_ms(|| {
                ours.forward_kernel(&x).map(drop).ok();
            });
            println!(
                "{m:4}   {k:4}→{n:<4}   {gemm:8.3} {:8.1}   {kernel:8.3} {:8.1}",
                gflop / gemm * 1e3,
                gflop / kernel * 1e3
            );
        }
    }
    Ok(())
}
