//! The library end to end with the tiny golden model: what `add` stores, what it skips, how it
//! follows renames, duplicates, edits and deletions, and what search, similar, verify and rm
//! answer. Expected scores are cosines of the engine's own vectors for the same files.

#![allow(clippy::unwrap_used, reason = "test helpers panic on broken fixtures")]

use clamp3_engine::{Engine, Item, ModelSpec, Options, Silent};
use clamp3_library::{AddOptions, Error, Filter, Library};
use std::path::{Path, PathBuf};

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
        mert: Some(crates().join("models/tests/fixtures/mert")),
        blip: Some(crates().join("models/tests/fixtures/blip/model")),
        ..ModelSpec::default()
    };
    Engine::new(&spec, None).unwrap()
}

/// A music folder: sheet music, MIDI text, texts, MERT features and one real audio file.
fn music_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let cases = golden().join("cases");
    for (sub, name) in [
        ("symbolic", "s01_abc_short.abc"),
        ("symbolic", "s05_abc_chorale_4voices.abc"),
        ("symbolic", "s06_mtf_chorale.mtf"),
        ("symbolic", "s07_mtf_short.mtf"),
        ("text", "t01_short_en.txt"),
        ("text", "t07_zh.txt"),
        ("audio_features", "f01_rows3.npy"),
    ] {
        let from = cases.join(sub).join(name);
        let to_dir = dir.path().join(sub);
        std::fs::create_dir_all(&to_dir).unwrap();
        std::fs::copy(&from, to_dir.join(name))
            .unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    }
    std::fs::copy(
        crates().join("audio/tests/fixtures/a03_wav16k_mono_s16.wav"),
        dir.path().join("a03.wav"),
    )
    .unwrap();
    let tune = std::fs::read_to_string(cases.join("symbolic/s01_abc_short.abc")).unwrap();
    std::fs::write(
        dir.path().join("titled.abc"),
        format!("X:1\nT:Morning Tune\nC:Anon.\n{tune}"),
    )
    .unwrap();
    std::fs::copy(
        crates().join("images/tests/fixtures/blip/images/p01_astronaut.png"),
        dir.path().join("cover.png"),
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.pdf"), b"not music").unwrap();
    dir
}

fn vector(engine: &Engine, path: &Path) -> Vec<f32> {
    let mut results = engine.embed(
        &[Item::File(path.to_path_buf())],
        &Options::default(),
        &Silent,
    );
    results.pop().unwrap().unwrap().embedding.data
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

fn add(library: &Library, engine: &Engine, root: &Path) -> clamp3_library::AddReport {
    library
        .add(
            engine,
            &[root.to_path_buf()],
            &AddOptions::default(),
            &Silent,
        )
        .unwrap()
}

#[test]
fn add_search_and_follow_the_files() {
    let engine = engine();
    let music = music_folder();
    let store = tempfile::tempdir().unwrap();
    let library = Library::open(store.path()).unwrap();

    let report = add(&library, &engine, music.path());
    assert_eq!(report.files, 10, "{report:?}");
    assert_eq!(report.added, 10, "{report:?}");
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(report.unsupported.len(), 1);
    let info = library.info().unwrap();
    assert_eq!(info.items, 10);
    assert_eq!(info.by_modality["image"], 1);
    assert_eq!(info.by_modality["sheet"], 3);
    assert_eq!(info.by_modality["midi"], 2);
    assert_eq!(info.by_modality["text"], 2);
    assert_eq!(info.by_modality["audio"], 2);
    assert_eq!(info.models["clamp3-saas"].items, 10);
    assert!(info.bytes_on_disk > 0);

    // Scores are the cosines of the engine's vectors, best first.
    let query = engine.embed_text("a chorale for four voices").unwrap();
    let hits = library
        .search(&engine, &query, 8, &Filter::default())
        .unwrap();
    assert_eq!(hits.len(), 8);
    for pair in hits.windows(2) {
        assert!(pair[0].score >= pair[1].score);
    }
    for hit in &hits {
        let want = cosine(&query, &vector(&engine, &hit.item.path));
        assert!(
            (hit.score - want).abs() < 1e-5,
            "{}: {} vs {want}",
            hit.item.path.display(),
            hit.score
        );
    }
    let midi = library
        .search(&engine, &query, 8, &Filter::modality("midi"))
        .unwrap();
    assert_eq!(midi.len(), 2);
    assert!(midi.iter().all(|h| h.item.modality == "midi"));

    // Metadata: the ABC title and composer, the audio length.
    let abc = library
        .item_by_path(&music.path().join("titled.abc"))
        .unwrap()
        .unwrap();
    assert_eq!(abc.modality, "sheet");
    assert_eq!(abc.format, "abc");
    assert_eq!(abc.title.as_deref(), Some("Morning Tune"), "{abc:?}");
    assert_eq!(abc.metadata["composer"], "Anon.", "{abc:?}");
    assert!(abc.patches.unwrap() > 2);
    let wav = library
        .item_by_path(&music.path().join("a03.wav"))
        .unwrap()
        .unwrap();
    assert!(wav.duration_s.unwrap() > 1.0, "{wav:?}");

    // Similar: the item itself is left out; its nearest neighbour is the best other cosine.
    let similar = library
        .similar(&engine, abc.id, 3, &Filter::default())
        .unwrap();
    assert_eq!(similar.len(), 3);
    assert!(similar.iter().all(|h| h.item.id != abc.id));

    // Nothing changed: nothing is embedded again.
    let again = add(&library, &engine, music.path());
    assert_eq!(
        (again.added, again.unchanged, again.relinked),
        (0, 10, 0),
        "{again:?}"
    );

    // A rename and a duplicate keep the item; a deletion and an edit forget it.
    let old = music.path().join("symbolic/s07_mtf_short.mtf");
    let renamed = music.path().join("symbolic/renamed.mtf");
    std::fs::rename(&old, &renamed).unwrap();
    let before = library.item_by_path(&renamed).unwrap();
    assert!(before.is_none());
    std::fs::copy(
        music.path().join("text/t07_zh.txt"),
        music.path().join("copy.txt"),
    )
    .unwrap();
    std::fs::remove_file(music.path().join("text/t01_short_en.txt")).unwrap();
    std::fs::write(music.path().join("a03.wav"), b"RIFF garbage").unwrap();
    let report = add(&library, &engine, music.path());
    assert_eq!(report.added, 0, "{report:?}");
    assert_eq!(report.relinked, 2, "{report:?}");
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(report.failed[0].1.contains("a03.wav"), "{report:?}");
    assert_eq!(report.items_deleted, 2, "{report:?}");
    let moved = library.item_by_path(&renamed).unwrap().unwrap();
    assert_eq!(moved.path, std::fs::canonicalize(&renamed).unwrap());
    let copies = library
        .item_by_path(&music.path().join("copy.txt"))
        .unwrap()
        .unwrap();
    assert_eq!(copies.files.len(), 2);
    assert_eq!(library.info().unwrap().items, 8);

    // verify sees a file gone behind the library's back; rm forgets it.
    let chorale = music.path().join("symbolic/s06_mtf_chorale.mtf");
    std::fs::remove_file(&chorale).unwrap();
    let report = library.verify(false).unwrap();
    assert_eq!(report.missing.len(), 1, "{report:?}");
    assert!(report.damaged.is_empty(), "{report:?}");
    let removed = library.remove(&[chorale.display().to_string()]).unwrap();
    assert_eq!(removed.len(), 1);
    assert!(library.verify(true).unwrap().is_clean());
}

#[test]
fn one_process_at_a_time_and_foreign_folders_refused() {
    let store = tempfile::tempdir().unwrap();
    let library = Library::open(store.path()).unwrap();
    match Library::open(store.path()) {
        Err(Error::Busy { .. }) => {}
        other => panic!("expected Busy, got {other:?}"),
    }
    drop(library);
    Library::open(store.path()).unwrap();

    let foreign = tempfile::tempdir().unwrap();
    std::fs::write(foreign.path().join("thesis.tex"), b"x").unwrap();
    assert!(matches!(
        Library::open(foreign.path()),
        Err(Error::NotALibrary { .. })
    ));

    // What a kill during a new library's first open leaves: the lock and the marker's
    // temporary file, never renamed. That folder is still a new library.
    let killed = tempfile::tempdir().unwrap();
    std::fs::write(killed.path().join("LOCK"), b"").unwrap();
    std::fs::write(killed.path().join("library.tmp"), b"{\"for").unwrap();
    Library::open(killed.path()).unwrap();
    assert!(killed.path().join("library.json").exists());
}

#[test]
fn a_library_reopens_with_its_items_and_ids_parse() {
    let engine = engine();
    let music = music_folder();
    let store = tempfile::tempdir().unwrap();
    let ids: Vec<_> = {
        let library = Library::open(store.path()).unwrap();
        add(&library, &engine, music.path());
        library
            .items(0, 100, &Filter::default())
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    let library = Library::open(store.path()).unwrap();
    let again: Vec<_> = library
        .items(0, 100, &Filter::default())
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, again);
    let first = ids[0];
    assert_eq!(library.resolve(&first.to_string()).unwrap().id, first);
    assert!(matches!(
        library.resolve("no/such/file.abc"),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        library.search_model("clamp2", &[0.0; 4], 3, &Filter::default()),
        Err(Error::NoVectors { .. })
    ));
}
