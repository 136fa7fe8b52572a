//! Images as queries end to end: `clamp3 search photo.png <folder>` and `clamp3 inspect caption`
//! with the golden tiny CLaMP 3 and the golden tiny BLIP. An image is embedded as its caption, so
//! a text file holding exactly the caption is its nearest neighbour at similarity 1.

#![allow(clippy::unwrap_used, reason = "test helpers panic on broken fixtures")]

use std::path::{Path, PathBuf};
use std::process::Command;

fn crates() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn golden() -> PathBuf {
    crates().join("features/tests/fixtures/golden")
}

/// p01_astronaut, which the tiny BLIP captions "cake" (ids [DEC] 140 [SEP]).
fn photo() -> PathBuf {
    crates().join("images/tests/fixtures/blip/images/p01_astronaut.png")
}

fn clamp3(cache: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clamp3"));
    cmd.env("CLAMP3_WEIGHTS", golden().join("clamp3.pth"))
        .env("CLAMP3_CONFIG", golden().join("config.json"))
        .env("CLAMP3_TOKENIZER", golden().join("tokenizer.json"))
        .env(
            "CLAMP3_BLIP",
            crates().join("models/tests/fixtures/blip/model"),
        )
        .env("CLAMP3_CACHE", cache);
    cmd
}

fn library() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let cases = golden().join("cases");
    for (from, to) in [
        ("text/t01_short_en.txt", "t01_short_en.txt"),
        ("text/t02_long_wikimt.txt", "t02_long_wikimt.txt"),
        ("symbolic/s01_abc_short.abc", "s01_abc_short.abc"),
    ] {
        std::fs::copy(cases.join(from), dir.path().join(to)).unwrap();
    }
    std::fs::write(dir.path().join("the_caption.txt"), "cake").unwrap();
    dir
}

#[test]
fn search_with_a_photo_shows_its_caption_and_finds_it() {
    let library = library();
    let cache = tempfile::tempdir().unwrap();
    for round in ["cold", "cached"] {
        let out = clamp3(cache.path())
            .arg("search")
            .arg(photo())
            .arg(library.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{round}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut lines = stdout.lines();
        assert_eq!(
            lines.next(),
            Some("Query caption: cake"),
            "{round}: {stdout}"
        );
        assert_eq!(lines.next(), Some("Top 4 results among 4 candidates:"));
        assert_eq!(lines.next(), Some("the_caption 1"), "{round}: {stdout}");
    }
    let out = clamp3(cache.path())
        .args(["search", "--json"])
        .arg(photo())
        .arg(library.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["caption"], "cake");
    assert_eq!(value["caption_ids"], serde_json::json!([159, 140, 3]));
    assert_eq!(value["results"][0]["name"], "the_caption");
}

#[test]
fn inspect_caption_prints_the_caption_and_its_ids() {
    let cache = tempfile::tempdir().unwrap();
    let out = clamp3(cache.path())
        .args(["inspect", "caption"])
        .arg(photo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "cake\n[159,140,3]\n");
}

#[test]
fn a_broken_image_query_names_the_file() {
    let library = library();
    let cache = tempfile::tempdir().unwrap();
    let bad = crates().join("images/tests/fixtures/blip/bad/truncated.jpg");
    let out = clamp3(cache.path())
        .arg("search")
        .arg(&bad)
        .arg(library.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("truncated.jpg"), "{stderr}");
    assert!(stderr.contains("truncated"), "{stderr}");
}

fn blip_fixtures() -> PathBuf {
    crates().join("images/tests/fixtures/blip")
}

/// Every file under `dir`, relative, `/`-separated, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let relative = e.path().strip_prefix(dir).unwrap();
            relative.to_string_lossy().replace('\\', "/")
        })
        .collect();
    files.sort();
    files
}

/// The golden `tree/` case: the reference's `process_images` over a folder.
#[test]
fn convert_caption_writes_what_process_images_writes() {
    let tree = blip_fixtures().join("tree");
    let out = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let run = clamp3(cache.path())
        .args(["convert", "caption"])
        .arg(tree.join("input"))
        .arg(out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    // c.jpeg, f.gif, notes.txt and i.bmp are skipped as the reference skips them.
    assert!(stderr.contains("captioned 6 files"), "{stderr}");
    assert!(stderr.contains("ignored 4 of unsupported type"), "{stderr}");
    let expected = tree.join("expected");
    assert_eq!(files_under(out.path()), files_under(&expected));
    for name in files_under(&expected) {
        assert_eq!(
            std::fs::read(out.path().join(&name)).unwrap(),
            std::fs::read(expected.join(&name)).unwrap(),
            "{name}"
        );
    }
    // Every input folder gets its output folder, even one without images.
    for folder in ["only_skipped", "sub", "sub/deeper"] {
        assert!(out.path().join(folder).is_dir(), "{folder}");
    }
}

/// Each `bad/` image is reported by name at the end; the good ones are still captioned, and no
/// output (or temporary file) is left for a bad one.
#[test]
fn convert_caption_reports_each_bad_image_and_goes_on() {
    let input = tempfile::tempdir().unwrap();
    let bad = blip_fixtures().join("bad");
    // (fixture, name here): both truncated files would write `truncated.txt`.
    let bad_files = [
        ("empty.png", "empty.png"),
        ("height1_12x1.png", "height1_12x1.png"),
        ("text_named.png", "text_named.png"),
        ("truncated.jpg", "truncated.jpg"),
        ("truncated.png", "truncated_png.png"),
    ];
    for (fixture, name) in bad_files {
        std::fs::copy(bad.join(fixture), input.path().join(name)).unwrap();
    }
    std::fs::copy(photo(), input.path().join("photo.png")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let run = clamp3(cache.path())
        .args(["convert", "caption"])
        .arg(input.path())
        .arg(out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("captioned 1 file, 5 failed"), "{stderr}");
    for (_, name) in bad_files {
        let line = stderr
            .lines()
            .find(|l| l.starts_with("error: ") && l.contains(name))
            .unwrap_or_else(|| panic!("{name} not reported: {stderr}"));
        let reason = match name {
            "empty.png" | "text_named.png" => "cannot identify image file",
            "height1_12x1.png" => "1 pixel tall",
            _ => "truncated",
        };
        assert!(line.contains(reason), "{line}");
    }
    assert_eq!(files_under(out.path()), ["photo.txt"]);
    assert_eq!(
        std::fs::read_to_string(out.path().join("photo.txt")).unwrap(),
        "cake"
    );
}

/// A folder holding only the photo, as `<name>`.
fn photo_dir(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(photo(), dir.path().join(name)).unwrap();
    dir
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn score_shows_the_captions_of_its_images() {
    let queries = photo_dir("the_caption.png");
    let library = library();
    let cache = tempfile::tempdir().unwrap();
    let photo = queries.path().join("the_caption.png");
    let stdout = run_ok(
        clamp3(cache.path())
            .arg("score")
            .arg(queries.path())
            .arg(library.path()),
    );
    assert_eq!(
        stdout.lines().next(),
        Some(format!("Caption of {}: cake", photo.display()).as_str()),
        "{stdout}"
    );
    let stdout = run_ok(
        clamp3(cache.path())
            .args(["score", "--json"])
            .arg(queries.path())
            .arg(library.path()),
    );
    let value: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        value["captions"],
        serde_json::json!([{
            "path": photo.display().to_string(),
            "caption": "cake",
            "caption_ids": [159, 140, 3],
        }])
    );
    // Pairwise: the photo pairs with the text of its caption, and its row carries the caption.
    let jsonl = cache.path().join("pairs.jsonl");
    run_ok(
        clamp3(cache.path())
            .args(["score", "--pairwise", "--output"])
            .arg(&jsonl)
            .arg(queries.path())
            .arg(library.path()),
    );
    let row: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&jsonl).unwrap().trim()).unwrap();
    assert_eq!(row["query_caption"], "cake");
    assert_eq!(row["similarity"], 1.0);
    assert!(row.get("reference_caption").is_none(), "{row}");
}

#[test]
fn eval_shows_the_captions_of_its_images() {
    let queries = photo_dir("the_caption.png");
    let references = tempfile::tempdir().unwrap();
    std::fs::write(references.path().join("the_caption.txt"), "cake").unwrap();
    let cache = tempfile::tempdir().unwrap();
    let ranks = cache.path().join("ranks.jsonl");
    let stdout = run_ok(
        clamp3(cache.path())
            .args(["eval", "--output"])
            .arg(&ranks)
            .arg(queries.path())
            .arg(references.path()),
    );
    let photo = queries.path().join("the_caption.png");
    assert!(
        stdout.contains(&format!("Caption of {}: cake\n", photo.display())),
        "{stdout}"
    );
    assert!(stdout.contains("MRR: 1\n"), "{stdout}");
    let row: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&ranks).unwrap().trim()).unwrap();
    assert_eq!(row["query_caption"], "cake");
    let stdout = run_ok(
        clamp3(cache.path())
            .args(["eval", "--json", "--output"])
            .arg(&ranks)
            .arg(queries.path())
            .arg(references.path()),
    );
    let value: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(value["captions"][0]["caption"], "cake");
}

#[test]
fn embed_keep_captions_writes_each_images_caption_beside_its_vector() {
    let input = photo_dir("photo.png");
    std::fs::write(input.path().join("words.txt"), "a calm piano piece").unwrap();
    let out = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    run_ok(
        clamp3(cache.path())
            .args(["embed", "--keep-captions"])
            .arg(input.path())
            .arg(out.path()),
    );
    assert_eq!(
        files_under(out.path()),
        ["photo.caption.json", "photo.npy", "words.npy"]
    );
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("photo.caption.json")).unwrap())
            .unwrap();
    assert_eq!(sidecar["caption"], "cake");
    assert_eq!(sidecar["caption_ids"], serde_json::json!([159, 140, 3]));
    // Without the flag, a vector alone; a missing sidecar makes the flag redo the image.
    std::fs::remove_file(out.path().join("photo.caption.json")).unwrap();
    run_ok(
        clamp3(cache.path())
            .arg("embed")
            .arg(input.path())
            .arg(out.path()),
    );
    assert!(!out.path().join("photo.caption.json").exists());
    run_ok(
        clamp3(cache.path())
            .args(["embed", "--keep-captions"])
            .arg(input.path())
            .arg(out.path()),
    );
    assert!(out.path().join("photo.caption.json").exists());
}
