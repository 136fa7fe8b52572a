//! Embedding speed with full-size CLaMP 3 (random weights of the official shapes): a 20-token
//! text, a 300-patch score and a 60-window audio-feature file, plus peak memory.
//!
//! `cargo bench -p clamp3-features --bench embed` (add `-- cuda` on a CUDA build to use the GPU).

#![allow(clippy::print_stdout, reason = "a benchmark prints its numbers")]

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use clamp3_features::{embed, ModelInput, Pooling};
use clamp3_formats::patch::{Patch, BOS, EOS, PATCH_SIZE};
use clamp3_models::{Clamp3Model, Config};
use std::time::Instant;

const RUNS: usize = 5;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn median_ms(model: &Clamp3Model, input: &ModelInput) -> f64 {
    embed(model, input, Pooling::Global).expect("warm-up run");
    let mut times: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            embed(model, input, Pooling::Global).expect("embedding runs");
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[RUNS / 2]
}

fn score(patches: usize) -> ModelInput {
    let mut out: Vec<Patch> = vec![[BOS; PATCH_SIZE]];
    for i in 0..patches - 2 {
        let mut p = [0u8; PATCH_SIZE];
        p[0] = BOS;
        for (j, v) in p[1..20].iter_mut().enumerate() {
            *v = b'A' + ((i + j) % 26) as u8;
        }
        p[20] = EOS;
        out.push(p);
    }
    let mut eos = [EOS; PATCH_SIZE];
    eos[0] = BOS;
    out.push(eos);
    ModelInput::Patches(out)
}

fn main() {
    let use_cuda = std::env::args().any(|a| a == "cuda");
    let device = if use_cuda {
        Device::new_cuda(0).expect("a CUDA device")
    } else {
        Device::Cpu
    };
    let config = Config::default();
    let start = Instant::now();
    let varmap = VarMap::new();
    let model = Clamp3Model::load(
        VarBuilder::from_varmap(&varmap, DType::F32, &device),
        &config,
    )
    .expect("random full-size model");
    println!(
        "device: {device:?}; built full-size random model in {:.1} s",
        start.elapsed().as_secs_f64()
    );

    let text = ModelInput::TokenIds(
        (0..20)
            .map(|i| {
                if i == 0 {
                    0
                } else if i == 19 {
                    2
                } else {
                    1000 + i
                }
            })
            .collect(),
    );
    let audio = ModelInput::Features {
        width: 768,
        data: (0..62 * 768)
            .map(|i| ((i % 97) as f32 - 48.0) / 48.0)
            .collect(),
    };
    println!(
        "text, 20 tokens:            {:8.1} ms",
        median_ms(&model, &text)
    );
    println!(
        "score, 300 patches:         {:8.1} ms",
        median_ms(&model, &score(300))
    );
    println!(
        "audio features, 60 windows: {:8.1} ms",
        median_ms(&model, &audio)
    );
    println!("peak memory (VmHWM):        {:8.0} MiB", peak_rss_mib());
}
