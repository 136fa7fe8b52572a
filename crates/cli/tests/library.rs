//! `clamp3 library` end to end: the subcommands through the binary, and `add` killed with
//! SIGKILL at many points, whose reruns must end with exactly the library a clean run builds.

#![allow(clippy::unwrap_used, reason = "test helpers panic on broken fixtures")]

use clamp3_library::{Filter, Library};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../features/tests/fixtures/golden")
}

fn clamp3(library: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clamp3"));
    cmd.env("CLAMP3_WEIGHTS", golden().join("clamp3.pth"))
        .env("CLAMP3_CONFIG", golden().join("config.json"))
        .env("CLAMP3_TOKENIZER", golden().join("tokenizer.json"))
        .env("CLAMP3_CACHE", library.with_extension("cache"))
        .arg("library")
        .arg("--library")
        .arg(library);
    cmd
}

/// Many small, distinct files: texts and variants of golden tunes.
fn many_files(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let cases = golden().join("cases");
    let tunes: Vec<String> = ["s01_abc_short.abc", "s05_abc_chorale_4voices.abc"]
        .iter()
        .map(|f| std::fs::read_to_string(cases.join("symbolic").join(f)).unwrap())
        .collect();
    for i in 0..n {
        if i % 4 == 3 {
            let tune = &tunes[i % 2];
            let text = tune.replacen('\n', &format!("\n%%variant {i}\n"), 1);
            std::fs::write(dir.path().join(format!("tune{i:03}.abc")), text).unwrap();
        } else {
            let text = format!(
                "A piece numbered {i}, in {} time, for {} players.",
                i % 7 + 2,
                i % 5 + 1
            );
            std::fs::write(dir.path().join(format!("text{i:03}.txt")), text).unwrap();
        }
    }
    dir
}

type Snapshot = BTreeMap<String, (Vec<PathBuf>, Vec<f32>)>;

fn snapshot(dir: &Path) -> Snapshot {
    let library = Library::open(dir).unwrap();
    let items = library.items(0, usize::MAX, &Filter::default()).unwrap();
    items
        .into_iter()
        .map(|r| {
            let v = library.vector("clamp3-saas", r.id).unwrap().unwrap();
            let files = r.files.iter().map(|f| f.path.clone()).collect();
            (r.id.to_string(), (files, v))
        })
        .collect()
}

#[test]
fn killed_adds_finish_with_exactly_the_clean_library() {
    let music = many_files(120);
    let work = tempfile::tempdir().unwrap();
    let clean = work.path().join("clean");
    let start = Instant::now();
    let out = clamp3(&clean)
        .args(["add", "--no-cache", "--chunk", "2"])
        .arg(music.path())
        .output()
        .unwrap();
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = snapshot(&clean);
    assert_eq!(want.len(), 120);

    // Each round: a fresh library, `add` killed at a point of the clean run's duration
    // (start-up included), then `add` again, whose result must be the clean one. The last
    // round kills three runs in a row before the rerun. A run that finishes before its kill
    // (a busy or a fast machine) does not count: the round starts again on a fresh library
    // with every kill point earlier, so each round really kills.
    let rounds: [&[f64]; 6] = [&[0.2], &[0.4], &[0.55], &[0.7], &[0.85], &[0.3, 0.3, 0.3]];
    for (round, fractions) in rounds.iter().enumerate() {
        let killed = work.path().join(format!("killed{round}"));
        let mut scale = 1.0;
        let mut attempts = 0;
        while !killed_every_run(&killed, music.path(), took, fractions, scale) {
            attempts += 1;
            assert!(
                attempts < 8,
                "round {round}: a run finished before its kill {attempts} times"
            );
            scale *= 0.6;
        }
        let out = clamp3(&killed)
            .args(["add", "--no-cache"])
            .arg(music.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = snapshot(&killed);
        assert_eq!(
            got.len(),
            want.len(),
            "items after the kills of round {round}"
        );
        for (id, (files, vector)) in &want {
            let (got_files, got_vector) = got
                .get(id)
                .unwrap_or_else(|| panic!("round {round}: item {id} lost"));
            assert_eq!(got_files, files, "files of {id}");
            let diff = vector
                .iter()
                .zip(got_vector)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(
                diff <= 1e-6,
                "round {round}: vector of {id} differs by {diff}"
            );
        }
        let library = Library::open(&killed).unwrap();
        assert!(library.verify(true).unwrap().is_clean(), "round {round}");
    }
}

/// Runs `add` into a fresh `library` once per fraction, each killed with SIGKILL after that
/// fraction (times `scale`) of `took`; false when any run finished before its kill.
fn killed_every_run(
    library: &Path,
    music: &Path,
    took: Duration,
    fractions: &[f64],
    scale: f64,
) -> bool {
    if library.exists() {
        std::fs::remove_dir_all(library).unwrap();
    }
    for fraction in fractions {
        let mut child = clamp3(library)
            .args(["add", "--no-cache", "--chunk", "2"])
            .arg(music)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(
            took.mul_f64(fraction * scale)
                .max(Duration::from_millis(20)),
        );
        let finished = child.try_wait().unwrap().is_some();
        if !finished {
            child.kill().unwrap(); // SIGKILL
        }
        child.wait().unwrap();
        if finished {
            return false;
        }
    }
    true
}

#[test]
fn library_subcommands_through_the_binary() {
    let music = many_files(8);
    let work = tempfile::tempdir().unwrap();
    let lib = work.path().join("lib");
    let out = clamp3(&lib).arg("add").arg(music.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("8 files: 8 added"), "{stderr}");

    let out = clamp3(&lib)
        .args([
            "search",
            "a piece for three players",
            "--top-k",
            "3",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = value["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    let first_id = results[0]["item"]["id"].as_str().unwrap().to_string();

    let tune = music.path().join("tune003.abc");
    let out = clamp3(&lib)
        .args(["search", "--filter", "modality=sheet"])
        .arg(&tune)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(
        stdout.lines().next().unwrap().starts_with("1 "),
        "the tune finds itself first: {stdout}"
    );

    let out = clamp3(&lib)
        .args(["similar", &first_id, "--top-k", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert_eq!(stdout.lines().count(), 2);
    assert!(!stdout.contains(&first_id), "{stdout}");

    let out = clamp3(&lib).args(["info", "--json"]).output().unwrap();
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["items"], 8);
    assert_eq!(info["by_modality"]["sheet"], 2);

    std::fs::remove_file(&tune).unwrap();
    let out = clamp3(&lib).arg("verify").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("missing:"));
    let out = clamp3(&lib).arg("rm").arg(&tune).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(clamp3(&lib)
        .arg("verify")
        .output()
        .unwrap()
        .status
        .success());

    let out = clamp3(&lib)
        .args(["search", "x", "--filter", "modality=video"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown modality"));
}
