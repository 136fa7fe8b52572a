//! `migrate`: a library copied into another store (a folder into a Qdrant collection, and
//! back), point by point: the points are the same in both (ids, named vectors, payloads), so
//! the copy is a scroll of the source and upserts into the target, in batches. Re-running skips
//! what the target already holds as it is, so an interrupted migration resumes. The result is
//! checked: item counts, and a sample of points read back from both and compared (record and
//! every vector). Qdrant's snapshots would copy faster, but the embedded engine's shard and a
//! server's collection snapshot are not the same format.

use crate::store::Points;
use crate::{Filter, ItemId, Library, Result};
use serde::Serialize;
use std::collections::HashMap;

/// What `migrate` did and found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MigrateReport {
    /// Items in the source.
    pub source_items: usize,
    /// Items written to the target.
    pub copied: usize,
    /// Items the target already held as they are (an earlier, interrupted run).
    pub skipped: usize,
    /// Source points that are not whole (no record): not copied.
    pub damaged: Vec<ItemId>,
    /// Items in the target afterwards.
    pub target_items: usize,
    /// Items read back from both and compared.
    pub sampled: usize,
    /// Sampled items that differ, and how.
    pub mismatched: Vec<(ItemId, String)>,
}

impl MigrateReport {
    /// Whether the target holds every item of the source, the sample identical.
    pub fn is_verified(&self) -> bool {
        self.mismatched.is_empty()
            && self.damaged.is_empty()
            && self.target_items >= self.source_items
            && self.copied + self.skipped == self.source_items
    }
}

/// Vectors that went through a store compare to this (both stores keep them unit length, and
/// normalising twice moves a component by a few ulps).
const TOLERANCE: f32 = 1e-5;

impl Library {
    /// Copies every item, with every model's vectors and the models' recorded weights, into
    /// `target`, `batch` points per write; then compares about `sample` items in both.
    /// `progress` hears the items gone through so far.
    pub fn migrate_to(
        &self,
        target: &Library,
        batch: usize,
        sample: usize,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<MigrateReport> {
        let mut report = MigrateReport {
            source_items: self.count(&Filter::default())?,
            ..MigrateReport::default()
        };
        let models = self.models()?;
        if models.is_empty() {
            report.target_items = target.count(&Filter::default())?;
            return Ok(report);
        }
        target.store.ensure_vectors(&models)?;
        let names: Vec<String> = models.iter().map(|(n, _)| n.clone()).collect();
        let every = (report.source_items / sample.max(1)).max(1);
        let mut sampled = Vec::new();
        let mut seen = 0usize;
        let mut offset = None;
        loop {
            let (page, next) =
                self.store
                    .scroll_page(&Filter::default(), offset, batch.max(1), Some(&names))?;
            let ids: Vec<ItemId> = page.iter().map(|p| p.id).collect();
            let there: HashMap<ItemId, _> = target
                .store
                .retrieve(&ids, None)?
                .into_iter()
                .filter_map(|p| p.record.map(|r| (p.id, r)))
                .collect();
            let mut points: Points = Vec::new();
            for point in page {
                if seen.is_multiple_of(every) && sampled.len() < sample {
                    sampled.push(point.id);
                }
                seen += 1;
                let Some(record) = point.record else {
                    report.damaged.push(point.id);
                    continue;
                };
                if there.get(&point.id) == Some(&record) {
                    report.skipped += 1;
                } else {
                    points.push((record, point.vectors));
                }
            }
            report.copied += points.len();
            target.put_points(points)?;
            progress(seen, report.source_items);
            match next {
                Some(next) => offset = Some(next),
                None => break,
            }
        }
        let identities = self.model_identities()?;
        for (model, identity) in &identities {
            target.note_model(model, identity)?;
        }
        target.optimize()?;

        report.target_items = target.count(&Filter::default())?;
        for chunk in sampled.chunks(256) {
            let ours: HashMap<ItemId, _> = self
                .store
                .retrieve(chunk, Some(&names))?
                .into_iter()
                .map(|p| (p.id, p))
                .collect();
            let theirs: HashMap<ItemId, _> = target
                .store
                .retrieve(chunk, Some(&names))?
                .into_iter()
                .map(|p| (p.id, p))
                .collect();
            for id in chunk {
                report.sampled += 1;
                let (Some(a), Some(b)) = (ours.get(id), theirs.get(id)) else {
                    report
                        .mismatched
                        .push((*id, "missing from the target".into()));
                    continue;
                };
                if a.record != b.record {
                    report.mismatched.push((*id, "its record differs".into()));
                    continue;
                }
                for (name, va) in &a.vectors {
                    let same = b.vectors.get(name).is_some_and(|vb| {
                        vb.len() == va.len()
                            && va.iter().zip(vb).all(|(x, y)| (x - y).abs() <= TOLERANCE)
                    });
                    if !same {
                        report
                            .mismatched
                            .push((*id, format!("its {name} vector differs")));
                    }
                }
            }
        }
        Ok(report)
    }
}
