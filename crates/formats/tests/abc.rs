//! Standard ABC → interleaved ABC (and patches), against the reference's goldens.
//!
//! The expected files were made by the reference's `abc_pipeline`
//! (`preprocessing/abc/batch_interleaved_abc.py` with abctoolkit 0.0.4) and
//! `M3Patchilizer().encode(text, add_special_patches=True)`; see `sheet_util/mod.rs`.

mod sheet_util;

use clamp3_formats::{abc, patch};
use sheet_util::{cases, expectations, npy_u8, sibling, text};

/// WikiMT and music21 folk-song tunes the reference interleaves give the same bytes and patches.
#[test]
fn golden_abc_cases_match_byte_for_byte() {
    let cases = cases();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (input, status, _) in expectations(&cases) {
        if !input.starts_with("abc/") || status != "ok" {
            continue;
        }
        checked += 1;
        let want = text(&cases[&sibling(&input, "interleaved.abc")]);
        match abc::interleave(&text(&cases[&input])) {
            Ok(t) if t == want => {}
            Ok(_) => failures.push(format!("{input}: interleaved ABC differs")),
            Err(e) => failures.push(format!("{input}: {e}")),
        }
        let patches: Vec<u8> = patch::patchilize(&want).concat();
        if patches != npy_u8(&cases[&sibling(&input, "patches.npy")]) {
            failures.push(format!("{input}: patches differ"));
        }
        assert!(abc::is_interleaved(&want), "{input}");
        assert!(!abc::is_interleaved(&text(&cases[&input])), "{input}");
    }
    assert!(checked >= 40, "only {checked} cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The reference fails on ABC without a bare `V:1` line; we read the body as voice 1. Its other
/// failures are ours too, with the step named.
#[test]
fn reference_failures_fail_or_improve() {
    let cases = cases();
    let (mut improved, mut failed) = (0, 0);
    for (input, status, message) in expectations(&cases) {
        if !input.starts_with("abc/") || status == "ok" {
            continue;
        }
        let got = abc::interleave(&text(&cases[&input]));
        if message.contains("tunebody index not found") {
            match got {
                Ok(out) => {
                    improved += 1;
                    assert!(out.lines().any(|l| l.starts_with("[V:1]")), "{input}");
                }
                // The reference would still fail later on these (e.g. unpaired barlines).
                Err(e) => assert!(e.to_string().contains("failed at"), "{input}: {e}"),
            }
        } else {
            failed += 1;
            let err = got.expect_err(&input);
            assert!(err.to_string().contains("failed at"), "{input}: {err}");
        }
    }
    assert!(improved >= 20 && failed >= 1, "{improved} {failed}");
}

/// ABC files under `bad/` that are valid UTF-8 are refused with the failing step.
#[test]
fn bad_abc_files_give_clear_errors() {
    let cases = cases();
    for (name, bytes) in &cases {
        if !(name.starts_with("bad/") && name.ends_with(".abc")) {
            continue;
        }
        // Invalid UTF-8 is refused when the file is read, before interleaving.
        if let Ok(t) = std::str::from_utf8(bytes) {
            let err = abc::interleave(t).expect_err(name);
            assert!(err.to_string().contains("failed at"), "{name}: {err}");
        }
    }
}

/// Line ends: CRLF and CR read as LF (Python's universal newlines).
#[test]
fn line_endings_do_not_matter() {
    let lf = "X:1\nL:1/8\nM:2/4\nK:G\nV:1\n|: GA Bc | d2 d2 :|\n";
    let want = abc::interleave(lf).unwrap();
    assert_eq!(abc::interleave(&lf.replace('\n', "\r\n")).unwrap(), want);
    assert_eq!(abc::interleave(&lf.replace('\n', "\r")).unwrap(), want);
}

/// Hostile text never panics.
#[test]
fn malformed_abc_never_panics() {
    let cases = cases();
    let sample = text(&cases["abc/variant_cr_wikimt_0005.abc"]);
    for cut in 0..sample.len().min(400) {
        if sample.is_char_boundary(cut) {
            let _ = abc::interleave(&sample[..cut]);
        }
    }
    for junk in [
        "",
        "V:1",
        "V:1\n|",
        "V:1\n::::",
        "K:C\n[",
        "V:1\n(3(3(3",
        "V:1\n\"|\"a|",
    ] {
        let _ = abc::interleave(junk);
    }
}
