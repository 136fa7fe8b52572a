//! The one error type of `clamp3-features`.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// What can go wrong while turning a file into a vector.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error while handling a particular file.
    #[error("{}: {error}", path.display())]
    WithPath {
        /// The input file.
        path: PathBuf,
        /// What went wrong.
        error: Box<Error>,
    },
    /// The file's extension names no supported modality.
    #[error("unsupported file type {0:?} (expected .txt, .abc, .mtf, .mid, .midi, .xml, .musicxml, .mxl, .npy, .wav, .mp3, .flac, .ogg, .png, .jpg or .jpeg)")]
    Unsupported(String),
    /// The input holds nothing to embed once converted.
    #[error("nothing to embed: {0}")]
    Empty(&'static str),
    /// A text file is not UTF-8.
    #[error("not valid UTF-8 text (first bad byte at offset {0})")]
    Utf8(usize),
    /// A `.npy` file is malformed or has the wrong shape or type.
    #[error("bad .npy file: {0}")]
    Npy(String),
    /// The tokenizer could not be loaded or failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A file could not be fetched from the Hugging Face Hub.
    #[error("{0}")]
    Hub(String),
    /// Decoding or preparing audio failed.
    #[error(transparent)]
    Audio(#[from] clamp3_audio::Error),
    /// A file needs a model that was not loaded (the tokenizer for text, MERT for audio).
    #[error("no {0} loaded")]
    MissingModel(&'static str),
    /// A symbolic-format conversion failed.
    #[error(transparent)]
    Formats(#[from] clamp3_formats::Error),
    /// A score the reference patchilizer fails on.
    #[error(transparent)]
    Patchilize(#[from] clamp3_formats::patch::LoneBarline),
    /// A score CLaMP 1's bar patchilizer fails on.
    #[error(transparent)]
    BarPatchilize(#[from] clamp3_formats::bar_patch::LoneBarBody),
    /// Loading or running the model failed.
    #[error(transparent)]
    Model(#[from] clamp3_models::Error),
    /// An image could not be decoded or preprocessed.
    #[error(transparent)]
    Image(#[from] clamp3_images::Error),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// An I/O error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Attaches the file the error belongs to.
    pub fn with_path(self, path: impl Into<PathBuf>) -> Error {
        match self {
            already @ Error::WithPath { .. } => already,
            other => Error::WithPath {
                path: path.into(),
                error: Box::new(other),
            },
        }
    }
}

impl From<clamp3_io::npy::Error> for Error {
    fn from(e: clamp3_io::npy::Error) -> Self {
        Error::Npy(e.0)
    }
}
