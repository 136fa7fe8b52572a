//! A configuration unlike the goldens' (text 48/3 layers/6 heads with L = 10, symbolic 40/1/5 with
//! L = 7, audio 36/3/2 with L = 5, D = 20), random weights in safetensors, and expected features
//! from an independent NumPy transcription of Hugging Face BERT / XLM-R that runs
//! `extract_clamp3.py`'s padded, masked segmentation literally
//! (`tools/golden/make_other_config.py`). Nothing in the model or the segmentation may depend on
//! the golden sizes.

#![allow(clippy::unwrap_used, reason = "test helpers panic on broken fixtures")]

use candle_core::{Device, Tensor};
use clamp3_features::{embed, input, text, Pooling};
use clamp3_models::{Clamp3Model, Config};
use std::path::{Path, PathBuf};

const TOLERANCE: f32 = 1e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn features_match_independent_reference() {
    let dir = fixtures().join("other_config");
    let config = Config::from_file(&dir.join("config.json")).unwrap();
    let model =
        Clamp3Model::from_file(&dir.join("weights.safetensors"), &config, &Device::Cpu).unwrap();
    let tokenizer = text::load_tokenizer(&fixtures().join("golden/tokenizer.json")).unwrap();
    let manifest: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest.len(), 9);
    let mut failures = Vec::new();
    for case in &manifest {
        let rel = case["input"].as_str().unwrap();
        let path = if rel.starts_with("inputs/") {
            dir.join(rel)
        } else {
            fixtures().join("golden/cases").join(rel)
        };
        let input = input::read_input(&path, Some(&tokenizer)).unwrap();
        for (kind, pooling) in [("global", Pooling::Global), ("local", Pooling::Local)] {
            let stem = case["stem"].as_str().unwrap();
            let want = Tensor::read_npy(dir.join(format!("expected/{stem}.{kind}.npy"))).unwrap();
            let ours = embed(&model, &input, pooling).unwrap();
            assert_eq!(ours.shape, want.dims(), "{rel} {kind}");
            let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let diff = ours
                .data
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            if diff > TOLERANCE {
                failures.push(format!("{rel} {kind}: {diff:e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn wrong_sizes_name_the_tensor() {
    // The golden weights with the other configuration: opening reads only the file's index, and
    // the first use of an encoder reports the first mismatch by file and tensor name.
    let config = Config::from_file(&fixtures().join("other_config/config.json")).unwrap();
    let model =
        Clamp3Model::from_file(&fixtures().join("golden/clamp3.pth"), &config, &Device::Cpu)
            .unwrap();
    let ids = Tensor::new(&[[0u32, 5, 2]], &Device::Cpu).unwrap();
    let err = model
        .encode(clamp3_models::EncoderInput::TokenIds(&ids), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("clamp3.pth") && err.contains("text_model"),
        "{err}"
    );
}
