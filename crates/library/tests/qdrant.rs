//! The library on a real Qdrant server (1.16.3, see `support/qdrant.rs`): it answers as the same
//! library in a folder does, on the same files with the tiny golden model; `migrate` moves a
//! library to the server and back, resumably; split extraction's shares are disjoint and make
//! the whole. Skipped, loudly, where the server binary is absent.

#![allow(clippy::unwrap_used, reason = "test helpers panic on broken fixtures")]

#[path = "support/qdrant.rs"]
mod qdrant;

use clamp3_engine::{Engine, ModelSpec, Silent};
use clamp3_library::{
    AddOptions, CollectionOptions, Filter, ItemId, Library, Location, QdrantLocation, Shard,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

const MODEL: &str = "clamp3-saas";

fn crates() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn golden() -> PathBuf {
    crates().join("features/tests/fixtures/golden")
}

fn engine() -> Engine {
    let spec = ModelSpec {
        weights: Some(golden().join("clamp3.pth")),
        config: Some(golden().join("config.json")),
        tokenizer: Some(golden().join("tokenizer.json")),
        ..ModelSpec::default()
    };
    Engine::new(&spec, None).unwrap()
}

/// Texts and tunes, distinct, and one duplicate (two files, one item).
fn music(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let cases = golden().join("cases/symbolic");
    let tune = std::fs::read_to_string(cases.join("s01_abc_short.abc")).unwrap();
    for i in 0..n {
        if i.is_multiple_of(3) {
            let text = tune.replacen('\n', &format!("\n%%variant {i}\n"), 1);
            std::fs::write(dir.path().join(format!("tune{i:03}.abc")), text).unwrap();
        } else {
            let text = format!("A piece numbered {i}, for {} players.", i % 5 + 1);
            std::fs::write(dir.path().join(format!("text{i:03}.txt")), text).unwrap();
        }
    }
    std::fs::copy(
        dir.path().join("text001.txt"),
        dir.path().join("copy of text001.txt"),
    )
    .unwrap();
    dir
}

fn server_location(server: &qdrant::Qdrant, collection: &str) -> QdrantLocation {
    match server.nodes[0].url(collection).parse::<Location>().unwrap() {
        Location::Qdrant(mut q) => {
            q.retry_for = Duration::from_secs(20);
            q
        }
        Location::Folder(_) => unreachable!("a qdrant URL"),
    }
}

fn add(library: &Library, engine: &Engine, root: &Path, shard: Option<Shard>) -> usize {
    let report = library
        .add(
            engine,
            &[root.to_path_buf()],
            &AddOptions {
                shard,
                ..AddOptions::default()
            },
            &Silent,
        )
        .unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
    report.added
}

/// Every item: its record's files and its vector.
fn contents(library: &Library) -> BTreeMap<ItemId, (Vec<PathBuf>, Vec<f32>)> {
    library
        .items(0, usize::MAX, &Filter::default())
        .unwrap()
        .into_iter()
        .map(|r| {
            let v = library.vector(MODEL, r.id).unwrap().unwrap();
            (r.id, (r.files.iter().map(|f| f.path.clone()).collect(), v))
        })
        .collect()
}

fn assert_same_vectors(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-5, "{x} vs {y}");
    }
}

/// A record without when it was added (two libraries of the same files differ in that).
fn timeless(mut record: clamp3_library::ItemRecord) -> clamp3_library::ItemRecord {
    record.added = 0;
    record
}

fn assert_same_hits(a: &[clamp3_library::Hit], b: &[clamp3_library::Hit]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(timeless(x.item.clone()), timeless(y.item.clone()));
        assert!(
            (x.score - y.score).abs() < 1e-4,
            "{} vs {}",
            x.score,
            y.score
        );
    }
}

#[test]
fn a_server_library_answers_as_a_folder_library() {
    let Some(bin) = qdrant::binary("a_server_library_answers_as_a_folder_library") else {
        return;
    };
    let server = qdrant::Qdrant::single(&bin);
    let engine = engine();
    let music = music(30);
    let folder = tempfile::tempdir().unwrap();
    let local = Library::open(folder.path()).unwrap();
    let remote = Library::open_qdrant(&server_location(&server, "music")).unwrap();
    assert!(remote.is_remote());
    // Before the first add there is no collection, and an empty library.
    assert_eq!(remote.info().unwrap().items, 0);
    assert!(remote.items(0, 10, &Filter::default()).unwrap().is_empty());

    assert_eq!(add(&local, &engine, music.path(), None), 30);
    assert_eq!(add(&remote, &engine, music.path(), None), 30);
    let (a, b) = (contents(&local), contents(&remote));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (id, (files, v)) in &a {
        assert_eq!(files, &b[id].0, "{id}");
        assert_same_vectors(v, &b[id].1);
    }

    let (li, ri) = (local.info().unwrap(), remote.info().unwrap());
    assert_eq!(ri.items, 30);
    assert_eq!(li.by_modality, ri.by_modality);
    assert_eq!(li.models, ri.models);
    let cluster = ri.cluster.as_ref().unwrap();
    assert_eq!(cluster.server_version, "1.16.3");
    assert!(cluster.replicas.iter().all(|r| r.state == "Active"));

    let query = engine.embed_text("a piece for three players").unwrap();
    for filter in ["", "modality=text", "format=abc"] {
        let filter: Filter = filter.parse().unwrap();
        assert_same_hits(
            &local.search(&engine, &query, 7, &filter).unwrap(),
            &remote.search(&engine, &query, 7, &filter).unwrap(),
        );
    }
    let some = *a.keys().nth(3).unwrap();
    let similar = remote
        .similar(&engine, some, 5, &Filter::default())
        .unwrap();
    assert!(similar.iter().all(|h| h.item.id != some));
    assert_same_hits(
        &local.similar(&engine, some, 5, &Filter::default()).unwrap(),
        &similar,
    );
    let page = |l: &Library| -> Vec<_> {
        l.items(5, 10, &Filter::default())
            .unwrap()
            .into_iter()
            .map(timeless)
            .collect()
    };
    assert_eq!(page(&local), page(&remote));
    assert!(remote.verify(true).unwrap().is_clean());

    // A second add reads nothing again; one opened anew sees the same library.
    assert_eq!(add(&remote, &engine, music.path(), None), 0);
    let again = Library::open_qdrant(&server_location(&server, "music")).unwrap();
    assert_eq!(again.count(&Filter::default()).unwrap(), 30);

    // rm by path of a duplicate keeps the item; by id, it goes; a vanished file is forgotten.
    let dup = music.path().join("copy of text001.txt");
    assert!(remote
        .remove(&[dup.display().to_string()])
        .unwrap()
        .is_empty());
    let removed = remote.remove(&[some.to_string()]).unwrap();
    assert_eq!(removed, vec![some]);
    assert_eq!(remote.item(some).unwrap(), None);
    std::fs::remove_file(music.path().join("text002.txt")).unwrap();
    let report = remote
        .add(
            &engine,
            &[music.path().to_path_buf()],
            &AddOptions::default(),
            &Silent,
        )
        .unwrap();
    assert_eq!(report.items_deleted, 1, "{report:?}");
    assert_eq!(report.added, 1, "the removed item comes back: {report:?}");
    assert_eq!(remote.count(&Filter::default()).unwrap(), 29);
    assert!(remote.verify(false).unwrap().is_clean());

    // A collection that is not a library is refused.
    let err = {
        // Made by hand over REST: a plain collection.
        let body = r#"{"vectors":{"size":4,"distance":"Cosine"}}"#;
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.nodes[0].http)).unwrap();
        use std::io::{Read, Write};
        write!(
            stream,
            "PUT /collections/plain HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(
            response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"),
            "{response}"
        );
        Library::open_qdrant(&server_location(&server, "plain")).unwrap_err()
    };
    assert!(err.to_string().contains("not a clamp3 library"), "{err}");
}

#[test]
fn migrate_to_a_server_and_back_resumably() {
    let Some(bin) = qdrant::binary("migrate_to_a_server_and_back_resumably") else {
        return;
    };
    let server = qdrant::Qdrant::single(&bin);
    let engine = engine();
    let music = music(24);
    let folder = tempfile::tempdir().unwrap();
    let local = Library::open(folder.path()).unwrap();
    add(&local, &engine, music.path(), None);

    let mut location = server_location(&server, "moved");
    location.create = CollectionOptions {
        int8: true,
        on_disk: true,
        ..CollectionOptions::default()
    };
    let remote = Library::open_qdrant(&location).unwrap();
    let report = local.migrate_to(&remote, 5, 10, &mut |_, _| {}).unwrap();
    assert!(report.is_verified(), "{report:?}");
    assert_eq!((report.copied, report.skipped), (24, 0));
    assert_eq!(report.sampled, 10);
    assert_eq!(remote.count(&Filter::default()).unwrap(), 24);
    let cluster = remote.info().unwrap().cluster.unwrap();
    assert_eq!(cluster.quantization.as_deref(), Some("int8"));
    assert!(cluster.on_disk);
    assert_eq!(
        remote.model_identities().unwrap(),
        local.model_identities().unwrap()
    );

    // Interrupted: the target lost some items; re-running copies only those.
    let lost: Vec<String> = local
        .items(0, 7, &Filter::default())
        .unwrap()
        .iter()
        .map(|r| r.id.to_string())
        .collect();
    remote.remove(&lost).unwrap();
    let report = local.migrate_to(&remote, 5, 24, &mut |_, _| {}).unwrap();
    assert!(report.is_verified(), "{report:?}");
    assert_eq!((report.copied, report.skipped), (7, 17));

    // And back, into a new folder: the same library, searched the same.
    let back_dir = tempfile::tempdir().unwrap();
    let back = Library::open(back_dir.path()).unwrap();
    let report = remote
        .migrate_to(&back, 1000, 1000, &mut |_, _| {})
        .unwrap();
    assert!(report.is_verified(), "{report:?}");
    assert_eq!(report.sampled, 24);
    let (a, b) = (contents(&local), contents(&back));
    assert_eq!(a.len(), b.len());
    for (id, (files, v)) in &a {
        assert_eq!(files, &b[id].0);
        assert_same_vectors(v, &b[id].1);
    }
    let query = engine.embed_text("a tune").unwrap();
    assert_same_hits(
        &local
            .search(&engine, &query, 10, &Filter::default())
            .unwrap(),
        &back
            .search(&engine, &query, 10, &Filter::default())
            .unwrap(),
    );
    let report = remote.migrate_to(&back, 1000, 5, &mut |_, _| {}).unwrap();
    assert_eq!((report.copied, report.skipped), (0, 24));
}

#[test]
fn shares_of_split_extraction_are_disjoint_and_make_the_whole() {
    let Some(bin) = qdrant::binary("shares_of_split_extraction_are_disjoint_and_make_the_whole")
    else {
        return;
    };
    let server = qdrant::Qdrant::single(&bin);
    let engine = engine();
    let music = music(40);
    let folder = tempfile::tempdir().unwrap();
    let whole = Library::open(folder.path()).unwrap();
    add(&whole, &engine, music.path(), None);

    let remote = Library::open_qdrant(&server_location(&server, "split")).unwrap();
    let mut shares: Vec<BTreeSet<ItemId>> = Vec::new();
    let mut files = 0;
    for i in 0..3 {
        let shard = Shard { index: i, count: 3 };
        let report = remote
            .add(
                &engine,
                &[music.path().to_path_buf()],
                &AddOptions {
                    shard: Some(shard),
                    ..AddOptions::default()
                },
                &Silent,
            )
            .unwrap();
        assert!(report.failed.is_empty(), "{report:?}");
        assert_eq!(report.files + report.other_shards, 41, "{report:?}");
        files += report.files;
        let share: BTreeSet<ItemId> = remote
            .items(0, usize::MAX, &Filter::shard(&shard.tag()))
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert!(!share.is_empty(), "share {i} is empty");
        assert_eq!(share.len(), report.added, "{report:?}");
        shares.push(share);
    }
    assert_eq!(files, 41, "each file is in exactly one share");
    for (i, a) in shares.iter().enumerate() {
        for b in &shares[i + 1..] {
            assert!(a.is_disjoint(b));
        }
    }
    let union: BTreeSet<ItemId> = shares.iter().flatten().copied().collect();
    let expected: BTreeSet<ItemId> = contents(&whole).keys().copied().collect();
    assert_eq!(union, expected);
    let info = remote.info().unwrap();
    assert_eq!(info.items, 40);
    assert_eq!(info.shards.len(), 3);
    for (tag, s) in &info.shards {
        assert_eq!(s.items, s.total, "share {tag}: {s:?}");
    }
    // A worker run again (after a crash, say) finds its share done.
    let report = remote
        .add(
            &engine,
            &[music.path().to_path_buf()],
            &AddOptions {
                shard: Some("1/3".parse().unwrap()),
                ..AddOptions::default()
            },
            &Silent,
        )
        .unwrap();
    assert_eq!(report.added, 0, "{report:?}");
    assert_eq!(report.unchanged, report.files, "{report:?}");
    assert!("3/3".parse::<Shard>().is_err() && "1/0".parse::<Shard>().is_err());
}
