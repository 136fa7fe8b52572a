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
