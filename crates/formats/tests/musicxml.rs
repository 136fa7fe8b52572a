//! MusicXML → standard ABC → interleaved ABC → patches, against the reference's goldens.
//!
//! The expected files were made by the reference (`python utils/xml2abc.py -d 8 -x <file>`,
//! `abc_pipeline`, `M3Patchilizer().encode(text, add_special_patches=True)`); see
//! `sheet_util/mod.rs` for the fixture archive.

mod sheet_util;

use std::io::Write;

use clamp3_formats::{abc, musicxml, patch, xml2abc, Error};
use sheet_util::{cases, expectations, npy_u8, sibling, text};

fn read_bytes(name: &str, bytes: &[u8]) -> clamp3_formats::Result<String> {
    if name.to_ascii_lowercase().ends_with(".mxl") {
        musicxml::read_mxl(bytes)
    } else {
        musicxml::decode_xml(bytes)
    }
}

/// Every MusicXML case the reference converts gives the same standard ABC, interleaved ABC and
/// patches.
#[test]
fn golden_musicxml_cases_match_byte_for_byte() {
    let cases = cases();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (input, status, _) in expectations(&cases) {
        if !input.starts_with("musicxml/") || status != "ok" {
            continue;
        }
        checked += 1;
        let got = read_bytes(&input, &cases[&input]).and_then(|x| xml2abc::convert(&x));
        let want = text(&cases[&sibling(&input, "abc")]);
        match &got {
            Ok(t) if *t == want => {}
            Ok(_) => failures.push(format!("{input}: standard ABC differs")),
            Err(e) => failures.push(format!("{input}: {e}")),
        }
        let Ok(abc_text) = got else { continue };
        let inter = abc::interleave(&abc_text);
        let want = text(&cases[&sibling(&input, "interleaved.abc")]);
        match &inter {
            Ok(t) if *t == want => {}
            Ok(_) => failures.push(format!("{input}: interleaved ABC differs")),
            Err(e) => failures.push(format!("{input}: {e}")),
        }
        let patches: Vec<u8> = patch::patchilize(&want).concat();
        if patches != npy_u8(&cases[&sibling(&input, "patches.npy")]) {
            failures.push(format!("{input}: patches differ"));
        }
    }
    assert!(checked >= 25, "only {checked} cases in the fixture");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Where the reference fails, so do we, except for `.mxl` archives whose score ends in
/// `.musicxml`, which we read (the reference looks for `*.xml` members only).
#[test]
fn reference_failures_fail_or_improve() {
    let cases = cases();
    let mut seen = 0;
    for (input, status, message) in expectations(&cases) {
        if !status.starts_with("failed_at_xml2abc") {
            continue;
        }
        seen += 1;
        let got = read_bytes(&input, &cases[&input]).and_then(|x| xml2abc::convert(&x));
        if message.contains("'fobj' is not defined") && !input.starts_with("bad/") {
            let abc_text = got.unwrap_or_else(|e| panic!("{input}: {e}"));
            assert!(abc_text.starts_with("X:1\n"), "{input}");
            abc::interleave(&abc_text).unwrap_or_else(|e| panic!("{input}: {e}"));
        } else {
            let err = got.err().unwrap_or_else(|| panic!("{input}: converted"));
            assert!(!err.to_string().is_empty());
        }
    }
    assert!(seen >= 5);
}

/// `container.xml` names the root file, whatever its extension.
#[test]
fn mxl_root_file_comes_from_container() {
    let score = r#"<score-partwise><part-list><score-part id="P1"><part-name>V</part-name>
</score-part></part-list><part id="P1"><measure number="1"><attributes><divisions>1</divisions>
<time><beats>2</beats><beat-type>4</beat-type></time></attributes><note><pitch><step>D</step>
<octave>4</octave></pitch><duration>2</duration></note></measure></part></score-partwise>"#;
    let container = r#"<?xml version="1.0"?><container><rootfiles>
<rootfile full-path="score/main.musicxml"/></rootfiles></container>"#;
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default();
        zip.start_file("META-INF/container.xml", opts).unwrap();
        zip.write_all(container.as_bytes()).unwrap();
        zip.start_file("other.xml", opts).unwrap();
        zip.write_all(b"<not-the-score/>").unwrap();
        zip.start_file("score/main.musicxml", opts).unwrap();
        zip.write_all(score.as_bytes()).unwrap();
        zip.finish().unwrap();
    }
    let xml = musicxml::read_mxl(buf.get_ref()).unwrap();
    assert_eq!(xml, score);
    let abc_text = xml2abc::convert(&xml).unwrap();
    assert_eq!(
        abc_text,
        "X:1\nT:Title\nL:1/8\nM:2/4\nK:none\nV:1 treble nm=\"V\"\nV:1\n D4 | %1\n\n"
    );
}

/// `read_score` picks the reader by extension and names the file in its errors.
#[test]
fn read_score_names_the_file() {
    let dir = std::env::temp_dir().join(format!("clamp3-musicxml-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("broken.mxl");
    std::fs::write(&bad, b"PK\x03\x04 not really a zip").unwrap();
    let err = musicxml::read_score(&bad).unwrap_err();
    assert!(matches!(err, Error::WithPath { .. }));
    assert!(err.to_string().contains("broken.mxl"), "{err}");
    let good = dir.join("ok.xml");
    std::fs::write(&good, "\u{feff}<score-partwise/>").unwrap();
    assert_eq!(musicxml::read_score(&good).unwrap(), "<score-partwise/>");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Broken inputs give errors, never panics: every prefix-cut of a real score, and junk.
#[test]
fn malformed_input_never_panics() {
    let cases = cases();
    let xml = read_bytes(
        "musicxml/bach__bwv66.6.mxl",
        &cases["musicxml/bach__bwv66.6.mxl"],
    )
    .unwrap();
    let bytes = xml.as_bytes();
    for cut in (0..bytes.len()).step_by(bytes.len() / 97 + 1) {
        if let Ok(s) = std::str::from_utf8(&bytes[..cut]) {
            let _ = xml2abc::convert(s);
        }
    }
    for junk in [
        "",
        "<",
        "<a/>",
        "<score-partwise><part/></score-partwise>",
        "\u{0}",
    ] {
        assert!(xml2abc::convert(junk).is_err(), "{junk:?}");
    }
    let mxl = &cases["musicxml/bach__bwv66.6.mxl"];
    for cut in (0..mxl.len()).step_by(mxl.len() / 50 + 1) {
        let _ = musicxml::read_mxl(&mxl[..cut]);
    }
}

/// Every MusicXML file under `bad/` is refused with a message.
#[test]
fn bad_files_give_clear_errors() {
    let cases = cases();
    let mut seen = 0;
    for (name, bytes) in &cases {
        let Some(_) = name.strip_prefix("bad/") else {
            continue;
        };
        if !(name.ends_with(".xml") || name.ends_with(".mxl")) {
            continue;
        }
        seen += 1;
        let err = read_bytes(name, bytes)
            .and_then(|x| xml2abc::convert(&x))
            .expect_err(name);
        assert!(err.to_string().len() > 10, "{name}: {err}");
    }
    assert!(seen >= 6);
}

/// Percussion (unpitched notes, `I:percmap`) and measure repeats (`[I:repeat …]`), which the
/// golden corpus lacks: `extra/drum_sample.xml` is music21's `demos/drum_sample.xml` and
/// `extra/drum_sample.abc` what the reference `python utils/xml2abc.py -d 8 -x` printed for it.
#[test]
fn percussion_and_measure_repeats_match_reference() {
    let cases = cases();
    let xml = musicxml::decode_xml(&cases["extra/drum_sample.xml"]).unwrap();
    let got = xml2abc::convert(&xml).unwrap();
    assert_eq!(got, text(&cases["extra/drum_sample.abc"]));
    assert!(got.contains("I:percmap") && got.contains("[I:repeat"));
}
