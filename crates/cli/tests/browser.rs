//! The search page in a real browser (issue 13): `clamp3 serve` over a small library built
//! with the tiny golden model, driven by `web/tests/browser.mjs` (playwright-core and Debian's
//! headless Chromium): a text query gives ranked results, a score is drawn as notation and
//! plays, MIDI and audio play, the modality filter and "more like this" work, and a file dropped
//! on the page is searched by. Screenshots go to the folder the test prints.
//!
//! Needs `chromium` and `web/node_modules` (`.ci/install-browser.sh`); without them the test
//! says SKIPPED, loudly, and passes.

#![allow(clippy::unwrap_used, reason = "test helpers panic on broken fixtures")]
#![allow(
    clippy::print_stderr,
    reason = "the test reports where its screenshots are"
)]

use clamp3_engine::{Engine, ModelSpec, Silent};
use clamp3_library::{AddOptions, Library};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn crates() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn golden() -> PathBuf {
    crates().join("features/tests/fixtures/golden")
}

/// The tiny model, as environment variables for the binary and as a spec for the library.
fn tiny_model() -> Vec<(&'static str, PathBuf)> {
    vec![
        ("CLAMP3_WEIGHTS", golden().join("clamp3.pth")),
        ("CLAMP3_CONFIG", golden().join("config.json")),
        ("CLAMP3_TOKENIZER", golden().join("tokenizer.json")),
        ("CLAMP3_MERT", crates().join("models/tests/fixtures/mert")),
        (
            "CLAMP3_BLIP",
            crates().join("models/tests/fixtures/blip/model"),
        ),
    ]
}

fn tiny_engine() -> Engine {
    let path = |name: &str| {
        tiny_model()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| p)
    };
    let spec = ModelSpec {
        weights: path("CLAMP3_WEIGHTS"),
        config: path("CLAMP3_CONFIG"),
        tokenizer: path("CLAMP3_TOKENIZER"),
        mert: path("CLAMP3_MERT"),
        blip: path("CLAMP3_BLIP"),
        ..ModelSpec::default()
    };
    Engine::new(&spec, None).unwrap()
}

/// Why the browser test cannot run here, if it cannot.
fn missing_tools(web: &Path) -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!(
            "no Chromium at {chromium} (apt-get install chromium)"
        ));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Some("no node".into());
    }
    if !web.join("node_modules/playwright-core").exists() {
        return Some(format!(
            "no {}/node_modules (cd web && npm ci)",
            web.display()
        ));
    }
    None
}

/// The server process; killed when dropped.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_page_works_in_a_real_browser() {
    let web = crates().join("../web");
    if let Some(why) = missing_tools(&web) {
        eprintln!(
            "\n\nSKIPPED: the browser test did not run: {why}. Run .ci/install-browser.sh.\n\n"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let music = dir.path().join("music");
    let fixtures = [
        (golden().join("cases/text/t01_short_en.txt"), "short_en.txt"),
        (
            golden().join("cases/symbolic/s05_abc_chorale_4voices.abc"),
            "chorale.abc",
        ),
        (
            golden().join("cases/symbolic/s01_abc_short.abc"),
            "short.abc",
        ),
        (
            crates().join("cli/tests/fixtures/bach__bwv66.6.mxl"),
            "bwv66.6.mxl",
        ),
        (
            golden().join("cases/symbolic/s07_mtf_short.mtf"),
            "short.mtf",
        ),
        (
            crates().join("formats/tests/fixtures/midi/abc2midi__wikimt_0024.mid"),
            "wikimt_0024.mid",
        ),
        (
            crates().join("audio/tests/fixtures/a05_mp3_44k_stereo.mp3"),
            "stereo.mp3",
        ),
        (
            crates().join("audio/tests/fixtures/a03_wav16k_mono_s16.wav"),
            "mono.wav",
        ),
        (
            crates().join("images/tests/fixtures/blip/images/p01_astronaut.png"),
            "astronaut.png",
        ),
    ];
    std::fs::create_dir_all(&music).unwrap();
    let mut files = Vec::new();
    for (from, name) in fixtures {
        std::fs::copy(from, music.join(name)).unwrap();
        files.push(music.join(name));
    }
    let library_dir = dir.path().join("library");
    let report = Library::open(&library_dir)
        .unwrap()
        .add(&tiny_engine(), &files, &AddOptions::default(), &Silent)
        .unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);

    let mut serve = Command::new(env!("CARGO_BIN_EXE_clamp3"));
    serve
        .args(["serve", "--addr", "127.0.0.1:0", "--no-cache", "--library"])
        .arg(&library_dir)
        .stderr(Stdio::piped());
    for (name, path) in tiny_model() {
        serve.env(name, path);
    }
    let mut child = Serve(serve.spawn().unwrap());
    let stderr = BufReader::new(child.0.stderr.take().unwrap());
    let mut url = None;
    for line in stderr.lines() {
        let line = line.unwrap();
        if let Some(at) = line.find("http://") {
            url = Some(line[at..].split_whitespace().next().unwrap().to_string());
            break;
        }
    }
    let url = url.expect("clamp3 serve says where it listens");

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    eprintln!("browser test: {url}, screenshots in {}", shots.display());
    let output = Command::new("node")
        .arg(web.join("tests/browser.mjs"))
        .arg(&url)
        .arg(&shots)
        .arg(music.join("chorale.abc"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "the browser test failed:\n{stdout}"
    );
    assert!(stdout.contains("ok 4 score-rendered"), "{stdout}");
    assert!(shots.join("04-score-rendered.png").exists());
}
