//! Files → what an encoder reads: token ids, patches or MERT feature rows.

use crate::tokenizer::TextTokenizer;
use crate::{npy, text, Error, Result};
use clamp3_formats::patch::{patchilize_with, Patch, PatchRules};
use clamp3_formats::{abc, midi, musicxml, xml2abc};
use clamp3_models::mert::Mert;
use clamp3_models::Modality;
use std::path::Path;

/// A file's contents, converted for its encoder, before segmenting.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelInput {
    /// XLM-R token ids, `<s>` and `</s>` included.
    TokenIds(Vec<u32>),
    /// M3 patches, BOS and EOS patches included.
    Patches(Vec<Patch>),
    /// MERT feature rows (one per 5 s window) with the zero row added at each end.
    Features {
        /// Row width (MERT hidden size).
        width: usize,
        /// `rows * width` values, row-major.
        data: Vec<f32>,
    },
}

impl ModelInput {
    /// The encoder this input is for.
    pub fn modality(&self) -> Modality {
        match self {
            ModelInput::TokenIds(_) => Modality::Text,
            ModelInput::Patches(_) => Modality::Symbolic,
            ModelInput::Features { .. } => Modality::Audio,
        }
    }

    /// Number of items (ids, patches or rows) to segment.
    pub fn len(&self) -> usize {
        match self {
            ModelInput::TokenIds(ids) => ids.len(),
            ModelInput::Patches(patches) => patches.len(),
            ModelInput::Features { width, data } => data.len() / width.max(&1),
        }
    }

    /// Whether there is nothing to encode.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The kind of file, from its extension (case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `.txt`: text in any language.
    Text,
    /// `.abc`: ABC notation, interleaved or standard (converted in memory).
    Abc,
    /// `.mtf`: MIDI text format.
    Mtf,
    /// `.mid`, `.midi`: Standard MIDI Files (converted to MTF in memory).
    Midi,
    /// `.xml`, `.musicxml`, `.mxl`: MusicXML (converted to interleaved ABC in memory).
    MusicXml,
    /// `.npy`: precomputed MERT features.
    MertFeatures,
    /// `.wav`, `.mp3`, `.flac`, `.ogg`: audio, through MERT.
    Audio,
    /// `.png`, `.jpg`, `.jpeg`: an image, captioned by BLIP; the caption is embedded as a text
    /// ([`crate::caption`]).
    Image,
}

impl FileKind {
    /// Detects the kind from the file name; `None` for unsupported extensions.
    pub fn of(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "txt" => FileKind::Text,
            "abc" => FileKind::Abc,
            "mtf" => FileKind::Mtf,
            "mid" | "midi" => FileKind::Midi,
            "xml" | "musicxml" | "mxl" => FileKind::MusicXml,
            "npy" => FileKind::MertFeatures,
            "wav" | "mp3" | "flac" | "ogg" => FileKind::Audio,
            "png" | "jpg" | "jpeg" => FileKind::Image,
            _ => return None,
        })
    }
}

fn utf8(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|e| Error::Utf8(e.valid_up_to()))
}

/// Symbolic text (interleaved ABC or MTF) → patches; the text is read with universal newlines as
/// the reference's text-mode `open` does.
pub fn symbolic_input(text: &str) -> Result<ModelInput> {
    symbolic_input_with(text, PatchRules::CLAMP3)
}

/// [`symbolic_input`] under the patchilizer rules of another reference script (CLaMP 2, M3).
pub fn symbolic_input_with(text: &str, rules: PatchRules) -> Result<ModelInput> {
    let patches = patchilize_with(&text::universal_newlines(text), rules)?;
    // BOS and EOS are always there; a file needs something between them.
    if patches.len() <= 2 {
        return Err(Error::Empty("the score has no bars or fields"));
    }
    Ok(ModelInput::Patches(patches))
}

/// MERT features (`[1, n, H]` or `[n, H]`) → rows with a zero row added at each end.
pub fn features_input(array: &npy::NpyArray) -> Result<ModelInput> {
    let width = *array
        .shape
        .last()
        .ok_or_else(|| Error::Npy("a scalar is not a feature array".into()))?;
    if width == 0 || array.data.is_empty() {
        return Err(Error::Empty("the feature array has no rows"));
    }
    let mut data = Vec::with_capacity(array.data.len() + 2 * width);
    data.extend(std::iter::repeat_n(0.0, width));
    data.extend_from_slice(&array.data);
    data.extend(std::iter::repeat_n(0.0, width));
    Ok(ModelInput::Features { width, data })
}

/// Reads a file and converts it for its encoder. `tokenizer` is needed for text files only;
/// audio files need MERT ([`read_input_with`]).
pub fn read_input(path: &Path, tokenizer: Option<&TextTokenizer>) -> Result<ModelInput> {
    read_input_with(path, tokenizer, None)
}

/// [`read_input`], with the MERT model that audio files need.
pub fn read_input_with(
    path: &Path,
    tokenizer: Option<&TextTokenizer>,
    mert: Option<&Mert>,
) -> Result<ModelInput> {
    let kind = FileKind::of(path).ok_or_else(|| unsupported(path))?;
    prepare(kind, path, std::fs::read(path)?, tokenizer, mert)
}

/// The error for a file whose extension names no supported kind.
pub fn unsupported(path: &Path) -> Error {
    Error::Unsupported(
        path.extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_else(|| "(no extension)".to_string()),
    )
}

/// Converts a file's bytes, already read, for its encoder: `path` names the file (its extension
/// decides `.mxl` archives and hints audio containers). `tokenizer` is needed for text, `mert`
/// for audio.
pub fn prepare(
    kind: FileKind,
    path: &Path,
    bytes: Vec<u8>,
    tokenizer: Option<&TextTokenizer>,
    mert: Option<&Mert>,
) -> Result<ModelInput> {
    match kind {
        FileKind::Text => {
            let tokenizer = tokenizer
                .ok_or_else(|| Error::Tokenizer("no tokenizer loaded for text input".into()))?;
            Ok(ModelInput::TokenIds(text::token_ids(
                tokenizer,
                utf8(&bytes)?,
            )?))
        }
        FileKind::Mtf | FileKind::Abc | FileKind::Midi | FileKind::MusicXml => {
            symbolic_input(&symbolic_text(kind, path, &bytes)?)
        }
        FileKind::MertFeatures => features_input(&npy::parse(&bytes)?),
        FileKind::Audio => {
            let mert = mert.ok_or(Error::MissingModel("MERT model for audio input"))?;
            crate::audio::audio_input(mert, path, bytes)
        }
        // Captioned first: the caption is prepared as `FileKind::Text`.
        FileKind::Image => Err(Error::MissingModel("caption for image input")),
    }
}

/// The interleaved ABC or MTF text a symbolic file is patchilized from, as the CLaMP 2 and 3
/// preprocessing scripts write it: `.mtf` and interleaved `.abc` as they are, standard ABC
/// interleaved, MIDI converted to MTF, MusicXML through `xml2abc -d 8 -x` and interleaved.
/// `path` names the file (a `.mxl` is a zip archive). Other kinds have no symbolic text.
pub fn symbolic_text(kind: FileKind, path: &Path, bytes: &[u8]) -> Result<String> {
    match kind {
        FileKind::Mtf => Ok(utf8(bytes)?.to_string()),
        FileKind::Abc => {
            let text = utf8(bytes)?;
            if abc::is_interleaved(text) {
                Ok(text.to_string())
            } else {
                Ok(abc::interleave(text)?)
            }
        }
        FileKind::Midi => Ok(midi::midi_to_mtf(bytes, true)?),
        FileKind::MusicXml => Ok(abc::interleave(&xml2abc::convert(&musicxml_text(
            path, bytes,
        )?)?)?),
        _ => Err(Error::Empty("the file is not symbolic music")),
    }
}

/// A MusicXML file's XML text: unzipped when `path` is a `.mxl`, decoded otherwise.
pub fn musicxml_text(path: &Path, bytes: &[u8]) -> Result<String> {
    let is_mxl = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("mxl"));
    Ok(if is_mxl {
        musicxml::read_mxl(bytes)?
    } else {
        musicxml::decode_xml(bytes)?
    })
}
