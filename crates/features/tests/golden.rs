//! Parity with the PyTorch reference on the tiny random-weight model in `fixtures/golden/`.
//!
//! The fixtures are copies of `shared/golden/models/` made by the reference's `code/utils.py` and
//! `code/extract_clamp3.py` (see `fixtures/golden/README.md`): token ids and patches must match
//! exactly, global and local features within `TOLERANCE`.

#![allow(clippy::unwrap_used, reason = "test helpers panic on broken fixtures")]

use candle_core::{Device, Tensor};
use clamp3_features::{embed, input, text, ModelInput, Pooling};
use clamp3_models::{Clamp3Model, Config};
use std::path::{Path, PathBuf};

/// Max abs difference allowed on features (float32 on CPU; the README suggests 1e-4).
const TOLERANCE: f32 = 1e-4;

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden")
}

fn model() -> Clamp3Model {
    let config = Config::from_file(&golden().join("config.json")).unwrap();
    Clamp3Model::from_file(&golden().join("clamp3.pth"), &config, &Device::Cpu).unwrap()
}

struct Case {
    id: String,
    input: PathBuf,
    outputs: serde_json::Map<String, serde_json::Value>,
}

fn cases(modality: &str) -> Vec<Case> {
    let manifest = std::fs::read_to_string(golden().join("manifest.jsonl")).unwrap();
    manifest
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["modality"] == modality && v["status"] == "ok")
        .map(|v| Case {
            id: v["id"].as_str().unwrap().to_string(),
            input: golden().join(v["input"].as_str().unwrap()),
            outputs: v["outputs"].as_object().unwrap().clone(),
        })
        .collect()
}

fn output(case: &Case, name: &str) -> Tensor {
    Tensor::read_npy(golden().join(case.outputs[name].as_str().unwrap())).unwrap()
}

fn max_abs_diff(ours: &[f32], want: &[f32]) -> f32 {
    assert_eq!(ours.len(), want.len());
    ours.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

/// Checks global and local features of every case of a modality; returns how many were checked.
fn check_features(
    model: &Clamp3Model,
    modality: &str,
    read: impl Fn(&Case) -> ModelInput,
) -> usize {
    let cases = cases(modality);
    let mut failures = Vec::new();
    for case in &cases {
        let input = read(case);
        for (name, pooling) in [("global", Pooling::Global), ("local", Pooling::Local)] {
            let want = output(case, name);
            let ours = embed(model, &input, pooling).unwrap();
            if ours.shape != want.dims() {
                failures.push(format!(
                    "{} {name}: shape {:?} != {:?}",
                    case.id,
                    ours.shape,
                    want.dims()
                ));
                continue;
            }
            let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let diff = max_abs_diff(&ours.data, &want);
            if diff > TOLERANCE {
                failures.push(format!("{} {name}: max abs diff {diff:e}", case.id));
            }
        }
    }
    assert!(failures.is_empty(), "{modality}: {failures:#?}");
    cases.len()
}

#[test]
fn text_ids_match_reference() {
    let tokenizer = text::load_tokenizer(&golden().join("tokenizer.json")).unwrap();
    let cases = cases("text");
    assert_eq!(cases.len(), 18);
    for case in &cases {
        let ids =
            text::token_ids(&tokenizer, &std::fs::read_to_string(&case.input).unwrap()).unwrap();
        let want: Vec<u32> = output(case, "ids")
            .to_vec1::<i64>()
            .unwrap()
            .into_iter()
            .map(|v| v as u32)
            .collect();
        assert_eq!(ids, want, "{}", case.id);
    }
}

#[test]
fn text_features_match_reference() {
    let model = model();
    let tokenizer = text::load_tokenizer(&golden().join("tokenizer.json")).unwrap();
    let n = check_features(&model, "text", |case| {
        input::read_input(&case.input, Some(&tokenizer)).unwrap()
    });
    assert_eq!(n, 18);
}

#[test]
fn symbolic_patches_match_reference() {
    let cases = cases("symbolic");
    assert_eq!(cases.len(), 8);
    for case in &cases {
        let ModelInput::Patches(patches) = input::read_input(&case.input, None).unwrap() else {
            panic!("{}: not patches", case.id)
        };
        let want = output(case, "patches").to_vec2::<i64>().unwrap();
        let ours: Vec<Vec<i64>> = patches
            .iter()
            .map(|p| p.iter().map(|&v| i64::from(v)).collect())
            .collect();
        assert_eq!(ours, want, "{}", case.id);
    }
}

#[test]
fn symbolic_features_match_reference() {
    let model = model();
    let n = check_features(&model, "symbolic", |case| {
        input::read_input(&case.input, None).unwrap()
    });
    assert_eq!(n, 8);
}

#[test]
fn audio_features_match_reference() {
    let model = model();
    let n = check_features(&model, "audio_features", |case| {
        input::read_input(&case.input, None).unwrap()
    });
    assert_eq!(n, 5);
}
