//! A server on a free loopback port with the tiny golden model, and a small HTTP client.

#![allow(dead_code, reason = "each test file uses part of the helpers")]

use clamp3_engine::{Engine, ModelSpec, Silent};
use clamp3_library::{AddOptions, Library};
use clamp3_server::{Server, ServerConfig};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The golden fixtures of the features crate (tiny CLaMP 3 weights, tokenizer, cases).
pub fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../features/tests/fixtures/golden")
}

/// The tiny MERT of the models crate, for audio.
pub fn tiny_mert() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/tests/fixtures/mert")
}

/// An engine over the tiny golden model, without a cache.
pub fn tiny_engine() -> Engine {
    let spec = ModelSpec {
        weights: Some(golden().join("clamp3.pth")),
        config: Some(golden().join("config.json")),
        tokenizer: Some(golden().join("tokenizer.json")),
        mert: Some(tiny_mert()),
        blip: Some(crates().join("models/tests/fixtures/blip/model")),
        ..ModelSpec::default()
    };
    Engine::new(&spec, None).expect("the tiny engine opens")
}

fn crates() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The files of the small test library: `(fixture, name in the library)`, every modality.
pub fn library_files() -> Vec<(PathBuf, &'static str)> {
    let golden = golden().join("cases");
    vec![
        (golden.join("text/t01_short_en.txt"), "texts/short_en.txt"),
        (golden.join("text/t07_zh.txt"), "texts/zh.txt"),
        // What the tiny BLIP says of p01_astronaut.png.
        (
            crates().join("server/tests/fixtures/cake.txt"),
            "texts/cake.txt",
        ),
        (
            crates().join("images/tests/fixtures/blip/images/p01_astronaut.png"),
            "images/astronaut.png",
        ),
        (golden.join("symbolic/s01_abc_short.abc"), "sheet/short.abc"),
        (
            golden.join("symbolic/s05_abc_chorale_4voices.abc"),
            "sheet/chorale.abc",
        ),
        (
            crates().join("cli/tests/fixtures/bach__bwv66.6.mxl"),
            "sheet/bwv66.6.mxl",
        ),
        (golden.join("symbolic/s07_mtf_short.mtf"), "midi/short.mtf"),
        (
            crates().join("formats/tests/fixtures/midi/abc2midi__wikimt_0024.mid"),
            "midi/wikimt_0024.mid",
        ),
        (
            crates().join("audio/tests/fixtures/a05_mp3_44k_stereo.mp3"),
            "audio/stereo.mp3",
        ),
        (
            crates().join("audio/tests/fixtures/a03_wav16k_mono_s16.wav"),
            "audio/mono.wav",
        ),
    ]
}

/// A library in `dir`: empty, or holding [`library_files`] (copied under `dir/music`).
pub fn library(dir: &Path, with_files: bool) -> Arc<Library> {
    let library = Library::open(&dir.join("library")).expect("the library opens");
    if with_files {
        let mut files = Vec::new();
        for (fixture, name) in library_files() {
            let to = dir.join("music").join(name);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&fixture, &to).unwrap();
            files.push(to);
        }
        let report = library
            .add(&tiny_engine(), &files, &AddOptions::default(), &Silent)
            .expect("the test library is built");
        assert!(report.failed.is_empty(), "{:?}", report.failed);
    }
    Arc::new(library)
}

/// A running server; stopped when dropped.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Where its library lives.
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with `config` (its address is replaced by a free loopback port) over an
    /// empty library.
    pub fn start(config: ServerConfig) -> TestServer {
        TestServer::start_with(config, false)
    }

    /// Starts a server over the small library of every modality.
    pub fn with_library(config: ServerConfig) -> TestServer {
        TestServer::start_with(config, true)
    }

    fn start_with(mut config: ServerConfig, with_files: bool) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let library = library(dir.path(), with_files);
        config.addr = "127.0.0.1:0".parse().unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let server = Server::bind(config, tiny_engine(), library).await.unwrap();
                ready_tx.send(server.local_addr().unwrap()).unwrap();
                server
                    .run_until(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let addr = ready_rx.recv().expect("the server starts");
        TestServer {
            url: format!("http://{addr}"),
            dir,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `GET path`: status and body (JSON, or `{"text": …}` for other bodies).
    pub fn get(&self, path: &str) -> (u16, Value) {
        answer(ureq::get(&format!("{}{path}", self.url)).call())
    }

    /// `POST path` with a JSON body given as text (it may be malformed on purpose).
    pub fn post_json(&self, path: &str, body: &str) -> (u16, Value) {
        answer(
            ureq::post(&format!("{}{path}", self.url))
                .set("Content-Type", "application/json")
                .send_string(body),
        )
    }

    /// `POST path` with raw bytes.
    pub fn post_bytes(&self, path: &str, bytes: &[u8]) -> (u16, Value) {
        answer(ureq::post(&format!("{}{path}", self.url)).send_bytes(bytes))
    }

    /// A request with headers of the caller's choosing.
    pub fn request(&self, method: &str, path: &str) -> ureq::Request {
        ureq::request(method, &format!("{}{path}", self.url))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Status and body of a response, error statuses included.
pub fn answer(result: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
    let response = match result {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = response.status();
    let is_json = response.content_type() == "application/json";
    let text = response.into_string().unwrap();
    let body = if is_json {
        serde_json::from_str(&text).unwrap()
    } else {
        serde_json::json!({ "text": text })
    };
    (status, body)
}

/// A multipart/form-data body with one file part, and its content type.
pub fn multipart(filename: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "clamp3-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
