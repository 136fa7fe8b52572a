//! `clamp3 embed` and `clamp3 inspect` from the command line, with the tiny golden model.

#![allow(clippy::unwrap_used, reason = "test helpers panic on broken fixtures")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../features/tests/fixtures/golden")
}

/// The binary with the tiny model selected through the environment, as a user would.
fn clamp3() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clamp3"));
    cmd.env("CLAMP3_WEIGHTS", golden().join("clamp3.pth"))
        .env("CLAMP3_CONFIG", golden().join("config.json"))
        .env("CLAMP3_TOKENIZER", golden().join("tokenizer.json"))
        .env(
            "CLAMP3_CACHE",
            std::env::temp_dir().join("clamp3-test-cache-unused"),
        );
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the clamp3 binary runs")
}

/// Reads a float32 `.npy` written by us: (shape, values).
fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    let array = clamp3_features::npy::parse(&bytes).unwrap();
    assert!(String::from_utf8_lossy(&bytes[..128]).contains("'descr': '<f4'"));
    (array.shape, array.data)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A folder with one case of each modality in a subfolder, plus a corrupt text file.
fn library() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let cases = golden().join("cases");
    std::fs::create_dir_all(dir.path().join("scores")).unwrap();
    for (from, to) in [
        ("text/t01_short_en.txt", "t01_short_en.txt"),
        ("text/t18_long_multiline.txt", "t18_long_multiline.txt"),
        ("symbolic/s02_abc_long.abc", "scores/s02_abc_long.abc"),
        ("symbolic/s06_mtf_chorale.mtf", "scores/s06_mtf_chorale.mtf"),
        (
            "audio_features/f05_rows_2L_plus_5.npy",
            "f05_rows_2L_plus_5.npy",
        ),
    ] {
        std::fs::copy(cases.join(from), dir.path().join(to)).unwrap();
    }
    std::fs::write(dir.path().join("broken.txt"), b"\xff\xfe not utf-8").unwrap();
    std::fs::write(dir.path().join("notes.pdf"), b"%PDF").unwrap();
    dir
}

fn golden_output(stem: &str, kind: &str) -> PathBuf {
    let cases = golden().join("cases");
    ["text", "symbolic", "audio_features"]
        .iter()
        .map(|m| cases.join(m).join(format!("{stem}.{kind}.npy")))
        .find(|p| p.exists())
        .unwrap()
}

#[test]
fn embed_folder_reproduces_goldens_and_reports_the_bad_file() {
    let input = library();
    for (flag, kind) in [(None, "global"), (Some("--local"), "local")] {
        let out = tempfile::tempdir().unwrap();
        let mut cmd = clamp3();
        cmd.arg("embed").arg(input.path()).arg(out.path());
        if let Some(flag) = flag {
            cmd.arg(flag);
        }
        let result = run(&mut cmd);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("broken.txt") && stderr.contains("UTF-8"),
            "{stderr}"
        );
        assert!(stderr.contains("embedded 5 files"), "{stderr}");
        assert!(stderr.contains("notes.pdf"), "{stderr}");
        for rel in [
            "t01_short_en",
            "t18_long_multiline",
            "scores/s02_abc_long",
            "scores/s06_mtf_chorale",
            "f05_rows_2L_plus_5",
        ] {
            let ours = read_npy(&out.path().join(format!("{rel}.npy")));
            let stem = Path::new(rel).file_name().unwrap().to_str().unwrap();
            let want =
                clamp3_features::npy::parse(&std::fs::read(golden_output(stem, kind)).unwrap())
                    .unwrap();
            assert_eq!(ours.0, want.shape, "{rel} {kind}");
            assert!(max_abs_diff(&ours.1, &want.data) <= 1e-4, "{rel} {kind}");
        }
        assert!(!out.path().join("broken.npy").exists());
        // Nothing half-written is left behind.
        let leftovers: Vec<_> = walk(out.path())
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
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

#[test]
fn existing_outputs_are_skipped_unless_forced() {
    let input = tempfile::tempdir().unwrap();
    std::fs::copy(
        golden().join("cases/text/t01_short_en.txt"),
        input.path().join("a.txt"),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("a.npy"), b"placeholder").unwrap();
    let result = run(clamp3().arg("embed").arg(input.path()).arg(out.path()));
    assert!(result.status.success());
    assert!(String::from_utf8_lossy(&result.stderr).contains("skipped 1"));
    assert_eq!(
        std::fs::read(out.path().join("a.npy")).unwrap(),
        b"placeholder"
    );
    let result = run(clamp3()
        .arg("embed")
        .arg(input.path())
        .arg(out.path())
        .arg("--force"));
    assert!(result.status.success());
    assert_eq!(read_npy(&out.path().join("a.npy")).0, [1, 24]);
}

#[test]
fn single_file_input_writes_next_to_output_dir() {
    let out = tempfile::tempdir().unwrap();
    let file = golden().join("cases/symbolic/s01_abc_short.abc");
    let result = run(clamp3().arg("embed").arg(&file).arg(out.path()));
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let (shape, data) = read_npy(&out.path().join("s01_abc_short.npy"));
    let want = clamp3_features::npy::parse(
        &std::fs::read(golden_output("s01_abc_short", "global")).unwrap(),
    )
    .unwrap();
    assert_eq!(shape, want.shape);
    assert!(max_abs_diff(&data, &want.data) <= 1e-4);
}

#[test]
fn inspect_prints_reference_ids_and_patches() {
    let result = run(clamp3()
        .args(["inspect", "tokens"])
        .arg(golden().join("cases/text/t01_short_en.txt")));
    assert!(result.status.success());
    let ids: Vec<u32> = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(ids.len(), 19);
    assert_eq!((ids[0], ids[18]), (0, 2));

    let result = run(clamp3()
        .args(["inspect", "patches"])
        .arg(golden().join("cases/symbolic/s07_mtf_short.mtf")));
    assert!(result.status.success());
    let patches: Vec<Vec<u8>> = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(patches.len(), 23);
    assert!(patches.iter().all(|p| p.len() == 64));
    assert!(patches[0].iter().all(|&v| v == 1));
}

#[test]
fn missing_weights_and_bad_config_are_clear_errors() {
    let out = tempfile::tempdir().unwrap();
    let file = golden().join("cases/text/t01_short_en.txt");
    let result = run(clamp3()
        .env("CLAMP3_WEIGHTS", "/nonexistent/w.pth")
        .arg("embed")
        .arg(&file)
        .arg(out.path()));
    assert_eq!(result.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&result.stderr).contains("/nonexistent/w.pth"));

    let bad = out.path().join("config.json");
    std::fs::write(&bad, "{\"hidden_size\": 3}").unwrap();
    let result = run(clamp3()
        .env("CLAMP3_CONFIG", &bad)
        .arg("embed")
        .arg(&file)
        .arg(out.path()));
    assert_eq!(result.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("config.json") && stderr.contains("missing field"),
        "{stderr}"
    );
}

#[test]
fn weights_convert_round_trips_through_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("clamp3.safetensors");
    let result = run(clamp3()
        .args(["weights", "convert"])
        .arg(golden().join("clamp3.pth"))
        .arg(&st));
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let file = golden().join("cases/text/t03_long_paragraph.txt");
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    assert!(run(clamp3().arg("embed").arg(&file).arg(a.path()))
        .status
        .success());
    assert!(run(clamp3()
        .env("CLAMP3_WEIGHTS", &st)
        .arg("embed")
        .arg(&file)
        .arg(b.path()))
    .status
    .success());
    let x = read_npy(&a.path().join("t03_long_paragraph.npy"));
    let y = read_npy(&b.path().join("t03_long_paragraph.npy"));
    assert_eq!(x, y);
}

#[test]
fn audio_embeds_through_mert_and_audio2mert_matches_reference_features() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mert = crates.join("models/tests/fixtures/mert");
    let input = tempfile::tempdir().unwrap();
    for file in [
        "a03_wav16k_mono_s16.wav",
        "a06_ogg_44k_stereo.ogg",
        "a09_0p7s_wav24k_mono.wav",
    ] {
        std::fs::copy(
            crates.join("audio/tests/fixtures").join(file),
            input.path().join(file),
        )
        .unwrap();
    }

    let features = tempfile::tempdir().unwrap();
    let result = run(clamp3()
        .env("CLAMP3_MERT", &mert)
        .args(["convert", "audio2mert"])
        .arg(input.path())
        .arg(features.path()));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("a09_0p7s_wav24k_mono.wav") && stderr.contains("too short"),
        "{stderr}"
    );
    let (shape, data) = read_npy(&features.path().join("a03_wav16k_mono_s16.npy"));
    let want = clamp3_features::npy::parse(
        &std::fs::read(mert.join("a03_wav16k_mono_s16.mert.npy")).unwrap(),
    )
    .unwrap();
    assert_eq!(shape, want.shape);
    assert!(max_abs_diff(&data, &want.data) <= 1e-4);

    let out = tempfile::tempdir().unwrap();
    let result = run(clamp3()
        .env("CLAMP3_MERT", &mert)
        .arg("embed")
        .arg(input.path())
        .arg(out.path()));
    assert_eq!(result.status.code(), Some(1));
    let golden_audio = golden().join("cases/audio");
    for stem in ["a03_wav16k_mono_s16", "a06_ogg_44k_stereo"] {
        let (shape, data) = read_npy(&out.path().join(format!("{stem}.npy")));
        let want = clamp3_features::npy::parse(
            &std::fs::read(golden_audio.join(format!("{stem}.global.npy"))).unwrap(),
        )
        .unwrap();
        assert_eq!(shape, want.shape);
        assert!(max_abs_diff(&data, &want.data) <= 1e-4, "{stem}");
    }
    assert!(!out.path().join("a09_0p7s_wav24k_mono.npy").exists());
}

#[test]
fn midi_and_standard_abc_are_converted_in_memory() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let midi = crates.join("formats/tests/fixtures/midi");
    let input = tempfile::tempdir().unwrap();
    std::fs::copy(
        midi.join("abc2midi__wikimt_0024.mid"),
        input.path().join("tune.mid"),
    )
    .unwrap();
    std::fs::copy(
        midi.join("abc2midi__wikimt_0024.mtf"),
        input.path().join("tune_as_text.mtf"),
    )
    .unwrap();
    // A standard (non-interleaved) single-voice tune, and the same tune interleaved.
    std::fs::write(
        input.path().join("folk.abc"),
        "X:1\nT:Folk\nL:1/8\nM:2/4\nK:G\nV:1\n|: GA Bc | d2 d2 :|\n",
    )
    .unwrap();
    std::fs::write(
        input.path().join("folk_interleaved.abc"),
        "L:1/8\nM:2/4\nK:G\n[V:1]|:GA Bc|\n[V:1]d2 d2:|\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let result = run(clamp3().arg("embed").arg(input.path()).arg(out.path()));
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert_eq!(
        read_npy(&out.path().join("tune.npy")),
        read_npy(&out.path().join("tune_as_text.npy"))
    );
    assert_eq!(
        read_npy(&out.path().join("folk.npy")),
        read_npy(&out.path().join("folk_interleaved.npy"))
    );
}

#[test]
fn musicxml_embeds_like_its_reference_interleaved_abc() {
    // `bach__bwv66.6.interleaved.abc` is the reference's xml2abc + interleave output for the .mxl.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let input = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures.join("bach__bwv66.6.mxl"),
        input.path().join("chorale.mxl"),
    )
    .unwrap();
    std::fs::copy(
        fixtures.join("bach__bwv66.6.interleaved.abc"),
        input.path().join("reference.abc"),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let result = run(clamp3().arg("embed").arg(input.path()).arg(out.path()));
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert_eq!(
        read_npy(&out.path().join("chorale.npy")),
        read_npy(&out.path().join("reference.npy"))
    );
}
