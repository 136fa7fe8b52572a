//! Behaviour the engine brought to every command, each found by using clamp3 as a new user
//! would: vectors written by `clamp3 embed` are used as vectors, an error names its file once, a
//! closed pipe is not a failure, clashing names are reported, and `convert` refuses outputs that
//! would overwrite each other.

#![allow(clippy::unwrap_used, reason = "test helpers panic on broken fixtures")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn crates() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn golden() -> PathBuf {
    crates().join("features/tests/fixtures/golden")
}

fn clamp3(cache: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clamp3"));
    cmd.env("CLAMP3_WEIGHTS", golden().join("clamp3.pth"))
        .env("CLAMP3_CONFIG", golden().join("config.json"))
        .env("CLAMP3_TOKENIZER", golden().join("tokenizer.json"))
        .env("CLAMP3_CACHE", cache);
    cmd
}

fn run(cmd: &mut Command) -> (Option<i32>, String, String) {
    let out = cmd.output().expect("the clamp3 binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A folder of three texts and two scores from the golden cases.
fn library() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let cases = golden().join("cases");
    for (from, to) in [
        ("text/t01_short_en.txt", "t01.txt"),
        ("text/t02_long_wikimt.txt", "t02.txt"),
        ("text/t03_long_paragraph.txt", "t03.txt"),
        ("symbolic/s02_abc_long.abc", "s02.abc"),
        ("symbolic/s06_mtf_chorale.mtf", "s06.mtf"),
    ] {
        std::fs::copy(cases.join(from), dir.path().join(to)).unwrap();
    }
    dir
}

/// `name similarity` lines of a search, parsed.
fn ranked(stdout: &str) -> Vec<(String, f64)> {
    stdout
        .lines()
        .skip(1)
        .map(|l| {
            let (name, sim) = l.rsplit_once(' ').unwrap();
            (name.to_string(), sim.parse().unwrap())
        })
        .collect()
}

#[test]
fn a_folder_of_embed_outputs_is_searched_as_vectors() {
    let cache = tempfile::tempdir().unwrap();
    let lib = library();
    let vectors = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(clamp3(cache.path())
        .arg("embed")
        .arg(lib.path())
        .arg(vectors.path()));
    assert_eq!(code, Some(0), "{stderr}");
    let query = ["search", "--text", "a cheerful folk tune", "--no-cache"];
    let (code, raw, stderr) = run(clamp3(cache.path()).args(query).arg(lib.path()));
    assert_eq!(code, Some(0), "{stderr}");
    let (code, from_vectors, stderr) = run(clamp3(cache.path()).args(query).arg(vectors.path()));
    assert_eq!(code, Some(0), "{stderr}");
    // The same ranking and cosines: the [1, D] arrays were used as they are, not re-encoded.
    assert_eq!(ranked(&raw), ranked(&from_vectors));
    // Only the query was embedded.
    assert!(stderr.contains("embedded 1 file,"), "{stderr}");
    // Forced the other way, the vectors are refused with a clear message.
    let (code, _, stderr) = run(clamp3(cache.path())
        .args(query)
        .args(["--npy", "features"])
        .arg(vectors.path()));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("read as audio features"), "{stderr}");
}

#[test]
fn a_failing_query_names_its_file_once() {
    let cache = tempfile::tempdir().unwrap();
    let lib = library();
    let short = crates().join("audio/tests/fixtures/a09_0p7s_wav24k_mono.wav");
    let (code, _, stderr) = run(clamp3(cache.path())
        .env("CLAMP3_MERT", crates().join("models/tests/fixtures/mert"))
        .arg("search")
        .arg(&short)
        .arg(lib.path()));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("too short"), "{stderr}");
    assert_eq!(
        stderr.matches("a09_0p7s_wav24k_mono.wav").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn a_closed_pipe_ends_every_command_quietly() {
    let cache = tempfile::tempdir().unwrap();
    let lib = library();
    let text = golden().join("cases/text/t01_short_en.txt");
    let commands: Vec<Vec<std::ffi::OsString>> = vec![
        vec![
            "search".into(),
            "--text".into(),
            "folk".into(),
            lib.path().into(),
        ],
        vec![
            "classify".into(),
            lib.path().into(),
            "--labels".into(),
            "folk,jazz".into(),
        ],
        vec!["inspect".into(), "tokens".into(), text.into()],
        vec!["cache".into(), "info".into()],
    ];
    for args in commands {
        let mut child = clamp3(cache.path())
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Nobody reads: the first write meets a closed pipe.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn clashing_reference_names_are_reported() {
    let cache = tempfile::tempdir().unwrap();
    let lib = library();
    // `s02.abc` and `s02.txt` both have the name `s02`.
    std::fs::copy(
        golden().join("cases/text/t03_long_paragraph.txt"),
        lib.path().join("s02.txt"),
    )
    .unwrap();
    let (code, stdout, stderr) = run(clamp3(cache.path())
        .args(["search", "--text", "folk", "--top-k", "10"])
        .arg(lib.path()));
    assert_eq!(code, Some(0), "{stderr}");
    let names: Vec<String> = ranked(&stdout).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.len(), 6, "{stdout}");
    assert!(names.contains(&"s02.abc".to_string()) && names.contains(&"s02.txt".to_string()));
    assert!(stderr.contains("share a name"), "{stderr}");

    let queries = tempfile::tempdir().unwrap();
    std::fs::copy(
        golden().join("cases/text/t01_short_en.txt"),
        queries.path().join("s02.txt"),
    )
    .unwrap();
    let (code, _, stderr) = run(clamp3(cache.path())
        .args(["score", "--pairwise", "-o"])
        .arg(cache.path().join("pairs.jsonl"))
        .arg(queries.path())
        .arg(lib.path()));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("duplicate reference"), "{stderr}");
    let (code, _, stderr) = run(clamp3(cache.path())
        .args(["eval", "-o"])
        .arg(cache.path().join("ranks.jsonl"))
        .arg(queries.path())
        .arg(lib.path()));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("duplicate reference"), "{stderr}");
}

#[test]
fn convert_refuses_outputs_that_collide() {
    let input = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let midi = crates().join("formats/tests/fixtures");
    let some_midi = walk(&midi)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "mid"))
        .expect("a MIDI fixture");
    std::fs::copy(&some_midi, input.path().join("a.mid")).unwrap();
    std::fs::copy(&some_midi, input.path().join("a.midi")).unwrap();
    let (code, _, stderr) = run(Command::new(env!("CARGO_BIN_EXE_clamp3"))
        .args(["convert", "midi2mtf"])
        .arg(input.path())
        .arg(out.path()));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("same output file"), "{stderr}");
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
