//! The embedded store: one Qdrant edge shard holding a point per item, a named vector per model
//! (cosine) and the item's record as payload: the same points as a Qdrant server collection
//! ([`super::remote`]) holds.

use super::{StoredPoint, INDEXED_FIELDS};
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

/// The shard and the library folder errors name.
pub(crate) struct EdgeStore {
    shard: EdgeShard,
    library: PathBuf,
}

impl EdgeStore {
    /// Opens the shard in `dir`, creating an empty one if there is none.
    pub fn open(dir: &Path, library: &Path) -> Result<Self> {
        let error = |e: qdrant_edge::OperationError| Error::Store {
            library: library.to_path_buf(),
            reason: e.to_string(),
        };
        let shard = if dir.join("edge_config.json").exists() {
            EdgeShard::load(dir, None).map_err(error)?
        } else {
            std::fs::create_dir_all(dir).map_err(|error| Error::Io {
                path: dir.to_path_buf(),
                error,
            })?;
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
            let shard = EdgeShard::new(dir, config).map_err(error)?;
            for field in INDEXED_FIELDS {
                shard
                    .update(UpdateOperation::FieldIndexOperation(
                        FieldIndexOperations::CreateIndex(CreateIndex {
                            field_name: JsonPath::try_from(field).expect("a plain field name"),
                            field_schema: Some(PayloadFieldSchema::FieldType(
                                PayloadSchemaType::Keyword,
                            )),
                        }),
                    ))
                    .map_err(error)?;
            }
            shard
        };
        Ok(EdgeStore {
            shard,
            library: library.to_path_buf(),
        })
    }

    fn error(&self, e: qdrant_edge::OperationError) -> Error {
        Error::Store {
            library: self.library.clone(),
            reason: e.to_string(),
        }
    }

    fn update(&self, operation: UpdateOperation) -> Result<()> {
        self.shard.update(operation).map_err(|e| self.error(e))
    }

    /// The model names that have vectors here, and their dimensions.
    pub fn vector_names(&self) -> Vec<(String, usize)> {
        let mut names: Vec<(String, usize)> = self
            .shard
            .config()
            .vectors
            .iter()
            .map(|(name, params)| (name.to_string(), params.size))
            .collect();
        names.sort();
        names
    }

    /// Makes sure the named vector exists with this dimension.
    pub fn ensure_vector(&self, name: &str, dim: usize) -> Result<()> {
        if let Some((_, size)) = self.vector_names().into_iter().find(|(n, _)| n == name) {
            if size != dim {
                return Err(
                    self.error(qdrant_edge::OperationError::service_error(format!(
                        "model {name} has {size}-d vectors here, the engine gives {dim}-d ones"
                    ))),
                );
            }
            return Ok(());
        }
        // The dense variant of this untagged enum is built from its JSON form, the only
        // constructor the crate exports.
        let config: VectorNameConfig = serde_json::from_value(serde_json::json!({
            "dense": { "size": dim, "distance": "Cosine" }
        }))
        .map_err(|e| self.error(qdrant_edge::OperationError::service_error(e.to_string())))?;
        self.update(UpdateOperation::VectorNameOperation(
            VectorNameOperations::CreateVectorName(CreateVectorName {
                vector_name: name.into(),
                config,
            }),
        ))
    }

    /// Inserts or replaces whole points: the record as payload, the given vectors.
    pub fn upsert(&self, points: Vec<(ItemRecord, HashMap<String, Vec<f32>>)>) -> Result<()> {
        if points.is_empty() {
            return Ok(());
        }
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
        self.update(UpdateOperation::PointOperation(
            PointOperations::UpsertPoints(PointInsertOperations::PointsList(points)),
        ))
    }

    /// Adds one model's vectors to existing points, keeping their other vectors.
    pub fn set_vectors(&self, name: &str, vectors: Vec<(ItemId, Vec<f32>)>) -> Result<()> {
        if vectors.is_empty() {
            return Ok(());
        }
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
        self.update(UpdateOperation::VectorOperation(
            VectorOperations::UpdateVectors(UpdateVectorsOp {
                points,
                update_filter: None,
            }),
        ))
    }

    /// Replaces a point's payload with the record.
    pub fn set_record(&self, record: &ItemRecord) -> Result<()> {
        self.update(UpdateOperation::PayloadOperation(
            PayloadOps::OverwritePayload(SetPayloadOp {
                payload: Payload(record.to_payload()),
                points: Some(vec![PointId::NumId(record.id.0)]),
                filter: None,
                key: None,
            }),
        ))
    }

    /// Deletes points.
    pub fn delete(&self, ids: &[ItemId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.update(UpdateOperation::PointOperation(
            PointOperations::DeletePoints {
                ids: ids.iter().map(|id| PointId::NumId(id.0)).collect(),
            },
        ))
    }

    /// Points by id, with the named vectors (`None`: none).
    pub fn retrieve(&self, ids: &[ItemId], vectors: Option<&[String]>) -> Result<Vec<StoredPoint>> {
        let ids: Vec<PointId> = ids.iter().map(|id| PointId::NumId(id.0)).collect();
        let with_vector = match vectors {
            Some(names) => WithVector::Selector(names.iter().map(|n| n.as_str().into()).collect()),
            None => WithVector::Bool(false),
        };
        let records = self
            .shard
            .retrieve(
                &ids,
                Some(WithPayloadInterface::Bool(true)),
                Some(with_vector),
            )
            .map_err(|e| self.error(e))?;
        Ok(records
            .into_iter()
            .filter_map(|r| stored(r.id, r.payload, r.vector))
            .collect())
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
        let (page, next) = self
            .shard
            .scroll(ScrollRequest {
                offset: offset.map(|id| PointId::NumId(id.0)),
                limit: Some(limit),
                filter: filter_of(filter, None),
                with_payload: Some(WithPayloadInterface::Bool(true)),
                with_vector,
                order_by: None,
            })
            .map_err(|e| self.error(e))?;
        let next = match next {
            Some(PointId::NumId(n)) => Some(ItemId(n)),
            _ => None,
        };
        Ok((
            page.into_iter()
                .filter_map(|r| stored(r.id, r.payload, r.vector))
                .collect(),
            next,
        ))
    }

    /// The `limit` points nearest to `query` by the named vector, best first, passing the
    /// filter and not `exclude`. `exact` forces a full scan (HNSW otherwise, where built).
    pub fn search(
        &self,
        name: &str,
        query: &[f32],
        limit: usize,
        filter: &Filter,
        exclude: Option<ItemId>,
        exact: bool,
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
                exact,
                ..SearchParams::default()
            }),
            with_vector: WithVector::Bool(false),
            with_payload: WithPayloadInterface::Bool(true),
        };
        let points = self.shard.query(request).map_err(|e| self.error(e))?;
        Ok(points
            .into_iter()
            .filter_map(|p| {
                let score = p.score;
                stored(p.id, p.payload, None).and_then(|s| s.record.map(|r| (r, score)))
            })
            .collect())
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
        self.shard
            .count(CountRequest {
                filter,
                exact: true,
            })
            .map_err(|e| self.error(e))
    }

    /// Makes everything written so far durable: WAL and segments synced to disk.
    pub fn flush(&self) {
        self.shard.flush();
    }

    /// Lets the optimiser merge segments and build HNSW where a segment is big enough.
    pub fn optimize(&self) -> Result<()> {
        self.shard.optimize().map(|_| ()).map_err(|e| self.error(e))
    }

    /// Points that are indexed by HNSW (the rest are searched exactly).
    pub fn indexed_vectors(&self) -> usize {
        self.shard.info().indexed_vectors_count
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
