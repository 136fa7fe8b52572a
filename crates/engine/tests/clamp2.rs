//! CLaMP 2 and M3 against the reference: the tiny checkpoints and outputs of
//! `shared/golden/clamp2` (made by sanderwood/clamp2's `extract_clamp2.py` and `extract_m3.py`;
//! see its README), copied to `fixtures/clamp2` with the arrays gzipped. Ids and patches must be
//! equal, global and local vectors and M3 features within 1e-4; every case goes through one
//! engine call, so segments are batched across files as in real use.

#![allow(clippy::unwrap_used, reason = "tests panic on broken fixtures")]

use candle_core::{DType, Tensor};
use clamp3_engine::{DeviceChoice, Engine, Item, ModelId, ModelSpec, Options, Silent};
use clamp3_features::{ModelInput, Pooling};
use std::io::Read;
use std::path::{Path, PathBuf};

const TOLERANCE: f32 = 1e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clamp2")
}

fn spec(model: ModelId) -> ModelSpec {
    let weights = match model {
        ModelId::M3 => "m3.pth",
        _ => "clamp2.pth",
    };
    ModelSpec {
        model,
        weights: Some(fixtures().join(weights)),
        config: Some(fixtures().join("config.json")),
        // The same tiny XLM-R tokenizer as the CLaMP 3 goldens.
        tokenizer: Some(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../features/tests/fixtures/golden/tokenizer.json"),
        ),
        device: DeviceChoice::Cpu,
        ..ModelSpec::default()
    }
}

struct Case {
    id: String,
    modality: String,
    input: PathBuf,
    outputs: serde_json::Value,
}

fn cases() -> Vec<Case> {
    std::fs::read_to_string(fixtures().join("manifest.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["status"] == "ok")
        .map(|v| Case {
            id: v["id"].as_str().unwrap().to_string(),
            modality: v["modality"].as_str().unwrap().to_string(),
            input: fixtures().join(v["input"].as_str().unwrap()),
            outputs: v["outputs"].clone(),
        })
        .collect()
}

/// A gzipped `.npy` output of a case: its shape and its values as f64 (ids and floats alike).
fn output(case: &Case, name: &str) -> (Vec<usize>, Vec<f64>) {
    let path = fixtures().join(format!("{}.gz", case.outputs[name].as_str().unwrap()));
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
        .read_to_end(&mut bytes)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("a.npy");
    std::fs::write(&npy, bytes).unwrap();
    let t = Tensor::read_npy(&npy).unwrap();
    let values = t
        .to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    (t.dims().to_vec(), values)
}

fn input_values(input: &ModelInput) -> Vec<f64> {
    match input {
        ModelInput::TokenIds(ids) => ids.iter().map(|&i| f64::from(i)).collect(),
        ModelInput::Patches(patches) => patches
            .iter()
            .flat_map(|p| p.iter().map(|&b| f64::from(b)))
            .collect(),
        ModelInput::Features { data, .. } => data.iter().map(|&v| f64::from(v)).collect(),
    }
}

/// Embeds every case of `modalities` in one call and compares `name` outputs.
fn check(model: ModelId, modalities: &[&str], pooling: Pooling, name: &str) -> Vec<String> {
    let engine = Engine::new(&spec(model), None).unwrap();
    let cases: Vec<Case> = cases()
        .into_iter()
        .filter(|c| modalities.contains(&c.modality.as_str()))
        .collect();
    let items: Vec<Item> = cases.iter().map(|c| Item::File(c.input.clone())).collect();
    let options = Options {
        pooling,
        ..Options::default()
    };
    let results = engine.embed(&items, &options, &Silent);
    let mut failures = Vec::new();
    for (case, result) in cases.iter().zip(results) {
        let ours = result.unwrap().embedding;
        let (shape, want) = output(case, name);
        if ours.shape != shape {
            failures.push(format!(
                "{} {name}: shape {:?} != {shape:?}",
                case.id, ours.shape
            ));
            continue;
        }
        let diff = ours
            .data
            .iter()
            .zip(&want)
            .map(|(&a, &b)| (f64::from(a) - b).abs())
            .fold(0.0, f64::max);
        if diff > f64::from(TOLERANCE) {
            failures.push(format!("{} {name}: max abs diff {diff:e}", case.id));
        }
    }
    assert!(!cases.is_empty());
    failures
}

#[test]
fn ids_and_patches_are_the_references() {
    for (model, modality, name) in [
        (ModelId::Clamp2, "text", "ids"),
        (ModelId::Clamp2, "symbolic", "patches"),
        (ModelId::M3, "symbolic", "m3_patches"),
    ] {
        let engine = Engine::new(&spec(model), None).unwrap();
        for case in cases().iter().filter(|c| c.modality == modality) {
            let input = engine
                .model_input(&Item::File(case.input.clone()), &Silent)
                .unwrap();
            let (_, want) = output(case, name);
            assert_eq!(input_values(&input), want, "{} {name}", case.id);
        }
    }
}

#[test]
fn clamp2_global_vectors_match() {
    let failures = check(
        ModelId::Clamp2,
        &["text", "symbolic"],
        Pooling::Global,
        "global",
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn clamp2_local_features_match() {
    let failures = check(
        ModelId::Clamp2,
        &["text", "symbolic"],
        Pooling::Local,
        "local",
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn m3_features_match() {
    let failures = check(ModelId::M3, &["symbolic"], Pooling::Local, "m3");
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn refusals_name_the_model_and_what_it_takes() {
    let engine = Engine::new(&spec(ModelId::Clamp2), None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let song = dir.path().join("song.wav");
    std::fs::write(&song, b"RIFF").unwrap();
    let err = engine
        .embed(&[Item::File(song)], &Options::default(), &Silent)
        .pop()
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(err.contains("clamp2") && err.contains("audio"), "{err}");
    assert!(err.contains("MIDI"), "{err}");

    let m3 = Engine::new(&spec(ModelId::M3), None).unwrap();
    let err = m3.embed_text("a tune").unwrap_err().to_string();
    assert!(err.contains("m3") && err.contains("text"), "{err}");
    let tune = fixtures().join("cases/symbolic/s01_abc_short.abc");
    let err = m3
        .embed(&[Item::File(tune)], &Options::default(), &Silent)
        .pop()
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(err.contains("per-patch"), "{err}");

    // The reference's split_bars raises on a last line that is a lone barline.
    let broken = dir.path().join("broken.abc");
    std::fs::write(&broken, "X:1\nL:1/8\nK:C\nV:1\n[V:1]ab|\n|").unwrap();
    let err = engine
        .embed(&[Item::File(broken)], &Options::default(), &Silent)
        .pop()
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("broken.abc") && err.contains("lone barline"),
        "{err}"
    );
}
