//! The one error type of `clamp3-audio`.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// What can go wrong while turning an audio file into MERT input windows.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be opened or read.
    #[error("{}: cannot read the file: {error}", path.display())]
    Io {
        /// The audio file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The container or codec is not one this build can decode.
    #[error("{}: unsupported audio file: {reason}", path.display())]
    Unsupported {
        /// The audio file.
        path: PathBuf,
        /// What is missing (no audio track, unknown codec, ...).
        reason: String,
    },
    /// The stream is malformed beyond what the decoder can skip over.
    #[error("{}: cannot decode the audio: {reason}", path.display())]
    Decode {
        /// The audio file.
        path: PathBuf,
        /// The decoder's explanation.
        reason: String,
    },
    /// The audio is too short to give a single MERT window.
    #[error(
        "{}: audio too short: {samples} samples at 24 kHz ({seconds:.2} s), \
         at least {min} (1 s) are needed for one window",
        path.display(),
        seconds = *samples as f64 / crate::SAMPLE_RATE as f64,
        min = crate::MIN_WINDOW_SAMPLES
    )]
    TooShort {
        /// The audio file.
        path: PathBuf,
        /// Its length after resampling to 24 kHz.
        samples: usize,
    },
}
