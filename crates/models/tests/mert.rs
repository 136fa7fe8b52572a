//! MERT against the reference `MusicHubertModel` (`preprocessing/audio/MusicHubert.py`, torch
//! 2.4.1, transformers 4.40.0) with the tiny MERT of `shared/golden/models/mert/` (copied to
//! `tests/fixtures/mert/`), as run by `tools/golden/make_models.py` of the steering repository over
//! `extract_mert.py`: `mert_layers.npy` is `[layers + 1, windows, H]` (every hidden state averaged
//! over time), `mert.npy` is its mean over layers, `[1, windows, H]`.
//!
//! Inputs are the reference's own 24 kHz waveforms (`wave24k.npy`, shared with the audio crate's
//! fixtures), so these tests hold the model alone to the tolerance; the lossy files are also run
//! from their encoded form through our decoder.

#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a test panics on failure and reports the differences it measured"
)]

use candle_core::Device;
use clamp3_models::mert::Mert;
use std::path::{Path, PathBuf};

/// README "Tolerances": max abs diff for `mert_layers.npy` and `mert.npy`.
const TOLERANCE: f32 = 1e-4;
/// Cosine similarity floor per window.
const MIN_COSINE: f32 = 0.99999;

struct Npy {
    shape: Vec<usize>,
    data: Vec<f32>,
}

/// Minimal `.npy` reader for C-order `<f4` arrays.
fn read_npy(path: &Path) -> Npy {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let (len, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (
            u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize,
            12,
        )
    };
    let header = std::str::from_utf8(&bytes[start..start + len]).unwrap();
    assert!(
        header.contains("'<f4'") && header.contains("'fortran_order': False"),
        "{header}"
    );
    let dims = header.split("'shape': (").nth(1).unwrap();
    let shape = dims[..dims.find(')').unwrap()]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let data = bytes[start + len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    Npy { shape, data }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mert")
}

/// The input waveforms live with the audio crate's fixtures.
fn audio_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../audio/tests/fixtures")
        .join(name)
}

fn shared_cases() -> Option<PathBuf> {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden/models/cases/audio");
    dir.is_dir().then_some(dir)
}

fn model() -> Mert {
    Mert::from_folder(&fixtures(), &Device::Cpu).unwrap()
}

/// Runs MERT on a 24 kHz waveform the way `extract_mert.py` does; returns
/// `[layers + 1][windows][H]` flattened in that order, and the window count.
fn run(mert: &Mert, mut wave: Vec<f32>) -> (Vec<f32>, usize) {
    clamp3_audio::normalize(&mut wave);
    let per_window: Vec<Vec<f32>> = clamp3_audio::windows(&wave)
        .map(|w| {
            mert.window_layers(w)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        })
        .collect();
    let windows = per_window.len();
    let h = mert.config().hidden_size;
    let layers = mert.config().num_hidden_layers + 1;
    let mut out = vec![0f32; layers * windows * h];
    for (w, rows) in per_window.iter().enumerate() {
        for l in 0..layers {
            out[(l * windows + w) * h..][..h].copy_from_slice(&rows[l * h..][..h]);
        }
    }
    (out, windows)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn min_cosine(a: &[f32], b: &[f32], h: usize) -> f32 {
    a.chunks(h)
        .zip(b.chunks(h))
        .map(|(x, y)| {
            let dot: f32 = x.iter().zip(y).map(|(p, q)| p * q).sum();
            let nx: f32 = x.iter().map(|p| p * p).sum::<f32>().sqrt();
            let ny: f32 = y.iter().map(|q| q * q).sum::<f32>().sqrt();
            dot / (nx * ny)
        })
        .fold(1.0, f32::min)
}

/// Compares our layers and their mean with the goldens; returns (layers diff, mean diff).
fn compare(
    id: &str,
    mert: &Mert,
    layers: &[f32],
    windows: usize,
    golden: &Path,
    tol: f32,
) -> (f32, f32) {
    let h = mert.config().hidden_size;
    let n_layers = mert.config().num_hidden_layers + 1;
    let expected_layers = read_npy(&golden.join(format!("{id}.mert_layers.npy")));
    assert_eq!(expected_layers.shape, vec![n_layers, windows, h], "{id}");
    let layers_diff = max_abs_diff(layers, &expected_layers.data);

    let mean: Vec<f32> = (0..windows * h)
        .map(|i| {
            (0..n_layers)
                .map(|l| layers[l * windows * h + i])
                .sum::<f32>()
                / n_layers as f32
        })
        .collect();
    let expected_mean = read_npy(&golden.join(format!("{id}.mert.npy")));
    assert_eq!(expected_mean.shape, vec![1, windows, h], "{id}");
    let mean_diff = max_abs_diff(&mean, &expected_mean.data);
    let cosine = min_cosine(&mean, &expected_mean.data, h);
    println!("{id}: mert_layers max abs diff {layers_diff:.3e}, mert {mean_diff:.3e}, min cosine {cosine:.7}");
    assert!(
        layers_diff <= tol,
        "{id}: mert_layers max abs diff {layers_diff}"
    );
    assert!(mean_diff <= tol, "{id}: mert max abs diff {mean_diff}");
    assert!(cosine >= MIN_COSINE, "{id}: cosine {cosine}");
    (layers_diff, mean_diff)
}

fn check_from_wave24k(id: &str) {
    let mert = model();
    let wave = read_npy(&audio_fixture(&format!("{id}.wave24k.npy"))).data;
    let (layers, windows) = run(&mert, wave);
    compare(id, &mert, &layers, windows, &fixtures(), TOLERANCE);
}

#[test]
fn a03_wav16k_mono_s16() {
    check_from_wave24k("a03_wav16k_mono_s16");
}

#[test]
fn a04_flac48k_stereo_s24() {
    check_from_wave24k("a04_flac48k_stereo_s24");
}

#[test]
fn a08_5p6s_wav22k_stereo() {
    check_from_wave24k("a08_5p6s_wav22k_stereo");
}

/// The lossy files end to end: our decoder + resampler + MERT against the reference's
/// FFmpeg-decoded pipeline.
#[test]
fn lossy_files_end_to_end() {
    let mert = model();
    for (id, ext) in [("a05_mp3_44k_stereo", "mp3"), ("a06_ogg_44k_stereo", "ogg")] {
        let wave = clamp3_audio::load_mono_24k(&audio_fixture(&format!("{id}.{ext}"))).unwrap();
        let (layers, windows) = run(&mert, wave);
        compare(id, &mert, &layers, windows, &fixtures(), TOLERANCE);
    }
}

#[test]
fn config_sizes_are_read_from_the_folder() {
    let mert = model();
    assert_eq!(mert.config().hidden_size, 32);
    assert_eq!(mert.config().num_hidden_layers, 2);
    assert_eq!(mert.config().conv_dim, vec![16; 7]);
    let layers = mert.window_layers(&vec![0.1; 24_000]).unwrap();
    assert_eq!(layers.dims(), &[3, 32]);
}

#[test]
fn missing_weights_name_the_folder() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let err = Mert::from_folder(&dir, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains("config.json"), "{err}");
}

/// Every audio case of the shared golden set, end to end from the audio file, when `../shared`
/// is present. Lossy files are also run from the reference decoder's output (`decoded.npy`).
#[test]
fn every_shared_case() {
    let Some(dir) = shared_cases() else {
        eprintln!("../shared/golden not found; skipped");
        return;
    };
    let mert = model();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_string();
        if !matches!(ext.as_str(), "wav" | "flac" | "mp3" | "ogg") {
            continue;
        }
        let id = path.file_stem().unwrap().to_str().unwrap().to_string();
        if !dir.join(format!("{id}.mert.npy")).is_file() {
            // a09: too short, the reference wrote nothing.
            let err = clamp3_audio::load_for_mert(&path).unwrap_err().to_string();
            assert!(err.contains(&format!("{id}.{ext}")), "{err}");
            continue;
        }
        let (layers, windows) = run(&mert, clamp3_audio::load_mono_24k(&path).unwrap());
        compare(&id, &mert, &layers, windows, &dir, TOLERANCE);
        checked += 1;
        if matches!(ext.as_str(), "mp3" | "ogg") {
            let decoded = read_npy_any_order(&dir.join(format!("{id}.decoded.npy")));
            let wave = clamp3_audio::resample(&decoded, 44_100, 24_000);
            let (layers, windows) = run(&mert, wave);
            print!("  from decoded.npy: ");
            compare(&id, &mert, &layers, windows, &dir, TOLERANCE);
        }
    }
    assert_eq!(checked, 9);
}

/// `decoded.npy` is `[channels, frames]` in Fortran order; returns the channel mean.
fn read_npy_any_order(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
    let fortran = header.contains("'fortran_order': True");
    let dims = header.split("'shape': (").nth(1).unwrap();
    let shape: Vec<usize> = dims[..dims.find(')').unwrap()]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let data: Vec<f32> = bytes[10 + len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let (channels, frames) = (shape[0], shape[1]);
    let at = |c: usize, i: usize| {
        if fortran {
            data[i * channels + c]
        } else {
            data[c * frames + i]
        }
    };
    (0..frames)
        .map(|i| (0..channels).map(|c| at(c, i)).sum::<f32>() / channels as f32)
        .collect()
}

/// Callers share one model across threads (several files on all cores).
#[test]
fn model_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Mert>();
}
