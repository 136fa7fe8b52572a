//! A library: a folder (the embedded store, its lock, its format marker and the journal of the
//! update in flight) or a collection of a Qdrant server (see `store::remote` for what the lock,
//! marker and journal become there); and the questions a library answers (search, similar,
//! items, info, verify).

use crate::store::{ClusterInfo, Points, Scan, Store, StoredPoint};
use crate::{Error, Filter, Hit, ItemId, ItemRecord, Location, QdrantLocation, Result, MODALITIES};
use clamp3_engine::Engine;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

/// The library's format version, in `library.json`: a folder of another version is refused
/// rather than misread.
pub(crate) const FORMAT: u32 = 1;
const MARKER: &str = "library.json";
const LOCK: &str = "LOCK";
const STORE: &str = "store";

/// HNSW's candidate list for a search, per edge shard. Among a million clustered 768-d vectors
/// in two shards (`cargo bench -p clamp3-library --bench store -- --points 1000000`) the share
/// of the true top 10 found was 0.784 with Qdrant's default (the build's `ef_construct`, 100),
/// 0.896 with 256 (4.0 ms), 0.932 with 512 (5.0 ms) and 0.958 with 1024 (5.3 ms).
pub const HNSW_EF: usize = 1024;

/// The ids an update is writing; present only while one is in flight (or after a crash in it).
const JOURNAL: &str = "pending.json";

#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    format: u32,
    /// Per model (vector name): the identity of the weights its vectors were made with.
    #[serde(default)]
    models: BTreeMap<String, String>,
    /// Per share of split extraction (`I/N`): how many items it has to store.
    #[serde(default)]
    shards: BTreeMap<String, ShardTotal>,
}

/// What a split-extraction worker recorded of its share when it started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ShardTotal {
    /// Distinct items (content) of the share found under the worker's folders.
    total: usize,
    /// When, seconds since the Unix epoch.
    updated: u64,
}

/// Metadata keys of a server library's marker (one key per entry: Qdrant merges metadata key
/// by key, so concurrent workers never overwrite one another's).
const MODEL_KEY: &str = "clamp3.model.";
const SHARD_KEY: &str = "clamp3.shard.";

/// A music library: files embedded once, kept in Qdrant (embedded, or a server), asked many
/// times. A folder library is open in one process at a time (a lock file says which); a server
/// library is shared by any number of processes. Share it between threads.
pub struct Library {
    /// The folder, or the `qdrant://` location as a path (for messages).
    dir: PathBuf,
    pub(crate) store: Store,
    // Held for the life of the library: the OS releases the lock when the process dies, so a
    // killed `add` never leaves the library locked. None for a server library.
    _lock: Option<File>,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// What `info` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LibraryInfo {
    /// The library folder.
    pub path: PathBuf,
    /// Items in all.
    pub items: usize,
    /// Items per modality.
    pub by_modality: BTreeMap<String, usize>,
    /// Per model: how many items have its vector, and the vectors' dimension.
    pub models: BTreeMap<String, ModelInfo>,
    /// Per share of split extraction (`add --shard I/N`): items stored of how many.
    pub shards: BTreeMap<String, ShardInfo>,
    /// For a library on a Qdrant server: the server, and how the cluster holds the collection.
    pub cluster: Option<ClusterInfo>,
    /// Vectors searched through HNSW (the others exactly).
    pub indexed_vectors: usize,
    /// How many edge shards a folder library's store is split into (`None` for a server).
    pub edge_shards: Option<usize>,
    /// Bytes the library takes on disk (0 for a server library: the server's disks hold it).
    pub bytes_on_disk: u64,
}

/// The progress of one share of split extraction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShardInfo {
    /// Items of the share stored.
    pub items: usize,
    /// Items of the share its worker found to store (when it last started).
    pub total: usize,
    /// When that worker last started, seconds since the Unix epoch.
    pub updated: u64,
}

/// One model's share of a library.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    /// Items with a vector of this model.
    pub items: usize,
    /// The vectors' dimension.
    pub dim: usize,
}

/// What `verify` found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VerifyReport {
    /// Items checked.
    pub items: usize,
    /// Files checked.
    pub files: usize,
    /// Files that no longer exist.
    pub missing: Vec<(ItemId, PathBuf)>,
    /// Files whose content is no longer the item's.
    pub changed: Vec<(ItemId, PathBuf)>,
    /// Points that are not whole: no record, or a listed model without its vector.
    pub damaged: Vec<(ItemId, String)>,
}

impl VerifyReport {
    /// Whether the library and the files agree.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.changed.is_empty() && self.damaged.is_empty()
    }
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |error| Error::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, synced, so a reader sees the
/// old or the new file, never half of one.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    Ok(())
}

impl Library {
    /// `$CLAMP3_LIBRARY`, else `$XDG_DATA_HOME/clamp3/library`, else
    /// `~/.local/share/clamp3/library` (`%APPDATA%\clamp3\library` on Windows).
    /// (A `qdrant://` value of `$CLAMP3_LIBRARY` is not a folder: [`Location::default_location`]
    /// reads either.)
    pub fn default_path() -> PathBuf {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        if let Some(dir) =
            var("CLAMP3_LIBRARY").filter(|d| !Location::is_qdrant_url(&d.to_string_lossy()))
        {
            return dir;
        }
        let data = var("XDG_DATA_HOME")
            .or_else(|| var("APPDATA"))
            .or_else(|| var("HOME").map(|h| h.join(".local").join("share")))
            .unwrap_or_else(|| PathBuf::from("."));
        data.join("clamp3").join("library")
    }

    /// Opens a library wherever it is ([`Library::open`] a folder, [`Library::open_qdrant`] a
    /// collection on a server).
    pub fn open_at(location: &Location) -> Result<Self> {
        match location {
            Location::Folder(dir) => Self::open(dir),
            Location::Qdrant(q) => Self::open_qdrant(q),
        }
    }

    /// Opens the library in a collection of a Qdrant server or cluster, which is created (with
    /// the location's collection options) when the first vectors are written. A collection that
    /// exists and is not a library is refused.
    pub fn open_qdrant(location: &QdrantLocation) -> Result<Self> {
        let store = Store::open_remote(location)?;
        Ok(Library {
            dir: PathBuf::from(location.to_string()),
            store,
            _lock: None,
        })
    }

    /// Whether the library is a collection on a Qdrant server.
    pub fn is_remote(&self) -> bool {
        self.store.remote().is_some()
    }

    /// Calls to a Qdrant server that failed transiently and were retried (0 for a folder).
    pub fn retried_calls(&self) -> usize {
        self.store.remote().map(|r| r.retried()).unwrap_or(0)
    }

    /// Opens the library in `dir`, creating it if the folder is empty or absent (its store split
    /// into one edge shard per core, up to 8). Finishes or undoes an update that a crash
    /// interrupted.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with_edge_shards(dir, crate::store::default_edge_shards())
    }

    /// [`Library::open`], a new library's store split into `edge_shards` shards (searched in
    /// parallel; an existing library keeps its own number).
    pub fn open_with_edge_shards(dir: &Path, edge_shards: usize) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let dir = std::fs::canonicalize(dir).map_err(io(dir))?;
        let marker_path = dir.join(MARKER);
        if !marker_path.exists() {
            // A new library's first files: the lock, and the marker's temporary file where a
            // kill came before its rename.
            let unwritten = marker_path.with_extension("tmp");
            let foreign = std::fs::read_dir(&dir)
                .map_err(io(&dir))?
                .filter_map(|e| e.ok())
                .any(|e| e.file_name() != LOCK && e.path() != unwritten);
            if foreign {
                return Err(Error::NotALibrary {
                    library: dir.clone(),
                    reason: format!(
                        "the folder is not empty and has no {MARKER}: not a clamp3 library"
                    ),
                });
            }
        }
        let lock_path = dir.join(LOCK);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        if lock.try_lock().is_err() {
            return Err(Error::Busy {
                library: dir.clone(),
                lock: lock_path,
            });
        }
        let marker = Self::read_marker(&dir)?;
        if marker.format != FORMAT {
            return Err(Error::NotALibrary {
                library: dir.clone(),
                reason: format!(
                    "library format {} (this clamp3 reads format {FORMAT})",
                    marker.format
                ),
            });
        }
        if !marker_path.exists() {
            write_atomic(
                &marker_path,
                &serde_json::to_vec_pretty(&marker).unwrap_or_default(),
            )?;
        }
        let store = Store::open_edge(&dir.join(STORE), &dir, edge_shards)?;
        let library = Library {
            dir,
            store,
            _lock: Some(lock),
        };
        library.recover()?;
        Ok(library)
    }

    fn read_marker(dir: &Path) -> Result<Marker> {
        let path = dir.join(MARKER);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::NotALibrary {
                library: dir.to_path_buf(),
                reason: format!("{MARKER}: {e}"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Marker {
                format: FORMAT,
                models: BTreeMap::new(),
                shards: BTreeMap::new(),
            }),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// The marker: the folder's `library.json`, or the collection's metadata.
    fn marker(&self) -> Result<Marker> {
        let Some(remote) = self.store.remote() else {
            return Self::read_marker(&self.dir);
        };
        let mut marker = Marker {
            format: FORMAT,
            models: BTreeMap::new(),
            shards: BTreeMap::new(),
        };
        for (key, value) in remote.metadata()? {
            if let Some(model) = key.strip_prefix(MODEL_KEY) {
                if let Some(identity) = value.as_str() {
                    marker
                        .models
                        .insert(model.to_string(), identity.to_string());
                }
            } else if let Some(shard) = key.strip_prefix(SHARD_KEY) {
                if let Ok(total) = serde_json::from_value(value) {
                    marker.shards.insert(shard.to_string(), total);
                }
            }
        }
        Ok(marker)
    }

    /// Changes the marker: a folder's is read, changed and written back (one process holds the
    /// lock); a collection's gets only the keys changed, which Qdrant merges.
    fn update_marker(&self, change: impl FnOnce(&mut Marker)) -> Result<()> {
        let mut marker = self.marker()?;
        let before = (marker.models.clone(), marker.shards.clone());
        change(&mut marker);
        let Some(remote) = self.store.remote() else {
            return write_atomic(
                &self.dir.join(MARKER),
                &serde_json::to_vec_pretty(&marker).unwrap_or_default(),
            );
        };
        let mut entries = std::collections::HashMap::new();
        for (model, identity) in &marker.models {
            if before.0.get(model) != Some(identity) {
                entries.insert(format!("{MODEL_KEY}{model}"), serde_json::json!(identity));
            }
        }
        for (shard, total) in &marker.shards {
            if before.1.get(shard) != Some(total) {
                entries.insert(
                    format!("{SHARD_KEY}{shard}"),
                    serde_json::to_value(total).unwrap_or_default(),
                );
            }
        }
        remote.set_metadata(entries)
    }

    /// The weights each model's vectors were made with, as recorded.
    pub fn model_identities(&self) -> Result<BTreeMap<String, String>> {
        Ok(self.marker()?.models)
    }

    /// Records the weights a model's vectors come from; says (as `Some(old)`) when they differ
    /// from those recorded before.
    pub(crate) fn note_model(&self, name: &str, identity: &str) -> Result<Option<String>> {
        let previous = self.marker()?.models.get(name).cloned();
        if previous.as_deref() != Some(identity) {
            self.update_marker(|m| {
                m.models.insert(name.to_string(), identity.to_string());
            })?;
        }
        Ok(previous.filter(|p| p != identity))
    }

    /// Records how many items a share of split extraction has to store.
    pub(crate) fn note_shard(&self, shard: &str, total: usize) -> Result<()> {
        let updated = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.update_marker(|m| {
            m.shards
                .insert(shard.to_string(), ShardTotal { total, updated });
        })
    }

    /// The library folder (for a server library, its `qdrant://` location as a path).
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The vector name of an engine's model in the library: the model's name (`clamp3-saas`, …).
    pub fn model_key(engine: &Engine) -> String {
        engine.family().name().to_string()
    }

    /// Writes the ids an update is about to write, before it writes them. (A server library
    /// needs none: its points are written whole, and each write has happened when it returns.)
    pub(crate) fn journal(&self, ids: &[ItemId]) -> Result<()> {
        if self.is_remote() {
            return Ok(());
        }
        let ids: Vec<String> = ids.iter().map(ItemId::to_string).collect();
        write_atomic(
            &self.dir.join(JOURNAL),
            &serde_json::to_vec(&ids).unwrap_or_default(),
        )
    }

    /// The update is durable: its journal goes.
    pub(crate) fn journal_done(&self) -> Result<()> {
        if self.is_remote() {
            return Ok(());
        }
        let path = self.dir.join(JOURNAL);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// After a crash inside an update: every point it was writing is checked, and one that is
    /// not whole is deleted (the next `add` embeds it again, from the feature cache).
    fn recover(&self) -> Result<()> {
        let path = self.dir.join(JOURNAL);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(&path)(e)),
        };
        // A journal that does not parse was never renamed into place: nothing was written.
        let ids: Vec<ItemId> = serde_json::from_slice::<Vec<String>>(&bytes)
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        let names = self.vector_names()?;
        let dims = self.store.vector_names()?;
        let points = self.store.retrieve(&ids, Some(&names))?;
        let whole: HashSet<ItemId> = points
            .iter()
            .filter(|p| damage(p, &dims).is_none())
            .map(|p| p.id)
            .collect();
        let broken: Vec<ItemId> = ids
            .iter()
            .copied()
            .filter(|id| !whole.contains(id) && points.iter().any(|p| p.id == *id))
            .collect();
        self.store.delete(&broken)?;
        self.store.flush();
        self.journal_done()
    }

    fn vector_names(&self) -> Result<Vec<String>> {
        Ok(self
            .store
            .vector_names()?
            .into_iter()
            .map(|(n, _)| n)
            .collect())
    }

    /// The models (vector names) the library holds, and their dimensions.
    pub fn models(&self) -> Result<Vec<(String, usize)>> {
        self.store.vector_names()
    }

    fn require_vectors(&self, model: &str) -> Result<()> {
        let names = self.vector_names()?;
        if names.iter().any(|n| n == model) {
            Ok(())
        } else {
            Err(Error::NoVectors {
                model: model.to_string(),
                held: if names.is_empty() {
                    "nothing yet".into()
                } else {
                    names.join(", ")
                },
            })
        }
    }

    /// The `top_k` items nearest to a query vector of the engine's model, best first.
    pub fn search(
        &self,
        engine: &Engine,
        query: &[f32],
        top_k: usize,
        filter: &Filter,
    ) -> Result<Vec<Hit>> {
        self.search_model(&Self::model_key(engine), query, top_k, filter)
    }

    /// [`Library::search`] by model name.
    pub fn search_model(
        &self,
        model: &str,
        query: &[f32],
        top_k: usize,
        filter: &Filter,
    ) -> Result<Vec<Hit>> {
        self.require_vectors(model)?;
        self.hits(model, query, top_k, filter, None, Self::hnsw(top_k))
    }

    /// [`Library::search_model`], the vectors visited as `scan` says (for measuring recall
    /// against [`Scan::Exact`] and latency at other HNSW candidate lists).
    pub fn search_scan(
        &self,
        model: &str,
        query: &[f32],
        top_k: usize,
        filter: &Filter,
        scan: Scan,
    ) -> Result<Vec<Hit>> {
        self.require_vectors(model)?;
        self.hits(model, query, top_k, filter, None, scan)
    }

    /// HNSW with the default candidate list, never shorter than the results asked for.
    fn hnsw(top_k: usize) -> Scan {
        Scan::Hnsw {
            ef: HNSW_EF.max(top_k),
        }
    }

    /// [`Library::search_model`] by a full scan, never HNSW (the reference for recall).
    pub fn search_exact(
        &self,
        model: &str,
        query: &[f32],
        top_k: usize,
        filter: &Filter,
    ) -> Result<Vec<Hit>> {
        self.search_scan(model, query, top_k, filter, Scan::Exact)
    }

    fn hits(
        &self,
        model: &str,
        query: &[f32],
        top_k: usize,
        filter: &Filter,
        exclude: Option<ItemId>,
        scan: Scan,
    ) -> Result<Vec<Hit>> {
        if top_k == 0 {
            return Ok(Vec::new());
        }
        Ok(self
            .store
            .search(model, query, top_k, filter, exclude, scan)?
            .into_iter()
            .map(|(item, score)| Hit { item, score })
            .collect())
    }

    /// The `top_k` items nearest to an item of the library (itself left out).
    pub fn similar(
        &self,
        engine: &Engine,
        id: ItemId,
        top_k: usize,
        filter: &Filter,
    ) -> Result<Vec<Hit>> {
        self.similar_model(&Self::model_key(engine), id, top_k, filter)
    }

    /// [`Library::similar`] by model name.
    pub fn similar_model(
        &self,
        model: &str,
        id: ItemId,
        top_k: usize,
        filter: &Filter,
    ) -> Result<Vec<Hit>> {
        self.require_vectors(model)?;
        let point = self
            .store
            .retrieve(&[id], Some(&[model.to_string()]))?
            .pop()
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        let vector = point.vectors.get(model).ok_or_else(|| Error::NoVectors {
            model: format!("{model} for item {id}"),
            held: point
                .record
                .map(|r| r.models.join(", "))
                .unwrap_or_default(),
        })?;
        self.hits(model, vector, top_k, filter, Some(id), Self::hnsw(top_k))
    }

    /// Stores items with their vectors of one model as given, replacing items of the same id:
    /// for moving a library between stores and for benchmarks on synthetic vectors.
    pub fn put(&self, model: &str, items: Vec<(ItemRecord, Vec<f32>)>) -> Result<()> {
        let Some(dim) = items.first().map(|(_, v)| v.len()) else {
            return Ok(());
        };
        if let Some((record, v)) = items.iter().find(|(_, v)| v.len() != dim) {
            return Err(Error::Invalid(format!(
                "item {}: a {}-d vector among {dim}-d ones",
                record.id,
                v.len()
            )));
        }
        self.store.ensure_vector(model, dim)?;
        self.put_points(
            items
                .into_iter()
                .map(|(mut record, v)| {
                    if !record.models.iter().any(|m| m == model) {
                        record.models.push(model.to_string());
                    }
                    (
                        record,
                        std::collections::HashMap::from([(model.to_string(), v)]),
                    )
                })
                .collect(),
        )
    }

    /// Writes whole points (their vector names must exist) as one durable step.
    pub(crate) fn put_points(&self, points: Points) -> Result<()> {
        let ids: Vec<ItemId> = points.iter().map(|(r, _)| r.id).collect();
        self.journal(&ids)?;
        self.store.upsert(points)?;
        self.store.flush();
        self.journal_done()
    }

    /// Builds HNSW where the store has grown enough for it (`add` does this itself).
    pub fn optimize(&self) -> Result<()> {
        self.store.optimize()?;
        self.store.flush();
        Ok(())
    }

    /// One item, by id.
    pub fn item(&self, id: ItemId) -> Result<Option<ItemRecord>> {
        Ok(self
            .store
            .retrieve(&[id], None)?
            .pop()
            .and_then(|p| p.record))
    }

    /// An item's vector of a model (unit length).
    pub fn vector(&self, model: &str, id: ItemId) -> Result<Option<Vec<f32>>> {
        Ok(self
            .store
            .retrieve(&[id], Some(&[model.to_string()]))?
            .pop()
            .and_then(|mut p| p.vectors.remove(model)))
    }

    /// The item a file belongs to (the path as given, or made absolute).
    pub fn item_by_path(&self, path: &Path) -> Result<Option<ItemRecord>> {
        let wanted = absolute(path);
        Ok(self
            .store
            .scroll(&Filter::default())?
            .into_iter()
            .filter_map(|p| p.record)
            .find(|r| r.files.iter().any(|f| f.path == wanted)))
    }

    /// An item given as an id or a path.
    pub fn resolve(&self, id_or_path: &str) -> Result<ItemRecord> {
        if let Ok(id) = id_or_path.parse::<ItemId>() {
            if let Some(record) = self.item(id)? {
                return Ok(record);
            }
        }
        self.item_by_path(Path::new(id_or_path))?
            .ok_or_else(|| Error::NotFound(id_or_path.to_string()))
    }

    /// A page of items passing the filter, in id order.
    pub fn items(&self, offset: usize, limit: usize, filter: &Filter) -> Result<Vec<ItemRecord>> {
        Ok(self
            .store
            .page(filter, offset, limit)?
            .into_iter()
            .filter_map(|p| p.record)
            .collect())
    }

    /// How many items pass the filter.
    pub fn count(&self, filter: &Filter) -> Result<usize> {
        self.store.count(filter, None)
    }

    /// Counts by modality and model, and the size on disk.
    pub fn info(&self) -> Result<LibraryInfo> {
        let mut by_modality = BTreeMap::new();
        for modality in MODALITIES {
            let n = self.store.count(&Filter::modality(modality), None)?;
            if n > 0 {
                by_modality.insert(modality.to_string(), n);
            }
        }
        let mut models = BTreeMap::new();
        for (name, dim) in self.store.vector_names()? {
            let items = self.store.count(&Filter::default(), Some(&name))?;
            models.insert(name, ModelInfo { items, dim });
        }
        let mut shards = BTreeMap::new();
        for (shard, total) in self.marker()?.shards {
            let filter = Filter::default().and(Filter::shard(&shard));
            shards.insert(
                shard,
                ShardInfo {
                    items: self.store.count(&filter, None)?,
                    total: total.total,
                    updated: total.updated,
                },
            );
        }
        let cluster = match self.store.remote() {
            Some(remote) => remote.cluster()?,
            None => None,
        };
        Ok(LibraryInfo {
            path: self.dir.clone(),
            items: self.store.count(&Filter::default(), None)?,
            by_modality,
            models,
            shards,
            cluster,
            indexed_vectors: self.store.indexed_vectors()?,
            edge_shards: self.store.edge_shards(),
            bytes_on_disk: if self.is_remote() {
                0
            } else {
                disk_usage(&self.dir)
            },
        })
    }

    /// Checks every item against its files (they exist; their content is still the item's,
    /// re-hashed when size or time changed, or always with `rehash`) and every point for
    /// wholeness. Changes nothing: `add` repairs.
    pub fn verify(&self, rehash: bool) -> Result<VerifyReport> {
        let mut report = VerifyReport::default();
        let names = self.vector_names()?;
        let dims = self.store.vector_names()?;
        let ids: Vec<ItemId> = self
            .store
            .scroll(&Filter::default())?
            .iter()
            .map(|p| p.id)
            .collect();
        for chunk in ids.chunks(256) {
            for point in self.store.retrieve(chunk, Some(&names))? {
                report.items += 1;
                if let Some(why) = damage(&point, &dims) {
                    report.damaged.push((point.id, why));
                }
                let Some(record) = &point.record else {
                    continue;
                };
                for file in &record.files {
                    report.files += 1;
                    match std::fs::metadata(&file.path) {
                        Err(_) => report.missing.push((point.id, file.path.clone())),
                        Ok(meta) => {
                            let same_stat =
                                meta.len() == file.size && mtime_ns(&meta) == file.mtime_ns;
                            if rehash || !same_stat {
                                let same = crate::add::hash_file(&file.path)
                                    .map(|h| h.to_hex().to_string() == record.content_hash)
                                    .unwrap_or(false);
                                if !same {
                                    report.changed.push((point.id, file.path.clone()));
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(report)
    }

    /// Forgets items: given by id, or by path (a file, or every file under a folder). Returns
    /// the ids of the items that went (an item held by other files stays, without these).
    pub fn remove(&self, targets: &[String]) -> Result<Vec<ItemId>> {
        let mut removed = Vec::new();
        let mut ids = Vec::new();
        let mut paths = Vec::new();
        for target in targets {
            match target.parse::<ItemId>() {
                Ok(id) if self.item(id)?.is_some() => ids.push(id),
                _ => paths.push(absolute(Path::new(target))),
            }
        }
        let mut found_paths = vec![false; paths.len()];
        let mut rewrite = Vec::new();
        for point in self.store.scroll(&Filter::default())? {
            let Some(mut record) = point.record else {
                continue;
            };
            let before = record.files.len();
            record.files.retain(|f| {
                let hit = paths
                    .iter()
                    .position(|p| f.path == *p || f.path.starts_with(p));
                if let Some(i) = hit {
                    found_paths[i] = true;
                }
                hit.is_none()
            });
            if record.files.is_empty() {
                ids.push(record.id);
            } else if record.files.len() != before {
                record.path = record.files[0].path.clone();
                rewrite.push(record);
            }
        }
        if let Some(i) = found_paths.iter().position(|f| !f) {
            return Err(Error::NotFound(paths[i].display().to_string()));
        }
        let mut journaled: Vec<ItemId> = ids.clone();
        journaled.extend(rewrite.iter().map(|r| r.id));
        self.journal(&journaled)?;
        for record in &rewrite {
            self.store.set_record(record)?;
        }
        self.store.delete(&ids)?;
        self.store.flush();
        self.journal_done()?;
        removed.extend(ids);
        Ok(removed)
    }
}

/// Why a point is not whole, if it is not.
fn damage(point: &StoredPoint, dims: &[(String, usize)]) -> Option<String> {
    let Some(record) = &point.record else {
        return Some("its payload is not an item record".into());
    };
    if record.id != point.id {
        return Some(format!("its record names item {}", record.id));
    }
    for model in &record.models {
        let Some(vector) = point.vectors.get(model) else {
            return Some(format!("no {model} vector"));
        };
        let dim = dims.iter().find(|(n, _)| n == model).map(|(_, d)| *d);
        if Some(vector.len()) != dim || vector.iter().any(|x| !x.is_finite()) {
            return Some(format!("a malformed {model} vector"));
        }
    }
    None
}

/// A path made absolute against the current folder, canonical where it exists.
pub(crate) fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    })
}

/// Modification time in nanoseconds since the epoch; 0 when the file system has none.
pub(crate) fn mtime_ns(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Bytes of all files under `dir` (allocated size where the OS gives it: WAL segments are
/// preallocated sparse files).
fn disk_usage(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| allocated(&m))
        .sum()
}

#[cfg(unix)]
fn allocated(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.blocks() * 512
}

#[cfg(not(unix))]
fn allocated(meta: &std::fs::Metadata) -> u64 {
    meta.len()
}
