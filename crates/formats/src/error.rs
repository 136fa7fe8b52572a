//! The one error type of `clamp3-formats`.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong while reading or converting a symbolic music file.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error that happened while handling a particular file.
    #[error("{}: {error}", path.display())]
    WithPath {
        /// The file being handled.
        path: PathBuf,
        /// What went wrong.
        error: Box<Error>,
    },
    /// An error located at a line of a text format (ABC, MTF); lines count from 1.
    #[error("line {line}: {message}")]
    AtLine {
        /// 1-based line number.
        line: usize,
        /// What was expected and what was found.
        message: String,
    },
    /// The input is not valid UTF-8.
    #[error("not valid UTF-8 text (byte {valid_up_to})")]
    Utf8 {
        /// Length of the valid prefix.
        valid_up_to: usize,
    },
    /// Standard ABC could not be interleaved; `step` names the reference step that fails.
    #[error("interleaving ABC failed at {step}: {reason}")]
    Interleave {
        /// The step of the reference pipeline (`find tune body`, `strip empty bars`, …).
        step: &'static str,
        /// What went wrong there.
        reason: String,
    },
    /// A MIDI file that mido 1.3.0 (and so the reference) cannot read.
    #[error("invalid MIDI file at byte {offset}: {message}")]
    Midi {
        /// Byte offset in the file where reading stopped.
        offset: usize,
        /// What was expected and what was found.
        message: String,
    },
    /// A format-2 MIDI file: its tracks are independent patterns with no merged track, so there
    /// is no MTF for it (the reference fails the same way).
    #[error(
        "MIDI format 2 (independent patterns) has no single merged track and cannot be \
         converted to MTF"
    )]
    MidiFormat2,
    /// A MusicXML file could not be read: not a zip archive, no score inside, not well-formed XML.
    #[error("cannot read MusicXML: {reason}")]
    MusicXml {
        /// What was expected and what was found.
        reason: String,
    },
    /// MusicXML could not be converted to ABC (where the reference xml2abc also fails, or a
    /// feature this port does not support).
    #[error("xml2abc failed: {reason}")]
    Xml2Abc {
        /// What went wrong.
        reason: String,
    },
    /// ABC could not be converted to MusicXML (where the reference abc2xml writes nothing, input
    /// refused as hostile, or a feature this port does not support).
    #[error("abc2xml failed: {reason}")]
    Abc2Xml {
        /// What went wrong.
        reason: String,
    },
    /// An I/O error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Attaches the file the error belongs to.
    pub fn with_path(self, path: impl Into<PathBuf>) -> Error {
        Error::WithPath {
            path: path.into(),
            error: Box::new(self),
        }
    }
}
