//! Every command with `--model clamp2 | m3 | clamp1-s512` on the tiny golden weights of each
//! family (copied into `clamp3-engine`'s fixtures): a mixed folder is embedded with the files a
//! model does not take refused by name, `search`, `score`, `eval`, `classify` and `probe` run,
//! and one feature cache keeps the families apart.

#![allow(clippy::unwrap_used, reason = "test helpers panic on broken fixtures")]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures")
}

/// The binary with a family's tiny model chosen through the environment, as a user would.
fn clamp3(model: &str, cache: &Path) -> Command {
    let f = fixtures();
    let clamp3_tokenizer = f.join("../../../features/tests/fixtures/golden/tokenizer.json");
    let (weights, config, tokenizer) = match model {
        "clamp2" => (
            f.join("clamp2/clamp2.pth"),
            f.join("clamp2/config.json"),
            clamp3_tokenizer,
        ),
        "m3" => (
            f.join("clamp2/m3.pth"),
            f.join("clamp2/config.json"),
            clamp3_tokenizer,
        ),
        _ => (
            f.join("clamp1/clamp-tiny/pytorch_model.bin"),
            f.join("clamp1/clamp-tiny/config.json"),
            f.join("clamp1/distilroberta-tiny/tokenizer.json"),
        ),
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clamp3"));
    cmd.env("CLAMP3_MODEL", model)
        .env("CLAMP3_WEIGHTS", weights)
        .env("CLAMP3_CONFIG", config)
        .env("CLAMP3_TOKENIZER", tokenizer)
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

/// A fixture's bytes, gunzipped when only its `.gz` copy is stored.
fn bytes(relative: &str) -> Vec<u8> {
    let plain = fixtures().join(relative);
    if plain.exists() {
        return std::fs::read(plain).unwrap();
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(fixtures().join(format!("{relative}.gz"))).unwrap(),
    )
    .read_to_end(&mut out)
    .unwrap();
    out
}

/// A reference vector stored as a gzipped `.npy`.
fn golden(relative: &str) -> Vec<f32> {
    clamp3_features::npy::parse(&bytes(relative)).unwrap().data
}

fn write(dir: &Path, name: &str, contents: &[u8]) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

/// Texts and scores both CLaMP 2 and CLaMP 1 take: two text queries and, for CLaMP 1,
/// MusicXML; for CLaMP 2, interleaved ABC and MTF.
fn library(dir: &Path, clamp1: bool) {
    if clamp1 {
        write(
            dir,
            "text/a.txt",
            &bytes("clamp1/cases/text/t01_short_en.txt"),
        );
        write(dir, "text/b.txt", &bytes("clamp1/cases/text/t07_zh.txt"));
        write(
            dir,
            "music/a.xml",
            &bytes("clamp1/cases/music/m03_lyrics_verses.xml"),
        );
        write(
            dir,
            "music/b.mxl",
            &bytes("clamp1/cases/music/m02_bach_chorale.mxl"),
        );
    } else {
        write(
            dir,
            "text/a.txt",
            &bytes("clamp2/cases/text/t01_short_en.txt"),
        );
        write(dir, "text/b.txt", &bytes("clamp2/cases/text/t07_zh.txt"));
        write(
            dir,
            "music/a.abc",
            &bytes("clamp2/cases/symbolic/s01_abc_short.abc"),
        );
        write(
            dir,
            "music/b.mtf",
            &bytes("clamp2/cases/symbolic/s07_mtf_short.mtf"),
        );
    }
}

fn read_vector(path: &Path) -> Vec<f32> {
    clamp3_features::npy::parse(&std::fs::read(path).unwrap())
        .unwrap()
        .data
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn embed_takes_what_each_model_reads_and_refuses_the_rest_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    for (model, clamp1, refused, want) in [
        (
            "clamp2",
            false,
            "song.wav",
            "clamp2/cases/text/t01_short_en.global.npy",
        ),
        (
            "clamp1-s512",
            true,
            "song.mid",
            "clamp1/cases/text/t01_short_en.global.npy",
        ),
    ] {
        let lib = dir.path().join(model);
        library(&lib, clamp1);
        write(&lib, refused, b"not really");
        let out = dir.path().join(format!("{model}-out"));
        let (code, _, stderr) = run(clamp3(model, &cache).arg("embed").arg(&lib).arg(&out));
        assert_ne!(code, Some(0), "a refused file fails the batch: {stderr}");
        assert!(
            stderr.contains(refused) && stderr.contains(&format!("{model} does not take")),
            "{stderr}"
        );
        let ours = read_vector(&out.join("text/a.npy"));
        assert!(max_abs_diff(&ours, &golden(want)) < 1e-4, "{model}");
        for name in ["text/b.npy", "music/a.npy", "music/b.npy"] {
            assert!(out.join(name).exists(), "{model}: {name}");
        }
    }

    // M3 gives per-patch features only.
    let lib = dir.path().join("m3");
    library(&lib, false);
    std::fs::remove_dir_all(lib.join("text")).unwrap();
    let out = dir.path().join("m3-out");
    let (code, _, stderr) = run(clamp3("m3", &cache)
        .arg("embed")
        .arg(&lib)
        .arg(&out)
        .arg("--local"));
    assert_eq!(code, Some(0), "{stderr}");
    let ours = read_vector(&out.join("music/a.npy"));
    let want = golden("clamp2/cases/symbolic/s01_abc_short.m3.npy");
    assert!(max_abs_diff(&ours, &want) < 1e-4);
    let (code, _, stderr) = run(clamp3("m3", &cache)
        .arg("embed")
        .arg(&lib)
        .arg(dir.path().join("m3-global")));
    assert_ne!(code, Some(0));
    assert!(stderr.contains("per-patch"), "{stderr}");
}

#[test]
fn retrieval_commands_run_for_each_family_and_the_cache_keeps_them_apart() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    for (model, clamp1) in [("clamp2", false), ("clamp1-s512", true)] {
        let lib = dir.path().join(model);
        library(&lib, clamp1);
        let (text, music) = (lib.join("text"), lib.join("music"));
        let (code, stdout, stderr) = run(clamp3(model, &cache)
            .arg("search")
            .arg(text.join("a.txt"))
            .arg(&music)
            .arg("--json"));
        assert_eq!(code, Some(0), "{model} search: {stderr}");
        // Both models share one cache; nothing of the other family is reused.
        assert!(
            stderr.contains("embedded 3 files, 0 from the cache"),
            "{model}: {stderr}"
        );
        let results: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(results["results"].as_array().unwrap().len(), 2, "{stdout}");

        let (code, _, stderr) = run(clamp3(model, &cache)
            .arg("score")
            .arg(&text)
            .arg(&music)
            .arg("-o")
            .arg(dir.path().join(format!("{model}-scores.jsonl"))));
        assert_eq!(code, Some(0), "{model} score: {stderr}");
        // Only b.txt is new to this family's part of the cache.
        assert!(
            stderr
                .contains("embedded 1 file, 1 from the cache\nembedded 0 files, 2 from the cache"),
            "{model}: {stderr}"
        );

        let (code, stdout, stderr) = run(clamp3(model, &cache)
            .arg("eval")
            .arg(&text)
            .arg(&music)
            .arg("--json")
            .arg("-o")
            .arg(dir.path().join(format!("{model}-ranks.jsonl"))));
        // a.txt ↔ a.*, b.txt ↔ b.*: pairs by name.
        assert_eq!(code, Some(0), "{model} eval: {stderr}");
        let metrics: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(metrics["queries"], 2, "{stdout}");

        let (code, stdout, stderr) = run(clamp3(model, &cache).arg("classify").arg(&music).args([
            "--labels",
            "Jazz,Folk",
            "--json",
        ]));
        assert_eq!(code, Some(0), "{model} classify: {stderr}");
        assert_eq!(stdout.lines().count(), 2, "{stdout}");

        let train = dir.path().join(format!("{model}-train"));
        for (i, name) in ["a", "b"].iter().enumerate() {
            for label in ["jazz", "folk"] {
                let from = std::fs::read_dir(&music)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .find(|p| p.file_stem().unwrap() == *name)
                    .unwrap();
                let ext = from.extension().unwrap().to_string_lossy().into_owned();
                write(
                    &train,
                    &format!("{label}_{i}.{ext}"),
                    &std::fs::read(&from).unwrap(),
                );
            }
        }
        let (code, _, stderr) = run(clamp3(model, &cache)
            .args(["probe", "train"])
            .arg(&train)
            .args(["--epochs", "2", "-o"])
            .arg(dir.path().join(format!("{model}-probe.safetensors"))));
        assert_eq!(code, Some(0), "{model} probe: {stderr}");
    }
}
