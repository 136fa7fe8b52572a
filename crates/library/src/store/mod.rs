//! The store: a point per item, a named cosine vector per model, the item's record as payload,
//! either in Qdrant's engine embedded in the process ([`edge`]) or in a collection of a Qdrant
//! server or cluster ([`remote`]). Only these files speak Qdrant's types; the two hold the same
//! points (same ids, vector names, payloads and keyword indexes), so a library moves between
//! them unchanged (`Library::migrate`).

mod edge;
mod remote;

use crate::{Filter, ItemId, ItemRecord, Result};
use edge::EdgeStore;
pub(crate) use edge::{default_edge_shards, valid_key};
use remote::RemoteStore;
pub use remote::{ClusterInfo, ReplicaInfo};
use std::collections::HashMap;
use std::path::Path;

/// Payload fields with a keyword index, for fast filtered search (and per-shard counts).
const INDEXED_FIELDS: [&str; 3] = ["modality", "format", "shard"];

/// How a search visits the vectors: every one, or through HNSW (where a segment has it) with
/// a candidate list of `ef` points: larger is slower and finds more of the true nearest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// Every vector: the true nearest.
    Exact,
    /// HNSW where a segment has it, exact elsewhere.
    Hnsw {
        /// Candidates kept while walking the graph (at least the results asked for).
        ef: usize,
    },
}

/// A point as the store returns it.
pub(crate) struct StoredPoint {
    pub id: ItemId,
    /// `None` when the payload is not an item record (a damaged point).
    pub record: Option<ItemRecord>,
    /// The vectors requested, by model name (unit length: the store normalises for cosine).
    pub vectors: HashMap<String, Vec<f32>>,
}

/// Points with their records and vectors, by model name: what an upsert writes.
pub(crate) type Points = Vec<(ItemRecord, HashMap<String, Vec<f32>>)>;

/// One of the two stores.
#[allow(
    clippy::large_enum_variant,
    reason = "one store per library, made once and never moved about"
)]
pub(crate) enum Store {
    Edge(EdgeStore),
    Remote(RemoteStore),
}

macro_rules! each {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Store::Edge($store) => $call,
            Store::Remote($store) => $call,
        }
    };
}

impl Store {
    /// The embedded store in `dir`, created with `new_shards` edge shards if absent.
    pub fn open_edge(dir: &Path, library: &Path, new_shards: usize) -> Result<Self> {
        EdgeStore::open(dir, library, new_shards).map(Store::Edge)
    }

    /// The collection on a Qdrant server (created on the first vectors written).
    pub fn open_remote(location: &crate::QdrantLocation) -> Result<Self> {
        RemoteStore::open(location).map(Store::Remote)
    }

    /// The model names that have vectors here, and their dimensions, sorted.
    pub fn vector_names(&self) -> Result<Vec<(String, usize)>> {
        match self {
            Store::Edge(s) => Ok(s.vector_names()),
            Store::Remote(s) => s.vector_names(),
        }
    }

    /// Makes sure these named vectors exist with these dimensions.
    pub fn ensure_vectors(&self, wanted: &[(String, usize)]) -> Result<()> {
        match self {
            Store::Edge(s) => wanted
                .iter()
                .try_for_each(|(name, dim)| s.ensure_vector(name, *dim)),
            Store::Remote(s) => s.ensure_vectors(wanted),
        }
    }

    /// Makes sure the named vector exists with this dimension.
    pub fn ensure_vector(&self, name: &str, dim: usize) -> Result<()> {
        self.ensure_vectors(&[(name.to_string(), dim)])
    }

    /// Inserts or replaces whole points: the record as payload, the given vectors; each point
    /// is written whole or not at all.
    pub fn upsert(&self, points: Points) -> Result<()> {
        each!(self, s => s.upsert(points))
    }

    /// Adds one model's vectors to existing points, keeping their other vectors.
    pub fn set_vectors(&self, name: &str, vectors: Vec<(ItemId, Vec<f32>)>) -> Result<()> {
        each!(self, s => s.set_vectors(name, vectors))
    }

    /// Replaces a point's payload with the record.
    pub fn set_record(&self, record: &ItemRecord) -> Result<()> {
        each!(self, s => s.set_record(record))
    }

    /// Deletes points.
    pub fn delete(&self, ids: &[ItemId]) -> Result<()> {
        each!(self, s => s.delete(ids))
    }

    /// Points by id, with the named vectors (`None`: none).
    pub fn retrieve(&self, ids: &[ItemId], vectors: Option<&[String]>) -> Result<Vec<StoredPoint>> {
        each!(self, s => s.retrieve(ids, vectors))
    }

    /// Every point passing the filter, in id order, without vectors.
    pub fn scroll(&self, filter: &Filter) -> Result<Vec<StoredPoint>> {
        let mut out = Vec::new();
        let mut offset = None;
        loop {
            let (page, next) = self.scroll_page(filter, offset, 1024, None)?;
            out.extend(page);
            match next {
                Some(next) => offset = Some(next),
                None => return Ok(out),
            }
        }
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
        each!(self, s => s.scroll_page(filter, offset, limit, vectors))
    }

    /// A page of points passing the filter, in id order.
    pub fn page(&self, filter: &Filter, offset: usize, limit: usize) -> Result<Vec<StoredPoint>> {
        // The stores page by id; a numeric offset walks to it.
        let mut skipped = 0;
        let mut out = Vec::new();
        let mut cursor = None;
        while out.len() < limit {
            let (page, next) = self.scroll_page(filter, cursor, 1024, None)?;
            for point in page {
                if skipped < offset {
                    skipped += 1;
                } else if out.len() < limit {
                    out.push(point);
                }
            }
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(out)
    }

    /// The `limit` points nearest to `query` by the named vector, best first, passing the
    /// filter and not `exclude`, visited as `scan` says.
    pub fn search(
        &self,
        name: &str,
        query: &[f32],
        limit: usize,
        filter: &Filter,
        exclude: Option<ItemId>,
        scan: Scan,
    ) -> Result<Vec<(ItemRecord, f32)>> {
        each!(self, s => s.search(name, query, limit, filter, exclude, scan))
    }

    /// How many points pass the filter (and have the named vector, when given).
    pub fn count(&self, filter: &Filter, with_vector: Option<&str>) -> Result<usize> {
        each!(self, s => s.count(filter, with_vector))
    }

    /// Makes everything written so far durable (a server's writes are, when they return).
    pub fn flush(&self) {
        if let Store::Edge(s) = self {
            s.flush();
        }
    }

    /// Lets the optimiser merge segments and build HNSW (a server's optimiser runs by itself).
    pub fn optimize(&self) -> Result<()> {
        match self {
            Store::Edge(s) => s.optimize(),
            Store::Remote(_) => Ok(()),
        }
    }

    /// Points that are indexed by HNSW (the rest are searched exactly).
    pub fn indexed_vectors(&self) -> Result<usize> {
        match self {
            Store::Edge(s) => Ok(s.indexed_vectors()),
            Store::Remote(s) => s.indexed_vectors(),
        }
    }

    /// How many edge shards an embedded store is split into (`None` for a server).
    pub fn edge_shards(&self) -> Option<usize> {
        match self {
            Store::Edge(s) => Some(s.edge_shards()),
            Store::Remote(_) => None,
        }
    }

    /// The server store, if this is one.
    pub fn remote(&self) -> Option<&RemoteStore> {
        match self {
            Store::Edge(_) => None,
            Store::Remote(s) => Some(s),
        }
    }
}
