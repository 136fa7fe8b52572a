//! The embedded store: one Qdrant edge shard holding a point per item, a named vector per model
//! (cosine) and the item's record as payload: the same points as a Qdrant server collection
//! ([`super::remote`]) holds.

use super::{Scan, StoredPoint, INDEXED_FIELDS};
use crate::library::{io, write_atomic};
use crate::{Error, Filter, ItemId, ItemRecord, Result};
use qdrant_edge::{
    Condition, CountRequest, CreateIndex, CreateVectorName, EdgeConfig, EdgeOptimizersConfig,
    EdgeShard, FieldCondition, FieldIndexOperations, HasIdCondition, JsonPath, Match, NamedQuery,
    Payload, PayloadFieldSchema, PayloadOps, PayloadSchemaType, PointId, PointInsertOperations,
    PointOperations, PointStructPersisted, PointVectorsPersisted, QueryEnum, QueryRequest,
    ScoringQuery, ScrollRequest, SearchParams, SetPayloadOp, UpdateOperation, UpdateVectorsOp,
    VectorInternal, VectorNameConfig, VectorNameOperations, VectorOperations, VectorPersisted,
    VectorStructInternal, VectorStructPersisted, WalOptions, WithPayloadInterface, WithVector,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Below this many vectors a segment stays plain (exact search, ~10 ms at 20k on two cores);
/// above, the optimiser builds HNSW. In kB of f32 768-d vectors: 20 000 × 3 kB.
const INDEXING_THRESHOLD_KB: usize = 60_000;

/// WAL segments of 4 MiB instead of 32: a small library stays small on disk.
const WAL_SEGMENT_BYTES: usize = 4 << 20;

/// The file naming how many edge shards a store has; written (atomically) before any of them.
const LAYOUT: &str = "layout.json";

/// The most edge shards a new store gets by default, however many cores the machine has.
const DEFAULT_MAX_EDGE_SHARDS: usize = 8;

/// The most edge shards a store may have (a layout naming more is refused as damaged).
const MAX_EDGE_SHARDS: usize = 64;

#[derive(serde::Serialize, serde::Deserialize)]
struct Layout {
    edge_shards: usize,
}

/// Qdrant edge shards (points routed by id), searched in parallel: one shard scans its
/// segments on one thread, so a store split across the cores answers an exact search over
/// a million vectors in a fraction of the time. The library folder is what errors name.
pub(crate) struct EdgeStore {
    shards: Vec<EdgeShard>,
    library: PathBuf,
}

/// In the library folder while a named vector is being added to the shards: its name and size.
/// qdrant-edge adds a vector to a shard's segments and then to the shard's config file, so a
/// kill between the two leaves a shard that refuses to load; this file says what the config
/// lacks.
const PENDING_VECTOR: &str = "pending_vector.json";

#[derive(serde::Serialize, serde::Deserialize)]
struct PendingVector {
    name: String,
    dim: usize,
}

/// How many edge shards a new store gets by default: one per core, at most
/// [`DEFAULT_MAX_EDGE_SHARDS`].
pub(crate) fn default_edge_shards() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, DEFAULT_MAX_EDGE_SHARDS)
}

impl EdgeStore {
    /// Opens the store in `dir`, creating an empty one of `new_shards` edge shards if there is
    /// none. A store made before stores were split (`edge_config.json` in `dir`) is one shard.
    pub fn open(dir: &Path, library: &Path, new_shards: usize) -> Result<Self> {
        let dirs: Vec<PathBuf> = if dir.join("edge_config.json").exists() {
            vec![dir.to_path_buf()]
        } else {
            let layout_path = dir.join(LAYOUT);
            let layout = match std::fs::read(&layout_path) {
                Ok(bytes) => serde_json::from_slice::<Layout>(&bytes)
                    .ok()
                    .filter(|l| (1..=MAX_EDGE_SHARDS).contains(&l.edge_shards))
                    .ok_or_else(|| Error::Store {
                        library: library.to_path_buf(),
                        reason: format!("{} does not parse", layout_path.display()),
                    })?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir_all(dir).map_err(io(dir))?;
                    let layout = Layout {
                        edge_shards: new_shards.clamp(1, MAX_EDGE_SHARDS),
                    };
                    let bytes = serde_json::to_vec(&layout).unwrap_or_default();
                    write_atomic(&layout_path, &bytes)?;
                    layout
                }
                Err(e) => return Err(io(&layout_path)(e)),
            };
            (0..layout.edge_shards)
                .map(|i| dir.join(format!("shard-{i}")))
                .collect()
        };
        let error = |e: qdrant_edge::OperationError| Error::Store {
            library: library.to_path_buf(),
            reason: e.to_string(),
        };
        let pending: Option<PendingVector> = std::fs::read(library.join(PENDING_VECTOR))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let shards = dirs
            .iter()
            .map(|dir| {
                if dir.join("edge_config.json").exists() {
                    return match (EdgeShard::load(dir, None), &pending) {
                        (Ok(shard), _) => Ok(shard),
                        (Err(e), Some(pending)) => {
                            Self::finish_vector_config(dir, pending, library)?;
                            EdgeShard::load(dir, None).map_err(|again| Error::Store {
                                library: library.to_path_buf(),
                                reason: format!(
                                    "{} does not load ({e}), nor after adding vector {} to its \
                                     config ({again})",
                                    dir.display(),
                                    pending.name
                                ),
                            })
                        }
                        (Err(e), None) => Err(error(e)),
                    };
                }
                std::fs::create_dir_all(dir).map_err(io(dir))?;
                let config = EdgeConfig::builder()
                    .on_disk_payload(false)
                    .optimizers(EdgeOptimizersConfig {
                        indexing_threshold: Some(INDEXING_THRESHOLD_KB),
                        ..EdgeOptimizersConfig::default()
                    })
                    .wal_options(WalOptions {
                        segment_capacity: WAL_SEGMENT_BYTES,
                        ..WalOptions::default()
                    })
                    .build();
                EdgeShard::new(dir, config).map_err(error)
            })
            .collect::<Result<Vec<_>>>()?;
        let store = EdgeStore {
            shards,
            library: library.to_path_buf(),
        };
        store.complete_schema()?;
        // Every shard has the pending vector now, in segments and config alike.
        if pending.is_some() {
            let path = library.join(PENDING_VECTOR);
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
        Ok(store)
    }

    /// Adds the pending vector to a shard's config file, where a kill left it out after the
    /// shard's segments got it (the entry is the one the shard writes itself: size, distance).
    fn finish_vector_config(dir: &Path, pending: &PendingVector, library: &Path) -> Result<()> {
        let path = dir.join("edge_config.json");
        let broken = |reason: String| Error::Store {
            library: library.to_path_buf(),
            reason: format!("{}: {reason}", path.display()),
        };
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let mut config: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| broken(e.to_string()))?;
        let vectors = config
            .get_mut("vectors")
            .and_then(|v| v.as_object_mut())
            .ok_or_else(|| broken("no \"vectors\" object".into()))?;
        if vectors.contains_key(&pending.name) {
            return Ok(());
        }
        vectors.insert(
            pending.name.clone(),
            serde_json::json!({ "size": pending.dim, "distance": "Cosine" }),
        );
        let bytes = serde_json::to_vec(&config).map_err(|e| broken(e.to_string()))?;
        write_atomic(&path, &bytes)
    }

    /// Gives every shard the keyword indexes and the named vectors any shard has: a crash
    /// while a store was created, or while a model's vector was added, leaves some without.
    fn complete_schema(&self) -> Result<()> {
        let mut vectors: Vec<(String, usize)> = Vec::new();
        for shard in &self.shards {
            for (name, params) in &shard.config().vectors {
                if !vectors.iter().any(|(n, _)| n == name.as_str()) {
                    vectors.push((name.to_string(), params.size));
                }
            }
        }
        for (name, dim) in vectors {
            self.ensure_vector(&name, dim)?;
        }
        for shard in &self.shards {
            let indexed = shard.info().payload_schema;
            for field in INDEXED_FIELDS {
                let path = JsonPath::try_from(field).expect("a plain field name");
                if indexed.contains_key(&path) {
                    continue;
                }
                shard
                    .update(UpdateOperation::FieldIndexOperation(
                        FieldIndexOperations::CreateIndex(CreateIndex {
                            field_name: path,
                            field_schema: Some(PayloadFieldSchema::FieldType(
                                PayloadSchemaType::Keyword,
                            )),
                        }),
                    ))
                    .map_err(|e| self.error(e))?;
            }
        }
        Ok(())
    }

    /// The shard a point lives in.
    fn shard_of(&self, id: ItemId) -> usize {
        (id.0 % self.shards.len() as u64) as usize
    }

    /// Runs `work` on every shard with its part of `items` (routed by `id_of`), one thread per
    /// shard that has any, and returns the results in shard order.
    fn per_shard<T: Send, R: Send>(
        &self,
        items: Vec<T>,
        id_of: impl Fn(&T) -> ItemId,
        work: impl Fn(&EdgeShard, Vec<T>) -> Result<R> + Sync,
    ) -> Result<Vec<R>> {
        let mut parts: Vec<Vec<T>> = (0..self.shards.len()).map(|_| Vec::new()).collect();
        for item in items {
            parts[self.shard_of(id_of(&item))].push(item);
        }
        let jobs: Vec<(&EdgeShard, Vec<T>)> = self
            .shards
            .iter()
            .zip(parts)
            .filter(|(_, part)| !part.is_empty())
            .collect();
        self.on_shards(jobs, |(shard, part)| work(shard, part))
    }

    /// Runs `work` on every shard at once; results in shard order.
    fn on_every_shard<R: Send>(
        &self,
        work: impl Fn(&EdgeShard) -> Result<R> + Sync,
    ) -> Result<Vec<R>> {
        self.on_shards(self.shards.iter().collect(), work)
    }

    /// Runs `work` on each job, in parallel when there are several; results in job order.
    fn on_shards<J: Send, R: Send>(
        &self,
        jobs: Vec<J>,
        work: impl Fn(J) -> Result<R> + Sync,
    ) -> Result<Vec<R>> {
        if jobs.len() <= 1 {
            return jobs.into_iter().map(&work).collect();
        }
        let work = &work;
        std::thread::scope(|scope| {
            let handles: Vec<_> = jobs
                .into_iter()
                .map(|job| scope.spawn(move || work(job)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    }

    fn error(&self, e: qdrant_edge::OperationError) -> Error {
        Error::Store {
            library: self.library.clone(),
            reason: e.to_string(),
        }
    }

    /// The model names that have vectors here, and their dimensions.
    pub fn vector_names(&self) -> Vec<(String, usize)> {
        let mut names: Vec<(String, usize)> = self.shards[0]
            .config()
            .vectors
            .iter()
            .map(|(name, params)| (name.to_string(), params.size))
            .collect();
        names.sort();
        names
    }

    /// Makes sure the named vector exists with this dimension, in every shard.
    pub fn ensure_vector(&self, name: &str, dim: usize) -> Result<()> {
        if let Some((_, size)) = self.vector_names().into_iter().find(|(n, _)| n == name) {
            if size != dim {
                return Err(
                    self.error(qdrant_edge::OperationError::service_error(format!(
                        "model {name} has {size}-d vectors here, the engine gives {dim}-d ones"
                    ))),
                );
            }
        }
        // The dense variant of this untagged enum is built from its JSON form, the only
        // constructor the crate exports.
        let config: VectorNameConfig = serde_json::from_value(serde_json::json!({
            "dense": { "size": dim, "distance": "Cosine" }
        }))
        .map_err(|e| self.error(qdrant_edge::OperationError::service_error(e.to_string())))?;
        let pending = self.library.join(PENDING_VECTOR);
        let missing: Vec<&EdgeShard> = self
            .shards
            .iter()
            .filter(|shard| {
                !shard
                    .config()
                    .vectors
                    .iter()
                    .any(|(n, _)| n.as_str() == name)
            })
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let record = PendingVector {
            name: name.to_string(),
            dim,
        };
        write_atomic(&pending, &serde_json::to_vec(&record).unwrap_or_default())?;
        for shard in missing {
            shard
                .update(UpdateOperation::VectorNameOperation(
                    VectorNameOperations::CreateVectorName(CreateVectorName {
                        vector_name: name.into(),
                        config: config.clone(),
                    }),
                ))
                .map_err(|e| self.error(e))?;
        }
        std::fs::remove_file(&pending).map_err(io(&pending))
    }

    /// Inserts or replaces whole points: the record as payload, the given vectors.
    pub fn upsert(&self, points: Vec<(ItemRecord, HashMap<String, Vec<f32>>)>) -> Result<()> {
        self.per_shard(
            points,
            |(record, _)| record.id,
            |shard, points| {
                let points = points
                    .into_iter()
                    .map(|(record, vectors)| PointStructPersisted {
                        id: PointId::NumId(record.id.0),
                        vector: VectorStructPersisted::Named(
                            vectors
                                .into_iter()
                                .map(|(name, v)| (name, VectorPersisted::Dense(v)))
                                .collect(),
                        ),
                        payload: Some(Payload(record.to_payload())),
                    })
                    .collect();
                shard
                    .update(UpdateOperation::PointOperation(
                        PointOperations::UpsertPoints(PointInsertOperations::PointsList(points)),
                    ))
                    .map_err(|e| self.error(e))
            },
        )
        .map(|_| ())
    }

    /// Adds one model's vectors to existing points, keeping their other vectors.
    pub fn set_vectors(&self, name: &str, vectors: Vec<(ItemId, Vec<f32>)>) -> Result<()> {
        self.per_shard(
            vectors,
            |(id, _)| *id,
            |shard, vectors| {
                let points = vectors
                    .into_iter()
                    .map(|(id, v)| PointVectorsPersisted {
                        id: PointId::NumId(id.0),
                        vector: VectorStructPersisted::Named(HashMap::from([(
                            name.to_string(),
                            VectorPersisted::Dense(v),
                        )])),
                    })
                    .collect();
                shard
                    .update(UpdateOperation::VectorOperation(
                        VectorOperations::UpdateVectors(UpdateVectorsOp {
                            points,
                            update_filter: None,
                        }),
                    ))
                    .map_err(|e| self.error(e))
            },
        )
        .map(|_| ())
    }

    /// Replaces a point's payload with the record.
    pub fn set_record(&self, record: &ItemRecord) -> Result<()> {
        self.shards[self.shard_of(record.id)]
            .update(UpdateOperation::PayloadOperation(
                PayloadOps::OverwritePayload(SetPayloadOp {
                    payload: Payload(record.to_payload()),
                    points: Some(vec![PointId::NumId(record.id.0)]),
                    filter: None,
                    key: None,
                }),
            ))
            .map_err(|e| self.error(e))
    }

    /// Deletes points.
    pub fn delete(&self, ids: &[ItemId]) -> Result<()> {
        self.per_shard(
            ids.to_vec(),
            |id| *id,
            |shard, ids| {
                shard
                    .update(UpdateOperation::PointOperation(
                        PointOperations::DeletePoints {
                            ids: ids.iter().map(|id| PointId::NumId(id.0)).collect(),
                        },
                    ))
                    .map_err(|e| self.error(e))
            },
        )
        .map(|_| ())
    }

    /// Points by id, in the order asked, with the named vectors (`None`: none); ids that are
    /// not here are left out.
    pub fn retrieve(&self, ids: &[ItemId], vectors: Option<&[String]>) -> Result<Vec<StoredPoint>> {
        let with_vector = match vectors {
            Some(names) => WithVector::Selector(names.iter().map(|n| n.as_str().into()).collect()),
            None => WithVector::Bool(false),
        };
        let parts = self.per_shard(
            ids.to_vec(),
            |id| *id,
            |shard, ids| {
                let ids: Vec<PointId> = ids.iter().map(|id| PointId::NumId(id.0)).collect();
                shard
                    .retrieve(
                        &ids,
                        Some(WithPayloadInterface::Bool(true)),
                        Some(with_vector.clone()),
                    )
                    .map_err(|e| self.error(e))
            },
        )?;
        let mut found: HashMap<ItemId, StoredPoint> = parts
            .into_iter()
            .flatten()
            .filter_map(|r| stored(r.id, r.payload, r.vector))
            .map(|p| (p.id, p))
            .collect();
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    /// Up to `limit` points passing the filter from id `offset` on, in id order, with the named
    /// vectors (`None`: none), and the id the next page starts at.
    pub fn scroll_page(
        &self,
        filter: &Filter,
        offset: Option<ItemId>,
        limit: usize,
        vectors: Option<&[String]>,
    ) -> Result<(Vec<StoredPoint>, Option<ItemId>)> {
        let with_vector = match vectors {
            Some(names) => WithVector::Selector(names.iter().map(|n| n.as_str().into()).collect()),
            None => WithVector::Bool(false),
        };
        let pages = self.on_every_shard(|shard| {
            shard
                .scroll(ScrollRequest {
                    offset: offset.map(|id| PointId::NumId(id.0)),
                    limit: Some(limit),
                    filter: filter_of(filter, None),
                    with_payload: Some(WithPayloadInterface::Bool(true)),
                    with_vector: with_vector.clone(),
                    order_by: None,
                })
                .map_err(|e| self.error(e))
        })?;
        // Each shard gave its first `limit` points from the offset on; the page is the first
        // `limit` of them all. The next page starts at the first point not on it: the next
        // point of the merged list, or of a shard whose own page was cut, whichever is first.
        let mut next: Option<ItemId> = None;
        let mut points = Vec::new();
        for (page, shard_next) in pages {
            if let Some(PointId::NumId(n)) = shard_next {
                next = Some(next.map_or(ItemId(n), |m| m.min(ItemId(n))));
            }
            points.extend(
                page.into_iter()
                    .filter_map(|r| stored(r.id, r.payload, r.vector)),
            );
        }
        points.sort_by_key(|p| p.id);
        if points.len() > limit {
            let first_left = points[limit].id;
            next = Some(next.map_or(first_left, |m| m.min(first_left)));
            points.truncate(limit);
        }
        Ok((points, next))
    }

    /// The `limit` points nearest to `query` by the named vector, best first (equal scores by
    /// id), passing the filter and not `exclude`, visited as `scan` says.
    pub fn search(
        &self,
        name: &str,
        query: &[f32],
        limit: usize,
        filter: &Filter,
        exclude: Option<ItemId>,
        scan: Scan,
    ) -> Result<Vec<(ItemRecord, f32)>> {
        let request = QueryRequest {
            prefetches: Vec::new(),
            query: Some(ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
                query: VectorInternal::Dense(query.to_vec()),
                using: Some(name.into()),
            }))),
            filter: filter_of(filter, exclude),
            score_threshold: None,
            limit,
            offset: 0,
            params: Some(SearchParams {
                exact: scan == Scan::Exact,
                hnsw_ef: match scan {
                    Scan::Hnsw { ef } => Some(ef),
                    Scan::Exact => None,
                },
                ..SearchParams::default()
            }),
            with_vector: WithVector::Bool(false),
            with_payload: WithPayloadInterface::Bool(true),
        };
        let parts =
            self.on_every_shard(|shard| shard.query(request.clone()).map_err(|e| self.error(e)))?;
        let mut hits: Vec<(ItemRecord, f32)> = parts
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let score = p.score;
                stored(p.id, p.payload, None).and_then(|s| s.record.map(|r| (r, score)))
            })
            .collect();
        hits.sort_by(|(a, x), (b, y)| y.total_cmp(x).then(a.id.cmp(&b.id)));
        hits.truncate(limit);
        Ok(hits)
    }

    /// How many points pass the filter (and have the named vector, when given).
    pub fn count(&self, filter: &Filter, with_vector: Option<&str>) -> Result<usize> {
        let mut conditions = conditions(filter);
        if let Some(name) = with_vector {
            conditions.push(Condition::HasVector(qdrant_edge::HasVectorCondition {
                has_vector: name.into(),
            }));
        }
        let filter = (!conditions.is_empty()).then(|| qdrant_edge::Filter {
            must: Some(conditions),
            ..qdrant_edge::Filter::default()
        });
        let counts = self.on_every_shard(|shard| {
            shard
                .count(CountRequest {
                    filter: filter.clone(),
                    exact: true,
                })
                .map_err(|e| self.error(e))
        })?;
        Ok(counts.into_iter().sum())
    }

    /// Makes everything written so far durable: WALs and segments synced to disk.
    pub fn flush(&self) {
        // Each shard syncs its own files: in parallel, an fsync apiece costs one.
        let _ = self.on_every_shard(|shard| {
            shard.flush();
            Ok(())
        });
    }

    /// Lets the optimiser merge segments and build HNSW where a segment is big enough, in
    /// every shard at once.
    pub fn optimize(&self) -> Result<()> {
        self.on_every_shard(|shard| shard.optimize().map(|_| ()).map_err(|e| self.error(e)))
            .map(|_| ())
    }

    /// Points that are indexed by HNSW (the rest are searched exactly).
    pub fn indexed_vectors(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.info().indexed_vectors_count)
            .sum()
    }

    /// How many edge shards the store is split into.
    pub fn edge_shards(&self) -> usize {
        self.shards.len()
    }
}

/// Whether a payload path parses (a filter's field names become paths).
pub(crate) fn valid_key(path: &str) -> bool {
    JsonPath::try_from(path).is_ok()
}

/// The store's conditions for a filter: each field matches one of its values.
fn conditions(filter: &Filter) -> Vec<Condition> {
    filter
        .fields()
        .into_iter()
        .map(|(path, values)| {
            let key =
                JsonPath::try_from(path.as_str()).expect("field names are checked when parsed");
            let matching = match values.as_slice() {
                [one] => Match::from(one.clone()),
                many => Match::from(many.to_vec()),
            };
            Condition::Field(FieldCondition::new_match(key, matching))
        })
        .collect()
}

/// Our filter, plus an id to leave out, as the store's.
fn filter_of(filter: &Filter, exclude: Option<ItemId>) -> Option<qdrant_edge::Filter> {
    let must = conditions(filter);
    let must_not: Vec<Condition> = exclude
        .map(|id| Condition::HasId(HasIdCondition::from_iter([PointId::NumId(id.0)])))
        .into_iter()
        .collect();
    if must.is_empty() && must_not.is_empty() {
        return None;
    }
    Some(qdrant_edge::Filter {
        must: (!must.is_empty()).then_some(must),
        must_not: (!must_not.is_empty()).then_some(must_not),
        ..qdrant_edge::Filter::default()
    })
}

fn stored(
    id: PointId,
    payload: Option<Payload>,
    vector: Option<VectorStructInternal>,
) -> Option<StoredPoint> {
    let PointId::NumId(id) = id else {
        return None;
    };
    let vectors = match vector {
        Some(VectorStructInternal::Named(named)) => named
            .into_iter()
            .filter_map(|(name, v)| match v {
                VectorInternal::Dense(v) => Some((name.to_string(), v)),
                _ => None,
            })
            .collect(),
        _ => HashMap::new(),
    };
    Some(StoredPoint {
        id: ItemId(id),
        record: payload.and_then(|p| ItemRecord::from_payload(p.0)),
        vectors,
    })
}
