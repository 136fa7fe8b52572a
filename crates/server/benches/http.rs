//! The server over loopback HTTP, with full-size CLaMP 3 (random weights of the official shapes,
//! the real XLM-R tokenizer) and a library of synthetic vectors:
//!
//! 1. text query latency end to end (`POST /v1/search`: HTTP, tokenizing, the text encoder,
//!    the library's search, JSON), one client, the model warm: a new text each time (the
//!    encoder runs), then texts asked before (answered from the feature cache, as `clamp3 serve`
//!    has it by default): median, p90, p99;
//! 2. the same with 16 concurrent clients: throughput and how the queue batched them, then
//!    through a server whose queue does not batch (one text per engine call), for comparison;
//! 3. with `--load-seconds S`: the load test, `--clients` (50) clients mixing text searches and
//!    file uploads (`POST /v1/search/file`, ABC and MIDI) for S seconds: errors and p99.
//!
//! `cargo bench -p clamp3-server --bench http [-- --items 10000] [--queries 200]
//! [--load-seconds 60] [--clients 50] [--tiny]`. `--tiny` uses the tiny golden model instead.
//! The library (one `.npy` vector per item, which the library takes as it is) is built once
//! under the target folder and reused.

#![allow(clippy::print_stdout, reason = "a benchmark prints its numbers")]
#![allow(clippy::unwrap_used, reason = "a benchmark stops on any failure")]

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use clamp3_engine::families::clamp3::Clamp3;
use clamp3_engine::{Engine, ModelSpec, Silent};
use clamp3_library::{AddOptions, Library};
use clamp3_models::{Clamp3Model, Config};
use clamp3_server::{BatchStats, Server, ServerConfig};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn number(name: &str, default: usize) -> usize {
    arg(name).and_then(|n| n.parse().ok()).unwrap_or(default)
}

fn crates() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

const QUERIES: &[&str] = &[
    "a calm solo piano piece in a minor key",
    "une valse mélancolique pour violon",
    "ein fröhliches Volkslied mit Akkordeon",
    "música flamenca con guitarra",
    "一首欢快的爵士乐",
    "明るいピアノの曲",
    "грустная мелодия для виолончели",
    "a fast baroque fugue for organ",
];

/// The engine: full-size CLaMP 3 with random weights, or the tiny golden model.
fn engine(dir: &Path) -> (Engine, &'static str) {
    let golden = crates().join("features/tests/fixtures/golden");
    if std::env::args().any(|a| a == "--tiny") {
        let spec = ModelSpec {
            weights: Some(golden.join("clamp3.pth")),
            config: Some(golden.join("config.json")),
            tokenizer: Some(golden.join("tokenizer.json")),
            ..ModelSpec::default()
        };
        return (
            Engine::new(&spec, Some(cache(dir))).unwrap(),
            "tiny golden CLaMP 3",
        );
    }
    let gz = crates().join("features/tests/fixtures/xlmr/tokenizer.json.gz");
    let mut json = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(gz).unwrap())
        .read_to_string(&mut json)
        .unwrap();
    let tokenizer = dir.join("tokenizer.json");
    std::fs::write(&tokenizer, json).unwrap();
    let varmap = VarMap::new();
    Clamp3Model::load(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        &Config::default(),
    )
    .unwrap();
    // Plain tensors, as a loaded checkpoint holds them (variables take the training path).
    let model = Clamp3Model::load(
        clamp3_models::weights::frozen(&varmap, &Device::Cpu).unwrap(),
        &Config::default(),
    )
    .unwrap();
    let spec = ModelSpec {
        tokenizer: Some(tokenizer),
        device: clamp3_engine::DeviceChoice::Cpu,
        ..ModelSpec::default()
    };
    let family = Clamp3::with_model(&spec, model).unwrap();
    (
        Engine::with_family(Box::new(family), Some(cache(dir))),
        "full-size CLaMP 3 (random weights)",
    )
}

/// A feature cache of the run's own, as `clamp3 serve` uses one.
fn cache(dir: &Path) -> clamp3_engine::Cache {
    clamp3_engine::Cache::new(dir.join("cache"))
}

/// A library of `n` items, each a random unit vector saved as `[1, D]` `.npy`; built once.
fn library(engine: &Engine, n: usize, model: &str) -> (Library, PathBuf) {
    let tag = if model.starts_with("tiny") {
        "tiny"
    } else {
        "full"
    };
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-library-{tag}-{n}"));
    let library_dir = root.join("library");
    let library = Library::open(&library_dir).unwrap();
    if library.info().unwrap().items >= n {
        return (library, root);
    }
    let width = engine.family().vector_width();
    let music = root.join("vectors");
    std::fs::create_dir_all(&music).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut files = Vec::with_capacity(n);
    for i in 0..n {
        let vector: Vec<f32> = (0..width)
            .map(|_| {
                // xorshift64*: reproducible, and no dependency for it.
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        let file = music.join(format!("{i:05}.npy"));
        std::fs::write(&file, clamp3_io::npy::encode_f32(&[1, width], &vector)).unwrap();
        files.push(file);
    }
    let start = Instant::now();
    library
        .add(engine, &files, &AddOptions::default(), &Silent)
        .unwrap();
    println!(
        "built a library of {n} synthetic vectors in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    (library, root)
}

/// Latency percentiles of a set of samples, in milliseconds.
struct Latencies(Vec<f64>);

impl Latencies {
    fn at(&self, q: f64) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
    }

    fn line(&self) -> String {
        format!(
            "n {} · median {:.1} ms · p90 {:.1} ms · p99 {:.1} ms · max {:.1} ms",
            self.0.len(),
            self.at(0.5),
            self.at(0.9),
            self.at(0.99),
            self.at(1.0)
        )
    }
}

fn search(agent: &ureq::Agent, url: &str, text: &str) -> Result<(), String> {
    let body = serde_json::json!({"text": text, "top_k": 10}).to_string();
    match agent
        .post(&format!("{url}/v1/search"))
        .set("Content-Type", "application/json")
        .send_string(&body)
    {
        Ok(response) => {
            let answer: serde_json::Value =
                serde_json::from_str(&response.into_string().map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?;
            match answer["results"].as_array() {
                Some(hits) if hits.len() == 10 => Ok(()),
                _ => Err(format!("unexpected answer {answer}")),
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

fn upload(agent: &ureq::Agent, url: &str, name: &str, bytes: &[u8]) -> Result<(), String> {
    agent
        .post(&format!("{url}/v1/search/file?filename={name}&top_k=10"))
        .send_bytes(bytes)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn main() {
    let items = number("--items", 10_000);
    let queries = number("--queries", 200);
    let load_seconds = number("--load-seconds", 0);
    let clients = number("--clients", 50);
    let dir = tempfile::tempdir().unwrap();
    let (engine, model) = engine(dir.path());
    let (library, _) = library(&engine, items, model);
    println!(
        "{model}; library of {} items; {} cores",
        library.info().unwrap().items,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // The text encoder alone, without HTTP or the library: what the server adds is the rest.
    engine.embed_text("warm-up").unwrap();
    let alone: Vec<f64> = (0..queries.min(50))
        .map(|i| {
            let start = Instant::now();
            engine
                .embed_text(&format!("{} alone {i}", QUERIES[i % QUERIES.len()]))
                .unwrap();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    println!(
        "text encoder alone (no HTTP, no search):   {}",
        Latencies(alone).line()
    );
    let (engine, library) = (Arc::new(engine), Arc::new(library));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = ServerConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        ..ServerConfig::default()
    };
    let server = runtime
        .block_on(Server::bind(config, engine.clone(), library.clone()))
        .unwrap();
    let url = format!("http://{}", server.local_addr().unwrap());
    let stats = server.batch_stats();
    runtime.spawn(server.run_until(std::future::pending()));

    // 1. One client, warm.
    let agent = ureq::AgentBuilder::new().build();
    for q in QUERIES {
        search(&agent, &url, q).unwrap();
    }
    let mut one = Vec::with_capacity(queries);
    for i in 0..queries {
        // A different text each time: nothing is answered from a cache.
        let text = format!("{} {i}", QUERIES[i % QUERIES.len()]);
        let start = Instant::now();
        search(&agent, &url, &text).unwrap();
        one.push(start.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "text query over HTTP, 1 client, new texts:      {}",
        Latencies(one).line()
    );
    let mut again = Vec::with_capacity(queries);
    for i in 0..queries {
        let text = format!("{} {i}", QUERIES[i % QUERIES.len()]);
        let start = Instant::now();
        search(&agent, &url, &text).unwrap();
        again.push(start.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "text query over HTTP, 1 client, texts seen before: {}",
        Latencies(again).line()
    );

    // An upload each: the file is converted and encoded (sheet music, MIDI).
    for (name, bytes) in upload_files() {
        let times: Vec<f64> = (0..3)
            .map(|_| {
                let start = Instant::now();
                upload(&agent, &url, name, &bytes).unwrap();
                start.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        println!(
            "search by an uploaded {name}, 1 client: {}",
            Latencies(times).line()
        );
    }

    // 2. 16 clients at once: the queue batches their texts into shared engine calls. Then the
    // same through a second server over the same engine and library whose queue embeds one
    // text per engine call: what batching buys.
    concurrent_texts(&url, &stats, queries, "batched (up to 64 per engine call)");
    let one_by_one = runtime
        .block_on(Server::bind(
            ServerConfig {
                addr: "127.0.0.1:0".parse().unwrap(),
                max_batch: 1,
                ..ServerConfig::default()
            },
            engine.clone(),
            library.clone(),
        ))
        .unwrap();
    let one_by_one_url = format!("http://{}", one_by_one.local_addr().unwrap());
    let one_by_one_stats = one_by_one.batch_stats();
    runtime.spawn(one_by_one.run_until(std::future::pending()));
    concurrent_texts(
        &one_by_one_url,
        &one_by_one_stats,
        queries,
        "unbatched (1 per engine call)",
    );

    // 3. The load test.
    if load_seconds > 0 {
        load_test(&url, clients, Duration::from_secs(load_seconds as u64));
    }
}

/// 16 clients sending new texts at once: latency, throughput and the engine calls they took.
fn concurrent_texts(url: &str, stats: &BatchStats, queries: usize, label: &str) {
    let before = (
        stats.batches.load(Ordering::Relaxed),
        stats.inputs.load(Ordering::Relaxed),
    );
    let concurrent = 16;
    let start = Instant::now();
    let per_client = queries.div_ceil(concurrent).max(1);
    let samples: Vec<f64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..concurrent)
            .map(|c| {
                scope.spawn(move || {
                    let agent = ureq::AgentBuilder::new().build();
                    (0..per_client)
                        .map(|i| {
                            // New texts (label included): none is answered from the cache.
                            let text =
                                format!("{} {label} {c} {i}", QUERIES[(c + i) % QUERIES.len()]);
                            let start = Instant::now();
                            search(&agent, url, &text).unwrap();
                            start.elapsed().as_secs_f64() * 1e3
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let seconds = start.elapsed().as_secs_f64();
    let batches = stats.batches.load(Ordering::Relaxed) - before.0;
    let inputs = stats.inputs.load(Ordering::Relaxed) - before.1;
    println!(
        "text query over HTTP, {concurrent} clients, {label}: {} · {:.1} queries/s · {inputs} texts in {batches} engine calls ({:.1} per call)",
        Latencies(samples.clone()).line(),
        samples.len() as f64 / seconds,
        inputs as f64 / batches.max(1) as f64,
    );
}

/// The files uploaded: a short ABC tune and a MIDI file.
fn upload_files() -> Vec<(&'static str, Vec<u8>)> {
    let read = |path: &str| std::fs::read(crates().join(path)).unwrap();
    vec![
        (
            "tune.abc",
            read("features/tests/fixtures/golden/cases/symbolic/s01_abc_short.abc"),
        ),
        (
            "song.mid",
            read("formats/tests/fixtures/midi/abc2midi__wikimt_0024.mid"),
        ),
    ]
}

/// `clients` clients for `duration`: each sends a text search, and every fifth request an
/// upload (ABC or MIDI) instead, as fast as answered. Prints counts, errors and percentiles.
fn load_test(url: &str, clients: usize, duration: Duration) {
    let uploads = upload_files();
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let results: Vec<(Vec<f64>, Vec<f64>, Vec<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let (stop, uploads) = (&stop, &uploads);
                scope.spawn(move || {
                    let agent = ureq::AgentBuilder::new()
                        .timeout(Duration::from_secs(120))
                        .build();
                    let (mut texts, mut files, mut errors) = (Vec::new(), Vec::new(), Vec::new());
                    let mut i = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        let result = if (c + i) % 5 == 4 {
                            let (name, bytes) = &uploads[(c + i) % uploads.len()];
                            upload(&agent, url, name, bytes).map(|()| &mut files)
                        } else {
                            let text = format!("{} {c} {i}", QUERIES[(c + i) % QUERIES.len()]);
                            search(&agent, url, &text).map(|()| &mut texts)
                        };
                        match result {
                            Ok(kind) => kind.push(t.elapsed().as_secs_f64() * 1e3),
                            Err(e) => errors.push(e),
                        }
                        i += 1;
                    }
                    (texts, files, errors)
                })
            })
            .collect();
        while start.elapsed() < duration {
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::Relaxed);
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let seconds = start.elapsed().as_secs_f64();
    let texts: Vec<f64> = results.iter().flat_map(|r| r.0.clone()).collect();
    let files: Vec<f64> = results.iter().flat_map(|r| r.1.clone()).collect();
    let errors: Vec<&String> = results.iter().flat_map(|r| &r.2).collect();
    let all: Vec<f64> = texts.iter().chain(&files).copied().collect();
    println!(
        "load test: {clients} clients for {seconds:.0} s: {} requests ({:.0}/s), {} errors",
        all.len() + errors.len(),
        all.len() as f64 / seconds,
        errors.len()
    );
    for e in errors.iter().take(5) {
        println!("  error: {e}");
    }
    if !texts.is_empty() {
        println!("  text searches: {}", Latencies(texts).line());
    }
    if !files.is_empty() {
        println!("  file uploads:  {}", Latencies(files).line());
    }
    if !all.is_empty() {
        println!(
            "  all requests:  {} (p99 {:.1} ms)",
            Latencies(all.clone()).line(),
            Latencies(all).at(0.99)
        );
    }
}
