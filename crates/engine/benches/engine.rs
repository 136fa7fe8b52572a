//! Engine throughput with full-size CLaMP 3 (random weights of the official shapes): files per
//! second embedding WikiMT lead sheets with one-file batches (every file its own forward passes,
//! files in parallel: how `clamp3` ran before the engine) and with segments batched across files,
//! and the warm latency of one text query.
//!
//! `cargo bench -p clamp3-engine --bench engine [-- --tunes N] [--wikimt PATH] [--mode both|one|batched] [--rows N]`. WikiMT is read
//! from `--wikimt`, `$CLAMP3_WIKIMT`, or `../shared/datasets/wikimt/wikimusictext.json`.

#![allow(clippy::print_stdout, reason = "a benchmark prints its numbers")]

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use clamp3_engine::families::clamp3::Clamp3;
use clamp3_engine::{Engine, Item, ModelSpec, Options, Silent};
use clamp3_features::BatchLimits;
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
    Clamp3Model::load(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        &Config::default(),
    )
    .expect("random full-size model");
    let model = Clamp3Model::load(
        clamp3_models::weights::frozen(&varmap, &Device::Cpu).expect("the variables"),
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

    let mut options = Options::default();
    let mut limits = BatchLimits::for_device(&Device::Cpu);
    if let Some(rows) = arg("--rows").and_then(|n| n.parse().ok()) {
        limits.max_rows = rows;
    }
    options.limits = Some(limits);
    println!(
        "batches of at most {} rows, {} segments",
        limits.max_rows, limits.max_segments
    );
    // Warm-up: the tokenizer, the first allocations.
    let items: Vec<Item> = files.iter().take(4).cloned().map(Item::File).collect();
    engine.embed(&items, &options, &Silent);

    let mode = arg("--mode").unwrap_or_else(|| "both".to_owned());
    let one = (mode != "batched").then(|| {
        let clock = Clock::start();
        let failed = files
            .par_iter()
            .filter(|f| {
                engine
                    .embed(&[Item::File((*f).clone())], &options, &Silent)
                    .pop()
                    .is_none_or(|r| r.is_err())
            })
            .count();
        clock.report("one-file batches:   ", files.len(), failed)
    });

    let batched = (mode != "one").then(|| {
        let items: Vec<Item> = files.iter().cloned().map(Item::File).collect();
        let clock = Clock::start();
        let failed = engine
            .embed(&items, &options, &Silent)
            .iter()
            .filter(|r| r.is_err())
            .count();
        clock.report("cross-file batching:", files.len(), failed)
    });
    if let (Some(one), Some(batched)) = (one, batched) {
        println!(
            "cross-file / one-file: {:.2}x files per wall second, {:.2}x files per CPU second",
            one.0 / batched.0,
            one.1 / batched.1
        );
    }

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

/// Wall time and the CPU time of this process, so a run on a busy machine still compares the work
/// two phases did (the CPU seconds) even where their share of the cores differed.
struct Clock {
    wall: Instant,
    cpu: Option<f64>,
}

impl Clock {
    fn start() -> Clock {
        Clock {
            wall: Instant::now(),
            cpu: cpu_seconds(),
        }
    }

    /// Prints files/s by wall and by CPU time; returns (wall s, CPU s).
    fn report(&self, label: &str, files: usize, failed: usize) -> (f64, f64) {
        let wall = self.wall.elapsed().as_secs_f64();
        let cpu = match (self.cpu, cpu_seconds()) {
            (Some(begin), Some(end)) => end - begin,
            _ => f64::NAN,
        };
        println!(
            "{label} {:7.2} files/s ({wall:.1} s wall, {cpu:.1} s CPU = {:.2} cores, \
             {:.3} CPU s/file, {failed} failed)",
            files as f64 / wall,
            cpu / wall,
            cpu / files as f64
        );
        (wall, cpu)
    }
}

/// User + system CPU seconds of this process so far (Linux `/proc/self/stat`; `None` elsewhere).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // The kernel's USER_HZ is 100 on every Linux this runs on.
    Some(ticks / 100.0)
}
