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
