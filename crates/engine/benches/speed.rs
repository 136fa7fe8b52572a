//! The speed table of issue 12, for clamp3, with full-size random weights of the official shapes
//! (CLaMP 3: XLM-R base + M3 + audio BERT; MERT-v1-95M), in f32 and in bf16:
//!
//! - a 20-token text query, warm; a 300-token text;
//! - a folder of WikiMT lead sheets, files/s (segments batched across files);
//! - one full 512-patch symbolic segment (a MIDI file's unit of work);
//! - MERT on 60 s of audio (12 windows of 5 s), then CLaMP 3's audio encoder on its features;
//! - the peak resident memory of the process (`VmHWM`).
//!
//! Each timed row prints the dense-layer GFLOP/s it achieved next to this machine's f32 peak
//! (cores × FMA width × 2 FMA pipes × 2 FLOP × clock; bf16 keeps f32 arithmetic, so the same
//! peak). bf16 rows also print the cosine of each vector to its f32 counterpart, and the overlap
//! of a text query's top-10 WikiMT tunes in both precisions.
//!
//! `cargo bench -p clamp3-engine --bench speed [-- --tunes N] [--wikimt PATH] [--precision f32|bf16|both] [--skip-mert] [--short-text-only] [--mert-only]`
//! (the last two to profile one row).
//! WikiMT is read from `--wikimt`, `$CLAMP3_WIKIMT`, or `../shared/datasets/wikimt/wikimusictext.json`.
//! Timings are printed, never asserted.

#![allow(clippy::print_stdout, reason = "a benchmark prints its numbers")]

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use clamp3_engine::families::clamp3::Clamp3;
use clamp3_engine::{Engine, Item, ModelSpec, Options, Precision, Silent};
use clamp3_models::mert::Mert;
use clamp3_models::{Clamp3Model, Config, EncoderInput, Modality};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Multiply-adds per token of one BERT-base stack's dense layers (12 × (4·768² + 2·768·3072)).
const DENSE_MACS_PER_TOKEN: f64 = 12.0 * (4.0 * 768.0 * 768.0 + 2.0 * 768.0 * 3072.0);

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn vm_hwm_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// This machine's f32 peak in GFLOP/s, from /proc/cpuinfo's clock and the widest FMA it has
/// (AVX-512 counts as 16 lanes; Zen 4 executes it as two 256-bit halves, so its real peak is
/// that of AVX2, which is what is printed there).
fn peak_gflops() -> (f64, String) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let mhz = info
        .lines()
        .find_map(|l| l.strip_prefix("cpu MHz"))
        .and_then(|v| {
            v.trim_start_matches([' ', '\t', ':'])
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(f64::NAN);
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        .unwrap_or_default();
    let amd = info.contains("AuthenticAMD");
    let avx512 = std::arch::is_x86_feature_detected!("avx512f");
    let lanes = if avx512 && !amd { 16.0 } else { 8.0 };
    let cores = rayon::current_num_threads() as f64;
    let peak = cores * lanes * 2.0 * 2.0 * mhz / 1e3;
    let simd = if avx512 { "AVX-512" } else { "AVX2" };
    (
        peak,
        format!("{model}, {cores} threads, {mhz:.0} MHz, {simd}; f32 peak {peak:.0} GFLOP/s"),
    )
}

fn frozen(varmap: &VarMap) -> VarBuilder<'static> {
    clamp3_models::weights::frozen(varmap, &Device::Cpu).expect("the variables")
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

struct Inputs {
    tokenizer: PathBuf,
    short_text: String,
    long_text: String,
    tunes: Vec<PathBuf>,
    segment: Tensor,
    _dir: tempfile::TempDir,
}

fn inputs(tunes: usize) -> Inputs {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let gz = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../features/tests/fixtures/xlmr/tokenizer.json.gz");
    let mut json = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&gz).expect("the tokenizer fixture"))
        .read_to_string(&mut json)
        .expect("a gzipped tokenizer");
    let tokenizer = dir.path().join("tokenizer.json");
    std::fs::write(&tokenizer, json).expect("writing the tokenizer");

    let wikimt = arg("--wikimt")
        .or_else(|| std::env::var("CLAMP3_WIKIMT").ok())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/datasets/wikimt/wikimusictext.json")
        });
    let entries: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(&wikimt)
            .unwrap_or_else(|e| panic!("{}: {e} (pass --wikimt PATH)", wikimt.display())),
    )
    .expect("WikiMT JSON");
    let tunes = entries
        .iter()
        .take(tunes)
        .enumerate()
        .map(|(i, e)| {
            let file = dir.path().join(format!("{i:04}.abc"));
            std::fs::write(&file, e["music"].as_str().unwrap_or_default()).expect("writing a tune");
            file
        })
        .collect();
    let long_text = entries
        .iter()
        .filter_map(|e| e["text"].as_str())
        .flat_map(|t| t.split(". "))
        .take(14)
        .collect::<Vec<_>>()
        .join("\n");
    let patches: Vec<u32> = (0..512 * 64u32)
        .map(|i| i.wrapping_mul(2_654_435_761) % 128)
        .collect();
    Inputs {
        tokenizer,
        short_text: "a calm solo piano piece in a minor key, with a slow melody over soft chords"
            .to_owned(),
        long_text,
        tunes,
        segment: Tensor::from_vec(patches, (1, 512, 64), &Device::Cpu).expect("patches"),
        _dir: dir,
    }
}

fn token_count(tokenizer: &Path, text: &str) -> usize {
    let tokenizer = tokenizers::Tokenizer::from_file(tokenizer).expect("the tokenizer");
    text.lines()
        .map(|l| tokenizer.encode(l, true).map_or(0, |e| e.len()))
        .sum()
}

/// What one precision measured, kept to compare bf16 with f32.
struct Run {
    short: Vec<f32>,
    long: Vec<f32>,
    tunes: Vec<Vec<f32>>,
    segment: Vec<f32>,
}

fn run(precision: Precision, varmap: &VarMap, inputs: &Inputs, peak: f64) -> Run {
    let mut model =
        Clamp3Model::load(frozen(varmap), &Config::default()).expect("the full-size model");
    if precision == Precision::Bf16 {
        model.store_weights_as(DType::BF16).expect("bf16 weights");
    }
    let spec = ModelSpec {
        tokenizer: Some(inputs.tokenizer.clone()),
        device: clamp3_engine::DeviceChoice::Cpu,
        precision: Precision::F32, // already converted above; the family must not do it twice
        ..ModelSpec::default()
    };
    let engine = Engine::with_family(
        Box::new(Clamp3::with_model(&spec, model).expect("the family")),
        None,
    );
    let name = precision.name();

    let tokens = token_count(&inputs.tokenizer, &inputs.short_text);
    let mut short = Vec::new();
    let ms = median_ms(9, || {
        short = engine.embed_text(&inputs.short_text).expect("a text")
    });
    let gflops = 2.0 * tokens as f64 * DENSE_MACS_PER_TOKEN / ms / 1e6;
    println!(
        "[{name}] {tokens}-token text, warm:            {ms:8.1} ms   ({gflops:5.1} GFLOP/s dense, {:.0}% of peak)",
        100.0 * gflops / peak
    );

    if std::env::args().any(|a| a == "--short-text-only") {
        return Run {
            short,
            long: Vec::new(),
            tunes: Vec::new(),
            segment: Vec::new(),
        };
    }
    let tokens = token_count(&inputs.tokenizer, &inputs.long_text);
    let mut long = Vec::new();
    let ms = median_ms(5, || {
        long = engine.embed_text(&inputs.long_text).expect("a text")
    });
    // Segments of 128 ids, the last one the last 128: every segment is full.
    let rows = tokens.div_ceil(128) * 128;
    let gflops = 2.0 * rows as f64 * DENSE_MACS_PER_TOKEN / ms / 1e6;
    println!(
        "[{name}] {tokens}-token text ({} segments):    {ms:8.1} ms   ({gflops:5.1} GFLOP/s dense, {:.0}% of peak)",
        tokens.div_ceil(128),
        100.0 * gflops / peak
    );

    let items: Vec<Item> = inputs.tunes.iter().cloned().map(Item::File).collect();
    engine.embed(&items[..items.len().min(4)], &Options::default(), &Silent);
    let start = Instant::now();
    let tunes: Vec<Vec<f32>> = engine
        .embed(&items, &Options::default(), &Silent)
        .into_iter()
        .map(|r| r.map(|e| e.embedding.data).unwrap_or_default())
        .collect();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "[{name}] WikiMT folder of {}:               {:8.1} files/s ({:.1} ms/file)",
        items.len(),
        items.len() as f64 / secs,
        secs * 1e3 / items.len() as f64
    );

    // The same weights outside the engine, for one segment without the engine's batching.
    let mut model =
        Clamp3Model::load(frozen(varmap), &Config::default()).expect("the full-size model");
    if precision == Precision::Bf16 {
        model.store_weights_as(DType::BF16).expect("bf16 weights");
    }
    let mut segment = Vec::new();
    let ms = median_ms(3, || {
        let hidden = model
            .encode(EncoderInput::Patches(&inputs.segment), None)
            .expect("a segment");
        let pooled = hidden.mean(1).expect("pooled");
        segment = model
            .project(Modality::Symbolic, &pooled)
            .and_then(|v| v.flatten_all()?.to_vec1())
            .expect("projected");
    });
    let gflops = 2.0 * 512.0 * DENSE_MACS_PER_TOKEN / ms / 1e6;
    println!(
        "[{name}] one 512-patch segment:              {ms:8.1} ms   ({gflops:5.1} GFLOP/s dense, {:.0}% of peak)",
        100.0 * gflops / peak
    );
    println!(
        "[{name}] peak RSS so far (VmHWM):            {:8.0} MiB",
        vm_hwm_mib()
    );
    Run {
        short,
        long,
        tunes,
        segment,
    }
}

fn mert_row(peak: f64) {
    let varmap = VarMap::new();
    Mert::load(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        &clamp3_models::mert::Config::default(),
    )
    .expect("full-size MERT");
    let mert = Mert::load(frozen(&varmap), &clamp3_models::mert::Config::default())
        .expect("full-size MERT");
    let mut wave: Vec<f32> = (0..60 * 24_000)
        .map(|i| {
            let t = i as f32 / 24_000.0;
            0.3 * (2.0 * std::f32::consts::PI * 220.0 * t).sin()
                + 0.2 * (2.0 * std::f32::consts::PI * 331.0 * t).sin()
        })
        .collect();
    clamp3_audio::normalize(&mut wave);
    mert.window_vector(&wave[..clamp3_audio::WINDOW_SAMPLES])
        .expect("a warm-up window");
    let start = Instant::now();
    let features = mert
        .file_features(clamp3_audio::windows(&wave))
        .expect("MERT features");
    let secs = start.elapsed().as_secs_f64();
    let windows = features.dim(1).unwrap_or(0);
    // Per window: the conv stack's multiply-adds, then 374 frames through the transformer.
    let frames = mert.config().frames(clamp3_audio::WINDOW_SAMPLES) as f64;
    let conv_macs = {
        let cfg = mert.config();
        let mut length = clamp3_audio::WINDOW_SAMPLES as f64;
        let mut c_in = 1.0;
        let mut macs = 0.0;
        for ((&c, &k), &s) in cfg
            .conv_dim
            .iter()
            .zip(&cfg.conv_kernel)
            .zip(&cfg.conv_stride)
        {
            length = ((length - k as f64) / s as f64).floor() + 1.0;
            macs += length * c as f64 * k as f64 * c_in;
            c_in = c as f64;
        }
        macs
    };
    let pos_conv_macs = frames * 768.0 * 48.0 * 128.0;
    let macs = windows as f64 * (conv_macs + pos_conv_macs + frames * DENSE_MACS_PER_TOKEN);
    let gflops = 2.0 * macs / secs / 1e9;
    println!(
        "[f32] MERT on 60 s of audio ({windows} windows):  {secs:8.2} s    (real-time factor {:.3}; {gflops:5.1} GFLOP/s, {:.0}% of peak)",
        secs / 60.0,
        100.0 * gflops / peak
    );
    let audio_vars = VarMap::new();
    let config = clamp3_models::config::BertConfig::official(128);
    clamp3_models::bert::BertModel::load(
        VarBuilder::from_varmap(&audio_vars, DType::F32, &Device::Cpu),
        &config,
    )
    .expect("the audio encoder");
    let audio_model = clamp3_models::bert::BertModel::load(frozen(&audio_vars), &config)
        .expect("the audio encoder");
    let zero = Tensor::zeros((1, 1, 768), DType::F32, &Device::Cpu).expect("zeros");
    let rows = Tensor::cat(&[&zero, &features, &zero], 1).expect("rows");
    let ms = median_ms(3, || {
        let hidden = audio_model.forward(&rows, None).expect("audio encoder");
        drop(hidden.mean(1).and_then(|m| m.sum_all()));
    });
    println!(
        "[f32]   + CLaMP 3 audio encoder on {} rows:    {ms:8.1} ms; MERT + CLaMP 3 real-time factor {:.3}",
        rows.dim(1).unwrap_or(0),
        (secs + ms / 1e3) / 60.0
    );
}

fn main() {
    let tunes: usize = arg("--tunes").and_then(|n| n.parse().ok()).unwrap_or(200);
    let which = arg("--precision").unwrap_or_else(|| "both".to_owned());
    let (peak, machine) = peak_gflops();
    println!("{machine}");
    if std::env::args().any(|a| a == "--mert-only") {
        mert_row(peak);
        return;
    }
    let inputs = inputs(tunes);
    let start = Instant::now();
    let varmap = VarMap::new();
    Clamp3Model::load(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        &Config::default(),
    )
    .expect("random full-size CLaMP 3");
    println!(
        "full-size random CLaMP 3 built in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let f32_run = (which != "bf16").then(|| run(Precision::F32, &varmap, &inputs, peak));
    let bf16_run = (which != "f32").then(|| run(Precision::Bf16, &varmap, &inputs, peak));
    if let (Some(a), Some(b)) = (&f32_run, &bf16_run) {
        let tune_cosines: Vec<f64> = a
            .tunes
            .iter()
            .zip(&b.tunes)
            .filter(|(x, y)| !x.is_empty() && !y.is_empty())
            .map(|(x, y)| cosine(x, y))
            .collect();
        let min_tune = tune_cosines.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "bf16 vs f32 cosine: short text {:.6}, long text {:.6}, 512-patch segment {:.6}, \
             WikiMT tunes min {min_tune:.6} over {}",
            cosine(&a.short, &b.short),
            cosine(&a.long, &b.long),
            cosine(&a.segment, &b.segment),
            tune_cosines.len()
        );
        let top10 = |query: &[f32], tunes: &[Vec<f32>]| {
            let mut order: Vec<usize> = (0..tunes.len()).collect();
            order.sort_by(|&i, &j| cosine(query, &tunes[j]).total_cmp(&cosine(query, &tunes[i])));
            order.truncate(10);
            order
        };
        let (ta, tb) = (top10(&a.short, &a.tunes), top10(&b.short, &b.tunes));
        let shared = ta.iter().filter(|i| tb.contains(i)).count();
        // With random weights every vector points almost the same way, so the scores a ranking
        // is decided by are far closer together than with trained ones: print both scales.
        let scores = |q: &[f32], tunes: &[Vec<f32>]| -> Vec<f64> {
            tunes.iter().map(|t| cosine(q, t)).collect()
        };
        let (sa, sb) = (scores(&a.short, &a.tunes), scores(&b.short, &b.tunes));
        let gap = sa[ta[0]] - sa[*ta.last().expect("some tunes")];
        let drift = sa
            .iter()
            .zip(&sb)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        println!(
            "bf16 vs f32 ranking: {shared}/10 of the text query's top-10 tunes shared, top-1 {}; \
             f32 scores from top-1 to top-10 span {gap:.2e}, bf16 moves a score by up to {drift:.2e}",
            if ta.first() == tb.first() { "equal" } else { "differs" }
        );
        println!(
            "bf16 vs f32 ranking: {shared}/10 of the text query's top-10 tunes shared, top-1 {}",
            if ta.first() == tb.first() {
                "equal"
            } else {
                "differs"
            }
        );
    }
    if !std::env::args().any(|a| a == "--skip-mert") {
        mert_row(peak);
    }
    println!("peak RSS of the whole run (VmHWM): {:.0} MiB", vm_hwm_mib());
}
