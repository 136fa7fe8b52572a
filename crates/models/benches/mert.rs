//! MERT speed and memory with full-size random weights of the official `m-a-p/MERT-v1-95M`
//! shapes (768 hidden, 12 layers, 12 heads, 3072 intermediate, 7 × 512-channel convs).
//!
//! Prints:
//! - the real-time factor (compute seconds per audio second) of MERT on 60 s of audio
//!   (12 windows of 5 s, one at a time, as `clamp3 convert audio2mert` runs them);
//! - the peak resident memory (`VmHWM`) of the whole audio path on a 10-minute file:
//!   a 44.1 kHz stereo 16-bit WAV written to a temporary folder, decoded, resampled, normalised,
//!   windowed and run through MERT.
//!
//! `cargo bench -p clamp3-models --bench mert`. Set `MERT_BENCH_LONG_SECONDS` to change the
//! long file's length (default 600; 0 skips it). Timings are printed, never asserted.
#![allow(clippy::print_stdout, reason = "a benchmark reports by printing")]

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use clamp3_models::mert::{Config, Mert};
use std::io::Write;
use std::time::Instant;

fn vm_hwm_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// A deterministic test signal: a few partials plus noise.
fn synth(samples: usize, rate: f32) -> impl Iterator<Item = f32> {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..samples).map(move |i| {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let noise = ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5;
        let t = i as f32 / rate;
        0.3 * (2.0 * std::f32::consts::PI * 220.0 * t).sin()
            + 0.2 * (2.0 * std::f32::consts::PI * 331.0 * t).sin()
            + 0.05 * noise
    })
}

fn random_mert(device: &Device) -> candle_core::Result<Mert> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let mert = Mert::load(vb, &Config::default())?;
    for var in varmap.all_vars() {
        let shape = var.shape().clone();
        let is_norm_gain = shape.rank() == 1 && var.as_tensor().to_vec1::<f32>()?[0] == 1.0;
        let value = if is_norm_gain {
            (Tensor::randn(0f32, 0.05, shape, device)? + 1.0)?
        } else {
            Tensor::randn(0f32, 0.02, shape, device)?
        };
        var.set(&value)?;
    }
    drop(mert);
    // As loaded from a checkpoint: plain tensors, not variables (which take the training path).
    let vb = clamp3_models::weights::frozen(&varmap, device)
        .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    Mert::load(vb, &Config::default())
}

fn write_wav(path: &std::path::Path, seconds: usize) -> std::io::Result<()> {
    let rate = 44_100u32;
    let frames = seconds * rate as usize;
    let data_len = (frames * 4) as u32;
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    w.write_all(b"RIFF")?;
    w.write_all(&(36 + data_len).to_le_bytes())?;
    w.write_all(b"WAVEfmt ")?;
    w.write_all(&16u32.to_le_bytes())?;
    w.write_all(&1u16.to_le_bytes())?; // PCM
    w.write_all(&2u16.to_le_bytes())?; // stereo
    w.write_all(&rate.to_le_bytes())?;
    w.write_all(&(rate * 4).to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&16u16.to_le_bytes())?;
    w.write_all(b"data")?;
    w.write_all(&data_len.to_le_bytes())?;
    for x in synth(frames, rate as f32) {
        let s = (x * 32767.0) as i16;
        w.write_all(&s.to_le_bytes())?;
        w.write_all(&s.to_le_bytes())?;
    }
    w.flush()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::Cpu;
    println!("MERT-v1-95M shapes, random weights, {device:?}, f32");
    let t = Instant::now();
    let mert = random_mert(&device)?;
    println!(
        "  model built in {:.2} s; VmHWM {:.0} MiB",
        t.elapsed().as_secs_f64(),
        vm_hwm_mib()
    );

    // Warm-up: one window.
    let mut wave: Vec<f32> = synth(60 * 24_000, 24_000.0).collect();
    clamp3_audio::normalize(&mut wave);
    mert.window_vector(&wave[..clamp3_audio::WINDOW_SAMPLES])?;

    let t = Instant::now();
    let features = mert.file_features(clamp3_audio::windows(&wave))?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "  60 s of audio ({} windows): {secs:.2} s, real-time factor {:.3} ({:.1}x real time); \
         VmHWM {:.0} MiB",
        features.dim(1)?,
        secs / 60.0,
        60.0 / secs,
        vm_hwm_mib()
    );
    // CLaMP 3's audio side on those features: zero rows at both ends, the audio BERT (official
    // sizes, random weights), mean pooling, projection, as `extract_clamp3.py` does for one segment.
    let varmap = candle_nn::VarMap::new();
    let vb = candle_nn::VarBuilder::from_varmap(&varmap, candle_core::DType::F32, &device);
    let audio_model = clamp3_models::bert::BertModel::load(
        vb.pp("audio_model"),
        &clamp3_models::config::BertConfig::official(128),
    )?;
    let audio_proj = candle_nn::linear(768, 768, vb.pp("audio_proj"))?;
    let zero = candle_core::Tensor::zeros((1, 1, 768), candle_core::DType::F32, &device)?;
    let rows = candle_core::Tensor::cat(&[&zero, &features, &zero], 1)?;
    let t2 = Instant::now();
    let hidden = audio_model.forward(&rows, None)?;
    let _vector = candle_core::Module::forward(&audio_proj, &hidden.mean(1)?)?;
    let clamp3_secs = t2.elapsed().as_secs_f64();
    println!(
        "  + CLaMP 3 audio encoder on those {} rows: {:.3} s; MERT + CLaMP 3 real-time factor {:.3}",
        rows.dim(1)?,
        clamp3_secs,
        (secs + clamp3_secs) / 60.0
    );
    drop(wave);

    let long: usize = std::env::var("MERT_BENCH_LONG_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    if long > 0 {
        let dir = std::env::temp_dir().join(format!("clamp3-mert-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("long.wav");
        write_wav(&path, long)?;
        let before = vm_hwm_mib();
        let t = Instant::now();
        let samples = clamp3_audio::load_for_mert(&path)?;
        let load = t.elapsed().as_secs_f64();
        let after_load = vm_hwm_mib();
        let features = mert.file_features(clamp3_audio::windows(&samples))?;
        let total = t.elapsed().as_secs_f64();
        std::fs::remove_dir_all(&dir)?;
        println!(
            "  {long} s 44.1 kHz stereo WAV: decode+resample+normalise {load:.2} s, total {total:.1} s \
             (RTF {:.3}), {} windows; VmHWM before {before:.0} MiB, after loading {after_load:.0} MiB, \
             peak {:.0} MiB (24 kHz waveform itself: {:.0} MiB)",
            total / long as f64,
            features.dim(1)?,
            vm_hwm_mib(),
            (samples.len() * 4) as f64 / (1024.0 * 1024.0)
        );
    }
    Ok(())
}
