//! What the library knows about one item: its id (from its content), the files that hold it,
//! its modality and format, and the metadata read from it. Stored as the point's payload.

use crate::{Error, Result};
use clamp3_features::FileKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// An item's id: the first 64 bits of the BLAKE3 hash of its file's bytes, so the same content
/// is one item wherever it lies (renames and moves keep the id), and the id is the Qdrant point
/// id. Written as 16 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemId(pub u64);

impl ItemId {
    /// The id of content with this BLAKE3 hash.
    pub fn of_hash(hash: &blake3::Hash) -> Self {
        let bytes = hash.as_bytes();
        let mut first = [0u8; 8];
        first.copy_from_slice(&bytes[..8]);
        ItemId(u64::from_be_bytes(first))
    }
}

impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for ItemId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Invalid(format!(
                "{s:?} is not an item id (16 hex digits)"
            )));
        }
        u64::from_str_radix(s, 16)
            .map(ItemId)
            .map_err(|e| Error::Invalid(format!("{s:?} is not an item id: {e}")))
    }
}

impl Serialize for ItemId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ItemId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The modality of a file kind, as the library names and filters it: `text`, `sheet` (ABC,
/// MusicXML), `midi` (MIDI, MTF), `audio` (audio files, MERT features), `image`.
pub fn modality_name(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Text => "text",
        FileKind::Abc | FileKind::MusicXml => "sheet",
        FileKind::Midi | FileKind::Mtf => "midi",
        FileKind::Audio | FileKind::MertFeatures => "audio",
        FileKind::Image => "image",
    }
}

/// Every modality name, in the order `info` lists them.
pub const MODALITIES: [&str; 5] = ["text", "sheet", "midi", "audio", "image"];

/// The format of a file: its extension, lower case.
pub fn format_name(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// A file that holds an item, with what `add` saw of it last (a file whose size and
/// modification time are unchanged is not read again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemFile {
    /// Absolute path.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch (0 when unknown).
    pub mtime_ns: u64,
}

/// One item of the library: the point's payload, and its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemRecord {
    /// The item's id.
    pub id: ItemId,
    /// The first file that holds it (absolute).
    pub path: PathBuf,
    /// Every file that holds this content (duplicates are one item).
    pub files: Vec<ItemFile>,
    /// `text`, `sheet`, `midi`, `audio` or `image` ([`modality_name`]).
    pub modality: String,
    /// The file's extension, lower case (`abc`, `xml`, `mid`, `wav`, …).
    pub format: String,
    /// The full BLAKE3 hash of the content, hex.
    pub content_hash: String,
    /// Size in bytes.
    pub size: u64,
    /// The title the file gives (`T:`, `<work-title>`, a MIDI track name, an audio title tag).
    #[serde(default)]
    pub title: Option<String>,
    /// Everything else the file says about itself (composer, artist, album, tempo, …).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// For an image, the BLIP caption its vector was made from.
    #[serde(default)]
    pub caption: Option<String>,
    /// For audio, its length in seconds.
    #[serde(default)]
    pub duration_s: Option<f64>,
    /// For sheet music and MIDI, the number of M3 patches.
    #[serde(default)]
    pub patches: Option<usize>,
    /// The models (vector names) this item has vectors of.
    #[serde(default)]
    pub models: Vec<String>,
    /// When it was first added, seconds since the Unix epoch.
    #[serde(default)]
    pub added: u64,
    /// The share of split extraction (`add --shard I/N`) that stored it, as `I/N`; `None` for
    /// an item added whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

impl ItemRecord {
    /// The record as a JSON object (the point's payload).
    pub(crate) fn to_payload(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map,
            // A struct of strings, numbers and maps always serialises to an object.
            _ => serde_json::Map::new(),
        }
    }

    /// The record a payload holds; `None` for a payload that is not one (a damaged point).
    pub(crate) fn from_payload(map: serde_json::Map<String, serde_json::Value>) -> Option<Self> {
        serde_json::from_value(serde_json::Value::Object(map)).ok()
    }

    /// The display name: the title, else the file name.
    pub fn name(&self) -> String {
        self.title.clone().unwrap_or_else(|| {
            self.path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
    }
}

/// A search result: an item and its cosine similarity to the query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// The item.
    pub item: ItemRecord,
    /// Cosine similarity, in [-1, 1].
    pub score: f32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_refuse_garbage() {
        let id = ItemId::of_hash(&blake3::hash(b"tune"));
        assert_eq!(id.to_string().parse::<ItemId>().ok(), Some(id));
        assert!("xyz".parse::<ItemId>().is_err());
        assert!("00000000000000000".parse::<ItemId>().is_err());
        assert!("0000000000000g00".parse::<ItemId>().is_err());
        assert_eq!("00000000000000ff".parse::<ItemId>().ok(), Some(ItemId(255)));
    }
}
