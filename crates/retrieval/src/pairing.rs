//! Pairing query and reference files, pairwise and group scores, and retrieval metrics, as the
//! reference's `inference/clamp3_score.py` and `inference/clamp3_eval.py`.
//!
//! A file's pairing key is its folder relative to the input folder plus its name before the first
//! dot, so `zh/sample1.1.wav` and `zh/sample1.2.wav` both pair with `zh/sample1.txt`. Several
//! queries may share a key; a reference key holds one file (the first in sorted order, as the
//! reference keeps the first it meets).

use crate::similarity::{cosine, mean, similarities};
use crate::{Error, Result};
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::path::Path;

/// The pairing key of a file path relative to its input folder: `folder/sub/name` where `name`
/// is the file name up to its first dot.
pub fn pair_key(relative: &Path) -> String {
    let mut parts: Vec<String> = relative
        .parent()
        .map(|p| {
            p.components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let name = relative
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parts.push(name.split('.').next().unwrap_or_default().to_string());
    parts.join("/")
}

/// One key present on both sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// The shared key.
    pub key: String,
    /// Indices of the queries with this key, in input order.
    pub queries: Vec<usize>,
    /// Index of the reference with this key.
    pub reference: usize,
}

/// The result of pairing two file lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pairing {
    /// Keys present on both sides, sorted by key.
    pub pairs: Vec<Pair>,
    /// Queries whose key no reference has, in input order.
    pub unmatched_queries: Vec<usize>,
    /// References whose key no query has, in input order.
    pub unmatched_references: Vec<usize>,
    /// References ignored because an earlier reference has the same key.
    pub duplicate_references: Vec<usize>,
}

impl Pairing {
    /// Whether every file found a partner.
    pub fn is_complete(&self) -> bool {
        self.unmatched_queries.is_empty() && self.unmatched_references.is_empty()
    }

    /// The number of paired queries.
    pub fn query_count(&self) -> usize {
        self.pairs.iter().map(|p| p.queries.len()).sum()
    }
}

/// Pairs queries with references by [`pair_key`] of their paths relative to their folders.
pub fn pair<P: AsRef<Path>>(queries: &[P], references: &[P]) -> Pairing {
    let mut query_keys: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, q) in queries.iter().enumerate() {
        query_keys.entry(pair_key(q.as_ref())).or_default().push(i);
    }
    let mut reference_keys: BTreeMap<String, usize> = BTreeMap::new();
    let mut pairing = Pairing::default();
    for (i, r) in references.iter().enumerate() {
        match reference_keys.entry(pair_key(r.as_ref())) {
            Entry::Occupied(_) => pairing.duplicate_references.push(i),
            Entry::Vacant(slot) => {
                slot.insert(i);
            }
        }
    }
    for (key, qs) in &query_keys {
        match reference_keys.get(key) {
            Some(&reference) => pairing.pairs.push(Pair {
                key: key.clone(),
                queries: qs.clone(),
                reference,
            }),
            None => pairing.unmatched_queries.extend(qs),
        }
    }
    pairing.unmatched_queries.sort_unstable();
    pairing.unmatched_references = reference_keys
        .iter()
        .filter(|(k, _)| !query_keys.contains_key(*k))
        .map(|(_, &i)| i)
        .collect();
    pairing.unmatched_references.sort_unstable();
    pairing
}

/// One query's similarity to its paired reference (a `pairwise_similarities.jsonl` row).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairScore {
    /// Query index.
    pub query: usize,
    /// Reference index.
    pub reference: usize,
    /// Their cosine similarity.
    pub similarity: f32,
}

/// Pairwise mode: each paired query's cosine to its reference, sorted by similarity, highest
/// first (ties in key order), and their average.
pub fn score_pairwise(
    pairing: &Pairing,
    queries: &[Vec<f32>],
    references: &[Vec<f32>],
) -> Result<(Vec<PairScore>, f64)> {
    let mut rows = Vec::new();
    for pair in &pairing.pairs {
        let r = &references[pair.reference];
        for &q in &pair.queries {
            check_width(r.len(), queries[q].len())?;
            rows.push(PairScore {
                query: q,
                reference: pair.reference,
                similarity: cosine(&queries[q], r),
            });
        }
    }
    if rows.is_empty() {
        return Err(Error::Empty("no query has a reference with the same name"));
    }
    let average = rows.iter().map(|r| f64::from(r.similarity)).sum::<f64>() / rows.len() as f64;
    rows.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
    Ok((rows, average))
}

/// Group mode: the cosine of the mean query vector and the mean reference vector.
pub fn score_group(queries: &[Vec<f32>], references: &[Vec<f32>]) -> Result<f32> {
    if queries.is_empty() || references.is_empty() {
        return Err(Error::Empty(
            "group scoring needs at least one query and one reference",
        ));
    }
    for v in queries.iter().chain(references) {
        check_width(queries[0].len(), v.len())?;
    }
    Ok(cosine(&mean(queries), &mean(references)))
}

/// One query's rank (a `retrieval_ranks.jsonl` row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankRow {
    /// Query index.
    pub query: usize,
    /// Its paired reference's index.
    pub reference: usize,
    /// 1-based rank of that reference among all paired references.
    pub rank: usize,
}

/// Retrieval metrics over all paired queries.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    /// Number of queries evaluated.
    pub queries: usize,
    /// Number of candidate references.
    pub references: usize,
    /// Mean reciprocal rank.
    pub mrr: f64,
    /// Share of queries whose reference ranks first.
    pub hit_1: f64,
    /// Share ranking in the top 10.
    pub hit_10: f64,
    /// Share ranking in the top 100.
    pub hit_100: f64,
    /// Each query's rank, sorted by rank (ties in key order).
    pub ranks: Vec<RankRow>,
}

/// The rank of `target` among `similarities` with the reference's tie-breaking: it sorts by
/// similarity, and among equal similarities puts the correct reference first, so the rank is one
/// plus the number of strictly greater similarities.
pub fn rank_of(similarities: &[f32], target: usize) -> usize {
    let t = similarities[target];
    1 + similarities.iter().filter(|&&s| s > t).count()
}

/// Every paired query is ranked against the references of all pairs (the reference's
/// `clamp3_eval.py`). Unmatched files are an error, as there.
pub fn eval(pairing: &Pairing, queries: &[Vec<f32>], references: &[Vec<f32>]) -> Result<Metrics> {
    if !pairing.is_complete() {
        return Err(Error::Unmatched {
            count: pairing.unmatched_queries.len() + pairing.unmatched_references.len(),
        });
    }
    if pairing.pairs.is_empty() {
        return Err(Error::Empty("no query has a reference with the same name"));
    }
    let candidates: Vec<Vec<f32>> = pairing
        .pairs
        .iter()
        .map(|p| references[p.reference].clone())
        .collect();
    let width = candidates[0].len();
    for c in &candidates {
        check_width(width, c.len())?;
    }
    let mut ranks = Vec::new();
    for (target, pair) in pairing.pairs.iter().enumerate() {
        for &q in &pair.queries {
            check_width(width, queries[q].len())?;
            let sims = similarities(&queries[q], &candidates);
            ranks.push(RankRow {
                query: q,
                reference: pair.reference,
                rank: rank_of(&sims, target),
            });
        }
    }
    let n = ranks.len() as f64;
    let share = |k: usize| ranks.iter().filter(|r| r.rank <= k).count() as f64 / n;
    let metrics = Metrics {
        queries: ranks.len(),
        references: candidates.len(),
        mrr: ranks.iter().map(|r| 1.0 / r.rank as f64).sum::<f64>() / n,
        hit_1: share(1),
        hit_10: share(10),
        hit_100: share(100),
        ranks: {
            let mut sorted = ranks.clone();
            sorted.sort_by_key(|r| r.rank);
            sorted
        },
    };
    Ok(metrics)
}

fn check_width(expected: usize, found: usize) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::Width { expected, found })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn paths(names: &[&str]) -> Vec<PathBuf> {
        names.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn keys_use_folder_and_name_before_first_dot() {
        assert_eq!(pair_key(Path::new("zh/sample1.1.wav")), "zh/sample1");
        assert_eq!(pair_key(Path::new("zh/sample1.txt")), "zh/sample1");
        assert_eq!(pair_key(Path::new("a/b/c.tar.gz")), "a/b/c");
        assert_eq!(pair_key(Path::new("top.abc")), "top");
    }

    #[test]
    fn pairing_groups_queries_and_lists_unmatched() {
        let q = paths(&[
            "zh/sample1.1.wav",
            "zh/sample1.2.wav",
            "en/a.txt",
            "lonely.txt",
        ]);
        let r = paths(&["en/a.abc", "en/a.mid", "zh/sample1.txt", "orphan.abc"]);
        let p = pair(&q, &r);
        assert_eq!(
            p.pairs,
            vec![
                Pair {
                    key: "en/a".into(),
                    queries: vec![2],
                    reference: 0
                },
                Pair {
                    key: "zh/sample1".into(),
                    queries: vec![0, 1],
                    reference: 2
                },
            ]
        );
        assert_eq!(p.unmatched_queries, vec![3]);
        assert_eq!(p.unmatched_references, vec![3]);
        assert_eq!(p.duplicate_references, vec![1]);
        assert_eq!(p.query_count(), 3);
        assert!(!p.is_complete());
    }

    #[test]
    fn rank_puts_the_target_first_among_ties() {
        // The reference sorts by (similarity, is_target) descending: ties favour the target.
        assert_eq!(rank_of(&[0.5, 0.5, 0.5], 2), 1);
        assert_eq!(rank_of(&[0.9, 0.5, 0.5, 0.7], 2), 3);
        assert_eq!(rank_of(&[0.1, 0.2, 0.3], 0), 3);
    }

    #[test]
    fn eval_computes_mrr_and_hits() {
        // Three pairs; query k is closest to reference k except query 1, which prefers ref 2.
        let q = paths(&["a.txt", "b.txt", "c.txt"]);
        let r = paths(&["a.abc", "b.abc", "c.abc"]);
        let p = pair(&q, &r);
        let refs = vec![
            vec![1.0, 0.0, 0.0],
            vec![0.0, 1.0, 0.0],
            vec![0.0, 0.0, 1.0],
        ];
        let queries = vec![
            vec![1.0, 0.1, 0.0],
            vec![0.0, 0.5, 1.0],
            vec![0.0, 0.0, 1.0],
        ];
        let m = eval(&p, &queries, &refs).unwrap();
        assert_eq!(m.queries, 3);
        assert_eq!(m.references, 3);
        let ranks: Vec<(usize, usize)> = m.ranks.iter().map(|r| (r.query, r.rank)).collect();
        assert_eq!(ranks, vec![(0, 1), (2, 1), (1, 2)]);
        assert!((m.mrr - (1.0 + 0.5 + 1.0) / 3.0).abs() < 1e-12);
        assert!((m.hit_1 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(m.hit_10, 1.0);
        assert_eq!(m.hit_100, 1.0);
    }

    #[test]
    fn eval_ties_count_in_the_queries_favour() {
        let q = paths(&["a.txt", "b.txt"]);
        let r = paths(&["a.abc", "b.abc"]);
        let p = pair(&q, &r);
        // Both references identical: every query ties, and the tie goes to its own reference.
        let refs = vec![vec![1.0, 1.0], vec![1.0, 1.0]];
        let queries = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
        let m = eval(&p, &queries, &refs).unwrap();
        assert_eq!(m.mrr, 1.0);
        assert_eq!(m.hit_1, 1.0);
    }

    #[test]
    fn eval_refuses_unmatched_files() {
        let p = pair(&paths(&["a.txt", "x.txt"]), &paths(&["a.abc"]));
        let err = eval(&p, &[vec![1.0], vec![1.0]], &[vec![1.0]]).unwrap_err();
        assert!(matches!(err, Error::Unmatched { count: 1 }));
    }

    #[test]
    fn pairwise_scores_sort_descending_and_average() {
        let q = paths(&["s.1.wav", "s.2.wav", "t.txt"]);
        let r = paths(&["s.txt", "t.abc"]);
        let p = pair(&q, &r);
        let refs = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
        let queries = vec![vec![1.0, 1.0], vec![1.0, 0.0], vec![-1.0, 0.0]];
        let (rows, avg) = score_pairwise(&p, &queries, &refs).unwrap();
        let order: Vec<usize> = rows.iter().map(|r| r.query).collect();
        assert_eq!(order, vec![1, 0, 2]);
        let expected = (1.0 + std::f64::consts::FRAC_1_SQRT_2 + 0.0) / 3.0;
        assert!((avg - expected).abs() < 1e-6);
    }

    #[test]
    fn group_score_is_cosine_of_means() {
        let s = score_group(&[vec![1.0, 0.0], vec![0.0, 1.0]], &[vec![2.0, 2.0]]).unwrap();
        assert!((s - 1.0).abs() < 1e-6);
        assert!(score_group(&[], &[vec![1.0]]).is_err());
    }
}
