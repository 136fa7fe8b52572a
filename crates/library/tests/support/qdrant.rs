//! Real Qdrant servers for the tests: the 1.16.3 binary `.ci/install-qdrant.sh` installs (in
//! `$CARGO_TARGET_DIR/qdrant-1.16.3/`, or `CLAMP3_QDRANT_BIN`), one server or a cluster, on
//! loopback, free ports, temporary storage, telemetry off; killed when dropped. Where the
//! binary is absent, [`binary`] says so loudly and the test returns.
//!
//! Shared by the library's and the CLI's tests (`#[path]`-included), so not every item is used
//! by each.

#![allow(dead_code, reason = "each test crate uses part of it")]
#![allow(clippy::unwrap_used, reason = "test helpers panic on broken setup")]
#![allow(clippy::print_stderr, reason = "a skipped test says so")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const VERSION: &str = "1.16.3";

/// The Qdrant binary, or `None` after a `SKIPPED:` line on stderr.
pub fn binary(test: &str) -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("CLAMP3_QDRANT_BIN").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(bin));
    }
    // The test binary is target/<profile>/deps/<test>: the server is installed in target/.
    let exe = std::env::current_exe().unwrap();
    let installed = exe
        .ancestors()
        .map(|dir| dir.join(format!("qdrant-{VERSION}")).join("qdrant"))
        .find(|p| p.is_file());
    if installed.is_none() {
        eprintln!(
            "SKIPPED: {test}: no Qdrant {VERSION} server binary (run .ci/install-qdrant.sh, or set \
             CLAMP3_QDRANT_BIN); the Qdrant backend is NOT tested here"
        );
    }
    installed
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An HTTP/1.0 GET on loopback (Qdrant's REST API, for readiness and cluster state): the
/// status and the body, or `None` when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// A GET whose body is JSON, on success.
pub fn http_json(port: u16, path: &str) -> Option<serde_json::Value> {
    match http_get(port, path)? {
        (200, body) => serde_json::from_str(&body).ok(),
        _ => None,
    }
}

/// One Qdrant process and its ports and storage.
pub struct Node {
    pub http: u16,
    pub grpc: u16,
    pub p2p: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Node {
    /// `qdrant://127.0.0.1:GRPC/collection`.
    pub fn url(&self, collection: &str) -> String {
        format!("qdrant://127.0.0.1:{}/{collection}", self.grpc)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("qdrant.log")).unwrap_or_default()
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

/// Qdrant servers: one, or a cluster.
pub struct Qdrant {
    bin: PathBuf,
    cluster: bool,
    pub nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

impl Qdrant {
    /// One server, ready.
    pub fn single(bin: &Path) -> Self {
        let mut q = Self::new(bin, 1, false);
        q.start(0, None);
        q.wait_ready(0);
        q
    }

    /// A cluster of `n` nodes (the first bootstraps it, the others join it), every peer known
    /// to the first.
    pub fn cluster(bin: &Path, n: usize) -> Self {
        let mut q = Self::new(bin, n, true);
        q.start(0, None);
        q.wait_ready(0);
        let first = q.nodes[0].p2p;
        for i in 1..n {
            q.start(i, Some(first));
            q.wait_ready(i);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let peers = http_json(q.nodes[0].http, "/cluster")
                .and_then(|v| v["result"]["peers"].as_object().map(|p| p.len()))
                .unwrap_or(0);
            if peers == n {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not form ({peers} of {n} peers); log of node 0:\n{}",
                q.nodes[0].log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        q
    }

    fn new(bin: &Path, n: usize, cluster: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let nodes = (0..n)
            .map(|i| {
                let node_dir = dir.path().join(format!("node{i}"));
                std::fs::create_dir_all(&node_dir).unwrap();
                Node {
                    http: free_port(),
                    grpc: free_port(),
                    p2p: free_port(),
                    dir: node_dir,
                    child: None,
                }
            })
            .collect();
        Qdrant {
            bin: bin.to_path_buf(),
            cluster,
            nodes,
            _dir: dir,
        }
    }

    fn start(&mut self, i: usize, bootstrap: Option<u16>) {
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.join("qdrant.log"))
            .unwrap();
        let mut cmd = Command::new(&self.bin);
        cmd.current_dir(&node.dir)
            .env("QDRANT__TELEMETRY_DISABLED", "true")
            .env("QDRANT__SERVICE__HOST", "127.0.0.1")
            .env("QDRANT__SERVICE__HTTP_PORT", node.http.to_string())
            .env("QDRANT__SERVICE__GRPC_PORT", node.grpc.to_string())
            .env("QDRANT__STORAGE__STORAGE_PATH", node.dir.join("storage"))
            .env(
                "QDRANT__STORAGE__SNAPSHOTS_PATH",
                node.dir.join("snapshots"),
            )
            .env("QDRANT__STORAGE__PERFORMANCE__MAX_SEARCH_THREADS", "1")
            .env(
                "QDRANT__STORAGE__PERFORMANCE__MAX_OPTIMIZATION_THREADS",
                "1",
            )
            .env("QDRANT__LOG_LEVEL", "INFO")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if self.cluster {
            cmd.env("QDRANT__CLUSTER__ENABLED", "true")
                .env("QDRANT__CLUSTER__P2P__PORT", node.p2p.to_string())
                .arg("--uri")
                .arg(format!("http://127.0.0.1:{}", node.p2p));
            if let Some(first) = bootstrap {
                cmd.arg("--bootstrap")
                    .arg(format!("http://127.0.0.1:{first}"));
            }
        }
        node.child = Some(cmd.spawn().unwrap());
    }

    /// Waits until node `i` answers `/readyz`.
    pub fn wait_ready(&mut self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if matches!(http_get(self.nodes[i].http, "/readyz"), Some((200, _))) {
                return;
            }
            if let Some(child) = self.nodes[i].child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "qdrant node {i} exited ({status}); its log:\n{}",
                        self.nodes[i].log()
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "qdrant node {i} is not ready after 60 s; its log:\n{}",
                self.nodes[i].log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: the node dies at once, as in a crash or a power cut.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Starts a killed node again on its storage and ports (it rejoins the cluster it knows).
    pub fn restart(&mut self, i: usize) {
        assert!(self.nodes[i].child.is_none(), "node {i} is running");
        self.start(i, None);
        self.wait_ready(i);
    }

    /// Waits until every replica of the collection is Active and no shard is moving, as node
    /// `i` sees it.
    pub fn wait_all_active(&self, i: usize, collection: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let state = http_json(
                self.nodes[i].http,
                &format!("/collections/{collection}/cluster"),
            );
            let settled = state.as_ref().is_some_and(|s| {
                let r = &s["result"];
                let states = r["local_shards"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .chain(r["remote_shards"].as_array().into_iter().flatten())
                    .map(|s| s["state"].as_str().unwrap_or("?"))
                    .collect::<Vec<_>>();
                !states.is_empty()
                    && states.iter().all(|s| *s == "Active")
                    && r["shard_transfers"].as_array().is_none_or(|t| t.is_empty())
            });
            if settled {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the collection's replicas did not all become Active: {state:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Qdrant {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
