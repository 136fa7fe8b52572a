//! Search, score, eval and classify over CLaMP 3 vectors.
#![deny(missing_docs)]
