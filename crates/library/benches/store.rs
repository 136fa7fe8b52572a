//! The library's numbers: the store on synthetic 768-d vectors (insert points/s, exact search
//! latency, HNSW build time, HNSW latency and recall@10 against exact, bytes on disk per 1000
//! items), and `add` against a bare `engine.embed` on the same WikiMT tunes with full-size
//! random CLaMP 3.
//!
//! `cargo bench -p clamp3-library --bench store -- [--part store|add|both] [--points N]
//! [--queries Q] [--tunes N] [--wikimt PATH]`

#![allow(clippy::print_stdout, reason = "a benchmark prints its numbers")]
#![allow(clippy::unwrap_used, reason = "a benchmark stops on broken setup")]

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use clamp3_engine::families::clamp3::Clamp3;
use clamp3_engine::{Engine, Item, ModelSpec, Options, Silent};
use clamp3_library::{AddOptions, Filter, ItemId, ItemRecord, Library};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// A deterministic generator of unit vectors (xorshift; no dependency for randomness).
struct Vectors(u64);

impl Vectors {
    fn next(&mut self, dim: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..dim)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        v
    }
}

fn record(i: u64) -> ItemRecord {
    let path = PathBuf::from(format!("/music/{:02}/{i:08}.abc", i % 97));
    ItemRecord {
        id: ItemId(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        path: path.clone(),
        files: vec![clamp3_library::ItemFile {
            path,
            size: 1000 + i % 5000,
            mtime_ns: 0,
        }],
        modality: ["sheet", "midi", "audio", "text"][(i % 4) as usize].into(),
        format: "abc".into(),
        content_hash: format!("{i:064x}"),
        size: 1000 + i % 5000,
        title: Some(format!("Tune {i}")),
        metadata: [("composer".to_string(), format!("Composer {}", i % 300))].into(),
        caption: None,
        duration_s: None,
        patches: Some((i % 400) as usize),
        models: vec![],
        added: 0,
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn store_part() {
    let points: u64 = arg("--points")
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let queries: usize = arg("--queries").and_then(|n| n.parse().ok()).unwrap_or(50);
    let dim = 768;
    let dir = tempfile::tempdir().unwrap();
    let library = Library::open(dir.path()).unwrap();
    let mut gen = Vectors(0x2545_F491_4F6C_DD1D);
    let start = Instant::now();
    let batch = 1000;
    for first in (0..points).step_by(batch) {
        let items: Vec<(ItemRecord, Vec<f32>)> = (first..(first + batch as u64).min(points))
            .map(|i| (record(i), gen.next(dim)))
            .collect();
        library.put("clamp3-saas", items).unwrap();
    }
    let insert = start.elapsed().as_secs_f64();
    println!(
        "store: {points} points of {dim}-d inserted in {insert:.1} s: {:.0} points/s (batches of {batch}, each flushed)",
        points as f64 / insert
    );
    let info = library.info().unwrap();
    println!(
        "store: {:.1} MB on disk, {:.2} MB per 1000 items",
        info.bytes_on_disk as f64 / 1e6,
        info.bytes_on_disk as f64 / 1e6 / (points as f64 / 1000.0)
    );
    let qs: Vec<Vec<f32>> = (0..queries).map(|_| gen.next(dim)).collect();
    let mut exact_hits = Vec::new();
    let mut times = Vec::new();
    for q in &qs {
        let t = Instant::now();
        exact_hits.push(
            library
                .search_exact("clamp3-saas", q, 10, &Filter::default())
                .unwrap(),
        );
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "exact search, top 10 of {points}: median {:.1} ms, max {:.1} ms",
        median(times.clone()),
        times.iter().cloned().fold(0.0, f64::max)
    );
    let filter = Filter::modality("audio");
    let mut times = Vec::new();
    for q in qs.iter().take(10) {
        let t = Instant::now();
        library.search_exact("clamp3-saas", q, 10, &filter).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "exact search, modality=audio (1/4 of items): median {:.1} ms",
        median(times)
    );

    let t = Instant::now();
    library.optimize().unwrap();
    let info = library.info().unwrap();
    println!(
        "HNSW built in {:.1} s: {} of {} vectors indexed; {:.1} MB on disk",
        t.elapsed().as_secs_f64(),
        info.indexed_vectors,
        points,
        info.bytes_on_disk as f64 / 1e6
    );
    let mut times = Vec::new();
    let mut recall = 0.0;
    for (q, exact) in qs.iter().zip(&exact_hits) {
        let t = Instant::now();
        let hits = library
            .search_model("clamp3-saas", q, 10, &Filter::default())
            .unwrap();
        times.push(t.elapsed().as_secs_f64() * 1e3);
        let found = hits
            .iter()
            .filter(|h| exact.iter().any(|e| e.item.id == h.item.id))
            .count();
        recall += found as f64 / exact.len() as f64;
    }
    println!(
        "HNSW search, top 10 of {points}: median {:.2} ms; recall@10 against exact {:.3}",
        median(times),
        recall / qs.len() as f64
    );
}

fn add_part() {
    let tunes: usize = arg("--tunes").and_then(|n| n.parse().ok()).unwrap_or(100);
    let wikimt = arg("--wikimt").map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/datasets/wikimt/wikimusictext.json")
    });
    let dir = tempfile::tempdir().unwrap();
    let gz = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../features/tests/fixtures/xlmr/tokenizer.json.gz");
    let mut json = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&gz).unwrap())
        .read_to_string(&mut json)
        .unwrap();
    let tokenizer = dir.path().join("tokenizer.json");
    std::fs::write(&tokenizer, json).unwrap();
    let entries: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(&wikimt)
            .unwrap_or_else(|e| panic!("{}: {e} (pass --wikimt PATH)", wikimt.display())),
    )
    .unwrap();
    let music = dir.path().join("music");
    std::fs::create_dir(&music).unwrap();
    let files: Vec<PathBuf> = entries
        .iter()
        .take(tunes)
        .enumerate()
        .map(|(i, e)| {
            let file = music.join(format!("{i:04}.abc"));
            std::fs::write(&file, e["music"].as_str().unwrap_or_default()).unwrap();
            file
        })
        .collect();
    let varmap = VarMap::new();
    let model = clamp3_models::Clamp3Model::load(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        &clamp3_models::Config::default(),
    )
    .unwrap();
    let spec = ModelSpec {
        tokenizer: Some(tokenizer),
        ..ModelSpec::default()
    };
    let engine = Engine::with_family(Box::new(Clamp3::with_model(&spec, model).unwrap()), None);
    let items: Vec<Item> = files.iter().take(4).cloned().map(Item::File).collect();
    engine.embed(&items, &Options::default(), &Silent);

    let items: Vec<Item> = files.iter().cloned().map(Item::File).collect();
    let t = Instant::now();
    engine.embed(&items, &Options::default(), &Silent);
    let embed = t.elapsed().as_secs_f64();
    let library = Library::open(&dir.path().join("library")).unwrap();
    let t = Instant::now();
    let report = library
        .add(
            &engine,
            std::slice::from_ref(&music),
            &AddOptions::default(),
            &Silent,
        )
        .unwrap();
    let add = t.elapsed().as_secs_f64();
    assert_eq!(report.added, files.len());
    let t = Instant::now();
    let again = library
        .add(&engine, &[music], &AddOptions::default(), &Silent)
        .unwrap();
    let rerun = t.elapsed().as_secs_f64();
    assert_eq!(again.unchanged, files.len());
    println!(
        "{} WikiMT tunes, full-size random CLaMP 3: engine.embed {:.2} files/s; library add {:.2} files/s ({:.0}% of embed); unchanged rerun {:.3} s",
        files.len(),
        files.len() as f64 / embed,
        files.len() as f64 / add,
        100.0 * embed / add,
        rerun
    );
}

fn main() {
    let part = arg("--part").unwrap_or_else(|| "both".into());
    if part != "add" {
        store_part();
    }
    if part != "store" {
        add_part();
    }
}
