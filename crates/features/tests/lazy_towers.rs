//! A model opened from a file builds each encoder on its modality's first use: a weight file
//! holding only the text tower serves text exactly as the whole checkpoint does, and asking it
//! for audio names the file and the missing tensor.

#![allow(clippy::unwrap_used, reason = "test helpers panic on broken fixtures")]

use candle_core::{Device, Tensor};
use clamp3_features::{embed, input, text, Pooling};
use clamp3_models::weights::read_all;
use clamp3_models::{Clamp3Model, Config};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden")
}

#[test]
fn a_text_only_weight_file_serves_text_and_names_what_audio_lacks() {
    let config = Config::from_file(&golden().join("config.json")).unwrap();
    let whole =
        Clamp3Model::from_file(&golden().join("clamp3.pth"), &config, &Device::Cpu).unwrap();
    let text_only: HashMap<String, Tensor> = read_all(&golden().join("clamp3.pth"))
        .unwrap()
        .into_iter()
        .filter(|(name, _)| name.starts_with("text_"))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("text-only.safetensors");
    candle_core::safetensors::save(&text_only, &path).unwrap();
    let lazy = Clamp3Model::from_file(&path, &config, &Device::Cpu).unwrap();

    let tokenizer = text::load_tokenizer(&golden().join("tokenizer.json")).unwrap();
    let cases = golden().join("cases/text");
    let mut seen = 0;
    for entry in std::fs::read_dir(&cases).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "txt") {
            continue;
        }
        let input = input::read_input(&path, Some(&tokenizer)).unwrap();
        for pooling in [Pooling::Global, Pooling::Local] {
            let want = embed(&whole, &input, pooling).unwrap();
            let ours = embed(&lazy, &input, pooling).unwrap();
            assert_eq!(ours.shape, want.shape, "{}", path.display());
            // The mapped token table holds the same floats: the vectors are identical.
            assert_eq!(ours.data, want.data, "{}", path.display());
        }
        seen += 1;
    }
    assert!(seen > 0, "no text cases in {}", cases.display());

    let features = Tensor::zeros(
        (1, 4, config.audio_model.hidden_size),
        candle_core::DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    for _ in 0..2 {
        // The failure is kept: the second call reports it again rather than half-building.
        let error = lazy
            .encode(clamp3_models::EncoderInput::Features(&features), None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("text-only.safetensors"), "{error}");
        assert!(error.contains("audio_model"), "{error}");
    }
}
