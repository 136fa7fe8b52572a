//! Match rates of the sheet-music converters against the reference goldens.
//!
//! Runs `musicxml::read_score` + `xml2abc::convert`, `abc::interleave` and `patch::patchilize`
//! over `golden/formats` (made by the reference Python code, see its README) and prints, per
//! corpus and output kind, how many cases give the same bytes as the reference.
//!
//! ```text
//! cargo run --release -p clamp3-formats --example sheet_corpus [GOLDEN_DIR] [-v]
//! ```
//! `GOLDEN_DIR` defaults to `$CLAMP3_GOLDEN_FORMATS`, else `../shared/golden/formats`.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use clamp3_formats::{abc, musicxml, patch, xml2abc};

#[derive(Default)]
struct Tally {
    total: usize,
    same: usize,
}

impl Tally {
    fn add(&mut self, ok: bool) {
        self.total += 1;
        self.same += usize::from(ok);
    }
    fn show(&self, what: &str) {
        let pct = if self.total == 0 {
            100.0
        } else {
            100.0 * self.same as f64 / self.total as f64
        };
        println!("{what:<44} {:>5}/{:<5} {pct:6.2}%", self.same, self.total);
    }
}

/// The `uint8` rows of a `.npy` file written by `numpy.save` (format 1.0, C order).
fn read_npy(path: &Path) -> Option<Vec<u8>> {
    let b = std::fs::read(path).ok()?;
    if !b.starts_with(b"\x93NUMPY") {
        return None;
    }
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    Some(b[10 + hlen..].to_vec())
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\": \"");
    let start = line.find(&pat)? + pat.len();
    line[start..].split('"').next()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.iter().any(|a| a == "-v");
    let root = args
        .iter()
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("CLAMP3_GOLDEN_FORMATS").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("../shared/golden/formats"));
    let manifest = std::fs::read_to_string(root.join("manifest.jsonl"))
        .unwrap_or_else(|e| panic!("{}: {e}", root.join("manifest.jsonl").display()));

    let mut xml_abc = Tally::default();
    let mut xml_inter = Tally::default();
    let mut xml_patch = Tally::default();
    let mut xml_fail = Tally::default();
    let mut abc_inter = Tally::default();
    let mut abc_patch = Tally::default();
    let mut abc_fail = Tally::default();
    let mut bad = Tally::default();

    for line in manifest.lines() {
        let (Some(corpus), Some(input)) = (field(line, "corpus"), field(line, "input")) else {
            continue;
        };
        let status = field(line, "status").unwrap_or("");
        let path = root.join(input);
        let golden = |ext: &str| path.with_extension(ext);
        let note = |what: &str, msg: &str| {
            if verbose {
                println!("{what} {input}: {msg}");
            }
        };
        match corpus {
            "musicxml" => {
                let abc_text = musicxml::read_score(&path).and_then(|x| xml2abc::convert(&x));
                if status == "failed_at_xml2abc" {
                    xml_fail.add(abc_text.is_err());
                    if abc_text.is_ok() {
                        note("REF-FAILED-WE-CONVERT", "");
                    }
                    continue;
                }
                let want = std::fs::read_to_string(golden("abc")).unwrap_or_default();
                let same = abc_text.as_ref().is_ok_and(|t| *t == want);
                xml_abc.add(same);
                match &abc_text {
                    Err(e) => note("ABC-ERROR", &e.to_string()),
                    Ok(_) if !same => note("ABC-DIFF", ""),
                    _ => {}
                }
                let inter = abc_text.and_then(|t| abc::interleave(&t));
                let want = std::fs::read_to_string(golden("interleaved.abc")).unwrap_or_default();
                let same = inter.as_ref().is_ok_and(|t| *t == want);
                xml_inter.add(same);
                if same {
                    let patches: Vec<u8> = patch::patchilize(&want).concat();
                    xml_patch.add(Some(patches) == read_npy(&golden("patches.npy")));
                }
            }
            "abc" => {
                let text = std::fs::read_to_string(&path);
                let inter = text
                    .map_err(clamp3_formats::Error::from)
                    .and_then(|t| abc::interleave(&t));
                if status != "ok" {
                    abc_fail.add(inter.is_err());
                    continue;
                }
                let want = std::fs::read_to_string(golden("interleaved.abc")).unwrap_or_default();
                let same = inter.as_ref().is_ok_and(|t| *t == want);
                abc_inter.add(same);
                if !same {
                    note("INTERLEAVE-DIFF", "");
                } else {
                    let patches: Vec<u8> = patch::patchilize(&want).concat();
                    abc_patch.add(Some(patches) == read_npy(&golden("patches.npy")));
                }
            }
            "bad" => {
                let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
                let result = match ext {
                    "xml" | "mxl" | "musicxml" => {
                        musicxml::read_score(&path).and_then(|x| xml2abc::convert(&x))
                    }
                    "abc" => std::fs::read(&path)
                        .map_err(clamp3_formats::Error::from)
                        .and_then(|b| {
                            String::from_utf8(b).map_err(|e| clamp3_formats::Error::Utf8 {
                                valid_up_to: e.utf8_error().valid_up_to(),
                            })
                        })
                        .and_then(|t| abc::interleave(&t)),
                    _ => continue,
                };
                bad.add(result.is_err() == (status != "ok"));
                if let Err(e) = &result {
                    note("BAD", &e.to_string());
                }
            }
            _ => {}
        }
    }
    println!("golden: {}", root.display());
    xml_abc.show("musicxml: standard ABC byte-exact");
    xml_inter.show("musicxml: interleaved ABC byte-exact");
    xml_patch.show("musicxml: patches equal (matched cases)");
    xml_fail.show("musicxml: reference failures we also refuse");
    abc_inter.show("abc: interleaved ABC byte-exact");
    abc_patch.show("abc: patches equal (matched cases)");
    abc_fail.show("abc: reference failures we also refuse");
    bad.show("bad: same outcome as the reference");
}
