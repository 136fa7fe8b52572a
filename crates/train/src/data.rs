//! Training data as the reference reads it: the CLaMP 3 JSONL format, the text chosen per item,
//! the music item (sheet music / MIDI patches or MERT feature rows), batching and padding, and
//! M3's files, masking and batches.
//!
//! Upstream: `TextMusicDataset` and `collate_batch` in `code/train_clamp3_symbolic.py` /
//! `code/train_clamp3_audio.py`, `M3Dataset` and `mask_patches` in `code/train_m3.py`,
//! `remove_instrument_info` in `code/utils.py` (sanderwood/clamp3 at 9016d2b). Where upstream
//! crashes on bad data (a missing field, an unreadable file, an empty text), the item is reported
//! as an [`Error::Data`] naming the file and line and the caller skips it.

use crate::arch::{Clamp3Batch, M3Batch, MusicInput};
use crate::rng::Rng;
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use clamp3_features::TextTokenizer;
use clamp3_formats::patch::{patchilize, Patch, EOS, PATCH_SIZE};
use std::path::{Path, PathBuf};

/// The tokenizer's `sep_token`, a literal the tokenizer turns into id 2.
const SEP: &str = "</s>";
/// XLM-R's padding id.
pub const TEXT_PAD_ID: u32 = 1;
/// M3's mask id: a masked patch is 64 of it.
pub const MASK_ID: u8 = 3;
/// Top-level keys that are never texts.
const NOT_TEXT_KEYS: [&str; 4] = ["id", "filepaths", "language", "translations"];

/// One line of a CLaMP 3 training JSONL file.
#[derive(Debug, Clone, PartialEq)]
pub struct Clamp3Item {
    /// The `id` field, or the line number.
    pub id: String,
    /// `filepaths`, resolved against the JSONL file's folder.
    pub filepaths: Vec<PathBuf>,
    /// Usable values of `translations` (every key but `language`; null and empty dropped).
    pub translations: Vec<String>,
    /// The "original" texts: every other string field, list fields' strings, in key order.
    pub original: Vec<String>,
    /// `analysis`, the only text eval mode uses.
    pub analysis: Option<String>,
    /// Where the item comes from.
    pub source: PathBuf,
    /// Its 1-based line.
    pub line: usize,
}

impl Clamp3Item {
    /// A data error about this item.
    pub fn error(&self, reason: impl Into<String>) -> Error {
        Error::Data {
            path: self.source.clone(),
            line: self.line,
            reason: format!("item {}: {}", self.id, reason.into()),
        }
    }
}

fn strings_of(value: &serde_json::Value) -> Vec<String> {
    match value {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// Parses one JSONL line (`line` is 1-based, for messages).
pub fn parse_item(text: &str, source: &Path, line: usize) -> Result<Clamp3Item> {
    let err = |reason: String| Error::Data {
        path: source.to_path_buf(),
        line,
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| err(format!("not JSON: {e}")))?;
    let object = value
        .as_object()
        .ok_or_else(|| err("not a JSON object".to_string()))?;
    let dir = source.parent().unwrap_or(Path::new(""));
    let filepaths: Vec<PathBuf> = match object.get("filepaths") {
        Some(serde_json::Value::Array(paths)) => paths
            .iter()
            .map(|p| {
                p.as_str()
                    .map(|p| dir.join(p))
                    .ok_or_else(|| err("filepaths holds a non-string".to_string()))
            })
            .collect::<Result<_>>()?,
        _ => return Err(err("missing field filepaths (a list of paths)".to_string())),
    };
    if filepaths.is_empty() {
        return Err(err("filepaths is empty".to_string()));
    }
    let translations = match object.get("translations") {
        Some(serde_json::Value::Object(t)) => t
            .iter()
            .filter(|(k, _)| k.as_str() != "language")
            .filter_map(|(_, v)| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    let original = object
        .iter()
        .filter(|(k, _)| !NOT_TEXT_KEYS.contains(&k.as_str()))
        .flat_map(|(_, v)| strings_of(v))
        .filter(|s| !s.is_empty())
        .collect();
    let id = object
        .get("id")
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
        .unwrap_or_else(|| format!("line {line}"));
    Ok(Clamp3Item {
        id,
        filepaths,
        translations,
        original,
        analysis: object
            .get("analysis")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        source: source.to_path_buf(),
        line,
    })
}

/// What loading a data file kept and what it skipped.
#[derive(Debug)]
pub struct Loaded<T> {
    /// The usable items, in file order.
    pub items: Vec<T>,
    /// One error per skipped line or file.
    pub skipped: Vec<Error>,
}

/// Reads a JSONL file: every line that parses and whose files exist becomes an item, every other
/// non-blank line an error (or, with `strict`, the first one fails the load).
pub fn load_jsonl(path: &Path, strict: bool) -> Result<Loaded<Clamp3Item>> {
    let text = std::fs::read_to_string(path).map_err(crate::error::io_error(path))?;
    let mut loaded = Loaded {
        items: Vec::new(),
        skipped: Vec::new(),
    };
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let item = parse_item(line, path, i + 1).and_then(|item| {
            match item.filepaths.iter().find(|p| !p.is_file()) {
                Some(missing) => {
                    Err(item.error(format!("music file {} not found", missing.display())))
                }
                None => Ok(item),
            }
        });
        match item {
            Ok(item) => loaded.items.push(item),
            Err(e) if strict => return Err(e),
            Err(e) => loaded.skipped.push(e),
        }
    }
    Ok(loaded)
}

/// `text_dropout` in train mode: the translated or the original texts (coin 0.5, original when
/// no translation is usable), distinct field values, split into lines, each non-empty line kept
/// with probability 0.5 (all lines when none is kept), shuffled, joined with `</s>`.
pub fn train_text(item: &Clamp3Item, rng: &mut Rng) -> String {
    let mut candidates: &[String] = &[];
    if rng.uniform() < 0.5 {
        candidates = &item.translations;
    }
    if candidates.is_empty() {
        candidates = &item.original;
    }
    // Upstream's `list(set(...))`: distinct values in an arbitrary order; the order is irrelevant
    // because the kept lines are shuffled below.
    let mut distinct: Vec<&str> = Vec::new();
    for c in candidates {
        if !distinct.contains(&c.as_str()) {
            distinct.push(c);
        }
    }
    let joined = distinct.join("\n");
    let lines: Vec<&str> = joined.split('\n').collect();
    let mut selected: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.is_empty() && rng.uniform() < 0.5)
        .collect();
    if selected.is_empty() {
        selected = lines;
    }
    rng.shuffle(&mut selected);
    selected.join(SEP)
}

/// Where a window of `max` is cut from a longer sequence (`random_truncate`).
fn truncation_start(len: usize, max: usize, rng: Option<&mut Rng>) -> usize {
    if len <= max {
        return 0;
    }
    match rng {
        None => 0,
        Some(rng) => match rng.below(3) {
            0 => 0,
            1 => len - max,
            // `random.randint(1, len - max)`, inclusive.
            _ => 1 + rng.below(len - max),
        },
    }
}

/// Token ids of `text` (`<s> … </s>`), cut to `max_len` (randomly in train mode: head, tail or
/// middle; the head in eval mode). No special token is re-added after a cut, as upstream.
pub fn text_ids(
    tokenizer: &TextTokenizer,
    text: &str,
    max_len: usize,
    rng: Option<&mut Rng>,
) -> Result<Vec<u32>> {
    let ids = tokenizer
        .encode_ids(text, true)
        .map_err(|e| Error::Setup(format!("tokenizer: {e}")))?;
    let start = truncation_start(ids.len(), max_len, rng);
    Ok(ids[start..(start + max_len).min(ids.len())].to_vec())
}

/// `remove_instrument_info`: ABC `V:` lines lose everything from ` nm=` (else ` snm=`); MTF
/// `program_change` lines get program 0.
pub fn remove_instrument_info(text: &str) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let Some(first) = lines.first() else {
        return String::new();
    };
    let mtf = first.split(' ').next() == Some("ticks_per_beat");
    let mut out = String::with_capacity(text.len());
    for line in lines {
        if !mtf && line.starts_with("V:") {
            let cut = line.find(" nm=").or_else(|| line.find(" snm="));
            match cut {
                Some(at) => {
                    out.push_str(&line[..at]);
                    out.push('\n');
                }
                None => out.push_str(line),
            }
        } else if mtf && line.starts_with("program_change") {
            let words: Vec<&str> = line.split(' ').collect();
            out.push_str(&words[..words.len() - 1].join(" "));
            out.push_str(" 0\n");
        } else {
            out.push_str(line);
        }
    }
    out
}

/// Reads a music file as Python's text mode does (UTF-8, universal newlines).
fn read_music_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(crate::error::io_error(path))?;
    let text = String::from_utf8(bytes).map_err(|_| Error::Data {
        path: path.to_path_buf(),
        line: 0,
        reason: "not UTF-8 text".to_string(),
    })?;
    Ok(clamp3_features::text::universal_newlines(&text).into_owned())
}

/// Train or eval mode of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Random text, file, instrument removal and truncation.
    Train,
    /// `analysis`, the first (ABC) file, no removal, head truncation.
    Eval,
}

/// One prepared CLaMP 3 item: token ids and the music rows, before padding.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedItem {
    /// Token ids (at most `max_text_length`).
    pub text_ids: Vec<u32>,
    /// The music side.
    pub music: PreparedMusic,
}

/// The music side of a prepared item.
#[derive(Debug, Clone, PartialEq)]
pub enum PreparedMusic {
    /// Patches (at most `patch_length`).
    Patches(Vec<Patch>),
    /// MERT feature rows `[n, width]` row-major, the zero rows around them included.
    Rows {
        /// Values.
        data: Vec<f32>,
        /// Rows.
        n: usize,
    },
}

/// The sizes a dataset pads to.
#[derive(Debug, Clone, Copy)]
pub struct Clamp3Shapes {
    /// MAX_TEXT_LENGTH.
    pub max_text_length: usize,
    /// PATCH_LENGTH.
    pub patch_length: usize,
    /// MAX_AUDIO_LENGTH.
    pub max_audio_length: usize,
    /// AUDIO_HIDDEN_SIZE (MERT width).
    pub audio_width: usize,
}

/// Which music a CLaMP 3 run trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MusicKind {
    /// `.abc` / `.mtf` files.
    Symbolic,
    /// `.npy` MERT features.
    Audio,
}

/// `TextMusicDataset.__getitem__`: draws in upstream's order (text branch, lines, shuffle, text
/// truncation, file, instrument coin, music truncation). Without `text_dropout` (TEXT_DROPOUT =
/// False) train mode uses `analysis` too.
pub fn prepare_item(
    item: &Clamp3Item,
    kind: MusicKind,
    mode: Mode,
    text_dropout: bool,
    tokenizer: &TextTokenizer,
    shapes: &Clamp3Shapes,
    rng: &mut Rng,
) -> Result<PreparedItem> {
    let text = match mode {
        Mode::Train if text_dropout => train_text(item, rng),
        _ => item
            .analysis
            .clone()
            .ok_or_else(|| item.error("no analysis field (the eval text)"))?,
    };
    let r = (mode == Mode::Train).then_some(&mut *rng);
    let text_ids = text_ids(tokenizer, &text, shapes.max_text_length, r)?;
    let path = match (mode, kind) {
        (Mode::Train, _) => &item.filepaths[rng.below(item.filepaths.len())],
        (Mode::Eval, MusicKind::Audio) => &item.filepaths[0],
        (Mode::Eval, MusicKind::Symbolic) => {
            let first = &item.filepaths[0];
            if first.extension().is_some_and(|e| e == "abc") {
                first
            } else {
                // Upstream's rule (`filepaths[1]`), with the only file instead of an IndexError.
                item.filepaths.get(1).unwrap_or(first)
            }
        }
    };
    let music = match kind {
        MusicKind::Symbolic => {
            let mut text = read_music_text(path).map_err(|e| item.error(e.to_string()))?;
            if mode == Mode::Train && rng.uniform() < 0.9 {
                text = remove_instrument_info(&text);
            }
            let patches = patchilize(&text);
            let r = (mode == Mode::Train).then_some(&mut *rng);
            let start = truncation_start(patches.len(), shapes.patch_length, r);
            let end = (start + shapes.patch_length).min(patches.len());
            PreparedMusic::Patches(patches[start..end].to_vec())
        }
        MusicKind::Audio => {
            let bytes =
                std::fs::read(path).map_err(|e| item.error(format!("{}: {e}", path.display())))?;
            let array = clamp3_io::npy::parse(&bytes)
                .map_err(|e| item.error(format!("{}: {e}", path.display())))?;
            let width = *array.shape.last().unwrap_or(&0);
            if width != shapes.audio_width {
                return Err(item.error(format!(
                    "{}: features are {width} wide, the model needs {}",
                    path.display(),
                    shapes.audio_width
                )));
            }
            let windows = array.data.len() / width;
            let n = windows + 2;
            let r = (mode == Mode::Train).then_some(&mut *rng);
            let start = truncation_start(n, shapes.max_audio_length, r);
            let kept = n.min(shapes.max_audio_length);
            let mut data = vec![0f32; kept * width];
            for row in 0..kept {
                let source = start + row;
                // Rows 0 and n-1 are the zero rows added around the features.
                if source >= 1 && source <= windows {
                    let from = (source - 1) * width;
                    data[row * width..(row + 1) * width]
                        .copy_from_slice(&array.data[from..from + width]);
                }
            }
            PreparedMusic::Rows { data, n: kept }
        }
    };
    Ok(PreparedItem { text_ids, music })
}

/// `collate_batch`: every item padded to the full shapes (`<pad>` ids, zero patches/rows, masks
/// 0), stacked.
pub fn collate(
    items: &[PreparedItem],
    shapes: &Clamp3Shapes,
    device: &Device,
) -> Result<Clamp3Batch> {
    let b = items.len();
    let lt = shapes.max_text_length;
    let mut ids = vec![TEXT_PAD_ID; b * lt];
    let mut text_masks = vec![0f32; b * lt];
    for (i, item) in items.iter().enumerate() {
        for (j, &id) in item.text_ids.iter().enumerate() {
            ids[i * lt + j] = id;
            text_masks[i * lt + j] = 1.0;
        }
    }
    let (music, music_masks) = match items.first().map(|i| &i.music) {
        Some(PreparedMusic::Rows { .. }) => {
            let (l, w) = (shapes.max_audio_length, shapes.audio_width);
            let mut data = vec![0f32; b * l * w];
            let mut masks = vec![0f32; b * l];
            for (i, item) in items.iter().enumerate() {
                if let PreparedMusic::Rows { data: rows, n } = &item.music {
                    data[i * l * w..i * l * w + rows.len()].copy_from_slice(rows);
                    masks[i * l..i * l + n].fill(1.0);
                }
            }
            (
                MusicInput::Features(Tensor::from_vec(data, (b, l, w), device)?),
                Tensor::from_vec(masks, (b, l), device)?,
            )
        }
        _ => {
            let l = shapes.patch_length;
            let mut data = vec![0u32; b * l * PATCH_SIZE];
            let mut masks = vec![0f32; b * l];
            for (i, item) in items.iter().enumerate() {
                if let PreparedMusic::Patches(patches) = &item.music {
                    for (j, patch) in patches.iter().enumerate() {
                        let at = (i * l + j) * PATCH_SIZE;
                        for (k, &c) in patch.iter().enumerate() {
                            data[at + k] = u32::from(c);
                        }
                    }
                    masks[i * l..i * l + patches.len()].fill(1.0);
                }
            }
            (
                MusicInput::Patches(Tensor::from_vec(data, (b, l, PATCH_SIZE), device)?),
                Tensor::from_vec(masks, (b, l), device)?,
            )
        }
    };
    Ok(Clamp3Batch {
        text_ids: Tensor::from_vec(ids, (b, lt), device)?,
        text_masks: Tensor::from_vec(text_masks, (b, lt), device)?,
        music,
        music_masks,
    })
}

/// `split_data`: shuffle, the first `floor(n * fraction)` items are the eval split.
pub fn split<T>(mut items: Vec<T>, fraction: f64, rng: &mut Rng) -> (Vec<T>, Vec<T>) {
    rng.shuffle(&mut items);
    let n_eval = (items.len() as f64 * fraction) as usize;
    let train = items.split_off(n_eval);
    (train, items)
}

/// Every file under `folders` whose name ends in `abc` or `mtf` (M3's `list_files_in_directory`),
/// sorted for a reproducible order.
pub fn list_m3_files(folders: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for folder in folders {
        for entry in walkdir::WalkDir::new(folder) {
            let entry = entry.map_err(|e| Error::Data {
                path: folder.clone(),
                line: 0,
                reason: e.to_string(),
            })?;
            let name = entry.file_name().to_string_lossy();
            if entry.file_type().is_file() && (name.ends_with("abc") || name.ends_with("mtf")) {
                files.push(entry.into_path());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// One M3 item: the target patches, the masked input and which patches are in the loss.
#[derive(Debug, Clone, PartialEq)]
pub struct M3Item {
    /// Input patches after masking.
    pub input: Vec<Patch>,
    /// The original patches.
    pub target: Vec<Patch>,
    /// Patches in the loss.
    pub selected: Vec<bool>,
}

/// How `mask_patches` treated an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskMode {
    /// Selected patches become 64 × `[MASK]`.
    Mask,
    /// Characters `1 .. e-1` of each selected patch are permuted.
    Shuffle,
    /// Unchanged.
    Original,
}

/// `M3Dataset.__getitem__` + `mask_patches`: encode (random truncation in train mode), select
/// `ceil(ratio * n)` patches, then mask (0.8), shuffle (0.1) or keep (0.1) them; eval keeps.
pub fn m3_item(
    path: &Path,
    patch_length: usize,
    mask_ratio: f64,
    mode: Mode,
    rng: &mut Rng,
) -> Result<M3Item> {
    let text = read_music_text(path)?;
    if text.is_empty() {
        return Err(Error::Data {
            path: path.to_path_buf(),
            line: 0,
            reason: "empty music file".to_string(),
        });
    }
    let patches = patchilize(&text);
    let r = (mode == Mode::Train).then_some(&mut *rng);
    let start = truncation_start(patches.len(), patch_length, r);
    let target: Vec<Patch> = patches[start..(start + patch_length).min(patches.len())].to_vec();
    let n = target.len();
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    let k = (mask_ratio * n as f64).ceil() as usize;
    let mut selected = vec![false; n];
    for &i in &order[..k.min(n)] {
        selected[i] = true;
    }
    let mask_mode = match mode {
        Mode::Eval => MaskMode::Original,
        Mode::Train => {
            let x = rng.uniform();
            if x < 0.8 {
                MaskMode::Mask
            } else if x < 0.9 {
                MaskMode::Shuffle
            } else {
                MaskMode::Original
            }
        }
    };
    let mut input = target.clone();
    for (patch, _) in input.iter_mut().zip(&selected).filter(|(_, &s)| s) {
        match mask_mode {
            MaskMode::Mask => *patch = [MASK_ID; PATCH_SIZE],
            MaskMode::Shuffle => {
                let eos: Vec<usize> = (0..PATCH_SIZE).filter(|&i| patch[i] == EOS).collect();
                let end = if eos.len() == 1 { eos[0] } else { PATCH_SIZE };
                if end > 1 {
                    rng.shuffle(&mut patch[1..end]);
                }
            }
            MaskMode::Original => {}
        }
    }
    Ok(M3Item {
        input,
        target,
        selected,
    })
}

/// M3's `collate_batch`: pad every item to the longest with zero patches.
pub fn collate_m3(items: &[M3Item], device: &Device) -> Result<M3Batch> {
    let b = items.len();
    let n = items.iter().map(|i| i.target.len()).max().unwrap_or(0);
    let mut input = vec![0u32; b * n * PATCH_SIZE];
    let mut masks = vec![0f32; b * n];
    let mut selected = vec![vec![false; n]; b];
    let mut targets = vec![vec![vec![0u32; PATCH_SIZE]; n]; b];
    for (i, item) in items.iter().enumerate() {
        for (j, patch) in item.input.iter().enumerate() {
            let at = (i * n + j) * PATCH_SIZE;
            for (k, &c) in patch.iter().enumerate() {
                input[at + k] = u32::from(c);
            }
            masks[i * n + j] = 1.0;
        }
        for (j, patch) in item.target.iter().enumerate() {
            targets[i][j] = patch.iter().map(|&c| u32::from(c)).collect();
        }
        selected[i][..item.selected.len()].copy_from_slice(&item.selected);
    }
    Ok(M3Batch {
        input_patches: Tensor::from_vec(input, (b, n, PATCH_SIZE), device)?,
        input_masks: Tensor::from_vec(masks, (b, n), device)?,
        selected,
        target_patches: targets,
    })
}
