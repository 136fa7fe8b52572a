//! Zero-shot classification: a music vector against the text vectors of label descriptions.

use crate::similarity::{search, Hit};

/// The default description of a label, as a sentence the text encoder can place.
pub const DEFAULT_TEMPLATE: &str = "It is {}";

/// Fills `template`'s `{}` with `label` (appends the label when there is no `{}`).
pub fn prompt(template: &str, label: &str) -> String {
    if template.contains("{}") {
        template.replacen("{}", label, 1)
    } else {
        format!("{template}{label}")
    }
}

/// The labels ranked by the cosine of their prompt vectors to the music vector, best first,
/// at most `k` (ties in label order).
pub fn classify(music: &[f32], labels: &[Vec<f32>], k: usize) -> Vec<Hit> {
    search(music, labels, k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_fills_the_template() {
        assert_eq!(prompt(DEFAULT_TEMPLATE, "jazz"), "It is jazz");
        assert_eq!(prompt("Genre: ", "rock"), "Genre: rock");
    }

    #[test]
    fn classify_ranks_labels() {
        let labels = vec![vec![0.0, 1.0], vec![1.0, 0.0]];
        let hits = classify(&[0.9, 0.1], &labels, 1);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].index, 1);
    }
}
