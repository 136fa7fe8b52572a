//! Search, score, eval and zero-shot classification over CLaMP 3 vectors: the stage after the
//! engine (formats → audio → models → features → engine → **retrieval** → front ends).
//!
//! Everything here works on plain `f32` vectors, so it is model-free and fast to test:
//!
//! - [`similarity`]: cosine similarity and top-k [`search`](similarity::search), as the
//!   reference's `clamp3_search.py`.
//! - [`pairing`]: pairing query and reference files by relative folder and name before the first
//!   dot; [`score`](pairing::score_pairwise) (`clamp3_score.py`) and [`eval`](pairing::eval)
//!   (`clamp3_eval.py`, MRR and Hit@k with the reference's tie-breaking).
//! - [`classify`]: zero-shot classification by cosine to label-text vectors.
//! - [`probe`]: the reference's linear probe (`classification/`): train, evaluate, predict.
//!
//! ```
//! use clamp3_retrieval::similarity::search;
//! let refs = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![1.0, 1.0]];
//! let hits = search(&[1.0, 0.1], &refs, 2);
//! assert_eq!(hits[0].index, 0);
//! assert_eq!(hits[1].index, 2);
//! ```
#![deny(missing_docs)]

pub mod classify;
mod error;
pub mod pairing;
pub mod probe;
pub mod similarity;

pub use error::{Error, Result};
