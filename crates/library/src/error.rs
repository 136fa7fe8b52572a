//! What can go wrong in a library, each error naming the file or the store it concerns.

use std::path::PathBuf;

/// A library error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder could not be read or written.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// Another process holds the library open for writing.
    #[error("{}: the library is in use by another clamp3 process (lock file {})", library.display(), lock.display())]
    Busy {
        /// The library folder.
        library: PathBuf,
        /// Its lock file.
        lock: PathBuf,
    },
    /// The store refused an operation or could not be opened.
    #[error("{}: store: {reason}", library.display())]
    Store {
        /// The library folder.
        library: PathBuf,
        /// What the store said.
        reason: String,
    },
    /// The folder is not a clamp3 library (or one of an unknown format version).
    #[error("{}: {reason}", library.display())]
    NotALibrary {
        /// The folder.
        library: PathBuf,
        /// Why it is refused.
        reason: String,
    },
    /// An item id, filter or argument that does not parse.
    #[error("{0}")]
    Invalid(String),
    /// No item has this id or path.
    #[error("no item {0} in the library")]
    NotFound(String),
    /// The library has no vectors of this model.
    #[error("the library has no vectors of the model {model} (it holds: {held}); run `clamp3 library add` with this model first")]
    NoVectors {
        /// The model's vector name.
        model: String,
        /// The vector names the library has.
        held: String,
    },
    /// The engine failed in a way that fails every file (a model that does not load).
    #[error(transparent)]
    Engine(#[from] clamp3_engine::Error),
}

/// A library result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
