//! Embedding time of every model family at full size (random weights of the official shapes):
//! a 20-token text and one WikiMT tune (its lead sheet as ABC), median of 5 warm runs, through
//! the engine as `clamp3 embed --model …` runs them.
//!
//! `cargo bench -p clamp3-engine --bench families [-- --tune N] [-- --wikimt PATH]`. WikiMT is
//! read from `--wikimt`, `$CLAMP3_WIKIMT`, or `../shared/datasets/wikimt/wikimusictext.json`.
//! CLaMP 2 and 3 use the real XLM-R tokenizer; CLaMP 1 the tiny DistilRoBERTa-style BPE of its
//! test fixtures (the time of a text depends on its token count, which is printed).

#![allow(clippy::print_stdout, reason = "a benchmark prints its numbers")]

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use clamp3_engine::families::{clamp1::Clamp1, clamp2, clamp3::Clamp3};
use clamp3_engine::{Engine, Family, Item, ModelId, ModelSpec, Options, Silent};
use clamp3_features::Pooling;
use clamp3_models::{Clamp1Config, Clamp1Model, Clamp2Config, Clamp2Model, Config, M3Model};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

const RUNS: usize = 5;
/// 20 XLM-R tokens with `<s>` and `</s>`.
const TEXT: &str = "A calm solo piano piece in a minor key with a slow, singing melody line";

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn wikimt_path() -> PathBuf {
    arg("--wikimt")
        .or_else(|| std::env::var("CLAMP3_WIKIMT").ok())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/datasets/wikimt/wikimusictext.json")
        })
}

fn random() -> (VarMap, Device) {
    (VarMap::new(), Device::Cpu)
}

/// Median warm time in ms of embedding `item`, and what the encoder read (items).
fn time(engine: &Engine, item: &Item, pooling: Pooling) -> (f64, usize) {
    let options = Options {
        pooling,
        ..Options::default()
    };
    let len = engine.model_input(item, &Silent).expect("the input").len();
    let run = || {
        engine
            .embed(std::slice::from_ref(item), &options, &Silent)
            .pop()
            .expect("one result")
            .expect("embedding runs")
    };
    run();
    let mut times: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[RUNS / 2], len)
}

fn report(name: &str, built: f64, engine: &Engine, tune: &Item, text: bool) {
    let pooling = if name == "m3" {
        Pooling::Local
    } else {
        Pooling::Global
    };
    let (tune_ms, patches) = time(engine, tune, pooling);
    let text = if text {
        let (ms, tokens) = time(engine, &Item::Text(TEXT.to_string()), Pooling::Global);
        format!("text {ms:8.1} ms ({tokens} tokens)")
    } else {
        "text        - (no text encoder)".to_string()
    };
    println!(
        "{name:<13} built {built:5.1} s | {text} | WikiMT tune {tune_ms:8.1} ms ({patches} patches)"
    );
}

fn gunzip(relative: &str, to: &Path) -> PathBuf {
    let gz = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    let mut json = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&gz).expect("the tokenizer fixture"))
        .read_to_string(&mut json)
        .expect("a gzipped tokenizer");
    std::fs::write(to, json).expect("writing the tokenizer");
    to.to_path_buf()
}

fn engine(family: impl Family + 'static) -> Engine {
    Engine::with_family(Box::new(family), None)
}

fn main() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let xlmr = gunzip(
        "../features/tests/fixtures/xlmr/tokenizer.json.gz",
        &dir.path().join("tokenizer.json"),
    );
    let bpe_dir = dir.path().join("distilroberta");
    std::fs::create_dir_all(&bpe_dir).expect("a folder");
    let bpe = bpe_dir.join("tokenizer.json");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/clamp1/distilroberta-tiny/tokenizer.json"),
        &bpe,
    )
    .expect("the BPE tokenizer fixture");

    let path = wikimt_path();
    let entries: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (pass --wikimt PATH)", path.display())),
    )
    .expect("WikiMT JSON");
    let index: usize = arg("--tune").and_then(|n| n.parse().ok()).unwrap_or(0);
    let tune_file = dir.path().join("tune.abc");
    std::fs::write(
        &tune_file,
        entries[index]["music"].as_str().unwrap_or_default(),
    )
    .expect("writing the tune");
    let tune = Item::File(tune_file);
    println!(
        "WikiMT tune {index} of {}; {} threads; median of {RUNS} warm runs on the CPU",
        path.display(),
        rayon::current_num_threads()
    );
    let spec = |model, tokenizer: &Path| ModelSpec {
        model,
        tokenizer: Some(tokenizer.to_path_buf()),
        device: clamp3_engine::DeviceChoice::Cpu,
        ..ModelSpec::default()
    };

    let start = Instant::now();
    let (vars, device) = random();
    let vb = VarBuilder::from_varmap(&vars, DType::F32, &device);
    let model = clamp3_models::Clamp3Model::load(vb, &Config::default()).expect("CLaMP 3");
    let e = engine(Clamp3::with_model(&spec(ModelId::Clamp3Saas, &xlmr), model).expect("family"));
    report(
        "clamp3-saas",
        start.elapsed().as_secs_f64(),
        &e,
        &tune,
        true,
    );
    drop((e, vars));

    let start = Instant::now();
    let (vars, device) = random();
    let vb = VarBuilder::from_varmap(&vars, DType::F32, &device);
    let model = Clamp2Model::load(vb, &Clamp2Config::default()).expect("CLaMP 2");
    let e =
        engine(clamp2::Clamp2::with_model(&spec(ModelId::Clamp2, &xlmr), model).expect("family"));
    report("clamp2", start.elapsed().as_secs_f64(), &e, &tune, true);
    drop((e, vars));

    let start = Instant::now();
    let (vars, device) = random();
    let vb = VarBuilder::from_varmap(&vars, DType::F32, &device);
    let model = M3Model::load(vb, &Clamp2Config::default()).expect("M3");
    let e = engine(clamp2::M3::with_model(&spec(ModelId::M3, &xlmr), model).expect("family"));
    report("m3", start.elapsed().as_secs_f64(), &e, &tune, false);
    drop((e, vars));

    for (model_id, max_length) in [(ModelId::Clamp1S512, 512), (ModelId::Clamp1S1024, 1024)] {
        let start = Instant::now();
        let (vars, device) = random();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &device);
        let model = Clamp1Model::load(vb, &Clamp1Config::official(max_length)).expect("CLaMP 1");
        let e = engine(Clamp1::with_model(&spec(model_id, &bpe), model).expect("family"));
        report(
            model_id.name(),
            start.elapsed().as_secs_f64(),
            &e,
            &tune,
            true,
        );
        drop((e, vars));
    }
}
