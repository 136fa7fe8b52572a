//! The library's numbers: the store on synthetic 768-d vectors (insert points/s, exact search
//! latency, HNSW build time, HNSW latency and recall@10 against exact, bytes on disk per 1000
//! items), and `add` against a bare `engine.embed` on the same WikiMT tunes with full-size
//! random CLaMP 3.
//!
//! The store part runs on the embedded store (`edge`), on one Qdrant server (`server`) and on a
//! 3-node Qdrant cluster (`cluster`: 3 shards, replication factor 2), all on this machine, the
//! servers started from the binary `.ci/install-qdrant.sh` installs (or `CLAMP3_QDRANT_BIN`).
//! A server is written by `--writers` threads at once (default 4), as several workers would.
//! The embedded store is split into `--edge-shards` shards (default: one per core, up to 8).
//!
//! `cargo bench -p clamp3-library --bench store -- [--part store|add|both] [--points N]
//! [--queries Q] [--no-hnsw] [--backend edge|server|cluster|all] [--writers W] [--edge-shards S]
//! [--int8] [--tunes N] [--wikimt PATH]`

#![allow(clippy::print_stdout, reason = "a benchmark prints its numbers")]
#![allow(clippy::unwrap_used, reason = "a benchmark stops on broken setup")]

#[path = "../tests/support/qdrant.rs"]
mod qdrant;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use clamp3_engine::families::clamp3::Clamp3;
use clamp3_engine::{Engine, Item, ModelSpec, Options, Silent};
use clamp3_library::{
    AddOptions, CollectionOptions, Filter, ItemId, ItemRecord, Library, Location, QdrantLocation,
    Scan, HNSW_EF,
};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// A deterministic generator of unit vectors shaped like embeddings: points scattered around
/// 256 random centres (uniform random 768-d vectors have no neighbours worth the name, which
/// no index and no music collection has). xorshift; no dependency for randomness.
struct Vectors {
    state: u64,
    centres: Vec<Vec<f32>>,
}

impl Vectors {
    fn new(seed: u64, dim: usize) -> Self {
        let mut gen = Vectors {
            state: seed,
            centres: Vec::new(),
        };
        gen.centres = (0..256).map(|_| gen.uniform(dim)).collect();
        gen
    }

    fn uniform_scalar(&mut self) -> f32 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        (self.state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }

    fn uniform(&mut self, dim: usize) -> Vec<f32> {
        let v: Vec<f32> = (0..dim).map(|_| self.uniform_scalar()).collect();
        unit(v)
    }

    fn next(&mut self, dim: usize) -> Vec<f32> {
        let centre = (self.state % self.centres.len() as u64) as usize;
        let noise = self.uniform(dim);
        let v = self.centres[centre]
            .iter()
            .zip(&noise)
            .map(|(c, n)| c + 0.6 * n)
            .collect();
        unit(v)
    }
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
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
        shard: None,
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn qdrant_location(node: &qdrant::Node, create: CollectionOptions) -> QdrantLocation {
    match node.url("bench").parse::<Location>().unwrap() {
        Location::Qdrant(mut q) => {
            q.create = create;
            q
        }
        Location::Folder(_) => unreachable!("a qdrant URL"),
    }
}

fn store_part(backend: &str) {
    let points: u64 = arg("--points")
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let queries: usize = arg("--queries").and_then(|n| n.parse().ok()).unwrap_or(50);
    let int8 = std::env::args().any(|a| a == "--int8");
    let dim = 768;
    let dir = tempfile::tempdir().unwrap();
    let mut _servers = None;
    let (library, writers) = match backend {
        "edge" => {
            let library = match arg("--edge-shards").and_then(|n| n.parse().ok()) {
                Some(n) => Library::open_with_edge_shards(dir.path(), n),
                None => Library::open(dir.path()),
            };
            (library.unwrap(), 1)
        }
        "server" | "cluster" => {
            let Some(bin) = qdrant::binary("the store benchmark on Qdrant servers") else {
                return;
            };
            let (servers, create) = if backend == "server" {
                (qdrant::Qdrant::single(&bin), CollectionOptions::default())
            } else {
                let create = CollectionOptions {
                    shards: Some(3),
                    replication_factor: Some(2),
                    ..CollectionOptions::default()
                };
                (qdrant::Qdrant::cluster(&bin, 3), create)
            };
            let create = CollectionOptions { int8, ..create };
            let library =
                Library::open_qdrant(&qdrant_location(&servers.nodes[0], create)).unwrap();
            _servers = Some(servers);
            let writers = arg("--writers").and_then(|n| n.parse().ok()).unwrap_or(4);
            (library, writers)
        }
        other => panic!("--backend {other}: edge, server, cluster or all"),
    };
    let label = match backend {
        "edge" => format!(
            "embedded store, {} edge shards",
            library.info().unwrap().edge_shards.unwrap_or(1)
        ),
        "server" => "one Qdrant server".to_string(),
        _ => "3-node Qdrant cluster (3 shards × 2 replicas)".to_string(),
    } + if int8 { ", int8" } else { "" };
    println!("== {label}");
    let payload: usize = (0..1000)
        .map(|i| serde_json::to_string(&record(i)).unwrap().len())
        .sum();
    println!(
        "payload: {:.0} bytes of JSON per item",
        payload as f64 / 1000.0
    );
    let mut gen = Vectors::new(0x2545_F491_4F6C_DD1D, dim);
    let batch = 1000u64;
    // The vectors are made first: the clock times the store alone.
    let all: Vec<Vec<(ItemRecord, Vec<f32>)>> = (0..points)
        .step_by(batch as usize)
        .map(|first| {
            (first..(first + batch).min(points))
                .map(|i| (record(i), gen.next(dim)))
                .collect()
        })
        .collect();
    let start = Instant::now();
    let next = std::sync::Mutex::new(all.into_iter());
    std::thread::scope(|scope| {
        for _ in 0..writers {
            scope.spawn(|| loop {
                let items = next.lock().unwrap().next();
                match items {
                    Some(items) => library.put("clamp3-saas", items).unwrap(),
                    None => break,
                }
            });
        }
    });
    let insert = start.elapsed().as_secs_f64();
    println!(
        "store: {points} points of {dim}-d inserted in {insert:.1} s: {:.0} points/s (batches of {batch}, each durable, {writers} writer{})",
        points as f64 / insert,
        if writers == 1 { "" } else { "s" }
    );
    let info = library.info().unwrap();
    assert_eq!(info.items as u64, points);
    if !library.is_remote() {
        println!(
            "store: {:.1} MB on disk, {:.2} MB per 1000 items",
            info.bytes_on_disk as f64 / 1e6,
            info.bytes_on_disk as f64 / 1e6 / (points as f64 / 1000.0)
        );
    }
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

    if std::env::args().any(|a| a == "--no-hnsw") {
        return;
    }
    let t = Instant::now();
    library.optimize().unwrap();
    let mut info = library.info().unwrap();
    // A server's optimiser indexes in the background: wait until it has indexed nearly all
    // and the count has stopped moving (every replica done) for 6 s.
    let mut steady = 0;
    while library.is_remote() && steady < 3 {
        assert!(
            t.elapsed().as_secs() < 3600,
            "HNSW not built after an hour: {info:?}"
        );
        std::thread::sleep(std::time::Duration::from_secs(2));
        let now = library.info().unwrap();
        let moved = now.indexed_vectors != info.indexed_vectors;
        steady = if moved || now.indexed_vectors < points as usize * 95 / 100 {
            0
        } else {
            steady + 1
        };
        info = now;
    }
    let t = if library.is_remote() {
        // Less the 6 s of watching it stand still.
        t.checked_add(std::time::Duration::from_secs(6))
            .unwrap_or(t)
    } else {
        t
    };
    println!(
        "HNSW built in {:.1} s: {} of {} vectors indexed; {:.1} MB on disk",
        t.elapsed().as_secs_f64(),
        info.indexed_vectors,
        points,
        info.bytes_on_disk as f64 / 1e6
    );
    // The default candidate list, then shorter and longer ones: recall against latency.
    let mut scans = vec![None];
    scans.extend([64, 128, 512, 1024].map(Some));
    for ef in scans {
        let mut times = Vec::new();
        let mut recall = 0.0;
        for (q, exact) in qs.iter().zip(&exact_hits) {
            let t = Instant::now();
            let hits = match ef {
                None => library.search_model("clamp3-saas", q, 10, &Filter::default()),
                Some(ef) => {
                    library.search_scan("clamp3-saas", q, 10, &Filter::default(), Scan::Hnsw { ef })
                }
            }
            .unwrap();
            times.push(t.elapsed().as_secs_f64() * 1e3);
            let found = hits
                .iter()
                .filter(|h| exact.iter().any(|e| e.item.id == h.item.id))
                .count();
            recall += found as f64 / exact.len() as f64;
        }
        println!(
            "HNSW search (ef {}), top 10 of {points}: median {:.2} ms; recall@10 against exact {:.3}",
            ef.map_or(format!("{HNSW_EF}, the default"), |ef| ef.to_string()),
            median(times),
            recall / qs.len() as f64
        );
    }
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
        match arg("--backend").as_deref().unwrap_or("edge") {
            "all" => ["edge", "server", "cluster"]
                .into_iter()
                .for_each(store_part),
            one => store_part(one),
        }
    }
    if part != "store" {
        add_part();
    }
}
