//! Training throughput and memory on full-size shapes: official CLaMP 3 sizes (XLM-R base,
//! 12-layer M3 and audio encoders, D = 768, 128 text tokens, 512 patches / 128 feature rows),
//! random weights, a logical batch of 8 (`CLAMP3_BENCH_BATCH`) in micro-batches of 1
//! (`CLAMP3_BENCH_MICRO`; gradient caching, so the loss is still over the 8), `CLAMP3_BENCH_STEPS`
//! timed optimizer steps (default 1) after one untimed (which creates Adam's moments), dropout
//! on. Prints items/s and the peak resident memory of each modality on the CPU (Linux: VmHWM,
//! reset between modalities), and items/s on the first CUDA GPU when built with
//! `--features cuda` and one is present.
//!
//! `cargo bench -p clamp3-train --bench train`

use candle_core::{DType, Device, Tensor};
use clamp3_train::arch::{clamp3_frozen_modules, Clamp3Arch, Clamp3Batch, MusicInput};
use clamp3_train::data::MusicKind;
use clamp3_train::optim::{AdamW, AdamWConfig};
use clamp3_train::params::ParamStore;
use clamp3_train::trainer::Clamp3Task;
use std::io::Write;
use std::time::Instant;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn batch(
    arch: &Clamp3Arch,
    kind: MusicKind,
    b: usize,
    device: &Device,
) -> candle_core::Result<Clamp3Batch> {
    let c = &arch.config;
    let lt = c.max_text_length;
    // Token ids above the special ones, patches of printable ASCII, N(0, 1) features.
    let ids: Vec<u32> = (0..b * lt)
        .map(|i| 5 + (i as u32 * 7919) % 200_000)
        .collect();
    let (music, l) = match kind {
        MusicKind::Symbolic => {
            let l = c.patch_length;
            let patches: Vec<u32> = (0..b * l * c.patch_size)
                .map(|i| 32 + (i as u32 * 31) % 90)
                .collect();
            (
                MusicInput::Patches(Tensor::from_vec(patches, (b, l, c.patch_size), device)?),
                l,
            )
        }
        MusicKind::Audio => {
            let l = c.max_audio_length;
            let w = c.audio_model.hidden_size;
            (
                MusicInput::Features(Tensor::randn(0f32, 1.0, (b, l, w), device)?),
                l,
            )
        }
    };
    Ok(Clamp3Batch {
        text_ids: Tensor::from_vec(ids, (b, lt), device)?,
        text_masks: Tensor::ones((b, lt), DType::F32, device)?,
        music,
        music_masks: Tensor::ones((b, l), DType::F32, device)?,
    })
}

/// Starts a new peak-memory measurement (Linux: `5` in `clear_refs` resets VmHWM to the
/// current RSS); `false` where that is not possible.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The peak resident memory since the last reset, in bytes (Linux: VmHWM).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn bench(device: &Device, label: &str) -> Result<(), Box<dyn std::error::Error>> {
    let b = env_usize("CLAMP3_BENCH_BATCH", 8);
    let micro = env_usize("CLAMP3_BENCH_MICRO", 1).clamp(1, b);
    let steps = env_usize("CLAMP3_BENCH_STEPS", 1);
    let arch = Clamp3Arch::official();
    let tokenizer = clamp3_features::TextTokenizer::from(tokenizers::Tokenizer::new(
        tokenizers::models::bpe::BPE::default(),
    ));
    let mut out = std::io::stdout().lock();
    for kind in [MusicKind::Symbolic, MusicKind::Audio] {
        let peak_reset = device.is_cpu() && reset_peak_rss();
        let mut store = ParamStore::random(&arch.param_spec(), 0.02, 0, device)?;
        store.set_frozen(&clamp3_frozen_modules(kind == MusicKind::Audio, false));
        let mut adam = AdamW::new(AdamWConfig::default(), store.trainable().count());
        let task = Clamp3Task {
            arch: arch.clone(),
            kind,
            tokenizer: tokenizer.clone(),
            logit_scale: 1.0,
            text_dropout: true,
        };
        let batch = batch(&arch, kind, b, device)?;
        let mut timed = 0.0;
        for step in 0..=steps {
            let start = Instant::now();
            let keys = [step as u64];
            let (_, grads) = task.loss_and_grads(&store, &batch, Some(micro), Some((0, &keys)))?;
            adam.step(&store, &grads, 1e-5)?;
            device.synchronize()?;
            if step > 0 {
                timed += start.elapsed().as_secs_f64();
            }
        }
        let name = match kind {
            MusicKind::Symbolic => "symbolic (text 128 tok + 512 patches)",
            MusicKind::Audio => "audio (text 128 tok + 128 MERT rows)",
        };
        let memory = match (peak_reset, peak_rss()) {
            (true, Some(bytes)) => format!(", peak RSS {:.2} GB", bytes as f64 / 1e9),
            _ => String::new(),
        };
        writeln!(
            out,
            "{label}: CLaMP 3 {name}, batch {b} in micro-batches of {micro}: {:.3} items/s \
             ({:.1} s/step over {steps} steps){memory}",
            (b * steps) as f64 / timed,
            timed / steps as f64
        )?;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    bench(&Device::Cpu, "cpu")?;
    if let Ok(gpu) = Device::new_cuda(0) {
        bench(&gpu, "cuda:0")?;
    }
    Ok(())
}
