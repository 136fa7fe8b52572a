//! The store on a Qdrant server or cluster: one collection, over gRPC (`qdrant-client`), with
//! the points the embedded store holds (u64 ids from the content hash, a named cosine vector per
//! model, the record as payload, keyword indexes on the same fields).
//!
//! A collection is shared: many processes (`add --shard` workers on many machines) write to it
//! at once, so there is no lock and no journal. Every write waits until the server has applied
//! it (`wait=true`) and writes what makes an item whole in one point upsert (vectors and record
//! together), and every write is keyed by content hash, so a write repeated after a crash or a
//! lost answer changes nothing: a crash leaves no half-written point, and re-running finishes the
//! job. The library's marker (format, models' weights, split-extraction totals) is the
//! collection's metadata, which Qdrant merges key by key, so concurrent writers do not clobber
//! one another. Calls that fail transiently (a node restarting, a replica down, an overloaded
//! server) are retried with exponential backoff for [`crate::QdrantLocation::retry_for`].
//!
//! The library's API is synchronous: the store owns a small tokio runtime and blocks on it (call
//! it from plain threads, or from `spawn_blocking` in async code).

use super::{Points, Scan, StoredPoint, INDEXED_FIELDS};
use crate::{Error, Filter, ItemId, ItemRecord, QdrantLocation, Result};
use qdrant_client::qdrant::{
    point_id::PointIdOptions, quantization_config, r#match::MatchValue, vectors_config,
    vectors_output::VectorsOptions, with_vectors_selector::SelectorOptions, Condition,
    CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    DeletePointsBuilder, Distance, FieldType, GetPointsBuilder, PointId, PointStruct, PointVectors,
    PointsIdsList, QuantizationType, Query, QueryPointsBuilder, ScalarQuantizationBuilder,
    ScrollPointsBuilder, SearchParamsBuilder, SetPayloadPointsBuilder, UpdateCollectionBuilder,
    UpdatePointVectorsBuilder, UpsertPointsBuilder, VectorParamsBuilder, VectorsConfigBuilder,
    VectorsSelector, WriteOrdering, WriteOrderingType,
};
use qdrant_client::{Payload, Qdrant, QdrantError};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Points per write request: 256 × 768-d f32 vectors is ~0.8 MB, well under gRPC's limits.
const WRITE_BATCH: usize = 256;

/// Ids per read request.
const READ_BATCH: usize = 1024;

/// One request's limit; a write to a cluster that is moving a shard can take a while.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The metadata key of the library's format (its presence says the collection is a library).
pub(crate) const FORMAT_KEY: &str = "clamp3.format";

/// How a Qdrant cluster holds the collection, as the node we talk to sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterInfo {
    /// The Qdrant server's version.
    pub server_version: String,
    /// Shards the points are spread over.
    pub shards: u32,
    /// Copies of each shard.
    pub replication_factor: u32,
    /// Whether vectors live on disk.
    pub on_disk: bool,
    /// The quantization, if any (`int8`).
    pub quantization: Option<String>,
    /// Every replica of every shard: where, and in what state (`Active`, `Dead`, `Partial`, …).
    pub replicas: Vec<ReplicaInfo>,
    /// Shard transfers under way (a replica catching up after its node came back).
    pub transfers: usize,
}

/// One replica of a shard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplicaInfo {
    /// The shard.
    pub shard: u32,
    /// The Qdrant peer holding it.
    pub peer: u64,
    /// Its state.
    pub state: String,
}

/// The collection on a server, and the runtime its calls run on.
pub(crate) struct RemoteStore {
    // `Option` only so that drop can shut it down without blocking (see `Drop`).
    runtime: Option<tokio::runtime::Runtime>,
    client: Qdrant,
    collection: String,
    /// The location as errors name it (`qdrant://host:port/collection`).
    name: PathBuf,
    location: QdrantLocation,
    /// The collection's named vectors; `None` while there is no collection (it is created with
    /// the first vectors written: Qdrant fixes a collection's vectors at creation).
    vectors: Mutex<Option<Vec<(String, usize)>>>,
    /// Calls that were retried, for reports.
    retried: AtomicUsize,
}

impl Drop for RemoteStore {
    fn drop(&mut self) {
        // Dropping a runtime inside another one (a server dropping its library) would panic.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Whether an error may go away if the call is repeated.
fn transient(error: &QdrantError) -> bool {
    match error {
        QdrantError::ResponseError { status } => {
            // Cancelled, Unknown, DeadlineExceeded, ResourceExhausted, Aborted, Internal,
            // Unavailable: what a node going down or a replica being moved looks like.
            matches!(i32::from(status.code()), 1 | 2 | 4 | 8 | 10 | 13 | 14)
        }
        QdrantError::ResourceExhaustedError { .. } | QdrantError::Io(_) => true,
        _ => false,
    }
}

fn already_exists(error: &QdrantError) -> bool {
    match error {
        QdrantError::ResponseError { status } => {
            i32::from(status.code()) == 6 || status.message().contains("already exists")
        }
        _ => false,
    }
}

fn point_id(id: ItemId) -> PointId {
    PointId::from(id.0)
}

fn item_id(id: Option<PointId>) -> Option<ItemId> {
    match id?.point_id_options? {
        PointIdOptions::Num(n) => Some(ItemId(n)),
        PointIdOptions::Uuid(_) => None,
    }
}

fn payload_of(record: &ItemRecord) -> Payload {
    Payload::from(record.to_payload())
}

fn record_of(payload: HashMap<String, qdrant_client::qdrant::Value>) -> Option<ItemRecord> {
    let map: serde_json::Map<String, serde_json::Value> = payload
        .into_iter()
        .map(|(k, v)| (k, v.into_json()))
        .collect();
    ItemRecord::from_payload(map)
}

fn vectors_of(vectors: Option<qdrant_client::qdrant::VectorsOutput>) -> HashMap<String, Vec<f32>> {
    use qdrant_client::qdrant::vector_output::Vector;
    match vectors.and_then(|v| v.vectors_options) {
        Some(VectorsOptions::Vectors(named)) => named
            .vectors
            .into_iter()
            .filter_map(|(name, v)| match v.into_vector() {
                Vector::Dense(d) => Some((name, d.data)),
                _ => None,
            })
            .collect(),
        _ => HashMap::new(),
    }
}

fn selector(vectors: Option<&[String]>) -> SelectorOptions {
    match vectors {
        Some(names) if !names.is_empty() => SelectorOptions::Include(VectorsSelector {
            names: names.to_vec(),
        }),
        _ => SelectorOptions::from(false),
    }
}

fn ordering() -> WriteOrdering {
    // Through the shard's leader replica: two replicas never apply a point's updates in
    // different orders.
    WriteOrdering {
        r#type: WriteOrderingType::Medium.into(),
    }
}

/// Our filter, plus an id to leave out, as the server's.
fn filter_of(filter: &Filter, exclude: Option<ItemId>) -> Option<qdrant_client::qdrant::Filter> {
    let must = conditions(filter);
    let must_not: Vec<Condition> = exclude
        .map(|id| Condition::has_id([point_id(id)]))
        .into_iter()
        .collect();
    if must.is_empty() && must_not.is_empty() {
        return None;
    }
    Some(qdrant_client::qdrant::Filter {
        must,
        must_not,
        ..Default::default()
    })
}

fn conditions(filter: &Filter) -> Vec<Condition> {
    filter
        .fields()
        .into_iter()
        .map(|(path, mut values)| {
            let matching = if values.len() == 1 {
                MatchValue::from(values.remove(0))
            } else {
                MatchValue::from(values)
            };
            Condition::matches(path, matching)
        })
        .collect()
}

fn stored(
    id: Option<PointId>,
    payload: HashMap<String, qdrant_client::qdrant::Value>,
    vectors: Option<qdrant_client::qdrant::VectorsOutput>,
) -> Option<StoredPoint> {
    Some(StoredPoint {
        id: item_id(id)?,
        record: record_of(payload),
        vectors: vectors_of(vectors),
    })
}

/// The dense named vectors of a collection config.
fn vector_params(info: &qdrant_client::qdrant::CollectionInfo) -> Vec<(String, usize)> {
    let config = info
        .config
        .as_ref()
        .and_then(|c| c.params.as_ref())
        .and_then(|p| p.vectors_config.as_ref())
        .and_then(|v| v.config.as_ref());
    let mut names: Vec<(String, usize)> = match config {
        Some(vectors_config::Config::ParamsMap(map)) => map
            .map
            .iter()
            .map(|(name, p)| (name.clone(), p.size as usize))
            .collect(),
        Some(vectors_config::Config::Params(p)) => vec![(String::new(), p.size as usize)],
        None => Vec::new(),
    };
    names.sort();
    names
}

impl RemoteStore {
    /// Connects, and reads the collection if it exists (refusing one that is not a library).
    pub fn open(location: &QdrantLocation) -> Result<Self> {
        let name = PathBuf::from(location.to_string());
        let store_error = |reason: String| Error::Store {
            library: name.clone(),
            reason,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("clamp3-qdrant")
            .enable_all()
            .build()
            .map_err(|e| store_error(format!("starting the async runtime: {e}")))?;
        let client = {
            // The client's channel is made inside the runtime it will run on.
            let _guard = runtime.enter();
            Qdrant::from_url(&location.endpoint)
                .api_key(location.api_key.clone())
                .timeout(REQUEST_TIMEOUT)
                .connect_timeout(Duration::from_secs(5))
                .keep_alive_while_idle()
                // Its check prints to stdout, which is ours; `open` checks the server itself.
                .skip_compatibility_check()
                .build()
                .map_err(|e| store_error(e.to_string()))?
        };
        let store = RemoteStore {
            runtime: Some(runtime),
            client,
            collection: location.collection.clone(),
            name,
            location: location.clone(),
            vectors: Mutex::new(None),
            retried: AtomicUsize::new(0),
        };
        store.call("health check", || store.client.health_check())?;
        store.refresh()?;
        Ok(store)
    }

    fn error(&self, what: &str, e: QdrantError) -> Error {
        let reason = match &e {
            QdrantError::ResponseError { status } => {
                format!("{what}: {:?}: {}", status.code(), status.message())
            }
            other => format!("{what}: {other}"),
        };
        Error::Store {
            library: self.name.clone(),
            reason,
        }
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the store")
    }

    /// Runs a call, retrying transient failures with exponential backoff (0.2 s doubling to
    /// 5 s) for as long as the location allows. Every call made through here is idempotent.
    fn call<T, F, Fut>(&self, what: &str, f: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, QdrantError>>,
    {
        let started = Instant::now();
        let mut delay = Duration::from_millis(200);
        loop {
            match self.runtime().block_on(f()) {
                Ok(v) => return Ok(v),
                Err(e) if transient(&e) && started.elapsed() + delay < self.location.retry_for => {
                    self.retried.fetch_add(1, Ordering::Relaxed);
                    let wait = match &e {
                        QdrantError::ResourceExhaustedError {
                            retry_after_seconds,
                            ..
                        } => delay.max(Duration::from_secs(*retry_after_seconds)),
                        _ => delay,
                    };
                    std::thread::sleep(wait);
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(self.error(what, e)),
            }
        }
    }

    /// Calls retried so far (transient errors ridden out).
    pub fn retried(&self) -> usize {
        self.retried.load(Ordering::Relaxed)
    }

    /// The collection's info, `None` when there is none.
    fn info(&self) -> Result<Option<qdrant_client::qdrant::CollectionInfo>> {
        let exists = self.call("checking the collection", || {
            self.client.collection_exists(self.collection.clone())
        })?;
        if !exists {
            return Ok(None);
        }
        Ok(self
            .call("reading the collection", || {
                self.client.collection_info(self.collection.clone())
            })?
            .result)
    }

    /// Reads the collection's vectors (and checks that it is a library, and that its indexes
    /// are there: a creator killed before making them leaves them to the next opener).
    fn refresh(&self) -> Result<Option<Vec<(String, usize)>>> {
        let Some(info) = self.info()? else {
            return Ok(None);
        };
        let metadata = info
            .config
            .as_ref()
            .map(|c| c.metadata.clone())
            .unwrap_or_default();
        let Some(format) = metadata.get(FORMAT_KEY).map(|v| v.clone().into_json()) else {
            return Err(Error::NotALibrary {
                library: self.name.clone(),
                reason: format!(
                    "the collection {} exists and is not a clamp3 library (no {FORMAT_KEY} in its metadata)",
                    self.collection
                ),
            });
        };
        if format != serde_json::json!(crate::library::FORMAT) {
            return Err(Error::NotALibrary {
                library: self.name.clone(),
                reason: format!(
                    "library format {format} (this clamp3 reads format {})",
                    crate::library::FORMAT
                ),
            });
        }
        for field in INDEXED_FIELDS {
            if !info.payload_schema.contains_key(field) {
                self.call("creating a payload index", || {
                    self.client.create_field_index(
                        CreateFieldIndexCollectionBuilder::new(
                            self.collection.clone(),
                            field,
                            FieldType::Keyword,
                        )
                        .wait(true),
                    )
                })?;
            }
        }
        let names = vector_params(&info);
        *self.vectors.lock().unwrap_or_else(|e| e.into_inner()) = Some(names.clone());
        Ok(Some(names))
    }

    /// The collection's named vectors and their dimensions (none before it exists).
    pub fn vector_names(&self) -> Result<Vec<(String, usize)>> {
        let known = self
            .vectors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match known {
            Some(names) => Ok(names),
            // Another writer may have made it since.
            None => Ok(self.refresh()?.unwrap_or_default()),
        }
    }

    /// Makes sure the collection has these named vectors, creating it with them if there is
    /// none (its layout from the location's collection options).
    pub fn ensure_vectors(&self, wanted: &[(String, usize)]) -> Result<()> {
        let have = match self.vector_names()? {
            names if !names.is_empty() => names,
            _ => {
                self.create(wanted)?;
                self.refresh()?.unwrap_or_default()
            }
        };
        for (name, dim) in wanted {
            match have.iter().find(|(n, _)| n == name) {
                Some((_, size)) if size == dim => {}
                Some((_, size)) => {
                    return Err(self.error(
                        "adding vectors",
                        QdrantError::ConversionError(format!(
                            "model {name} has {size}-d vectors here, the engine gives {dim}-d ones"
                        )),
                    ))
                }
                None => {
                    return Err(self.error(
                        "adding vectors",
                        QdrantError::ConversionError(format!(
                            "the collection holds vectors of {} and a Qdrant server cannot add the \
                             named vector {name} to an existing collection; use another collection \
                             for this model (or migrate into a new one made with every model)",
                            have.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
                        )),
                    ))
                }
            }
        }
        Ok(())
    }

    fn create(&self, vectors: &[(String, usize)]) -> Result<()> {
        let options = &self.location.create;
        let mut config = VectorsConfigBuilder::default();
        for (name, dim) in vectors {
            config.add_named_vector_params(
                name.clone(),
                VectorParamsBuilder::new(*dim as u64, Distance::Cosine).on_disk(options.on_disk),
            );
        }
        let mut request = CreateCollectionBuilder::new(self.collection.clone())
            .vectors_config(config)
            .on_disk_payload(options.on_disk)
            .metadata(HashMap::from([(
                FORMAT_KEY.to_string(),
                serde_json::json!(crate::library::FORMAT),
            )]));
        if let Some(n) = options.shards {
            request = request.shard_number(n);
        }
        if let Some(n) = options.replication_factor {
            request = request.replication_factor(n);
        }
        if let Some(n) = options.write_consistency_factor {
            request = request.write_consistency_factor(n);
        }
        if options.int8 {
            request = request.quantization_config(
                ScalarQuantizationBuilder::default()
                    .r#type(QuantizationType::Int8.into())
                    .quantile(0.99)
                    .always_ram(true),
            );
        }
        let request = request.build();
        let started = Instant::now();
        loop {
            match self
                .runtime()
                .block_on(self.client.create_collection(request.clone()))
            {
                Ok(_) => return Ok(()),
                // Another worker made it first: fine, as long as it is a library.
                Err(e) if already_exists(&e) => return Ok(()),
                Err(e) if transient(&e) && started.elapsed() < self.location.retry_for => {
                    self.retried.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_secs(1));
                    // A create that timed out may have happened.
                    if self.info()?.is_some() {
                        return Ok(());
                    }
                }
                Err(e) => return Err(self.error("creating the collection", e)),
            }
        }
    }

    pub fn upsert(&self, points: Points) -> Result<()> {
        let points: Vec<PointStruct> = points
            .into_iter()
            .map(|(record, vectors)| PointStruct::new(record.id.0, vectors, payload_of(&record)))
            .collect();
        for batch in points.chunks(WRITE_BATCH) {
            let request = UpsertPointsBuilder::new(self.collection.clone(), batch.to_vec())
                .wait(true)
                .ordering(ordering())
                .build();
            self.call("writing points", || {
                self.client.upsert_points(request.clone())
            })?;
        }
        Ok(())
    }

    pub fn set_vectors(&self, name: &str, vectors: Vec<(ItemId, Vec<f32>)>) -> Result<()> {
        let points: Vec<PointVectors> = vectors
            .into_iter()
            .map(|(id, v)| PointVectors {
                id: Some(point_id(id)),
                vectors: Some(HashMap::from([(name.to_string(), v)]).into()),
            })
            .collect();
        for batch in points.chunks(WRITE_BATCH) {
            let request = UpdatePointVectorsBuilder::new(self.collection.clone(), batch.to_vec())
                .wait(true)
                .ordering(ordering())
                .build();
            self.call("writing vectors", || {
                self.client.update_vectors(request.clone())
            })?;
        }
        Ok(())
    }

    pub fn set_record(&self, record: &ItemRecord) -> Result<()> {
        let request = SetPayloadPointsBuilder::new(self.collection.clone(), payload_of(record))
            .points_selector(PointsIdsList {
                ids: vec![point_id(record.id)],
            })
            .wait(true)
            .ordering(ordering())
            .build();
        self.call("writing a record", || {
            self.client.overwrite_payload(request.clone())
        })?;
        Ok(())
    }

    pub fn delete(&self, ids: &[ItemId]) -> Result<()> {
        if ids.is_empty() || self.vector_names()?.is_empty() {
            return Ok(());
        }
        for batch in ids.chunks(READ_BATCH) {
            let request = DeletePointsBuilder::new(self.collection.clone())
                .points(PointsIdsList {
                    ids: batch.iter().map(|id| point_id(*id)).collect(),
                })
                .wait(true)
                .ordering(ordering())
                .build();
            self.call("deleting points", || {
                self.client.delete_points(request.clone())
            })?;
        }
        Ok(())
    }

    /// Whether there is a collection yet (before the first vectors there is none: reads are
    /// empty).
    fn exists(&self) -> Result<bool> {
        Ok(!self.vector_names()?.is_empty())
    }

    pub fn retrieve(&self, ids: &[ItemId], vectors: Option<&[String]>) -> Result<Vec<StoredPoint>> {
        if ids.is_empty() || !self.exists()? {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(ids.len());
        for batch in ids.chunks(READ_BATCH) {
            let request = GetPointsBuilder::new(
                self.collection.clone(),
                batch.iter().map(|id| point_id(*id)).collect::<Vec<_>>(),
            )
            .with_payload(true)
            .with_vectors(selector(vectors))
            .build();
            let response =
                self.call("reading points", || self.client.get_points(request.clone()))?;
            out.extend(
                response
                    .result
                    .into_iter()
                    .filter_map(|p| stored(p.id, p.payload, p.vectors)),
            );
        }
        Ok(out)
    }

    pub fn scroll_page(
        &self,
        filter: &Filter,
        offset: Option<ItemId>,
        limit: usize,
        vectors: Option<&[String]>,
    ) -> Result<(Vec<StoredPoint>, Option<ItemId>)> {
        if !self.exists()? {
            return Ok((Vec::new(), None));
        }
        let mut request = ScrollPointsBuilder::new(self.collection.clone())
            .limit(limit.min(u32::MAX as usize) as u32)
            .with_payload(true)
            .with_vectors(selector(vectors));
        if let Some(filter) = filter_of(filter, None) {
            request = request.filter(filter);
        }
        if let Some(offset) = offset {
            request = request.offset(point_id(offset));
        }
        let request = request.build();
        let response = self.call("scrolling points", || self.client.scroll(request.clone()))?;
        let next = item_id(response.next_page_offset);
        Ok((
            response
                .result
                .into_iter()
                .filter_map(|p| stored(p.id, p.payload, p.vectors))
                .collect(),
            next,
        ))
    }

    pub fn search(
        &self,
        name: &str,
        query: &[f32],
        limit: usize,
        filter: &Filter,
        exclude: Option<ItemId>,
        scan: Scan,
    ) -> Result<Vec<(ItemRecord, f32)>> {
        let params = match scan {
            Scan::Exact => SearchParamsBuilder::default().exact(true),
            Scan::Hnsw { ef } => SearchParamsBuilder::default().hnsw_ef(ef as u64),
        };
        let mut request = QueryPointsBuilder::new(self.collection.clone())
            .query(Query::new_nearest(query.to_vec()))
            .using(name)
            .limit(limit as u64)
            .with_payload(true)
            .params(params);
        if let Some(filter) = filter_of(filter, exclude) {
            request = request.filter(filter);
        }
        let request = request.build();
        let response = self.call("searching", || self.client.query(request.clone()))?;
        Ok(response
            .result
            .into_iter()
            .filter_map(|p| {
                let score = p.score;
                stored(p.id, p.payload, None).and_then(|s| s.record.map(|r| (r, score)))
            })
            .collect())
    }

    pub fn count(&self, filter: &Filter, with_vector: Option<&str>) -> Result<usize> {
        if !self.exists()? {
            return Ok(0);
        }
        let mut conditions = conditions(filter);
        if let Some(name) = with_vector {
            conditions.push(Condition::has_vector(name));
        }
        let mut request = CountPointsBuilder::new(self.collection.clone()).exact(true);
        if !conditions.is_empty() {
            request = request.filter(qdrant_client::qdrant::Filter::must(conditions));
        }
        let request = request.build();
        let response = self.call("counting points", || self.client.count(request.clone()))?;
        Ok(response.result.map(|r| r.count as usize).unwrap_or(0))
    }

    pub fn indexed_vectors(&self) -> Result<usize> {
        Ok(self
            .info()?
            .and_then(|i| i.indexed_vectors_count)
            .unwrap_or(0) as usize)
    }

    /// The collection's metadata (the library's marker), as JSON.
    pub fn metadata(&self) -> Result<BTreeMap<String, serde_json::Value>> {
        Ok(self
            .info()?
            .and_then(|i| i.config)
            .map(|c| {
                c.metadata
                    .into_iter()
                    .map(|(k, v)| (k, v.into_json()))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Merges keys into the collection's metadata (creating nothing: no collection, no-op).
    pub fn set_metadata(&self, entries: HashMap<String, serde_json::Value>) -> Result<()> {
        if entries.is_empty() || !self.exists()? {
            return Ok(());
        }
        let request = UpdateCollectionBuilder::new(self.collection.clone())
            .metadata(entries)
            .build();
        self.call("writing the collection's metadata", || {
            self.client.update_collection(request.clone())
        })?;
        Ok(())
    }

    /// The server's version and how the collection is laid out over the cluster.
    pub fn cluster(&self) -> Result<Option<ClusterInfo>> {
        let Some(info) = self.info()? else {
            return Ok(None);
        };
        let version = self
            .call("health check", || self.client.health_check())?
            .version;
        let cluster = self.call("reading the cluster state", || {
            self.client.collection_cluster_info(self.collection.clone())
        })?;
        let params = info.config.as_ref().and_then(|c| c.params.as_ref());
        let on_disk = params
            .and_then(|p| p.vectors_config.as_ref())
            .and_then(|v| v.config.as_ref())
            .is_some_and(|c| match c {
                vectors_config::Config::ParamsMap(m) => {
                    m.map.values().any(|p| p.on_disk == Some(true))
                }
                vectors_config::Config::Params(p) => p.on_disk == Some(true),
            });
        let quantization = info
            .config
            .as_ref()
            .and_then(|c| c.quantization_config.as_ref())
            .and_then(|q| q.quantization.as_ref())
            .map(|q| match q {
                quantization_config::Quantization::Scalar(_) => "int8".to_string(),
                quantization_config::Quantization::Product(_) => "product".to_string(),
                quantization_config::Quantization::Binary(_) => "binary".to_string(),
            });
        let state = |s: i32| {
            qdrant_client::qdrant::ReplicaState::try_from(s)
                .map(|s| s.as_str_name().to_string())
                .unwrap_or_else(|_| format!("state {s}"))
        };
        let mut replicas: Vec<ReplicaInfo> = cluster
            .local_shards
            .iter()
            .map(|s| ReplicaInfo {
                shard: s.shard_id,
                peer: cluster.peer_id,
                state: state(s.state),
            })
            .chain(cluster.remote_shards.iter().map(|s| ReplicaInfo {
                shard: s.shard_id,
                peer: s.peer_id,
                state: state(s.state),
            }))
            .collect();
        replicas.sort_by_key(|r| (r.shard, r.peer));
        Ok(Some(ClusterInfo {
            server_version: version,
            shards: params.map(|p| p.shard_number).unwrap_or(1),
            replication_factor: params.and_then(|p| p.replication_factor).unwrap_or(1),
            on_disk,
            quantization,
            replicas,
            transfers: cluster.shard_transfers.len(),
        }))
    }
}
