//! Symbolic music formats for CLaMP 3, the first stage of the pipeline.
//!
//! Everything here turns files into the text and patches the M3 encoder reads, with no ML
//! dependency:
//!
//! - [`musicxml`]: reading `.xml`, `.musicxml` and `.mxl` files ([`musicxml::read_score`]).
//! - [`xml2abc`]: MusicXML → standard ABC as the reference's `xml2abc.py -d 8 -x`
//!   ([`xml2abc::convert`]).
//! - [`abc`]: standard ABC → interleaved ABC ([`abc::interleave`], [`abc::is_interleaved`]).
//! - [`abc2xml`]: (interleaved) ABC → MusicXML as the reference's `batch_abc2xml.py`
//!   ([`abc2xml::convert`]).
//! - [`midi`]: MIDI → MTF text ([`midi::midi_to_mtf`]); [`mtf`]: MTF → MIDI ([`mtf::mtf_to_midi`]).
//! - [`patch`]: the M3 patchilizer (interleaved ABC or MTF text → 64-byte patches).
//! - [`bar_patch`]: CLaMP 1's `abc_filter` and bar patchilizer (standard ABC → 64-id patches).
//!
//! Every fallible function returns [`Result`], whose [`Error`] says what was expected and found.
#![deny(missing_docs)]

pub mod abc;
pub mod abc2xml;
pub mod bar_patch;
mod error;
pub mod midi;
pub mod mtf;
pub mod musicxml;
pub mod patch;
mod translit;
pub mod xml2abc;

pub use error::{Error, Result};
pub use translit::to_ascii;
