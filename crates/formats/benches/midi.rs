//! MIDI → MTF and MTF → MIDI throughput over a folder of `.mid` files.
//!
//! The folder is `$CLAMP3_MIDI_CORPUS`, else `../shared/golden/formats/midi` beside the
//! workspace, else the test fixtures. Files are read into memory first; each conversion runs over
//! all files repeatedly for at least two seconds. Run with `cargo bench -p clamp3-formats --bench
//! midi`.

// A benchmark reports by printing.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clamp3_formats::midi::midi_to_mtf;
use clamp3_formats::mtf::mtf_to_midi;

const MIN_TIME: Duration = Duration::from_secs(2);

fn corpus_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Some(dir) = std::env::var_os("CLAMP3_MIDI_CORPUS") {
        return PathBuf::from(dir);
    }
    let shared = manifest.join("../../../shared/golden/formats/midi");
    if shared.exists() {
        return shared;
    }
    manifest.join("tests/fixtures/midi")
}

/// Runs `f` over every item until `MIN_TIME` has passed; returns items per second.
fn measure<T>(items: &[T], mut f: impl FnMut(&T)) -> f64 {
    let start = Instant::now();
    let mut done = 0usize;
    while start.elapsed() < MIN_TIME {
        for item in items {
            f(item);
        }
        done += items.len();
    }
    done as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let dir = corpus_dir();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.to_string_lossy();
            (name.ends_with(".mid") || name.ends_with(".midi")) && !name.ends_with(".roundtrip.mid")
        })
        .collect();
    paths.sort();
    let files: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let bytes: usize = files.iter().map(Vec::len).sum();
    let mtfs: Vec<String> = files
        .iter()
        .filter_map(|f| midi_to_mtf(f, true).ok())
        .collect();
    println!(
        "corpus: {} ({} MIDI files, {:.1} MB; {} convert)",
        dir.display(),
        files.len(),
        bytes as f64 / 1e6,
        mtfs.len()
    );

    let rate = measure(&files, |f| {
        let _ = std::hint::black_box(midi_to_mtf(f, true));
    });
    println!(
        "midi_to_mtf (m3): {rate:.0} files/s ({:.1} MB/s)",
        rate * bytes as f64 / files.len() as f64 / 1e6
    );
    let rate = measure(&files, |f| {
        let _ = std::hint::black_box(midi_to_mtf(f, false));
    });
    println!("midi_to_mtf (keep text): {rate:.0} files/s");
    let rate = measure(&mtfs, |t| {
        let _ = std::hint::black_box(mtf_to_midi(t));
    });
    println!("mtf_to_midi: {rate:.0} files/s");
}
