//! Engine throughput with full-size CLaMP 3 (random weights of the official shapes): files per
//! second embedding WikiMT lead sheets with one-file batches (every file its own forward passes,
//! files in parallel: how `clamp3` ran before the engine) and with segments batched across files,
//! and the warm latency of one text query.
//!
//! `cargo bench -p clamp3-engine --bench engine [-- --tunes N] [-- --wikimt PATH]`. WikiMT is read
//! from `--wikimt`, `$CLAMP3_WIKIMT`, or `../shared/datasets/wikimt/wikimusictext.json`.

#![allow(clippy::print_stdout, reason = "a benchmark prints its numbers")]

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use clamp3_engine::families::clamp3::Clamp3;
use clamp3_engine::{Engine, Item, ModelSpec, Options, Silent};
use clamp3_models::{Clamp3Model, Config};
use rayon::prelude::*;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

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

fn main() {
    let tunes: usize = arg("--tunes").and_then(|n| n.parse().ok()).unwrap_or(1010);
    let dir = tempfile::tempdir().expect("a temporary folder");
    // The real XLM-R tokenizer, from the features crate's fixtures.
    let gz = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../features/tests/fixtures/xlmr/tokenizer.json.gz");
    let mut json = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&gz).expect("the tokenizer fixture"))
        .read_to_string(&mut json)
        .expect("a gzipped tokenizer");
    let tokenizer = dir.path().join("tokenizer.json");
    std::fs::write(&tokenizer, json).expect("writing the tokenizer");

    let path = wikimt_path();
    let entries: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (pass --wikimt PATH)", path.display())),
    )
    .expect("WikiMT JSON");
    let files: Vec<PathBuf> = entries
        .iter()
        .take(tunes)
        .enumerate()
        .map(|(i, e)| {
            let file = dir.path().join(format!("{i:04}.abc"));
            std::fs::write(&file, e["music"].as_str().unwrap_or_default()).expect("writing a tune");
            file
        })
        .collect();

    let start = Instant::now();
    let varmap = VarMap::new();
    let model = Clamp3Model::load(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        &Config::default(),
    )
    .expect("random full-size model");
    let spec = ModelSpec {
        tokenizer: Some(tokenizer),
        device: clamp3_engine::DeviceChoice::Cpu,
        ..ModelSpec::default()
    };
    let engine = Engine::with_family(
        Box::new(Clamp3::with_model(&spec, model).expect("the family")),
        None,
    );
    println!(
        "full-size random CLaMP 3 built in {:.1} s; {} WikiMT tunes from {}; {} threads",
        start.elapsed().as_secs_f64(),
        files.len(),
        path.display(),
        rayon::current_num_threads()
    );

    let options = Options::default();
    // Warm-up: the tokenizer, the first allocations.
    let items: Vec<Item> = files.iter().take(4).cloned().map(Item::File).collect();
    engine.embed(&items, &options, &Silent);

    let start = Instant::now();
    let failed = files
        .par_iter()
        .filter(|f| {
            engine
                .embed(&[Item::File((*f).clone())], &options, &Silent)
                .pop()
                .is_none_or(|r| r.is_err())
        })
        .count();
    let one = start.elapsed().as_secs_f64();
    println!(
        "one-file batches:    {:7.2} files/s ({:.1} s, {failed} failed)",
        files.len() as f64 / one,
        one
    );

    let items: Vec<Item> = files.iter().cloned().map(Item::File).collect();
    let start = Instant::now();
    let failed = engine
        .embed(&items, &options, &Silent)
        .iter()
        .filter(|r| r.is_err())
        .count();
    let batched = start.elapsed().as_secs_f64();
    println!(
        "cross-file batching: {:7.2} files/s ({:.1} s, {failed} failed), {:.2}x",
        files.len() as f64 / batched,
        batched,
        one / batched
    );

    let query = "a calm solo piano piece in a minor key";
    engine.embed_text(query).expect("warm-up query");
    let mut times: Vec<f64> = (0..9)
        .map(|_| {
            let start = Instant::now();
            engine.embed_text(query).expect("a text query");
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!("warm text query:     {:7.1} ms (median of 9)", times[4]);
}
