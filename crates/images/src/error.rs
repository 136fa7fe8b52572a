//! The one error type of `clamp3-images`.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// What can go wrong while reading or preprocessing an image.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error about a particular file.
    #[error("{}: {error}", path.display())]
    WithPath {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        error: Box<Error>,
    },
    /// The file could not be read.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not an image this crate decodes (PIL: "cannot identify image file").
    #[error("cannot identify image file: {0}")]
    Unidentified(&'static str),
    /// The image data ends before the image does (PIL: "image file is truncated").
    #[error("image file is truncated ({0})")]
    Truncated(String),
    /// The image data is corrupt.
    #[error("corrupt {format} image: {message}")]
    Corrupt {
        /// "PNG" or "JPEG".
        format: &'static str,
        /// The decoder's message.
        message: String,
    },
    /// The image decodes, but the processor cannot take it.
    #[error("{0}")]
    Unsupported(String),
    /// A `preprocessor_config.json` is malformed or asks for something not supported.
    #[error("{}: invalid image processor configuration: {message}", path.display())]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

impl Error {
    /// Attaches the file the error is about.
    pub fn with_path(self, path: impl Into<PathBuf>) -> Error {
        Error::WithPath {
            path: path.into(),
            error: Box::new(self),
        }
    }
}
