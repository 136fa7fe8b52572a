//! abc2xml against the reference: every case of the golden set of
//! `shared/golden/abc2xml/` (CLaMP 3's `batch_abc2xml.py` running `utils/abc2xml.py` 245 with
//! its vendored pyparsing), with `<encoding-date>` set to `2000-01-01` as in the goldens.
//!
//! `fixtures/abc2xml/cases.bin.gz` holds the cases in manifest order, each as a line
//! `#case\t<input>\t<status>\t<input bytes>\t<output bytes>\n` followed by the input file and the
//! reference's output file (none when the reference wrote nothing).

use std::io::Read;
use std::path::Path;

use clamp3_formats::abc2xml::{self, Options};

/// Byte-exact share of the cases where the reference writes a file; raised as the port grows.
const MIN_PASS_RATE: f64 = 1.0;

struct Case {
    input: String,
    ok: bool,
    abc: Vec<u8>,
    xml: Vec<u8>,
}

fn cases() -> Vec<Case> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/abc2xml/cases.bin.gz");
    let mut data = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("fixture"))
        .read_to_end(&mut data)
        .expect("gunzip");
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let nl = pos
            + data[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .expect("header");
        let header = std::str::from_utf8(&data[pos..nl]).expect("utf-8 header");
        let f: Vec<&str> = header.split('\t').collect();
        assert_eq!(f[0], "#case");
        let (in_len, out_len): (usize, usize) = (
            f[3].parse().expect("input length"),
            f[4].parse().expect("output length"),
        );
        let start = nl + 1;
        out.push(Case {
            input: f[1].to_string(),
            ok: f[2] == "ok",
            abc: data[start..start + in_len].to_vec(),
            xml: data[start + in_len..start + in_len + out_len].to_vec(),
        });
        pos = start + in_len + out_len;
    }
    out
}

fn first_difference(a: &str, b: &str) -> String {
    let line = a
        .lines()
        .zip(b.lines())
        .position(|(x, y)| x != y)
        .unwrap_or_else(|| a.lines().count().min(b.lines().count()));
    format!(
        "line {}: ours {:?} reference {:?}",
        line + 1,
        a.lines().nth(line).unwrap_or(""),
        b.lines().nth(line).unwrap_or("")
    )
}

#[test]
fn golden_cases_are_byte_exact() {
    let options = Options {
        date: "2000-01-01".into(),
    };
    let cases = cases();
    assert_eq!(cases.len(), 253);
    let (mut ok_total, mut ok_exact) = (0, 0);
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.input.rsplit('/').next().unwrap_or(&case.input);
        if !case.ok {
            let refused =
                abc2xml::glob_refuses(name) || abc2xml::convert(&case.abc, &options).is_err();
            assert!(
                refused,
                "{}: the reference fails, the port converts it",
                case.input
            );
            continue;
        }
        ok_total += 1;
        match abc2xml::convert(&case.abc, &options) {
            Ok(out) if out.xml.as_bytes() == case.xml => ok_exact += 1,
            Ok(out) => failures.push(format!(
                "{}: differs at {}",
                case.input,
                first_difference(&out.xml, &String::from_utf8_lossy(&case.xml))
            )),
            Err(e) => failures.push(format!("{}: error {e}", case.input)),
        }
    }
    let rate = ok_exact as f64 / ok_total as f64;
    println!(
        "abc2xml golden: {ok_exact}/{ok_total} byte-exact ({:.1} %)",
        rate * 100.0
    );
    for f in &failures {
        println!("  {f}");
    }
    assert!(
        rate >= MIN_PASS_RATE,
        "pass rate {:.1} % below {:.1} %",
        rate * 100.0,
        MIN_PASS_RATE * 100.0
    );
}

/// `fixtures/abc2xml/roundtrip.bin.gz`: for each formats_musicxml case, a line
/// `#case\t<stem>\t<first abc bytes>\t<interleaved bytes>\t<reference round trip bytes>\n` and the
/// three files: the ABC that `xml2abc.py -d 8 -x` made of the MusicXML, its interleaved form,
/// and what `xml2abc.py -d 8 -x` makes of the reference abc2xml's MusicXML for it.
fn round_trip_cases() -> Vec<(String, String, Vec<u8>, String)> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/abc2xml/roundtrip.bin.gz");
    let mut data = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("fixture"))
        .read_to_end(&mut data)
        .expect("gunzip");
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let nl = pos
            + data[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .expect("header");
        let header = std::str::from_utf8(&data[pos..nl]).expect("utf-8 header");
        let f: Vec<&str> = header.split('\t').collect();
        let lens: Vec<usize> = f[2..5].iter().map(|x| x.parse().expect("length")).collect();
        let a = nl + 1;
        let (b, c, d) = (
            a + lens[0],
            a + lens[0] + lens[1],
            a + lens[0] + lens[1] + lens[2],
        );
        let text = |r: std::ops::Range<usize>| String::from_utf8(data[r].to_vec()).expect("utf-8");
        out.push((
            f[1].to_string(),
            text(a..b),
            data[b..c].to_vec(),
            text(c..d),
        ));
        pos = d;
    }
    out
}

/// MusicXML → ABC → interleaved ABC → MusicXML → ABC: the port's last ABC is the reference's
/// (so the first ABC comes back wherever the reference's round trip gives it back; it loses
/// titles and lyrics, which interleaving drops, in most of these scores).
#[test]
fn round_trip_matches_the_reference() {
    let options = Options {
        date: "2000-01-01".into(),
    };
    let cases = round_trip_cases();
    assert_eq!(cases.len(), 61);
    let mut identical = 0;
    for (stem, first_abc, interleaved, reference_abc) in &cases {
        let xml = abc2xml::convert(interleaved, &options)
            .unwrap_or_else(|e| panic!("{stem}: {e}"))
            .xml;
        let abc = clamp3_formats::xml2abc::convert(&xml).unwrap_or_else(|e| panic!("{stem}: {e}"));
        assert_eq!(
            &abc, reference_abc,
            "{stem}: round trip differs from the reference's"
        );
        if &abc == first_abc {
            identical += 1;
        }
    }
    println!("round trip: {identical}/61 give back the first ABC (as the reference)");
    assert_eq!(identical, 6);
}

fn expect_refused(abc: &str, what: &str) {
    let options = Options {
        date: "2000-01-01".into(),
    };
    let start = std::time::Instant::now();
    let err = abc2xml::convert(abc.as_bytes(), &options).expect_err(what);
    assert!(err.to_string().contains(what), "{err}");
    assert!(
        start.elapsed().as_secs() < 5,
        "refusing took {:?}",
        start.elapsed()
    );
}

#[test]
fn hostile_input_is_refused_with_a_clear_error() {
    // grace groups in chords in grace groups ...
    let deep = format!("X:1\nK:C\n{}c{}|\n", "[{".repeat(5000), "}]".repeat(5000));
    expect_refused(&deep, "nested deeper than");
    let unbalanced = format!("X:1\nK:C\n{}c|\n", "{[".repeat(100_000));
    expect_refused(&unbalanced, "nested deeper than");
    let score = format!(
        "X:1\n%%score {}1{}\nK:C\nc|\n",
        "{".repeat(500),
        "}".repeat(500)
    );
    expect_refused(&score, "nested deeper than");
    expect_refused("X:1\nK:C\nZ999999999|\n", "multi-measure rest");
    expect_refused("X:1\nK:C\nc99999999999999999999|\n", "digits");
    expect_refused(&format!("X:1\nK:C\nc{}|\n", "/".repeat(100)), "slashes");
    let long = format!("X:1\nK:C\n{}\n", "c".repeat(2 << 20));
    expect_refused(&long, "a line of");
}

#[test]
fn reference_failures_are_clear_errors() {
    let options = Options {
        date: "2000-01-01".into(),
    };
    let err = |abc: &str| {
        abc2xml::convert(abc.as_bytes(), &options)
            .expect_err(abc)
            .to_string()
    };
    assert!(err("").contains("empty"));
    assert!(err("X:1\nK:C\n|\n").contains("syntax error"));
    assert!(err("X:1\nK:C\n[V:1 c|\n").contains("unclosed [V:"));
    assert!(err("X:1\n%%score (1 2\nK:C\nc|\n").contains("%%score"));
    assert!(abc2xml::glob_refuses("glob[1].abc"));
    assert!(!abc2xml::glob_refuses("plain name.abc"));
    assert_eq!(
        abc2xml::output_name(Path::new("dir/x.interleaved.abc")),
        "x.interleaved.xml"
    );
    assert_eq!(abc2xml::date_from_unix(946_684_800), "2000-01-01");
    assert_eq!(abc2xml::date_from_unix(1_709_164_800), "2024-02-29");
}
