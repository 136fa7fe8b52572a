//! `add`: bring the library up to date with folders and files. New and changed content is
//! embedded; renamed, moved and duplicated files only change a record; vanished files are
//! forgotten. The work goes in chunks, each made durable before the next, so a killed `add`
//! loses at most the chunk in flight and the next run picks up where it stopped.

use crate::item::{format_name, modality_name, ItemFile};
use crate::library::mtime_ns;
use crate::metadata::describe;
use crate::{Error, Filter, ItemId, ItemRecord, Library, Result};
use clamp3_engine::{Embedded, Engine, Item, Options, Progress};
use clamp3_features::FileKind;
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One share of split extraction: worker `index` (from 0) of `count`. A share is the items whose
/// content hash falls to it, so N workers over the same files (each on its machine) take
/// disjoint shares that together are the whole, and each always takes the same items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This worker's share, 0 ≤ index < count.
    pub index: u32,
    /// How many shares.
    pub count: u32,
}

impl Shard {
    /// Whether content with this BLAKE3 hash (hex) is this share's. It takes bits 64..128 of
    /// the hash, not the item id's 0..64, so the shares do not follow Qdrant's own placement of
    /// points (which hashes the id): every worker writes to every server shard.
    pub fn owns(&self, content_hash: &str) -> bool {
        let key = content_hash
            .get(16..32)
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .unwrap_or_else(|| {
                let h = blake3::hash(content_hash.as_bytes());
                ItemId::of_hash(&h).0
            });
        key % u64::from(self.count.max(1)) == u64::from(self.index)
    }

    /// `I/N`, as items and `info` name the share.
    pub fn tag(&self) -> String {
        format!("{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = Error;

    /// `I/N`: share `I` (from 0) of `N`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::Invalid(format!(
                "shard {s:?}: expected I/N with 0 <= I < N (e.g. 0/4)"
            ))
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// How `add` works.
#[derive(Debug, Clone)]
pub struct AddOptions {
    /// Files embedded and stored per durable step: a crash loses at most this much work.
    pub chunk: usize,
    /// Forget items whose files under the given folders are gone (on by default).
    pub forget_vanished: bool,
    /// The engine's options (pooling must stay global: the library stores vectors).
    pub engine: Options,
    /// Only this share of the files' contents (split extraction over many machines); the
    /// items stored are tagged with it, and `info` counts each share's progress.
    pub shard: Option<Shard>,
}

impl Default for AddOptions {
    fn default() -> Self {
        AddOptions {
            chunk: 64,
            forget_vanished: true,
            engine: Options::default(),
            shard: None,
        }
    }
}

/// What `add` did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct AddReport {
    /// Supported files found (of this share, with `shard`).
    pub files: usize,
    /// Files left to the other shares of split extraction.
    pub other_shards: usize,
    /// New items embedded and stored.
    pub added: usize,
    /// Items that got this model's vector (they had others).
    pub vectors_added: usize,
    /// Files recorded under an item that already existed (renamed, moved, duplicated, touched).
    pub relinked: usize,
    /// Files already in the library as they are.
    pub unchanged: usize,
    /// Files forgotten (gone, or changed into other content).
    pub forgotten: usize,
    /// Items deleted because no file holds them any more.
    pub items_deleted: usize,
    /// Embedded from the feature cache rather than the model.
    pub from_cache: usize,
    /// Files that failed, with the reason (each names its file).
    pub failed: Vec<(PathBuf, String)>,
    /// Files skipped because clamp3 does not read their kind.
    pub unsupported: Vec<PathBuf>,
    /// Calls to a Qdrant server that failed transiently and were retried.
    pub retried_calls: usize,
}

/// A file found under the roots, with what its stat says.
struct Found {
    path: PathBuf,
    kind: FileKind,
    file: ItemFile,
}

/// The BLAKE3 hash of a file's bytes, streamed.
pub(crate) fn hash_file(path: &Path) -> std::io::Result<blake3::Hash> {
    let mut hasher = blake3::Hasher::new();
    let file = std::fs::File::open(path)?;
    hasher.update_reader(file)?;
    Ok(hasher.finalize())
}

/// Reports the embedding of a chunk as part of the whole run: one `start` for everything.
struct Offset<'a> {
    outer: &'a dyn Progress,
    offset: usize,
}

impl Progress for Offset<'_> {
    fn finished(&self, index: usize, result: &clamp3_engine::Result<Embedded>) {
        self.outer.finished(self.offset + index, result);
    }
    fn notice(&self, message: &str) {
        self.outer.notice(message);
    }
    fn warning(&self, message: &str) {
        self.outer.warning(message);
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Library {
    /// Brings the library up to date with `roots` (folders, searched recursively, and files)
    /// for the engine's model. A file that fails is reported and the others go on; an error is
    /// returned only when nothing can go on (a model that does not load, a store that refuses).
    pub fn add(
        &self,
        engine: &Engine,
        roots: &[PathBuf],
        options: &AddOptions,
        progress: &dyn Progress,
    ) -> Result<AddReport> {
        let model = Library::model_key(engine);
        let mut report = AddReport::default();
        let (found, roots) = self.walk(roots, &mut report);
        let tag = options.shard.map(|s| s.tag());

        // The items known: all of them; for a share, those stored with its tag (the share's
        // items stored otherwise are looked up by id once the files are hashed). A worker reads
        // only its share of a shared collection.
        let known = match &tag {
            Some(tag) => Filter::shard(tag),
            None => Filter::default(),
        };
        let mut records: HashMap<ItemId, ItemRecord> = self
            .store
            .scroll(&known)?
            .into_iter()
            .filter_map(|p| p.record.map(|r| (p.id, r)))
            .collect();
        let by_path: HashMap<&Path, (ItemId, &ItemFile, &str)> = records
            .values()
            .flat_map(|r| {
                r.files
                    .iter()
                    .map(move |f| (f.path.as_path(), (r.id, f, r.content_hash.as_str())))
            })
            .collect();

        // A file whose size and time are as recorded is not read; the others are hashed.
        let hashed: Vec<Result<(ItemId, String), String>> = found
            .par_iter()
            .map(|f| {
                if let Some((id, known, hash)) = by_path.get(f.path.as_path()) {
                    if **known == f.file {
                        return Ok((*id, hash.to_string()));
                    }
                }
                hash_file(&f.path)
                    .map(|h| (ItemId::of_hash(&h), h.to_hex().to_string()))
                    .map_err(|e| format!("{}: {e}", f.path.display()))
            })
            .collect();
        drop(by_path);

        // A share keeps the files of its contents, and finds its items stored untagged.
        let (found, hashed) = match options.shard {
            None => (found, hashed),
            Some(shard) => {
                let mut mine = (Vec::new(), Vec::new());
                for (f, h) in found.into_iter().zip(hashed) {
                    if matches!(&h, Ok((_, hash)) if !shard.owns(hash)) {
                        report.other_shards += 1;
                        continue;
                    }
                    mine.0.push(f);
                    mine.1.push(h);
                }
                let unknown: Vec<ItemId> = mine
                    .1
                    .iter()
                    .filter_map(|h| h.as_ref().ok().map(|(id, _)| *id))
                    .filter(|id| !records.contains_key(id))
                    .collect::<HashSet<_>>()
                    .into_iter()
                    .collect();
                for point in self.store.retrieve(&unknown, None)? {
                    if let Some(record) = point.record {
                        records.insert(point.id, record);
                    }
                }
                mine
            }
        };
        report.files = found.len();

        let mut changed: BTreeMap<ItemId, ItemRecord> = BTreeMap::new();
        let mut to_embed: Vec<(ItemId, String, &Found)> = Vec::new();
        let mut queued: HashSet<ItemId> = HashSet::new();
        let mut seen: HashMap<&Path, ItemId> = HashMap::new();
        for (found, hashed) in found.iter().zip(hashed) {
            let (id, hash) = match hashed {
                Ok(ok) => ok,
                Err(message) => {
                    report.failed.push((found.path.clone(), message));
                    continue;
                }
            };
            if let Some(existing) = records.get(&id) {
                if existing.content_hash != hash {
                    report.failed.push((
                        found.path.clone(),
                        format!(
                            "{}: its 64-bit id {id} collides with {} (different content); skipped",
                            found.path.display(),
                            existing.path.display()
                        ),
                    ));
                    continue;
                }
            }
            seen.insert(found.path.as_path(), id);
            match records.get(&id) {
                Some(existing) => {
                    let record = changed.entry(id).or_insert_with(|| existing.clone());
                    if tag.is_some() && record.shard != tag {
                        record.shard = tag.clone();
                    }
                    match record.files.iter_mut().find(|f| f.path == found.path) {
                        Some(f) if *f == found.file => report.unchanged += 1,
                        Some(f) => {
                            *f = found.file.clone();
                            report.relinked += 1;
                        }
                        None => {
                            record.files.push(found.file.clone());
                            report.relinked += 1;
                        }
                    }
                    if !record.models.contains(&model) && queued.insert(id) {
                        to_embed.push((id, hash, found));
                    }
                }
                None if queued.insert(id) => to_embed.push((id, hash, found)),
                // A duplicate of content queued in this run: it joins that item when stored.
                None => {}
            }
        }

        // Files under the roots that are gone, or now hold other content, leave their items.
        let mut deleted = Vec::new();
        for record in records.values() {
            let kept: Vec<ItemFile> = record
                .files
                .iter()
                .filter(|f| {
                    let under_roots = roots.iter().any(|r| f.path == *r || f.path.starts_with(r));
                    let gone = match seen.get(f.path.as_path()) {
                        Some(id) => *id != record.id,
                        None => options.forget_vanished && under_roots && !f.path.exists(),
                    };
                    !gone
                })
                .cloned()
                .collect();
            if kept.len() == record.files.len() {
                continue;
            }
            report.forgotten += record.files.len() - kept.len();
            let entry = changed.entry(record.id).or_insert_with(|| record.clone());
            entry
                .files
                .retain(|f| kept.contains(f) || !record.files.contains(f));
            if entry.files.is_empty() && !queued.contains(&record.id) {
                deleted.push(record.id);
            }
        }
        changed.retain(|id, record| {
            if deleted.contains(id) {
                return false;
            }
            record.path = record
                .files
                .first()
                .map(|f| f.path.clone())
                .unwrap_or_default();
            records.get(id) != Some(record)
        });

        // One durable step for every record change and deletion.
        if !changed.is_empty() || !deleted.is_empty() {
            let ids: Vec<ItemId> = changed.keys().chain(&deleted).copied().collect();
            self.journal(&ids)?;
            for record in changed.values() {
                self.store.set_record(record)?;
            }
            self.store.delete(&deleted)?;
            self.store.flush();
            self.journal_done()?;
            report.items_deleted = deleted.len();
        }

        // The files of each new item: the first found holds it, duplicates join it.
        let mut files_of: HashMap<ItemId, Vec<ItemFile>> = HashMap::new();
        for found in &found {
            if let Some(id) = seen.get(found.path.as_path()) {
                if queued.contains(id) && !records.contains_key(id) {
                    files_of.entry(*id).or_default().push(found.file.clone());
                }
            }
        }

        // A share's worker says how much it has to do (`info` shows stored of total). A server
        // collection made by the first vectors written gets it after the first chunk.
        let mut shard_noted = match &tag {
            Some(tag) if !self.store.vector_names()?.is_empty() => {
                self.note_shard(tag, seen.values().collect::<HashSet<_>>().len())?;
                true
            }
            _ => tag.is_none(),
        };

        progress.start(to_embed.len());
        let done = AtomicUsize::new(0);
        for chunk in to_embed.chunks(options.chunk.max(1)) {
            let items: Vec<Item> = chunk
                .iter()
                .map(|(_, _, f)| Item::File(f.path.clone()))
                .collect();
            let offset = Offset {
                outer: progress,
                offset: done.fetch_add(chunk.len(), Ordering::Relaxed),
            };
            let results = engine.embed(&items, &options.engine, &offset);
            let mut new_points = Vec::new();
            let mut new_vectors = Vec::new();
            let mut updated_records = Vec::new();
            for ((id, hash, found), result) in chunk.iter().zip(results) {
                let embedded = match result {
                    Ok(e) => e,
                    Err(e) => {
                        if e.fails_every_input() {
                            return Err(Error::Engine(e.into_without_path()));
                        }
                        report.failed.push((found.path.clone(), e.to_string()));
                        continue;
                    }
                };
                if embedded.embedding.shape.len() != 2 || embedded.embedding.shape[0] != 1 {
                    report.failed.push((
                        found.path.clone(),
                        format!(
                            "{}: the model gives features of shape {:?}, not one vector",
                            found.path.display(),
                            embedded.embedding.shape
                        ),
                    ));
                    continue;
                }
                if embedded.source == clamp3_engine::Source::Cache {
                    report.from_cache += 1;
                }
                let vector = embedded.embedding.data;
                self.store.ensure_vector(&model, vector.len())?;
                match changed.get(id).or_else(|| records.get(id)) {
                    Some(existing) => {
                        let mut record = existing.clone();
                        record.models.push(model.clone());
                        new_vectors.push((*id, vector));
                        updated_records.push(record);
                        report.vectors_added += 1;
                    }
                    None => {
                        let bytes = std::fs::read(&found.path).unwrap_or_default();
                        let described = describe(&found.path, found.kind, &bytes);
                        let files = files_of
                            .remove(id)
                            .unwrap_or_else(|| vec![found.file.clone()]);
                        let record = ItemRecord {
                            id: *id,
                            path: files[0].path.clone(),
                            files,
                            modality: modality_name(found.kind).to_string(),
                            format: format_name(&found.path),
                            content_hash: hash.clone(),
                            size: found.file.size,
                            title: described.title,
                            metadata: described.metadata,
                            caption: embedded.caption.map(|c| c.text),
                            duration_s: described.duration_s,
                            patches: described.patches,
                            models: vec![model.clone()],
                            added: now(),
                            shard: tag.clone(),
                        };
                        new_points.push((record, HashMap::from([(model.clone(), vector)])));
                        report.added += 1;
                    }
                }
            }
            let mut ids: Vec<ItemId> = new_points.iter().map(|(r, _)| r.id).collect();
            ids.extend(new_vectors.iter().map(|(id, _)| *id));
            if ids.is_empty() {
                continue;
            }
            self.journal(&ids)?;
            self.store.upsert(new_points)?;
            self.store.set_vectors(&model, new_vectors)?;
            for record in &updated_records {
                self.store.set_record(record)?;
            }
            self.store.flush();
            self.journal_done()?;
            if let (Some(tag), false) = (&tag, shard_noted) {
                self.note_shard(tag, seen.values().collect::<HashSet<_>>().len())?;
                shard_noted = true;
            }
        }
        if report.added + report.vectors_added > 0 {
            if let Ok(identity) = engine.identity(clamp3_models::Modality::Text) {
                if let Some(before) = self.note_model(&model, identity)? {
                    progress.warning(&format!(
                        "the {model} weights differ from those earlier vectors of this library \
                         were made with ({before}); if the model changed, vectors do not compare: \
                         remove the library and add again"
                    ));
                }
            }
            self.store.optimize()?;
            self.store.flush();
        }
        report.retried_calls = self.retried_calls();
        Ok(report)
    }

    /// The supported files under the roots (sorted, absolute) and the roots made absolute;
    /// unreadable roots and unsupported files go to the report.
    fn walk(&self, roots: &[PathBuf], report: &mut AddReport) -> (Vec<Found>, Vec<PathBuf>) {
        let mut found = Vec::new();
        let mut absolute_roots = Vec::new();
        let mut seen = HashSet::new();
        for root in roots {
            let root_abs = match std::fs::canonicalize(root) {
                Ok(p) => p,
                Err(e) => {
                    report
                        .failed
                        .push((root.clone(), format!("{}: {e}", root.display())));
                    continue;
                }
            };
            absolute_roots.push(root_abs.clone());
            let walker = walkdir::WalkDir::new(&root_abs).sort_by_file_name();
            for entry in walker {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        let path = e
                            .path()
                            .map(Path::to_path_buf)
                            .unwrap_or_else(|| root.clone());
                        report
                            .failed
                            .push((path.clone(), format!("{}: {e}", path.display())));
                        continue;
                    }
                };
                let path = entry.path();
                // The library's own files are never items of it.
                if path.starts_with(self.path()) || !entry.file_type().is_file() {
                    continue;
                }
                let Some(kind) = FileKind::of(path) else {
                    report.unsupported.push(path.to_path_buf());
                    continue;
                };
                let Ok(meta) = entry.metadata() else {
                    report.failed.push((
                        path.to_path_buf(),
                        format!("{}: cannot stat", path.display()),
                    ));
                    continue;
                };
                if !seen.insert(path.to_path_buf()) {
                    continue;
                }
                found.push(Found {
                    path: path.to_path_buf(),
                    kind,
                    file: ItemFile {
                        path: path.to_path_buf(),
                        size: meta.len(),
                        mtime_ns: mtime_ns(&meta),
                    },
                });
            }
        }
        (found, absolute_roots)
    }
}
