//! CLaMP 1 against the reference: the tiny model and outputs of `shared/golden/clamp1` (made by
//! microsoft/muzic's `clamp/clamp.py` and `clamp/utils.py`; see its README), copied to
//! `fixtures/clamp1` with the arrays and large scores gzipped. `music.txt`, ids and patches must
//! be equal; hidden states, global vectors and `compute_values` within 1e-4.

#![allow(clippy::unwrap_used, reason = "tests panic on broken fixtures")]

use candle_core::{DType, Tensor};
use clamp3_engine::families::clamp1::{text_keys, Clamp1};
use clamp3_engine::{DeviceChoice, Engine, Item, ModelId, ModelSpec, Options, Silent};
use clamp3_features::{FileKind, ModelInput, Pooling};
use clamp3_retrieval::similarity::{compute_values, similarities};
use std::io::Read;
use std::path::{Path, PathBuf};

const TOLERANCE: f64 = 1e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clamp1")
}

fn spec() -> ModelSpec {
    ModelSpec {
        model: ModelId::Clamp1S512,
        weights: Some(fixtures().join("clamp-tiny/pytorch_model.bin")),
        config: Some(fixtures().join("clamp-tiny/config.json")),
        tokenizer: Some(fixtures().join("distilroberta-tiny/tokenizer.json")),
        device: DeviceChoice::Cpu,
        ..ModelSpec::default()
    }
}

struct Case {
    id: String,
    modality: String,
    status: String,
    input: String,
    outputs: serde_json::Value,
}

fn cases() -> Vec<Case> {
    std::fs::read_to_string(fixtures().join("manifest.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| Case {
            id: v["id"].as_str().unwrap().to_string(),
            modality: v["modality"].as_str().unwrap().to_string(),
            status: v["status"].as_str().unwrap().to_string(),
            input: v["input"].as_str().unwrap_or_default().to_string(),
            outputs: v["outputs"].clone(),
        })
        .collect()
}

fn case(id: &str) -> Case {
    cases().into_iter().find(|c| c.id == id).unwrap()
}

/// A fixture's bytes, gunzipped when only its `.gz` copy is stored.
fn bytes(relative: &str) -> Vec<u8> {
    let plain = fixtures().join(relative);
    if plain.exists() {
        return std::fs::read(plain).unwrap();
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(fixtures().join(format!("{relative}.gz"))).unwrap(),
    )
    .read_to_end(&mut out)
    .unwrap();
    out
}

/// The case's input, written out under its own name (its extension decides its kind).
fn input(case: &Case, dir: &Path) -> PathBuf {
    let path = dir.join(Path::new(&case.input).file_name().unwrap());
    std::fs::write(&path, bytes(&case.input)).unwrap();
    path
}

/// An output array: shape and values as f64 (ids and floats alike).
fn output(case: &Case, name: &str) -> (Vec<usize>, Vec<f64>) {
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("a.npy");
    std::fs::write(&npy, bytes(case.outputs[name].as_str().unwrap())).unwrap();
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

fn max_abs_diff(ours: &[f32], want: &[f64]) -> f64 {
    assert_eq!(ours.len(), want.len());
    ours.iter()
        .zip(want)
        .map(|(&a, &b)| (f64::from(a) - b).abs())
        .fold(0.0, f64::max)
}

fn values(input: &ModelInput) -> Vec<f64> {
    match input {
        ModelInput::TokenIds(ids) => ids.iter().map(|&i| f64::from(i)).collect(),
        ModelInput::Patches(patches) => patches
            .iter()
            .flat_map(|p| p.iter().map(|&b| f64::from(b)))
            .collect(),
        ModelInput::Features { data, .. } => data.iter().map(|&v| f64::from(v)).collect(),
    }
}

/// Global vectors (or hidden rows) of items, in one engine call.
fn embed(engine: &Engine, items: &[Item], pooling: Pooling) -> Vec<Vec<f32>> {
    let options = Options {
        pooling,
        ..Options::default()
    };
    engine
        .embed(items, &options, &Silent)
        .into_iter()
        .map(|r| r.unwrap().embedding.data)
        .collect()
}

#[test]
fn music_text_and_patches_are_the_references() {
    let family = Clamp1::new(&spec()).unwrap();
    let engine = Engine::new(&spec(), None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for case in cases()
        .iter()
        .filter(|c| c.modality == "music" && c.status == "ok")
    {
        let path = input(case, dir.path());
        let music = family
            .music_text(FileKind::MusicXml, &path, &std::fs::read(&path).unwrap())
            .unwrap();
        let want = String::from_utf8(bytes(case.outputs["music"].as_str().unwrap())).unwrap();
        assert_eq!(music, want, "{} music.txt", case.id);
        let patches = engine.model_input(&Item::File(path), &Silent).unwrap();
        assert_eq!(values(&patches), output(case, "patches").1, "{}", case.id);
    }
}

#[test]
fn music_hidden_states_and_vectors_match() {
    let engine = Engine::new(&spec(), None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let music: Vec<Case> = cases()
        .into_iter()
        .filter(|c| c.modality == "music" && c.status == "ok")
        .collect();
    let items: Vec<Item> = music
        .iter()
        .map(|c| Item::File(input(c, dir.path())))
        .collect();
    let mut failures = Vec::new();
    for (pooling, name) in [(Pooling::Global, "global"), (Pooling::Local, "hidden")] {
        for (case, ours) in music.iter().zip(embed(&engine, &items, pooling)) {
            let diff = max_abs_diff(&ours, &output(case, name).1);
            if diff > TOLERANCE {
                failures.push(format!("{} {name}: {diff:e}", case.id));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn text_queries_are_whole_files() {
    let engine = Engine::new(&spec(), None).unwrap();
    let texts: Vec<Case> = cases()
        .into_iter()
        .filter(|c| c.modality == "text")
        .collect();
    let items: Vec<Item> = texts
        .iter()
        .map(|c| Item::File(fixtures().join(&c.input)))
        .collect();
    for (case, item) in texts.iter().zip(&items) {
        let ids = engine.model_input(item, &Silent).unwrap();
        assert_eq!(values(&ids), output(case, "ids").1, "{} ids", case.id);
    }
    let mut failures = Vec::new();
    for (pooling, name) in [(Pooling::Global, "global"), (Pooling::Local, "hidden")] {
        for (case, ours) in texts.iter().zip(embed(&engine, &items, pooling)) {
            let diff = max_abs_diff(&ours, &output(case, name).1);
            if diff > TOLERANCE {
                failures.push(format!("{} {name}: {diff:e}", case.id));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The text keys of `k01`, as lines, and their vectors.
fn key_vectors(engine: &Engine) -> Vec<Vec<f32>> {
    let keys_case = case("k01_text_keys");
    let keys = text_keys(&String::from_utf8(bytes(&keys_case.input)).unwrap());
    assert_eq!(keys.len(), 8);
    let items: Vec<Item> = keys.into_iter().map(Item::Text).collect();
    // Ids are stored one key per row, padded with -1.
    let (shape, ids) = output(&keys_case, "ids");
    for (row, item) in items.iter().enumerate() {
        let ours = values(&engine.model_input(item, &Silent).unwrap());
        let want: Vec<f64> = ids[row * shape[1]..(row + 1) * shape[1]]
            .iter()
            .copied()
            .filter(|&v| v >= 0.0)
            .collect();
        assert_eq!(ours, want, "key {row}");
    }
    let vectors = embed(engine, &items, Pooling::Global);
    let flat: Vec<f32> = vectors.concat();
    assert!(max_abs_diff(&flat, &output(&keys_case, "global").1) <= TOLERANCE);
    vectors
}

#[test]
fn retrieval_values_match() {
    let engine = Engine::new(&spec(), None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keys = key_vectors(&engine);
    let query = Item::File(input(&case("m01_music_query"), dir.path()));
    let query = embed(&engine, &[query], Pooling::Global).remove(0);
    let r01 = case("r01_music_query_vs_text_keys");
    let values = compute_values(&query, &keys);
    assert!(max_abs_diff(&values, &output(&r01, "values").1) <= TOLERANCE);
    let sims = similarities(&query, &keys);
    assert!(max_abs_diff(&sims, &output(&r01, "sims").1) <= TOLERANCE);

    let music: Vec<Item> = cases()
        .iter()
        .filter(|c| c.modality == "music" && c.status == "ok")
        .map(|c| Item::File(input(c, dir.path())))
        .collect();
    let music = embed(&engine, &music, Pooling::Global);
    let text = embed(
        &engine,
        &[Item::File(fixtures().join("cases/text/t01_short_en.txt"))],
        Pooling::Global,
    )
    .remove(0);
    let r02 = case("r02_text_query_vs_music_keys");
    let values = compute_values(&text, &music);
    assert!(max_abs_diff(&values, &output(&r02, "values").1) <= TOLERANCE);
}

#[test]
fn refusals_and_failures_are_clear() {
    let engine = Engine::new(&spec(), None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let failing = input(&case("m08_xml2abc_fails"), dir.path());
    let midi = dir.path().join("song.mid");
    std::fs::write(&midi, b"MThd").unwrap();
    let results = engine.embed(
        &[Item::File(failing), Item::File(midi)],
        &Options::default(),
        &Silent,
    );
    let errors: Vec<String> = results
        .into_iter()
        .map(|r| r.unwrap_err().to_string())
        .collect();
    assert!(errors[0].contains("m08_xml2abc_fails.xml"), "{}", errors[0]);
    assert!(errors[0].contains("xml2abc"), "{}", errors[0]);
    assert!(
        errors[1].contains("clamp1-s512") && errors[1].contains("MIDI"),
        "{}",
        errors[1]
    );
    assert!(errors[1].contains("sheet music"), "{}", errors[1]);
}
