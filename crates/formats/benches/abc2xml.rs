//! Files per second for ABC → MusicXML (`abc2xml::convert`), single-threaded.
//!
//! Inputs: the `.abc` inputs of the golden cases in `tests/fixtures/abc2xml/cases.bin.gz` (the
//! 253 cases of `shared/golden/abc2xml`: interleaved ABC of the formats golden set, WikiMT
//! tunes, hand-made and broken files); the loop repeats until at least two seconds have passed.
//! The reference's timing on the same files (`batch_abc2xml.py`, one `python3 abc2xml.py`
//! process per file) is quoted in the closing note of issue 17.
//!
//! ```text
//! cargo bench -p clamp3-formats --bench abc2xml
//! ```
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use clamp3_formats::abc2xml::{self, Options};

fn inputs() -> Vec<Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/abc2xml/cases.bin.gz");
    let mut data = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut data)
        .unwrap();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let nl = pos + data[pos..].iter().position(|&b| b == b'\n').unwrap();
        let f: Vec<String> = String::from_utf8_lossy(&data[pos..nl])
            .split('\t')
            .map(str::to_string)
            .collect();
        let (in_len, out_len): (usize, usize) = (f[3].parse().unwrap(), f[4].parse().unwrap());
        out.push(data[nl + 1..nl + 1 + in_len].to_vec());
        pos = nl + 1 + in_len + out_len;
    }
    out
}

fn main() {
    let files = inputs();
    let options = Options {
        date: "2000-01-01".into(),
    };
    let bytes: usize = files.iter().map(Vec::len).sum();
    let start = Instant::now();
    let (mut converted, mut failed, mut rounds) = (0usize, 0usize, 0usize);
    while start.elapsed() < Duration::from_secs(2) || rounds == 0 {
        for f in &files {
            match abc2xml::convert(f, &options) {
                Ok(out) => {
                    converted += 1;
                    std::hint::black_box(out.xml.len());
                }
                Err(_) => failed += 1,
            }
        }
        rounds += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let n = files.len() * rounds;
    println!(
        "abc2xml: {} files ({} KiB of ABC) x {rounds} rounds: {:.1} files/s, {:.2} ms/file \
         single-threaded ({converted} converted, {failed} failed)",
        files.len(),
        bytes / 1024,
        n as f64 / secs,
        1000.0 * secs / n as f64
    );
}
