//! MIDI ↔ MTF against the reference.
//!
//! Expected files were made by `tools/golden/make_formats.py` (see `../shared/golden/formats/README.md`)
//! calling the reference's `batch_midi2mtf.convert_midi2mtf` (mido 1.3.0), `M3Patchilizer.encode`
//! and `batch_mtf2midi.convert_mtf2midi`. Next to each `<stem>.mid`:
//!
//! - `<stem>.mtf` / `<stem>.nonm3.mtf`: MTF with and without `--m3_compatible`; absent where the
//!   reference fails, and then the port must return an error;
//! - `<stem>.patches.npy`: the patches of `<stem>.mtf`;
//! - `<stem>.roundtrip.mid` / `<stem>.nonm3.roundtrip.mid`: that MTF written back to MIDI; absent
//!   where the reference fails on an MTF it made, and then the port must return an error too.
//!
//! `fixtures` runs over the copies in `tests/fixtures/midi/`; `golden_corpus` (ignored, needs
//! `../shared/golden/formats` or `CLAMP3_GOLDEN_FORMATS`) over the whole corpus, printing match
//! rates.

// Helpers outside `#[test]` functions panic on purpose: a broken fixture should stop the test.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clamp3_formats::midi::midi_to_mtf;
use clamp3_formats::mtf::mtf_to_midi;
use clamp3_formats::patch::patchilize;

/// Counts per output kind: (compared, matched).
#[derive(Default, Debug)]
struct Report {
    mtf: (usize, usize),
    nonm3_mtf: (usize, usize),
    patches: (usize, usize),
    roundtrip: (usize, usize),
    nonm3_roundtrip: (usize, usize),
    expected_errors: (usize, usize),
    failures: Vec<String>,
}

impl Report {
    fn tally(&mut self, kind: fn(&mut Report) -> &mut (usize, usize), ok: bool, what: String) {
        let counts = kind(self);
        counts.0 += 1;
        if ok {
            counts.1 += 1;
        } else {
            self.failures.push(what);
        }
    }

    fn summary(&self) -> String {
        let mut s = String::new();
        for (name, (n, ok)) in [
            ("mtf", self.mtf),
            ("nonm3.mtf", self.nonm3_mtf),
            ("patches", self.patches),
            ("roundtrip.mid", self.roundtrip),
            ("nonm3.roundtrip.mid", self.nonm3_roundtrip),
            ("reference failures → error", self.expected_errors),
        ] {
            let rate = if n == 0 {
                100.0
            } else {
                100.0 * ok as f64 / n as f64
            };
            let _ = writeln!(s, "{name:>28}: {ok}/{n} ({rate:.2}%)");
        }
        s
    }
}

/// Reads a `uint8` `.npy` array of shape `[n, 64]` (format 1.0, C order).
fn read_npy_patches(path: &Path) -> Vec<[u8; 64]> {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{}", path.display());
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(header.contains("'descr': '|u1'"), "{header}");
    assert!(header.contains("'fortran_order': False"), "{header}");
    let data = &bytes[10 + header_len..];
    assert_eq!(data.len() % 64, 0);
    data.chunks_exact(64)
        .map(|c| c.try_into().unwrap())
        .collect()
}

fn sibling(mid: &Path, suffix: &str) -> PathBuf {
    let stem = mid.file_stem().unwrap().to_str().unwrap();
    mid.with_file_name(format!("{stem}{suffix}"))
}

fn check_mode(
    report: &mut Report,
    mid: &Path,
    input: &[u8],
    m3: bool,
    mtf_kind: fn(&mut Report) -> &mut (usize, usize),
    roundtrip_kind: fn(&mut Report) -> &mut (usize, usize),
) {
    let (mtf_suffix, rt_suffix) = if m3 {
        (".mtf", ".roundtrip.mid")
    } else {
        (".nonm3.mtf", ".nonm3.roundtrip.mid")
    };
    let name = mid.display();
    let ours = midi_to_mtf(input, m3);
    let expected_path = sibling(mid, mtf_suffix);
    if !expected_path.exists() {
        if m3 || !sibling(mid, ".mtf").exists() {
            let ok = ours.is_err();
            report.tally(
                |r| &mut r.expected_errors,
                ok,
                format!("{name}: reference fails (m3={m3}) but the port gave MTF"),
            );
        }
        return;
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap();
    let ours = match ours {
        Ok(text) => text,
        Err(e) => {
            report.tally(mtf_kind, false, format!("{name}: {mtf_suffix}: error {e}"));
            return;
        }
    };
    let same = ours == expected;
    let what = if same {
        String::new()
    } else {
        let line = ours
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(ours.lines().count().min(expected.lines().count()));
        format!(
            "{name}: {mtf_suffix} differs at line {}: ours {:?}, reference {:?}",
            line + 1,
            ours.lines().nth(line),
            expected.lines().nth(line)
        )
    };
    report.tally(mtf_kind, same, what);

    if m3 {
        let npy = sibling(mid, ".patches.npy");
        if npy.exists() {
            let same = patchilize(&ours) == read_npy_patches(&npy);
            report.tally(|r| &mut r.patches, same, format!("{name}: patches differ"));
        }
    }

    // The reference writes MIDI back from its own MTF, which we matched above.
    let roundtrip = mtf_to_midi(&expected);
    let rt_path = sibling(mid, rt_suffix);
    if rt_path.exists() {
        let expected_rt = std::fs::read(&rt_path).unwrap();
        let (ok, what) = match roundtrip {
            Ok(bytes) => (bytes == expected_rt, format!("{name}: {rt_suffix} differs")),
            Err(e) => (false, format!("{name}: {rt_suffix}: error {e}")),
        };
        report.tally(roundtrip_kind, ok, what);
    } else {
        let ok = roundtrip.is_err();
        report.tally(
            |r| &mut r.expected_errors,
            ok,
            format!("{name}: reference fails on {mtf_suffix} → MIDI but the port wrote MIDI"),
        );
    }
}

fn check_dir(dir: &Path) -> Report {
    let mut mids: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.ends_with(".mid") && !name.ends_with(".roundtrip.mid")
        })
        .collect();
    mids.sort();
    let mut report = Report::default();
    for mid in &mids {
        let input = std::fs::read(mid).unwrap();
        check_mode(
            &mut report,
            mid,
            &input,
            true,
            |r| &mut r.mtf,
            |r| &mut r.roundtrip,
        );
        check_mode(
            &mut report,
            mid,
            &input,
            false,
            |r| &mut r.nonm3_mtf,
            |r| &mut r.nonm3_roundtrip,
        );
    }
    report
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/midi")
}

#[test]
fn fixtures() {
    let report = check_dir(&fixtures_dir());
    println!("{}", report.summary());
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
    assert!(report.mtf.0 >= 30, "too few fixtures: {report:?}");
    assert!(
        report.expected_errors.0 >= 5,
        "too few failure cases: {report:?}"
    );
}

/// Every file under `bad/` gives a clear error naming what went wrong (or, where the reference
/// converts it, the same MTF).
#[test]
fn bad_files_give_clear_errors() {
    let dir = fixtures_dir().join("bad");
    for (file, needle) in [
        ("empty_mid.mid", "unexpected end of file"),
        ("truncated.mid", "unexpected end of file"),
        ("data_byte_over_127.mid", "not in range 0..127"),
        ("random_after_header.mid", "byte"),
    ] {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let err = midi_to_mtf(&bytes, true).unwrap_err().to_string();
        assert!(err.contains(needle), "{file}: {err}");
        assert!(
            err.starts_with("invalid MIDI file at byte "),
            "{file}: {err}"
        );
    }
    let report = check_dir(&dir);
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
}

#[test]
fn format_2_is_a_clear_error() {
    let bytes = std::fs::read(fixtures_dir().join("hand__type2_two_patterns.mid")).unwrap();
    let err = midi_to_mtf(&bytes, true).unwrap_err().to_string();
    assert!(err.contains("format 2"), "{err}");
}

/// MTF the port writes reads back to the same MTF (channel messages and common metas survive
/// mido's round trip unchanged).
#[test]
fn mtf_round_trips_through_midi() {
    for name in [
        "hand__type1_conductor_96",
        "hand__random_piece_running_status",
    ] {
        let mtf = midi_to_mtf(
            &std::fs::read(fixtures_dir().join(format!("{name}.mid"))).unwrap(),
            false,
        )
        .unwrap();
        let again = midi_to_mtf(&mtf_to_midi(&mtf).unwrap(), false).unwrap();
        assert_eq!(again, mtf, "{name}");
    }
}

#[test]
#[ignore = "needs the golden corpus at ../shared/golden/formats (or CLAMP3_GOLDEN_FORMATS)"]
fn golden_corpus() {
    let root = std::env::var_os("CLAMP3_GOLDEN_FORMATS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden/formats")
        });
    assert!(root.exists(), "no golden corpus at {}", root.display());
    for sub in ["midi", "bad"] {
        let report = check_dir(&root.join(sub));
        println!("{sub}:\n{}", report.summary());
        for f in &report.failures {
            println!("  {f}");
        }
        assert!(
            report.failures.is_empty(),
            "{} mismatches in {sub}",
            report.failures.len()
        );
    }
}
