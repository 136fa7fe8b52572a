//! A store split into edge shards holds and answers exactly what one shard does: searches
//! merged by score, pages in id order across shards, counts summed, and old one-shard
//! stores and stores a crash left half-made open whole.

#![allow(clippy::unwrap_used, reason = "test helpers panic on broken fixtures")]

use clamp3_library::{Filter, ItemFile, ItemId, ItemRecord, Library};
use std::path::{Path, PathBuf};

const MODEL: &str = "clamp3-saas";

/// A deterministic pseudo-random unit vector.
fn vector(seed: u64, dim: usize) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let v: Vec<f32> = (0..dim)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

fn record(i: u64) -> ItemRecord {
    let path = PathBuf::from(format!("/music/{i:05}.abc"));
    ItemRecord {
        id: ItemId(i.wrapping_mul(0xD6E8_FEB8_6659_FD93) >> 1),
        path: path.clone(),
        files: vec![ItemFile {
            path,
            size: 100 + i,
            mtime_ns: 0,
        }],
        modality: ["sheet", "midi", "audio", "text"][(i % 4) as usize].into(),
        format: "abc".into(),
        content_hash: format!("{i:064x}"),
        size: 100 + i,
        title: Some(format!("Tune {i}")),
        metadata: Default::default(),
        caption: None,
        duration_s: None,
        patches: Some(i as usize % 50),
        models: vec![],
        added: 0,
        shard: None,
    }
}

fn filled(dir: &Path, edge_shards: usize, n: u64) -> Library {
    let library = Library::open_with_edge_shards(dir, edge_shards).unwrap();
    let items: Vec<_> = (0..n).map(|i| (record(i), vector(i, 32))).collect();
    for chunk in items.chunks(97) {
        library.put(MODEL, chunk.to_vec()).unwrap();
    }
    library
}

fn ids(records: &[ItemRecord]) -> Vec<ItemId> {
    records.iter().map(|r| r.id).collect()
}

#[test]
fn three_shards_answer_exactly_as_one() {
    let work = tempfile::tempdir().unwrap();
    let one = filled(&work.path().join("one"), 1, 500);
    let three = filled(&work.path().join("three"), 3, 500);
    assert_eq!(one.info().unwrap().edge_shards, Some(1));
    assert_eq!(three.info().unwrap().edge_shards, Some(3));
    assert_eq!(three.count(&Filter::default()).unwrap(), 500);

    let all_one = one.items(0, usize::MAX, &Filter::default()).unwrap();
    let all_three = three.items(0, usize::MAX, &Filter::default()).unwrap();
    assert_eq!(ids(&all_one), ids(&all_three));
    let mut sorted = ids(&all_three);
    sorted.sort();
    assert_eq!(sorted, ids(&all_three), "items come in id order");
    // Pages of every size line up with the whole list (the scroll's cursor crosses shards).
    for limit in [1, 7, 64, 499, 500, 501] {
        let mut paged = Vec::new();
        let mut offset = 0;
        loop {
            let page = three.items(offset, limit, &Filter::default()).unwrap();
            if page.is_empty() {
                break;
            }
            offset += page.len();
            paged.extend(page);
        }
        assert_eq!(ids(&paged), ids(&all_three), "pages of {limit}");
    }

    let audio = Filter::modality("audio");
    assert_eq!(three.count(&audio).unwrap(), 125);
    for q in 1000..1020 {
        let query = vector(q, 32);
        for filter in [Filter::default(), audio.clone()] {
            let a = one.search_exact(MODEL, &query, 10, &filter).unwrap();
            let b = three.search_exact(MODEL, &query, 10, &filter).unwrap();
            let a: Vec<_> = a.iter().map(|h| (h.item.id, h.score)).collect();
            let b: Vec<_> = b.iter().map(|h| (h.item.id, h.score)).collect();
            assert_eq!(a, b, "query {q}");
            assert_eq!(b.len(), 10);
        }
    }
    let target = record(42).id;
    let near_one = one.similar_model(MODEL, target, 5, &Filter::default());
    let near_three = three.similar_model(MODEL, target, 5, &Filter::default());
    let strip = |hits: Vec<clamp3_library::Hit>| -> Vec<ItemId> {
        hits.into_iter().map(|h| h.item.id).collect()
    };
    let near = strip(near_three.unwrap());
    assert_eq!(strip(near_one.unwrap()), near);
    assert!(!near.contains(&target), "an item is not its own neighbour");
    assert_eq!(
        three.vector(MODEL, target).unwrap().unwrap(),
        one.vector(MODEL, target).unwrap().unwrap()
    );

    let gone = [record(3).id.to_string(), record(4).id.to_string()];
    assert_eq!(three.remove(&gone).unwrap().len(), 2);
    assert_eq!(one.remove(&gone).unwrap().len(), 2);
    assert_eq!(three.count(&Filter::default()).unwrap(), 498);
    assert!(three.item(record(3).id).unwrap().is_none());
    // The records name files that do not exist: both report every one missing, none damaged.
    let report = three.verify(false).unwrap();
    assert_eq!(report, one.verify(false).unwrap());
    assert_eq!((report.items, report.missing.len()), (498, 498));
    assert!(report.damaged.is_empty());
}

#[test]
fn a_library_keeps_its_shard_count_and_reopens_whole() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("lib");
    drop(filled(&dir, 3, 200));
    let library = Library::open_with_edge_shards(&dir, 5).unwrap();
    assert_eq!(library.info().unwrap().edge_shards, Some(3));
    assert_eq!(library.count(&Filter::default()).unwrap(), 200);
    drop(library);

    // A crash after the layout was written and before the last shard was made: that shard
    // comes back empty, with the model's vector and the indexes, and takes writes.
    let shard = dir.join("store").join("shard-2");
    let lost = std::fs::read_dir(&shard).is_ok();
    assert!(lost, "the store keeps shard 2 in {}", shard.display());
    std::fs::remove_dir_all(&shard).unwrap();
    let library = Library::open(&dir).unwrap();
    assert_eq!(library.info().unwrap().edge_shards, Some(3));
    let kept = library.count(&Filter::default()).unwrap();
    assert!(kept < 200 && kept > 100, "{kept} items outside shard 2");
    assert_eq!(library.models().unwrap(), vec![(MODEL.to_string(), 32)]);
    let items: Vec<_> = (0..200).map(|i| (record(i), vector(i, 32))).collect();
    library.put(MODEL, items).unwrap();
    assert_eq!(library.count(&Filter::default()).unwrap(), 200);
    assert_eq!(library.count(&Filter::modality("midi")).unwrap(), 50);
}

#[test]
fn a_store_of_one_unsplit_shard_opens_as_one() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("lib");
    let before: Vec<ItemId> = {
        let library = filled(&dir, 1, 150);
        ids(&library.items(0, usize::MAX, &Filter::default()).unwrap())
    };
    // The layout stores had before they were split: the one shard's files in `store/`.
    let store = dir.join("store");
    std::fs::remove_file(store.join("layout.json")).unwrap();
    for entry in std::fs::read_dir(store.join("shard-0")).unwrap() {
        let entry = entry.unwrap();
        std::fs::rename(entry.path(), store.join(entry.file_name())).unwrap();
    }
    std::fs::remove_dir(store.join("shard-0")).unwrap();

    let library = Library::open_with_edge_shards(&dir, 4).unwrap();
    assert_eq!(library.info().unwrap().edge_shards, Some(1));
    let after = ids(&library.items(0, usize::MAX, &Filter::default()).unwrap());
    assert_eq!(before, after);
    let hits = library
        .search_exact(MODEL, &vector(7, 32), 1, &Filter::default())
        .unwrap();
    assert_eq!(hits[0].item.id, record(7).id);
}

#[test]
fn a_kill_between_a_shards_segments_and_its_config_is_repaired() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("lib");
    drop(filled(&dir, 3, 90));
    // What a kill inside the vector's creation leaves: shard 1's segments have the vector, its
    // config file does not (qdrant-edge writes the config second).
    let config_path = dir.join("store").join("shard-1").join("edge_config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    let vectors = config["vectors"].as_object_mut().unwrap();
    assert!(vectors.remove(MODEL).is_some());
    std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();

    let error = Library::open(&dir).unwrap_err().to_string();
    assert!(error.contains(&dir.display().to_string()), "{error}");

    let pending = dir.join("pending_vector.json");
    std::fs::write(&pending, format!("{{\"name\": \"{MODEL}\", \"dim\": 32}}")).unwrap();
    let library = Library::open(&dir).unwrap();
    assert!(!pending.exists(), "the pending vector is done");
    assert_eq!(library.count(&Filter::default()).unwrap(), 90);
    assert_eq!(library.models().unwrap(), vec![(MODEL.to_string(), 32)]);
    let hits = library
        .search_exact(MODEL, &vector(11, 32), 1, &Filter::default())
        .unwrap();
    assert_eq!(hits[0].item.id, record(11).id);
    drop(library);
    assert_eq!(
        Library::open(&dir)
            .unwrap()
            .count(&Filter::default())
            .unwrap(),
        90
    );
}
