//! The errors of training: each names the file (and line) it is about.

use std::path::PathBuf;

/// Why training (or a part of it) could not go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// A data item is unusable (bad JSON, a missing field, a missing or unreadable music file).
    #[error("{}:{line}: {reason}", path.display())]
    Data {
        /// The JSONL file (or the music file, with line 0).
        path: PathBuf,
        /// 1-based line of the JSONL file, 0 when not about a line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint is missing a tensor, has a wrong shape, or is not a checkpoint.
    #[error("{}: {reason}", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Training cannot run with these settings or this data.
    #[error("{0}")]
    Setup(String),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// The model configuration or weights could not be loaded.
    #[error(transparent)]
    Models(#[from] clamp3_models::Error),
}

/// Result alias for training.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io_error(path: &std::path::Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |error| Error::Io {
        path: path.to_path_buf(),
        error,
    }
}
