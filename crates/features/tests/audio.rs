//! Audio files → MERT (the tiny golden MERT) → CLaMP 3's audio encoder, against the reference's
//! `extract_mert.py --mean_features` + `extract_clamp3.py` outputs (`fixtures/golden/cases/audio`).
//! Inputs and the MERT folder are shared with the audio and models crates' own tests.

#![allow(clippy::unwrap_used, reason = "test helpers panic on broken fixtures")]

use candle_core::{Device, Tensor};
use clamp3_features::{embed, input::read_input_with, Pooling};
use clamp3_models::mert::Mert;
use clamp3_models::{Clamp3Model, Config};
use std::path::{Path, PathBuf};

const TOLERANCE: f32 = 1e-4;

fn crates() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn audio_files_match_reference_global_and_local() {
    let golden = crates().join("features/tests/fixtures/golden");
    let config = Config::from_file(&golden.join("config.json")).unwrap();
    let model = Clamp3Model::from_file(&golden.join("clamp3.pth"), &config, &Device::Cpu).unwrap();
    let mert =
        Mert::from_folder(&crates().join("models/tests/fixtures/mert"), &Device::Cpu).unwrap();
    let cases = [
        "a03_wav16k_mono_s16.wav",
        "a04_flac48k_stereo_s24.flac",
        "a05_mp3_44k_stereo.mp3",
        "a06_ogg_44k_stereo.ogg",
        "a08_5p6s_wav22k_stereo.wav",
    ];
    for file in cases {
        let path = crates().join("audio/tests/fixtures").join(file);
        let input = read_input_with(&path, None, Some(&mert)).unwrap();
        let stem = file.rsplit_once('.').unwrap().0;
        for (kind, pooling) in [("global", Pooling::Global), ("local", Pooling::Local)] {
            let want =
                Tensor::read_npy(golden.join(format!("cases/audio/{stem}.{kind}.npy"))).unwrap();
            let ours = embed(&model, &input, pooling).unwrap();
            assert_eq!(ours.shape, want.dims(), "{file} {kind}");
            let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let diff = ours
                .data
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(diff <= TOLERANCE, "{file} {kind}: max abs diff {diff:e}");
        }
    }
}

#[test]
fn too_short_audio_is_an_error_naming_the_file() {
    let mert =
        Mert::from_folder(&crates().join("models/tests/fixtures/mert"), &Device::Cpu).unwrap();
    let path = crates().join("audio/tests/fixtures/a09_0p7s_wav24k_mono.wav");
    let err = read_input_with(&path, None, Some(&mert))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("a09_0p7s_wav24k_mono.wav") && err.contains("too short"),
        "{err}"
    );
}

#[test]
fn audio_without_mert_is_a_clear_error() {
    let path = crates().join("audio/tests/fixtures/a03_wav16k_mono_s16.wav");
    let err = read_input_with(&path, None, None).unwrap_err().to_string();
    assert!(err.contains("MERT"), "{err}");
}
