//! The retrieval crate's error type.

/// What can go wrong in retrieval.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Vectors of different widths were compared.
    #[error("vector width mismatch: expected {expected}, found {found}")]
    Width {
        /// The width of the first vector.
        expected: usize,
        /// The width found.
        found: usize,
    },
    /// Nothing to compare.
    #[error("{0}")]
    Empty(&'static str),
    /// A probe file or probe training problem.
    #[error("linear probe: {0}")]
    Probe(String),
    /// Files on one side have no partner on the other.
    #[error("{count} unmatched query or reference files")]
    Unmatched {
        /// How many keys are unmatched.
        count: usize,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
