//! A cold `clamp3 search --text` process: start, load full-size CLaMP 3 (random weights of the
//! official shapes, as the safetensors file that the weight cache makes of a `.pth`) and the real
//! XLM-R tokenizer, embed one query, rank 1000 cached vectors, print, exit. The figure is the
//! process's wall time, median of 5, with the weight file in the page cache (as on any second run).
//! Then the peak resident memory (VmHWM) of that search process and of a `clamp3 embed` process
//! over a folder of sheet music and texts, the reference's own peak-memory workload.
//!
//! `cargo bench -p clamp3 --bench cold_search [-- --precision f32|bf16]`.
#![allow(clippy::print_stdout, reason = "a benchmark prints its numbers")]

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use clamp3_models::{Clamp3Model, Config};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `command` to its end, reading its VmHWM from /proc every few milliseconds: the peak
/// resident memory, up to the last read before exit (the high-water mark only ever grows).
fn run_watched(command: &mut Command) -> (Output, f64, f64) {
    let start = Instant::now();
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running clamp3");
    let status = format!("/proc/{}/status", child.id());
    let watcher = std::thread::spawn(move || {
        let mut peak_kib = 0.0f64;
        while let Ok(text) = std::fs::read_to_string(&status) {
            let kib = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
            match kib {
                Some(kib) => peak_kib = peak_kib.max(kib),
                None => break, // a zombie: the process has exited
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        peak_kib / 1024.0
    });
    let output = child.wait_with_output().expect("waiting for clamp3");
    let wall = start.elapsed().as_secs_f64();
    (output, wall, watcher.join().expect("the watcher"))
}

fn check(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "clamp3 {what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn main() {
    let precision = std::env::args()
        .skip_while(|a| a != "--precision")
        .nth(1)
        .unwrap_or_else(|| "f32".to_owned());
    let dir = tempfile::tempdir().expect("a temporary folder");
    let gz = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../features/tests/fixtures/xlmr/tokenizer.json.gz");
    let mut json = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&gz).expect("the tokenizer fixture"))
        .read_to_string(&mut json)
        .expect("a gzipped tokenizer");
    let tokenizer = dir.path().join("tokenizer.json");
    std::fs::write(&tokenizer, json).expect("writing the tokenizer");

    let varmap = VarMap::new();
    Clamp3Model::load(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        &Config::default(),
    )
    .expect("random full-size CLaMP 3");
    let weights = dir.path().join("clamp3.safetensors");
    varmap.save(&weights).expect("writing the weights");
    drop(varmap);

    let library = dir.path().join("vectors");
    std::fs::create_dir(&library).expect("a folder");
    for i in 0..1000u32 {
        let vector: Vec<f32> = (0..768u32)
            .map(|j| ((i * 768 + j).wrapping_mul(2_654_435_761) % 2001) as f32 / 1000.0 - 1.0)
            .collect();
        std::fs::write(
            library.join(format!("{i:04}.npy")),
            clamp3_io::npy::encode_f32(&[1, 768], &vector),
        )
        .expect("writing a vector");
    }

    let search = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_clamp3"));
        command
            .args(["search", "--text", "a calm solo piano piece in a minor key"])
            .arg(&library)
            .arg("--weights")
            .arg(&weights)
            .arg("--tokenizer")
            .arg(&tokenizer)
            .args(["--device", "cpu", "--no-cache", "--precision", &precision]);
        let (output, wall, peak_mib) = run_watched(&mut command);
        check(&output, "search");
        (wall, peak_mib)
    };
    search(); // the weight file into the page cache
    let runs: Vec<(f64, f64)> = (0..5).map(|_| search()).collect();
    let mut times: Vec<f64> = runs.iter().map(|r| r.0).collect();
    times.sort_by(f64::total_cmp);
    println!(
        "cold `clamp3 search --text` over 1000 cached vectors, full-size CLaMP 3 ({precision}): \
         {:.2} s process wall (median of 5; min {:.2}, max {:.2}); peak RSS (VmHWM) {:.0} MiB",
        times[2],
        times[0],
        times[4],
        runs.iter().map(|r| r.1).fold(0.0, f64::max)
    );

    // Sheet music (one MusicXML score, one interleaved ABC tune) and texts: the symbolic and
    // text encoders, as in the reference's peak-memory row (its CLaMP 3 process: 4161 MiB).
    let inputs = dir.path().join("inputs");
    std::fs::create_dir(&inputs).expect("a folder");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for name in ["bach__bwv66.6.mxl", "bach__bwv66.6.interleaved.abc"] {
        std::fs::copy(fixtures.join(name), inputs.join(name)).expect("copying a fixture");
    }
    for (i, text) in [
        "A chorale harmonised in four parts.",
        "Ein ruhiges Klavierstück in a-Moll.",
        "一首欢快的民谣舞曲。",
    ]
    .iter()
    .enumerate()
    {
        std::fs::write(inputs.join(format!("text{i}.txt")), text).expect("writing a text");
    }
    let vectors = dir.path().join("embedded");
    let mut command = Command::new(env!("CARGO_BIN_EXE_clamp3"));
    command
        .arg("embed")
        .arg(&inputs)
        .arg(&vectors)
        .arg("--weights")
        .arg(&weights)
        .arg("--tokenizer")
        .arg(&tokenizer)
        .args(["--device", "cpu", "--precision", &precision]);
    let (output, wall, peak_mib) = run_watched(&mut command);
    check(&output, "embed");
    println!(
        "`clamp3 embed` of 2 scores and 3 texts ({precision}): {wall:.2} s, peak RSS (VmHWM) \
         {peak_mib:.0} MiB (reference: 4161 MiB)"
    );
}
