//! Files per second for MusicXML → standard ABC → interleaved ABC (the sheet-music path).
//!
//! Inputs: the folder in `$CLAMP3_SHEET_CORPUS`, else `../shared/golden/formats/musicxml` when
//! present, else the MusicXML fixtures in `tests/fixtures/sheet/cases.zip`. Every `.xml`,
//! `.musicxml` and `.mxl` file is decoded (unzipped), converted and interleaved, single-threaded;
//! the loop repeats until at least two seconds have passed.
//!
//! ```text
//! cargo bench -p clamp3-formats --bench sheet
//! ```
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clamp3_formats::{abc, musicxml, xml2abc};

fn is_score(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.ends_with(".xml") || n.ends_with(".mxl") || n.ends_with(".musicxml")
}

fn inputs() -> (String, Vec<(String, Vec<u8>)>) {
    let manifest = env!("CARGO_MANIFEST_DIR");
    let dir = std::env::var_os("CLAMP3_SHEET_CORPUS")
        .map(PathBuf::from)
        .or_else(|| {
            let p = PathBuf::from(manifest).join("../../../shared/golden/formats/musicxml");
            p.is_dir().then_some(p)
        });
    if let Some(dir) = dir {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_str().is_some_and(is_score))
            .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
            .collect();
        files.sort();
        return (dir.display().to_string(), files);
    }
    let zip_path = PathBuf::from(manifest).join("tests/fixtures/sheet/cases.zip");
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let mut files = Vec::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let name = f.name().to_owned();
        if name.starts_with("musicxml/") && is_score(&name) {
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            files.push((name, data));
        }
    }
    (zip_path.display().to_string(), files)
}

fn run(name: &str, bytes: &[u8]) -> (Duration, Duration, Duration, bool) {
    let t0 = Instant::now();
    let xml = if name.to_ascii_lowercase().ends_with(".mxl") {
        musicxml::read_mxl(bytes)
    } else {
        musicxml::decode_xml(bytes)
    };
    let t1 = Instant::now();
    let abc_text = xml.and_then(|x| xml2abc::convert(&x));
    let t2 = Instant::now();
    let ok = abc_text.and_then(|t| abc::interleave(&t)).is_ok();
    let t3 = Instant::now();
    (t1 - t0, t2 - t1, t3 - t2, ok)
}

fn main() {
    let (source, files) = inputs();
    let bytes: usize = files.iter().map(|f| f.1.len()).sum();
    println!(
        "sheet bench: {} files ({} KiB) from {source}",
        files.len(),
        bytes / 1024
    );
    let start = Instant::now();
    let (mut read, mut conv, mut inter) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let (mut done, mut ok, mut rounds) = (0usize, 0usize, 0usize);
    while rounds == 0 || start.elapsed() < Duration::from_secs(2) {
        for (name, data) in &files {
            let (a, b, c, good) = run(name, data);
            read += a;
            conv += b;
            inter += c;
            done += 1;
            ok += usize::from(good);
        }
        rounds += 1;
    }
    let total = read + conv + inter;
    let per_sec = |d: Duration| done as f64 / d.as_secs_f64();
    println!("rounds: {rounds}, files converted: {ok}/{done}");
    println!("read (unzip + decode):   {:10.1} files/s", per_sec(read));
    println!("xml2abc:                 {:10.1} files/s", per_sec(conv));
    println!("interleave:              {:10.1} files/s", per_sec(inter));
    println!(
        "xml2abc + interleave:    {:10.1} files/s (all stages)",
        per_sec(total)
    );
}
