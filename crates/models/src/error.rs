//! The one error type of `clamp3-models`.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// What can go wrong while loading or running a model.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A configuration file is malformed or inconsistent.
    #[error("{}: invalid model configuration: {message}", path.display())]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A weight file could not be loaded or does not fit the configuration.
    #[error("{}: {error}", path.display())]
    Weights {
        /// The weight file (or model folder).
        path: PathBuf,
        /// The underlying error, naming the missing or mis-shaped tensor.
        error: candle_core::Error,
    },
    /// An input does not fit the model (wrong width, empty, out of range).
    #[error("invalid model input: {0}")]
    Input(String),
    /// A tensor operation failed while running a model.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
