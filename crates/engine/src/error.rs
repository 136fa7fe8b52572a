//! The one error type of `clamp3-engine`.

use std::path::PathBuf;
use std::sync::Arc;

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// What can go wrong while turning inputs into vectors.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// An error while handling a particular input file.
    #[error("{}: {error}", path.display())]
    WithPath {
        /// The input file.
        path: PathBuf,
        /// What went wrong.
        error: Box<Error>,
    },
    /// The file's extension names no supported kind.
    #[error("unsupported file type {extension:?}")]
    UnsupportedKind {
        /// The extension (with its dot), or "(no extension)".
        extension: String,
    },
    /// The model family does not take this kind of input.
    #[error("{model} does not take {what}; it accepts {accepts}")]
    NotAccepted {
        /// The model's name.
        model: String,
        /// The kind of input refused.
        what: String,
        /// What the model accepts.
        accepts: String,
    },
    /// A `.npy` file is neither a vector nor feature rows the model reads.
    #[error("a {shape:?} array is neither a [1, {vector}] vector nor audio features (rows {features} wide){hint}")]
    NpyShape {
        /// The array's shape.
        shape: Vec<usize>,
        /// The model's vector width D.
        vector: usize,
        /// The audio encoder's row width (0 when the model takes no audio).
        features: usize,
        /// A hint about forcing a reading.
        hint: &'static str,
    },
    /// A model, tokenizer or feature extractor could not be loaded (the error is shared by every
    /// input that needed it).
    #[error("loading {what}: {error}")]
    Load {
        /// What was being loaded.
        what: &'static str,
        /// Why it failed.
        error: Arc<Error>,
    },
    /// The model spec is inconsistent or names an unknown model.
    #[error("{0}")]
    Spec(String),
    /// Preparing or encoding an input failed.
    #[error(transparent)]
    Features(Arc<clamp3_features::Error>),
    /// Loading or running a model failed.
    #[error(transparent)]
    Model(Arc<clamp3_models::Error>),
    /// An I/O error on a file.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: Arc<std::io::Error>,
    },
}

impl Error {
    /// Attaches the file the error belongs to, unless the message names it already (audio and
    /// format errors often do): every message names its file exactly once.
    pub fn with_path(self, path: impl Into<PathBuf>) -> Error {
        let path = path.into();
        if self.to_string().contains(&path.display().to_string()) {
            return self;
        }
        Error::WithPath {
            path,
            error: Box::new(self),
        }
    }

    /// The error itself, without the file it is attached to.
    pub fn without_path(&self) -> &Error {
        match self {
            Error::WithPath { error, .. } => error.without_path(),
            other => other,
        }
    }

    /// [`Error::without_path`], owned.
    pub fn into_without_path(self) -> Error {
        match self {
            Error::WithPath { error, .. } => error.into_without_path(),
            other => other,
        }
    }

    /// Whether the error fails every input alike (the model, tokenizer or config cannot be
    /// loaded, or the spec is wrong), so a front end says it once and stops instead of listing it
    /// once per file.
    pub fn fails_every_input(&self) -> bool {
        matches!(self.without_path(), Error::Load { .. } | Error::Spec(_))
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            error: Arc::new(error),
        }
    }
}

impl From<clamp3_features::Error> for Error {
    fn from(e: clamp3_features::Error) -> Self {
        Error::Features(Arc::new(e))
    }
}

impl From<clamp3_models::Error> for Error {
    fn from(e: clamp3_models::Error) -> Self {
        Error::Model(Arc::new(e))
    }
}

impl From<clamp3_io::npy::Error> for Error {
    fn from(e: clamp3_io::npy::Error) -> Self {
        Error::Features(Arc::new(e.into()))
    }
}
