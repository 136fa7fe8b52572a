//! `clamp3 library` on real Qdrant servers (1.16.3, see the library's `tests/support/qdrant.rs`):
//! the commands on a `qdrant://` library, `migrate` both ways, and a 3-node cluster (3 shards,
//! replication factor 2) filled by two `add --shard` workers at once while one node is killed
//! with SIGKILL and brought back; afterwards every item is there exactly once and searches answer
//! as the same library in a folder does. Skipped, loudly, where the server binary is absent.

#![allow(clippy::unwrap_used, reason = "test helpers panic on broken fixtures")]

#[path = "../../library/tests/support/qdrant.rs"]
mod qdrant;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../features/tests/fixtures/golden")
}

fn clamp3(library: &str, work: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clamp3"));
    cmd.env("CLAMP3_WEIGHTS", golden().join("clamp3.pth"))
        .env("CLAMP3_CONFIG", golden().join("config.json"))
        .env("CLAMP3_TOKENIZER", golden().join("tokenizer.json"))
        .env("CLAMP3_CACHE", work.join("cache"))
        .env_remove("CLAMP3_LIBRARY")
        .env_remove("CLAMP3_QDRANT_API_KEY")
        .arg("library")
        .arg("--library")
        .arg(library);
    cmd
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(out: Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).unwrap()
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

/// Every item as `list --json` gives it: id → the whole record.
fn listing(library: &str, work: &Path) -> BTreeMap<String, serde_json::Value> {
    let out = ok(clamp3(library, work)
        .args(["list", "--json", "--limit", "1000000"])
        .output()
        .unwrap());
    let mut items = BTreeMap::new();
    for line in out.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = record["id"].as_str().unwrap().to_string();
        assert!(
            items.insert(id.clone(), record).is_none(),
            "{id} listed twice"
        );
    }
    items
}

/// A record without what differs between two libraries of the same files (when it was added,
/// and the share that stored it).
fn comparable(mut record: serde_json::Value) -> serde_json::Value {
    let object = record.as_object_mut().unwrap();
    object.remove("added");
    object.remove("shard");
    record
}

/// `search --json` hits: (id, score).
fn search(library: &str, work: &Path, query: &str) -> Vec<(String, f64)> {
    let value = json(
        clamp3(library, work)
            .args(["search", "--text", "--json", "--top-k", "10", query])
            .output()
            .unwrap(),
    );
    value["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["item"]["id"].as_str().unwrap().to_string(),
                h["score"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn assert_same_search(a: &[(String, f64)], b: &[(String, f64)]) {
    assert_eq!(a.len(), b.len(), "{a:?}\n{b:?}");
    for ((ia, sa), (ib, sb)) in a.iter().zip(b) {
        assert!((sa - sb).abs() < 1e-4, "{a:?}\n{b:?}");
        // Equal scores may come in either order.
        if ia != ib {
            assert!(
                b.iter().any(|(i, s)| i == ia && (s - sa).abs() < 1e-4),
                "{a:?}\n{b:?}"
            );
        }
    }
}

#[test]
fn library_commands_and_migrate_on_a_server() {
    let Some(bin) = qdrant::binary("library_commands_and_migrate_on_a_server") else {
        return;
    };
    let server = qdrant::Qdrant::single(&bin);
    let music = many_files(16);
    let work = tempfile::tempdir().unwrap();
    let folder = work.path().join("folder");
    let folder = folder.to_str().unwrap();
    let url = server.nodes[0].url("cli");
    ok(clamp3(folder, work.path())
        .arg("add")
        .arg(music.path())
        .output()
        .unwrap());
    ok(clamp3(&url, work.path())
        .arg("add")
        .arg(music.path())
        .output()
        .unwrap());
    let info = json(
        clamp3(&url, work.path())
            .args(["info", "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(info["items"], 16);
    assert_eq!(info["cluster"]["server_version"], "1.16.3");
    let text = ok(clamp3(&url, work.path()).arg("info").output().unwrap());
    assert!(text.contains("qdrant 1.16.3: 1 shard"), "{text}");
    assert_same_search(
        &search(folder, work.path(), "a piece for two players"),
        &search(&url, work.path(), "a piece for two players"),
    );
    ok(clamp3(&url, work.path()).arg("verify").output().unwrap());

    // `serve` on the collection.
    let mut serve = Command::new(env!("CARGO_BIN_EXE_clamp3"));
    serve
        .env("CLAMP3_WEIGHTS", golden().join("clamp3.pth"))
        .env("CLAMP3_CONFIG", golden().join("config.json"))
        .env("CLAMP3_TOKENIZER", golden().join("tokenizer.json"))
        .env("CLAMP3_CACHE", work.path().join("cache"))
        .args(["serve", "--addr", "127.0.0.1:0", "--library", &url])
        .stderr(Stdio::piped());
    let mut child = Killed(serve.spawn().unwrap());
    let stderr = std::io::BufReader::new(child.0.stderr.take().unwrap());
    let port: u16 = std::io::BufRead::lines(stderr)
        .map(|l| l.unwrap())
        .find_map(|l| {
            let at = l.find("http://127.0.0.1:")?;
            l[at + 17..]
                .trim_end_matches('/')
                .split('/')
                .next()?
                .parse()
                .ok()
        })
        .expect("serve says where it listens");
    let library = qdrant::http_json(port, "/v1/library").unwrap();
    assert_eq!(library["items"], 16);
    let items = qdrant::http_json(port, "/v1/items?limit=100").unwrap();
    assert_eq!(items["items"].as_array().map(Vec::len), Some(16), "{items}");
    drop(child);

    // Folder → a new collection → a new folder: the same items.
    let moved = server.nodes[0].url("moved");
    let report = json(
        clamp3(folder, work.path())
            .args(["migrate", "--json", "--batch", "5", folder, &moved])
            .output()
            .unwrap(),
    );
    assert_eq!(report["copied"], 16);
    let back = work.path().join("back");
    let back = back.to_str().unwrap();
    let report = json(
        clamp3(folder, work.path())
            .args(["migrate", "--json", &moved, back])
            .output()
            .unwrap(),
    );
    assert_eq!(report["copied"], 16);
    assert_eq!(report["sampled"], 16);
    assert_eq!(listing(folder, work.path()), listing(back, work.path()));
    let report = json(
        clamp3(folder, work.path())
            .args(["migrate", "--json", &moved, back])
            .output()
            .unwrap(),
    );
    assert_eq!(
        (report["copied"].clone(), report["skipped"].clone()),
        (0.into(), 16.into())
    );

    // A server that is not there: an error naming it, after the retries allowed.
    let gone = "qdrant://127.0.0.1:9/none";
    let out = clamp3(gone, work.path())
        .args(["info", "--qdrant-retry-s", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("qdrant://127.0.0.1:9/none"), "{stderr}");
}

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_worker(url: &str, work: &Path, music: &Path, shard: &str) -> Child {
    let log = std::fs::File::create(work.join(format!("worker{}.log", &shard[..1]))).unwrap();
    clamp3(url, work)
        .args(["add", "--no-cache", "--chunk", "2", "--shard", shard])
        .args(["--qdrant-shards", "3", "--qdrant-replicas", "2"])
        .arg(music)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn wait_worker(mut child: Child, work: &Path, shard: &str, deadline: Instant) {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let log = std::fs::read_to_string(work.join(format!("worker{}.log", &shard[..1])))
                .unwrap_or_default();
            assert!(status.success(), "worker {shard} failed ({status}):\n{log}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("worker {shard} did not finish");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_three_node_cluster_filled_by_two_workers_survives_a_node_killed_mid_ingest() {
    let Some(bin) = qdrant::binary(
        "a_three_node_cluster_filled_by_two_workers_survives_a_node_killed_mid_ingest",
    ) else {
        return;
    };
    let n = 240;
    let music = many_files(n);
    let work = tempfile::tempdir().unwrap();
    let folder = work.path().join("folder");
    let folder = folder.to_str().unwrap();
    ok(clamp3(folder, work.path())
        .args(["add", "--no-cache"])
        .arg(music.path())
        .output()
        .unwrap());

    let mut cluster = qdrant::Qdrant::cluster(&bin, 3);
    // Each worker talks to its own node; node 1 (worker 1's) is the one killed.
    let urls: Vec<String> = (0..3).map(|i| cluster.nodes[i].url("music")).collect();
    let deadline = Instant::now() + Duration::from_secs(600);
    let w0 = spawn_worker(&urls[0], work.path(), music.path(), "0/2");
    let w1 = spawn_worker(&urls[1], work.path(), music.path(), "1/2");

    let points = |node: u16| {
        qdrant::http_json(node, "/collections/music")
            .and_then(|v| v["result"]["points_count"].as_u64())
            .unwrap_or(0) as usize
    };
    let started = Instant::now();
    while points(cluster.nodes[0].http) < n / 8 {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the workers stored nothing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    cluster.kill(1);
    let at_kill = points(cluster.nodes[0].http);
    std::thread::sleep(Duration::from_secs(3));
    let while_down = points(cluster.nodes[0].http);
    cluster.restart(1);
    wait_worker(w0, work.path(), "0/2", deadline);
    wait_worker(w1, work.path(), "1/2", deadline);
    assert!(
        at_kill < n,
        "the node died mid-ingest ({at_kill} of {n} stored)"
    );
    assert!(
        while_down >= at_kill,
        "a node down loses nothing stored ({while_down} < {at_kill})"
    );
    // Worker 1's node was gone for 3 s: it waited for it, retrying.
    let log1 = std::fs::read_to_string(work.path().join("worker1.log")).unwrap();
    assert!(
        log1.contains("retried after transient errors"),
        "worker 1 never retried:\n{log1}"
    );
    cluster.wait_all_active(0, "music", Duration::from_secs(180));

    // Every item exactly once (listing refuses a duplicate), each record as the folder's.
    let expected = listing(folder, work.path());
    assert_eq!(expected.len(), n);
    for url in &urls {
        let got = listing(url, work.path());
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "through {url}"
        );
        for (id, record) in &got {
            assert_eq!(comparable(record.clone()), comparable(expected[id].clone()));
        }
    }
    let info = json(
        clamp3(&urls[2], work.path())
            .args(["info", "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(info["items"], n);
    assert_eq!(info["cluster"]["shards"], 3);
    assert_eq!(info["cluster"]["replication_factor"], 2);
    let replicas = info["cluster"]["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 6, "{replicas:?}");
    assert!(
        replicas.iter().all(|r| r["state"] == "Active"),
        "{replicas:?}"
    );
    let peers: BTreeSet<u64> = replicas
        .iter()
        .map(|r| r["peer"].as_u64().unwrap())
        .collect();
    assert_eq!(peers.len(), 3);
    let shards = info["shards"].as_object().unwrap();
    assert_eq!(shards.len(), 2);
    let mut stored = 0;
    for (tag, s) in shards {
        assert_eq!(s["items"], s["total"], "share {tag}: {s}");
        stored += s["items"].as_u64().unwrap();
    }
    assert_eq!(stored as usize, n);

    for query in [
        "a piece for three players",
        "in 5 time",
        "a chorale for four voices",
    ] {
        let reference = search(folder, work.path(), query);
        assert_eq!(reference.len(), 10);
        for url in &urls {
            assert_same_search(&reference, &search(url, work.path(), query));
        }
    }
}
