//! The engine on the tiny golden CLaMP 3 (shared with `clamp3-features`' parity tests): every
//! golden case embedded in one call, segments batched across files, equals the reference; the
//! cache is consulted before any model loads; `.npy` inputs are read by shape; and a second,
//! toy model family goes through the same seam.

#![allow(clippy::unwrap_used, reason = "tests panic on broken fixtures")]

use candle_core::{Device, Tensor};
use clamp3_engine::{
    Cache, Embedded, Engine, Error, Family, Item, ModelSpec, NpyReading, Options, Precision,
    Progress, Silent, Source,
};
use clamp3_features::{BatchLimits, Encoder, FileKind, ModelInput, Pooling, Segmenting};
use clamp3_models::Modality;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../features/tests/fixtures/golden")
}

fn spec() -> ModelSpec {
    ModelSpec {
        weights: Some(golden().join("clamp3.pth")),
        config: Some(golden().join("config.json")),
        tokenizer: Some(golden().join("tokenizer.json")),
        device: clamp3_engine::DeviceChoice::Cpu,
        ..ModelSpec::default()
    }
}

/// `(input, global output, local output)` of every ok case that needs no MERT.
fn cases() -> Vec<(PathBuf, PathBuf, PathBuf)> {
    std::fs::read_to_string(golden().join("manifest.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["status"] == "ok" && v["modality"] != "audio")
        .map(|v| {
            let at = |key: &str| golden().join(v["outputs"][key].as_str().unwrap());
            (
                golden().join(v["input"].as_str().unwrap()),
                at("global"),
                at("local"),
            )
        })
        .collect()
}

fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let t = Tensor::read_npy(path).unwrap();
    (
        t.dims().to_vec(),
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
    )
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Records what the engine reports.
#[derive(Default)]
struct Recorder {
    total: Mutex<usize>,
    finished: Mutex<Vec<usize>>,
}

impl Progress for Recorder {
    fn start(&self, total: usize) {
        *self.total.lock().unwrap() = total;
    }
    fn finished(&self, index: usize, _result: &clamp3_engine::Result<Embedded>) {
        self.finished.lock().unwrap().push(index);
    }
}

#[test]
fn all_goldens_in_one_batched_call_match_the_reference() {
    let cases = cases();
    assert!(cases.len() >= 25, "{} cases", cases.len());
    let engine = Engine::new(&spec(), None).unwrap();
    let items: Vec<Item> = cases.iter().map(|c| Item::File(c.0.clone())).collect();
    // Small batches too, so that segments of different files and lengths share padded batches.
    for limits in [
        None,
        Some(BatchLimits {
            max_rows: 40,
            max_segments: 3,
        }),
        Some(BatchLimits {
            max_rows: 100_000,
            max_segments: 1000,
        }),
    ] {
        for pooling in [Pooling::Global, Pooling::Local] {
            let options = Options {
                pooling,
                npy: NpyReading::Features,
                limits,
                chunk: 7,
            };
            let recorder = Recorder::default();
            let results = engine.embed(&items, &options, &recorder);
            assert_eq!(*recorder.total.lock().unwrap(), items.len());
            let mut finished = recorder.finished.lock().unwrap().clone();
            finished.sort_unstable();
            assert_eq!(finished, (0..items.len()).collect::<Vec<_>>());
            for (case, result) in cases.iter().zip(results) {
                let embedded = result.unwrap();
                assert_eq!(embedded.source, Source::Computed);
                let want = read_npy(if pooling == Pooling::Global {
                    &case.1
                } else {
                    &case.2
                });
                assert_eq!(embedded.embedding.shape, want.0, "{:?}", case.0);
                let diff = max_abs_diff(&embedded.embedding.data, &want.1);
                assert!(diff <= 1e-4, "{:?} {pooling:?}: {diff}", case.0);
            }
        }
    }
}

#[test]
fn a_checkpoint_is_mapped_from_its_safetensors_copy_after_the_first_load() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("weights");
    let pth = golden().join("clamp3.pth");
    let copy = clamp3_engine::weight_cache::loadable(&pth, Some(&cache)).unwrap();
    assert!(copy.starts_with(&cache) && copy.extension().unwrap() == "safetensors");
    let written = std::fs::metadata(&copy).unwrap().modified().unwrap();
    assert_eq!(
        clamp3_engine::weight_cache::loadable(&pth, Some(&cache)).unwrap(),
        copy
    );
    assert_eq!(
        std::fs::metadata(&copy).unwrap().modified().unwrap(),
        written
    );
    // Without a cache folder, and for a file that is safetensors already, nothing is copied.
    assert_eq!(
        clamp3_engine::weight_cache::loadable(&pth, None).unwrap(),
        pth
    );
    assert_eq!(
        clamp3_engine::weight_cache::loadable(&copy, Some(&cache)).unwrap(),
        copy
    );
    let text = Item::File(golden().join("cases/text/t01_short_en.txt"));
    let from_pth = Engine::new(&spec(), None).unwrap().embed(
        std::slice::from_ref(&text),
        &Options::default(),
        &Silent,
    );
    let cached_spec = ModelSpec {
        weight_cache: Some(cache),
        ..spec()
    };
    let from_copy =
        Engine::new(&cached_spec, None)
            .unwrap()
            .embed(&[text], &Options::default(), &Silent);
    assert_eq!(
        from_pth[0].as_ref().unwrap().embedding.data,
        from_copy[0].as_ref().unwrap().embedding.data
    );
}

#[test]
fn bf16_weights_stay_close_to_f32_and_are_cached_apart() {
    let cases = cases();
    let items: Vec<Item> = cases.iter().map(|c| Item::File(c.0.clone())).collect();
    let options = Options {
        npy: NpyReading::Features,
        ..Options::default()
    };
    let f32_engine = Engine::new(&spec(), None).unwrap();
    let bf16_spec = ModelSpec {
        precision: Precision::Bf16,
        ..spec()
    };
    let bf16_engine = Engine::new(&bf16_spec, None).unwrap();
    let f32_vectors = f32_engine.embed(&items, &options, &Silent);
    let bf16_vectors = bf16_engine.embed(&items, &options, &Silent);
    let mut worst = 1.0f64;
    for ((case, a), b) in cases.iter().zip(f32_vectors).zip(bf16_vectors) {
        let (a, b) = (a.unwrap().embedding.data, b.unwrap().embedding.data);
        let dot: f64 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum();
        let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        let cosine = dot / (norm(&a) * norm(&b));
        assert!(cosine >= 0.999, "{:?}: cosine {cosine}", case.0);
        assert!(a != b, "{:?}: bf16 changed nothing", case.0);
        worst = worst.min(cosine);
    }
    eprintln!("tiny golden CLaMP 3, bf16 against f32: worst cosine {worst:.6}");
    for modality in [Modality::Text, Modality::Symbolic, Modality::Audio] {
        assert_ne!(
            f32_engine.identity(modality).unwrap(),
            bf16_engine.identity(modality).unwrap()
        );
    }
    let clamp2 = ModelSpec {
        model: clamp3_engine::ModelId::Clamp2,
        precision: Precision::Bf16,
        ..ModelSpec::default()
    };
    let refused = Engine::new(&clamp2, None).err().unwrap().to_string();
    assert!(
        refused.contains("bf16") && refused.contains("CLaMP 3"),
        "{refused}"
    );
}

#[test]
fn the_cache_answers_before_any_model_loads_and_keeps_modalities_apart() {
    let dir = tempfile::tempdir().unwrap();
    let text = golden().join("cases/text/t01_short_en.txt");
    let score = golden().join("cases/symbolic/s02_abc_long.abc");
    let items = [Item::File(text.clone()), Item::File(score.clone())];
    let first = Engine::new(&spec(), Some(Cache::new(dir.path().join("cache"))))
        .unwrap()
        .embed(&items, &Options::default(), &Silent);
    assert!(first
        .iter()
        .all(|r| r.as_ref().unwrap().source == Source::Computed));
    // Same cache, weights that do not exist: everything is answered from the cache.
    let mut broken = spec();
    broken.weights = Some(dir.path().join("gone.pth"));
    let engine = Engine::new(&broken, Some(Cache::new(dir.path().join("cache")))).unwrap();
    let again = engine.embed(&items, &Options::default(), &Silent);
    // The weights' identity changed (the file is gone), so nothing may be reused: both fail
    // with a clear error instead of serving vectors of other weights.
    for result in &again {
        assert!(result.is_err(), "{result:?}");
    }
    let engine = Engine::new(&spec(), Some(Cache::new(dir.path().join("cache")))).unwrap();
    let again = engine.embed(&items, &Options::default(), &Silent);
    for (a, b) in first.iter().zip(&again) {
        let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
        assert_eq!(b.source, Source::Cache);
        assert_eq!(a.embedding, b.embedding);
    }
    // A missing MERT breaks audio only: text and scores have their own identity.
    let mut no_mert = spec();
    no_mert.mert = Some(dir.path().join("no-mert"));
    let engine = Engine::new(&no_mert, Some(Cache::new(dir.path().join("cache")))).unwrap();
    let results = engine.embed(&items, &Options::default(), &Silent);
    assert!(results
        .iter()
        .all(|r| r.as_ref().unwrap().source == Source::Cache));
}

#[test]
fn replacing_mert_weights_changes_the_audio_identity() {
    let dir = tempfile::tempdir().unwrap();
    let mert = dir.path().join("mert");
    std::fs::create_dir(&mert).unwrap();
    std::fs::write(mert.join("config.json"), b"{}").unwrap();
    std::fs::write(mert.join("model.safetensors"), b"first").unwrap();
    let mut spec = spec();
    spec.mert = Some(mert.clone());
    let before = Engine::new(&spec, None)
        .unwrap()
        .identity(Modality::Audio)
        .unwrap()
        .to_string();
    std::fs::write(mert.join("model.safetensors"), b"second weights").unwrap();
    let engine = Engine::new(&spec, None).unwrap();
    assert_ne!(before, engine.identity(Modality::Audio).unwrap());
    // Text vectors do not depend on MERT.
    let text_before = engine.identity(Modality::Text).unwrap().to_string();
    std::fs::write(mert.join("model.safetensors"), b"third").unwrap();
    let engine = Engine::new(&spec, None).unwrap();
    assert_eq!(text_before, engine.identity(Modality::Text).unwrap());
}

#[test]
fn npy_files_are_vectors_or_features_by_shape() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(&spec(), None).unwrap();
    // A [1, D] vector (D = 24 here) comes back as it is, without a model.
    let vector: Vec<f32> = (0..24).map(|i| i as f32 / 10.0).collect();
    let path = dir.path().join("v.npy");
    std::fs::write(&path, clamp3_io::npy::encode_f32(&[1, 24], &vector)).unwrap();
    let features = golden().join("cases/audio_features/f01_rows3.npy");
    let odd = dir.path().join("odd.npy");
    std::fs::write(&odd, clamp3_io::npy::encode_f32(&[2, 5], &[0.0; 10])).unwrap();
    let items = [
        Item::File(path.clone()),
        Item::File(features.clone()),
        Item::File(odd.clone()),
    ];
    let results = engine.embed(&items, &Options::default(), &Silent);
    let first = results[0].as_ref().unwrap();
    assert_eq!(
        (first.source, &first.embedding.data),
        (Source::Vector, &vector)
    );
    assert_eq!(results[1].as_ref().unwrap().source, Source::Computed);
    let err = results[2].as_ref().unwrap_err().to_string();
    assert!(err.contains("odd.npy") && err.contains("[2, 5]"), "{err}");
    // Forced readings.
    let forced = Options {
        npy: NpyReading::Vector,
        ..Options::default()
    };
    let results = engine.embed(&items[..2], &forced, &Silent);
    assert!(results[0].is_ok());
    let err = results[1].as_ref().unwrap_err().to_string();
    assert!(err.contains("as a vector"), "{err}");
}

#[test]
fn bad_inputs_fail_alone_and_name_their_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, b"\xff\xfe").unwrap();
    let pdf = dir.path().join("x.pdf");
    std::fs::write(&pdf, b"%PDF").unwrap();
    let missing = dir.path().join("missing.abc");
    let good = golden().join("cases/text/t01_short_en.txt");
    let engine = Engine::new(&spec(), None).unwrap();
    let items = [
        Item::File(bad.clone()),
        Item::File(good),
        Item::File(pdf.clone()),
        Item::File(missing.clone()),
        Item::Bytes {
            name: "upload.abc".into(),
            bytes: b"X:1\nL:1/8\nK:C\n".to_vec(),
        },
    ];
    let results = engine.embed(&items, &Options::default(), &Silent);
    assert!(results[1].is_ok());
    for (i, path) in [(0, &bad), (2, &pdf), (3, &missing)] {
        let message = results[i].as_ref().unwrap_err().to_string();
        let name = path.display().to_string();
        assert_eq!(message.matches(&name).count(), 1, "{message}");
    }
    let message = results[4].as_ref().unwrap_err().to_string();
    assert!(message.starts_with("upload.abc: "), "{message}");
}

/// A toy family: text only, each byte is an item, the encoder's hidden state of a byte is
/// `[byte, 1]`, truncated to 4 items, projected by doubling. Its vectors are easy to predict.
struct Bytes;

impl Encoder for Bytes {
    fn device(&self) -> &Device {
        &Device::Cpu
    }
    fn segmenting(&self, _: Modality) -> Segmenting {
        Segmenting::Truncate { max: 4 }
    }
    fn input_width(&self, _: Modality) -> Option<usize> {
        None
    }
    fn padding_id(&self, _: Modality) -> u32 {
        0
    }
    fn encode(
        &self,
        _: Modality,
        batch: &Tensor,
        _mask: Option<&Tensor>,
    ) -> clamp3_features::Result<Tensor> {
        let values = batch.to_dtype(candle_core::DType::F32)?.unsqueeze(2)?;
        Ok(Tensor::cat(&[&values, &values.ones_like()?], 2)?)
    }
    fn project(&self, _: Modality, pooled: &Tensor) -> clamp3_features::Result<Tensor> {
        Ok((pooled * 2.0)?)
    }
}

impl Family for Bytes {
    fn name(&self) -> &str {
        "bytes"
    }
    fn modality_of(&self, kind: FileKind) -> Option<Modality> {
        (kind == FileKind::Text).then_some(Modality::Text)
    }
    fn accepts(&self) -> &str {
        "text (.txt)"
    }
    fn identity(&self, _: Modality) -> clamp3_engine::Result<String> {
        Ok("bytes-v1".into())
    }
    fn vector_width(&self) -> usize {
        2
    }
    fn feature_width(&self) -> Option<usize> {
        None
    }
    fn prepare(
        &self,
        _: FileKind,
        _: &Path,
        bytes: Vec<u8>,
        _: &dyn Progress,
    ) -> clamp3_engine::Result<ModelInput> {
        Ok(ModelInput::TokenIds(
            bytes.into_iter().map(u32::from).collect(),
        ))
    }
    fn encoder(&self) -> clamp3_engine::Result<&dyn Encoder> {
        Ok(self)
    }
}

#[test]
fn another_family_goes_through_the_same_seam() {
    let engine = Engine::with_family(Box::new(Bytes), None);
    let items = [
        Item::Text("\u{1}\u{3}".into()),
        Item::Text("\u{2}\u{2}\u{2}\u{2}\u{64}\u{64}".into()),
        Item::File("song.mp3".into()),
    ];
    let results = engine.embed(&items, &Options::default(), &Silent);
    // Mean of [1, 1] and [3, 1], doubled; the second is truncated to its first four bytes.
    assert_eq!(results[0].as_ref().unwrap().embedding.data, [4.0, 2.0]);
    assert_eq!(results[1].as_ref().unwrap().embedding.data, [4.0, 2.0]);
    match results[2].as_ref().unwrap_err().without_path() {
        Error::NotAccepted { model, accepts, .. } => {
            assert_eq!((model.as_str(), accepts.as_str()), ("bytes", "text (.txt)"));
        }
        other => panic!("{other}"),
    }
}
