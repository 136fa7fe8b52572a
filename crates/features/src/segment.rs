//! Segmentation and pooling, as `extract_clamp3.py` does it for every modality.
//!
//! A sequence of n items is cut into segments of L at 0, L, 2L, …; the last segment is then
//! replaced by the last L items, so when n > L and L does not divide n it overlaps the one before.
//! Hence every segment has the same length, min(n, L), and a file's segments run as one batch with
//! no padding.

/// How a sequence of `len` items is cut into segments of at most `max` items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segments {
    /// Start offset of each segment.
    pub starts: Vec<usize>,
    /// Length of every segment: `min(len, max)`.
    pub length: usize,
    /// Weight of each segment in the global average: L for full strides, `len % L` for the last
    /// one when L does not divide `len`.
    pub weights: Vec<usize>,
    /// Rows of the last segment kept for local features (its last `len % L` rows, or all of them
    /// when L divides `len` or there is one segment).
    pub last_rows: usize,
}

impl Segments {
    /// Plans the segments of a sequence of `len` ≥ 1 items with segment length `max` ≥ 1.
    pub fn plan(len: usize, max: usize) -> Self {
        assert!(
            len > 0 && max > 0,
            "segmenting needs items and a positive length"
        );
        let count = len.div_ceil(max);
        let mut starts: Vec<usize> = (0..count).map(|i| i * max).collect();
        if let Some(last) = starts.last_mut() {
            *last = len.saturating_sub(max);
        }
        let remainder = len % max;
        let mut weights = vec![max; len / max];
        if remainder != 0 {
            weights.push(remainder);
        }
        let length = len.min(max);
        // Python's `x[-(len % L):]`: `x[-0:]` is the whole segment.
        let last_rows = if remainder == 0 {
            length
        } else {
            remainder.min(length)
        };
        Self {
            starts,
            length,
            weights,
            last_rows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Segments;

    #[test]
    fn shorter_than_one_segment() {
        let s = Segments::plan(5, 8);
        assert_eq!(
            (s.starts, s.length, s.weights, s.last_rows),
            (vec![0], 5, vec![5], 5)
        );
    }

    #[test]
    fn exact_multiple() {
        let s = Segments::plan(16, 8);
        assert_eq!(
            (s.starts, s.length, s.weights, s.last_rows),
            (vec![0, 8], 8, vec![8, 8], 8)
        );
    }

    #[test]
    fn overlapping_last_segment() {
        let s = Segments::plan(21, 8);
        assert_eq!(s.starts, [0, 8, 13]);
        assert_eq!(s.weights, [8, 8, 5]);
        assert_eq!(s.last_rows, 5);
        // Local rows add up to the sequence length.
        assert_eq!((s.starts.len() - 1) * s.length + s.last_rows, 21);
    }
}
