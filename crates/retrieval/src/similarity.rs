//! Cosine similarity and top-k search, as the reference's `inference/clamp3_search.py`.

/// `torch.cosine_similarity`'s guard against zero norms.
const EPS: f64 = 1e-8;

/// The cosine of the angle between `a` and `b`, accumulated in f64 (each norm clamped to at
/// least 1e-8, as PyTorch does). Both must have the same length.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    (dot / (na.sqrt().max(EPS) * nb.sqrt().max(EPS))) as f32
}

/// `v / |v|` (a zero vector stays zero).
pub fn normalized(v: &[f32]) -> Vec<f32> {
    let norm = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt()
        .max(EPS);
    v.iter().map(|&x| (f64::from(x) / norm) as f32).collect()
}

/// The element-wise mean of equally long vectors (empty when there are none).
pub fn mean(vectors: &[Vec<f32>]) -> Vec<f32> {
    let Some(first) = vectors.first() else {
        return Vec::new();
    };
    let mut sum = vec![0f64; first.len()];
    for v in vectors {
        for (s, &x) in sum.iter_mut().zip(v) {
            *s += f64::from(x);
        }
    }
    sum.iter()
        .map(|s| (s / vectors.len() as f64) as f32)
        .collect()
}

/// The cosine of `query` to every reference: one pass over the normalised matrix.
pub fn similarities(query: &[f32], references: &[Vec<f32>]) -> Vec<f32> {
    references.iter().map(|r| cosine(query, r)).collect()
}

/// CLaMP 1's `compute_values`: the softmax over the references of the query's cosine to each,
/// scaled by `e` (`exp(1)`, the reference's fixed temperature) - the "Prob" `clamp.py` prints.
pub fn compute_values(query: &[f32], references: &[Vec<f32>]) -> Vec<f32> {
    let logits: Vec<f64> = similarities(query, references)
        .into_iter()
        .map(|s| f64::from(s) * std::f64::consts::E)
        .collect();
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    let total: f64 = exps.iter().sum();
    exps.iter().map(|e| (e / total) as f32).collect()
}

/// One search result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Index into the references.
    pub index: usize,
    /// Cosine similarity to the query.
    pub similarity: f32,
}

/// The `k` references most similar to `query`, most similar first; equal similarities keep the
/// references' order. `k` larger than the number of references returns them all.
pub fn search(query: &[f32], references: &[Vec<f32>], k: usize) -> Vec<Hit> {
    let mut hits: Vec<Hit> = similarities(query, references)
        .into_iter()
        .enumerate()
        .map(|(index, similarity)| Hit { index, similarity })
        .collect();
    // A stable sort, so ties stay in reference order.
    hits.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
    hits.truncate(k);
    hits
}

/// Rounds to 4 decimals as Python's `round(x, 4)` prints (half-even on the decimal value is not
/// reproducible from binary floats either; this rounds the f64 value half away from zero).
pub fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_known_vectors() {
        assert!((cosine(&[1.0, 0.0], &[0.0, 1.0])).abs() < 1e-7);
        assert!((cosine(&[1.0, 1.0], &[2.0, 2.0]) - 1.0).abs() < 1e-6);
        assert!((cosine(&[1.0, 0.0], &[1.0, 1.0]) - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]), 0.0);
    }

    #[test]
    fn values_are_a_softmax_of_scaled_cosines() {
        let refs = vec![vec![1.0, 0.0], vec![0.0, 3.0], vec![-2.0, 0.0]];
        let values = compute_values(&[5.0, 0.0], &refs);
        let e = std::f64::consts::E;
        let total = e.exp() + 1.0 + (-e).exp();
        for (v, want) in values
            .iter()
            .zip([e.exp() / total, 1.0 / total, (-e).exp() / total])
        {
            assert!((f64::from(*v) - want).abs() < 1e-6, "{v} vs {want}");
        }
    }

    #[test]
    fn search_orders_by_similarity_and_keeps_ties_in_order() {
        let refs = vec![
            vec![0.0, 1.0],
            vec![1.0, 0.0],
            vec![2.0, 0.0],
            vec![1.0, 1.0],
        ];
        let hits = search(&[1.0, 0.0], &refs, 10);
        let order: Vec<usize> = hits.iter().map(|h| h.index).collect();
        assert_eq!(order, vec![1, 2, 3, 0]);
        assert_eq!(search(&[1.0, 0.0], &refs, 2).len(), 2);
    }

    #[test]
    fn mean_and_normalized() {
        assert_eq!(mean(&[vec![1.0, 2.0], vec![3.0, 4.0]]), vec![2.0, 3.0]);
        let n = normalized(&[3.0, 4.0]);
        assert!((n[0] - 0.6).abs() < 1e-6 && (n[1] - 0.8).abs() < 1e-6);
    }

    #[test]
    fn round4_rounds() {
        assert_eq!(round4(0.123_449), 0.1234);
        assert_eq!(round4(0.123_46), 0.1235);
        assert_eq!(round4(-0.5), -0.5);
    }
}
