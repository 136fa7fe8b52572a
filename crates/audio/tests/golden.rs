//! Golden tests against the reference front end: `torchaudio.load` (FFmpeg 5.1 backend), channel
//! mean, `torchaudio.transforms.Resample(sr, 24000)` (torchaudio 2.4.1), as run by
//! `tools/golden/make_models.py` of the steering repository over
//! `preprocessing/audio/MERT_utils.py::load_audio`. The expected `wave24k.npy` files and the
//! inputs are copied from `shared/golden/models/cases/audio/`; see its README ("Audio").

#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a test panics on failure and reports the differences it measured"
)]

mod util;

use std::path::Path;
use util::{fixture, max_abs_diff, read_npy, shared_cases};

/// Lossless inputs: decoding is exact, so only the resampler's rounding is left.
const WAVE_TOLERANCE: f32 = 1e-5;
/// Lossy inputs: symphonia's MP3 and Vorbis decoders are not FFmpeg's `mp3float` and native
/// Vorbis, but they agree closely once gapless trimming matches (measured max abs diff of the
/// decoded mono: 5.7e-7 for a05 mp3, 8.9e-8 for a06 ogg; after resampling 5.5e-7 and 1.2e-7), so
/// the lossless bound holds for them too.
const LOSSY_WAVE_TOLERANCE: f32 = 1e-5;

fn check_wave(id: &str, ext: &str, tolerance: f32) -> f32 {
    let input = fixture(&format!("{id}.{ext}"));
    let expected = read_npy(&fixture(&format!("{id}.wave24k.npy")));
    let got = clamp3_audio::load_mono_24k(&input).unwrap();
    assert_eq!(got.len(), expected.data.len(), "{id}: length");
    let diff = max_abs_diff(&got, &expected.data);
    println!("{id}: wave24k max abs diff {diff:.3e}");
    assert!(diff <= tolerance, "{id}: wave24k max abs diff {diff}");
    diff
}

mod lossless {
    use super::*;

    #[test]
    fn a03_wav16k_mono_s16() {
        check_wave("a03_wav16k_mono_s16", "wav", WAVE_TOLERANCE);
    }

    #[test]
    fn a04_flac48k_stereo_s24() {
        check_wave("a04_flac48k_stereo_s24", "flac", WAVE_TOLERANCE);
    }

    #[test]
    fn a08_5p6s_wav22k_stereo() {
        check_wave("a08_5p6s_wav22k_stereo", "wav", WAVE_TOLERANCE);
    }
}

mod lossy {
    use super::*;

    #[test]
    fn a05_mp3_44k_stereo() {
        check_wave("a05_mp3_44k_stereo", "mp3", LOSSY_WAVE_TOLERANCE);
    }

    #[test]
    fn a06_ogg_44k_stereo() {
        check_wave("a06_ogg_44k_stereo", "ogg", LOSSY_WAVE_TOLERANCE);
    }
}

mod errors {
    use super::*;

    /// `a09` is 0.7 s: no window. The reference crashes in `torch.cat`; we name the file.
    #[test]
    fn a09_too_short_names_the_file() {
        let path = fixture("a09_0p7s_wav24k_mono.wav");
        assert_eq!(clamp3_audio::load_mono_24k(&path).unwrap().len(), 16_800);
        let err = clamp3_audio::load_for_mert(&path).unwrap_err();
        assert!(matches!(
            err,
            clamp3_audio::Error::TooShort {
                samples: 16_800,
                ..
            }
        ));
        let message = err.to_string();
        assert!(message.contains("a09_0p7s_wav24k_mono.wav"), "{message}");
        assert!(message.contains("too short"), "{message}");
        println!("{message}");
    }

    #[test]
    fn not_audio_names_the_file() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let err = clamp3_audio::load_mono_24k(&path).unwrap_err();
        assert!(err.to_string().contains("Cargo.toml"), "{err}");
    }
}

/// Every audio case of the shared golden set, when `../shared` is present (CI, developers).
mod shared {
    use super::*;

    fn mono_of(decoded: &util::Npy) -> Vec<f32> {
        let (channels, frames) = (decoded.shape[0], decoded.shape[1]);
        (0..frames)
            .map(|i| {
                let sum: f32 = (0..channels).map(|c| decoded.data[c * frames + i]).sum();
                sum / channels as f32
            })
            .collect()
    }

    #[test]
    fn every_case_wave24k() {
        let Some(dir) = shared_cases() else {
            eprintln!("../shared/golden not found; skipped");
            return;
        };
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !matches!(ext, "wav" | "flac" | "mp3" | "ogg") {
                continue;
            }
            let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
            let expected = read_npy(&dir.join(format!("{stem}.wave24k.npy")));
            let got = clamp3_audio::load_mono_24k(&path).unwrap();
            assert_eq!(got.len(), expected.data.len(), "{stem}: length");
            let diff = max_abs_diff(&got, &expected.data);
            let tolerance = if matches!(ext, "mp3" | "ogg") {
                LOSSY_WAVE_TOLERANCE
            } else {
                WAVE_TOLERANCE
            };
            println!("{stem}: wave24k max abs diff {diff:.3e}");
            assert!(diff <= tolerance, "{stem}: wave24k max abs diff {diff}");
            checked += 1;
        }
        assert_eq!(checked, 10);
    }

    /// The decoders alone against FFmpeg's output (`decoded.npy`), and the reference decoder
    /// output through our mixing and resampling, which must then be as exact as for lossless.
    #[test]
    fn lossy_decoders_are_close_to_ffmpeg() {
        let Some(dir) = shared_cases() else {
            eprintln!("../shared/golden not found; skipped");
            return;
        };
        for (stem, ext) in [("a05_mp3_44k_stereo", "mp3"), ("a06_ogg_44k_stereo", "ogg")] {
            let decoded = read_npy(&dir.join(format!("{stem}.decoded.npy")));
            let reference_mono = mono_of(&decoded);
            let (ours, rate) =
                clamp3_audio::decode_mono(&dir.join(format!("{stem}.{ext}"))).unwrap();
            assert_eq!(rate, 44_100);
            assert_eq!(ours.len(), reference_mono.len(), "{stem}: decoded length");
            let decode_diff = max_abs_diff(&ours, &reference_mono);
            println!("{stem}: decoder vs FFmpeg (mono) max abs diff {decode_diff:.3e}");
            assert!(decode_diff <= LOSSY_WAVE_TOLERANCE, "{stem}: {decode_diff}");

            let expected = read_npy(&dir.join(format!("{stem}.wave24k.npy")));
            let resampled = clamp3_audio::resample(&reference_mono, 44_100, 24_000);
            let diff = max_abs_diff(&resampled, &expected.data);
            println!("{stem}: decoded.npy -> wave24k max abs diff {diff:.3e}");
            assert!(diff <= WAVE_TOLERANCE, "{stem}: {diff}");
        }
    }
}
