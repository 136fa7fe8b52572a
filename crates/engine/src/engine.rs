//! The engine: inputs in, one result per input out, in input order.
//!
//! For each chunk of inputs it reads every file once and decides its kind once; looks each one up
//! in the content-addressed cache before any model is loaded; prepares the misses for their
//! encoder on all cores (tokenizing, converting scores, running MERT); then encodes them with
//! their segments batched across files ([`clamp3_features::embed_many`]). While one chunk is
//! encoded the next is prepared, so both the converters and the encoders keep the cores busy.

use crate::cache::{Cache, Key};
use crate::family::Family;
use crate::progress::Progress;
use crate::spec::ModelSpec;
use crate::{families, Error, Result};
use clamp3_features::{embed_many, BatchLimits, Caption, Embedding, FileKind, ModelInput, Pooling};
use clamp3_io::npy;
use clamp3_models::Modality;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// One input to embed.
#[derive(Debug, Clone)]
pub enum Item {
    /// A file on disk (read once).
    File(PathBuf),
    /// A file's contents already in memory (an upload): `name`'s extension gives its kind, and
    /// errors name it.
    Bytes {
        /// The file's name.
        name: PathBuf,
        /// Its contents.
        bytes: Vec<u8>,
    },
    /// A literal text, embedded as a `.txt` file holding it would be.
    Text(String),
}

impl Item {
    /// The name errors carry: the file's path, or `<text>`.
    pub fn name(&self) -> &Path {
        match self {
            Item::File(path) => path,
            Item::Bytes { name, .. } => name,
            Item::Text(_) => Path::new("<text>"),
        }
    }
}

/// How a `.npy` input is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NpyReading {
    /// By shape: a 2-D `[1, D]` array is a vector (as `clamp3 embed` and the reference save
    /// them); `[n, W]` or `[1, n, W]`, W the audio encoder's width, is MERT features.
    #[default]
    Auto,
    /// Always a vector (any `[1, n]` or `[n]`), used as it is.
    Vector,
    /// Always MERT features (`[n, W]` or `[1, n, W]`).
    Features,
}

/// Options of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Global vectors or per-item features.
    pub pooling: Pooling,
    /// How `.npy` inputs are read.
    pub npy: NpyReading,
    /// The size of one forward pass; `None`: what suits the model's device
    /// ([`BatchLimits::for_device`]).
    pub limits: Option<BatchLimits>,
    /// How many inputs are read and prepared ahead of the encoder (bounds memory).
    pub chunk: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            pooling: Pooling::Global,
            npy: NpyReading::Auto,
            limits: None,
            chunk: 256,
        }
    }
}

/// Where an input's result came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Computed by the model in this run.
    Computed,
    /// Found in the feature cache.
    Cache,
    /// The input was a vector already (a `.npy` saved by `clamp3 embed`).
    Vector,
}

/// One input's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded {
    /// The vector `[1, D]` or features `[1, n, H]`.
    pub embedding: Embedding,
    /// Where it came from.
    pub source: Source,
    /// The modality it was encoded as (`None` for a vector given as input).
    pub modality: Option<Modality>,
    /// For an image, the caption that was embedded in its place.
    pub caption: Option<Caption>,
}

/// An input read and looked up, not yet encoded.
struct Pending {
    index: usize,
    name: PathBuf,
    kind: FileKind,
    bytes: Vec<u8>,
    key: Option<Key>,
    caption: Option<Caption>,
}

/// A pending input converted for its encoder.
struct Prepared {
    index: usize,
    name: PathBuf,
    modality: Modality,
    input: ModelInput,
    key: Option<Key>,
    caption: Option<Caption>,
}

/// The embedding engine of one model: what every front end calls.
pub struct Engine {
    family: Box<dyn Family>,
    cache: Option<Cache>,
    identities: [OnceLock<Result<String>>; 3],
    caption_identity: OnceLock<Result<String>>,
    cache_error: Mutex<bool>,
}

impl Engine {
    /// An engine for a spec; only the config is read now, everything else on first use.
    pub fn new(spec: &ModelSpec, cache: Option<Cache>) -> Result<Self> {
        Ok(Self::with_family(families::open(spec)?, cache))
    }

    /// An engine over any family (one outside this crate, or a test's).
    pub fn with_family(family: Box<dyn Family>, cache: Option<Cache>) -> Self {
        Engine {
            family,
            cache,
            identities: Default::default(),
            caption_identity: OnceLock::new(),
            cache_error: Mutex::new(false),
        }
    }

    /// The model family.
    pub fn family(&self) -> &dyn Family {
        self.family.as_ref()
    }

    /// The feature cache, if there is one.
    pub fn cache(&self) -> Option<&Cache> {
        self.cache.as_ref()
    }

    /// The identity of the model for inputs of a modality ([`Family::identity`]), computed once.
    pub fn identity(&self, modality: Modality) -> Result<&str> {
        let slot = match modality {
            Modality::Text => &self.identities[0],
            Modality::Symbolic => &self.identities[1],
            Modality::Audio => &self.identities[2],
        };
        slot.get_or_init(|| {
            // The model's files decide every input's vector: not one file's problem.
            self.family.identity(modality).map_err(|e| Error::Load {
                what: "the model's files",
                error: std::sync::Arc::new(e),
            })
        })
        .as_deref()
        .map_err(Clone::clone)
    }

    /// The identity of the family's image captioner ([`Family::caption_identity`]), computed
    /// once.
    fn caption_identity(&self) -> Result<&str> {
        self.caption_identity
            .get_or_init(|| {
                self.family.caption_identity().map_err(|e| Error::Load {
                    what: "the image captioner's files",
                    error: std::sync::Arc::new(e),
                })
            })
            .as_deref()
            .map_err(Clone::clone)
    }

    /// An image's caption: from the cache when it was captioned before with the same
    /// captioner, else from the family (and then cached).
    fn caption_of(&self, image: &[u8], progress: &dyn Progress) -> Result<Caption> {
        let key = match &self.cache {
            Some(_) => Some(Key::new(
                &format!("caption|{}", self.caption_identity()?),
                image,
            )),
            None => None,
        };
        if let (Some(cache), Some(key)) = (&self.cache, &key) {
            if let Some(caption) = cache.get_caption(key) {
                return Ok(caption);
            }
        }
        let caption = self.family.caption(image, progress)?;
        if let (Some(cache), Some(key)) = (&self.cache, &key) {
            // Like a vector that cannot be cached, a caption costs time only.
            if cache.put_caption(key, &caption).is_err() {
                self.warn_cache_once(progress, "the caption could not be cached");
            }
        }
        Ok(caption)
    }

    /// The caption of an image item (what `clamp3 inspect caption` prints).
    pub fn caption(&self, item: &Item, progress: &dyn Progress) -> Result<Caption> {
        let kind = kind_of(item)?;
        if kind != FileKind::Image {
            return Err(Error::Spec(format!(
                "{}: captions are for images (.png, .jpg, .jpeg)",
                item.name().display()
            )));
        }
        self.accepted(kind)?;
        let bytes = bytes_of(item)?;
        self.caption_of(&bytes, progress)
            .map_err(|e| e.with_path(item.name()))
    }

    fn warn_cache_once(&self, progress: &dyn Progress, what: &str) {
        let mut said = self.cache_error.lock().unwrap_or_else(|e| e.into_inner());
        if !*said {
            *said = true;
            progress.warning(&format!(
                "could not write the feature cache ({what}); results are unaffected"
            ));
        }
    }

    /// The global vector of a literal text.
    pub fn embed_text(&self, text: &str) -> Result<Vec<f32>> {
        let mut results = self.embed(
            &[Item::Text(text.to_string())],
            &Options::default(),
            &crate::Silent,
        );
        let embedded = results
            .pop()
            .unwrap_or_else(|| Err(Error::Spec("no result".into())))?;
        Ok(embedded.embedding.data)
    }

    /// What the encoder reads for an input (token ids, patches, feature rows), before segmenting.
    pub fn model_input(&self, item: &Item, progress: &dyn Progress) -> Result<ModelInput> {
        let mut kind = kind_of(item)?;
        self.accepted(kind)?;
        let mut bytes = bytes_of(item)?;
        if kind == FileKind::Image {
            let caption = self
                .caption_of(&bytes, progress)
                .map_err(|e| e.with_path(item.name()))?;
            (kind, bytes) = (FileKind::Text, caption.text.into_bytes());
        }
        self.family
            .prepare(kind, item.name(), bytes, progress)
            .map_err(|e| e.with_path(item.name()))
    }

    /// Embeds every item; one result per item, in item order. One bad input never stops the
    /// others: its result is its error, naming its file.
    pub fn embed(
        &self,
        items: &[Item],
        options: &Options,
        progress: &dyn Progress,
    ) -> Vec<Result<Embedded>> {
        progress.start(items.len());
        let slots: Vec<Mutex<Option<Result<Embedded>>>> =
            items.iter().map(|_| Mutex::new(None)).collect();
        let finish = |index: usize, result: Result<Embedded>| {
            progress.finished(index, &result);
            *slots[index].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        };
        let chunk = options.chunk.max(1);
        let starts: Vec<usize> = (0..items.len()).step_by(chunk).collect();
        let prepare = |start: usize| {
            let end = (start + chunk).min(items.len());
            self.prepare_chunk(&items[start..end], start, options, progress, &finish)
        };
        let mut ready = starts.first().map(|&s| prepare(s));
        for next in starts.iter().skip(1).map(Some).chain(std::iter::once(None)) {
            let Some(current) = ready.take() else { break };
            let (_, upcoming) = rayon::join(
                || self.encode_chunk(current, options, progress, &finish),
                || next.map(|&s| prepare(s)),
            );
            ready = upcoming;
        }
        slots
            .into_iter()
            .map(|slot| {
                slot.into_inner()
                    .unwrap_or_else(|e| e.into_inner())
                    .unwrap_or_else(|| Err(Error::Spec("an input was not embedded".into())))
            })
            .collect()
    }

    /// Reads and looks up a chunk, then prepares its misses, on all cores.
    fn prepare_chunk(
        &self,
        items: &[Item],
        offset: usize,
        options: &Options,
        progress: &dyn Progress,
        finish: &(dyn Fn(usize, Result<Embedded>) + Sync),
    ) -> Vec<Prepared> {
        items
            .par_iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let index = offset + i;
                let outcome = self
                    .look_up(index, item, options, progress)
                    .and_then(|found| match found {
                        Found::Done(embedded) => Ok(Err(embedded)),
                        Found::Pending(pending) => self.prepare(pending, progress).map(Ok),
                    });
                match outcome {
                    Ok(Ok(prepared)) => Some(prepared),
                    Ok(Err(embedded)) => {
                        finish(index, Ok(embedded));
                        None
                    }
                    Err(error) => {
                        finish(index, Err(error.with_path(item.name())));
                        None
                    }
                }
            })
            .collect()
    }

    /// Encodes a prepared chunk with segments batched across its inputs, and caches the vectors.
    fn encode_chunk(
        &self,
        prepared: Vec<Prepared>,
        options: &Options,
        progress: &dyn Progress,
        finish: &(dyn Fn(usize, Result<Embedded>) + Sync),
    ) {
        if prepared.is_empty() {
            return;
        }
        let encoder = match self.family.encoder() {
            Ok(encoder) => encoder,
            Err(error) => {
                for p in prepared {
                    finish(p.index, Err(error.clone()));
                }
                return;
            }
        };
        let inputs: Vec<&ModelInput> = prepared.iter().map(|p| &p.input).collect();
        let limits = options
            .limits
            .unwrap_or_else(|| BatchLimits::for_device(encoder.device()));
        let results = embed_many(encoder, &inputs, options.pooling, limits);
        for (p, result) in prepared.iter().zip(results) {
            let result = result.map_err(|e| Error::from(e).with_path(&p.name));
            if let (Ok(embedded), Some(key), Some(cache)) = (&result, &p.key, &self.cache) {
                if let Err(e) = cache.put(key, &embedded.data) {
                    // A cache that cannot be written (read-only, full) costs speed, not results.
                    self.warn_cache_once(progress, &e.to_string());
                }
            }
            finish(
                p.index,
                result.map(|embedding| Embedded {
                    embedding,
                    source: Source::Computed,
                    modality: Some(p.modality),
                    caption: p.caption.clone(),
                }),
            );
        }
    }

    /// The modality the family encodes a kind of file as, or why it does not take it.
    fn accepted(&self, kind: FileKind) -> Result<Modality> {
        self.family
            .modality_of(kind)
            .ok_or_else(|| Error::NotAccepted {
                model: self.family.name().to_string(),
                what: kind_description(kind).to_string(),
                accepts: self.family.accepts().to_string(),
            })
    }

    /// Reads an input, decides its kind, and answers it from a vector file or the cache when it
    /// can.
    /// An image is captioned here, and goes on as its caption's text: its vector is keyed by
    /// the caption (which is keyed by the captioner and the image).
    fn look_up(
        &self,
        index: usize,
        item: &Item,
        options: &Options,
        progress: &dyn Progress,
    ) -> Result<Found> {
        let mut kind = kind_of(item)?;
        let modality = self.accepted(kind)?;
        let mut bytes = bytes_of(item)?;
        let mut caption = None;
        if kind == FileKind::Image {
            let captioned = self.caption_of(&bytes, progress)?;
            (kind, bytes) = (FileKind::Text, captioned.text.clone().into_bytes());
            caption = Some(captioned);
        }
        if kind == FileKind::MertFeatures {
            if let Some(vector) = self.npy_vector(&bytes, options.npy)? {
                if options.pooling == Pooling::Local {
                    return Err(Error::Spec(
                        "this .npy file is a vector already; it has no per-item features".into(),
                    ));
                }
                return Ok(Found::Done(Embedded {
                    embedding: vector,
                    source: Source::Vector,
                    modality: None,
                    caption: None,
                }));
            }
        }
        let key = match (&self.cache, options.pooling) {
            (Some(_), Pooling::Global) => Some(Key::new(
                &format!("{}|pooling=global|kind={kind:?}", self.identity(modality)?),
                &bytes,
            )),
            _ => None,
        };
        if let (Some(cache), Some(key)) = (&self.cache, &key) {
            if let Some(data) = cache.get(key) {
                return Ok(Found::Done(Embedded {
                    embedding: Embedding {
                        shape: vec![1, data.len()],
                        data,
                    },
                    source: Source::Cache,
                    modality: Some(modality),
                    caption,
                }));
            }
        }
        Ok(Found::Pending(Pending {
            index,
            name: item.name().to_path_buf(),
            kind,
            bytes,
            key,
            caption,
        }))
    }

    /// A `.npy` input that is a vector, by shape or as forced; `None` when it is features.
    fn npy_vector(&self, bytes: &[u8], reading: NpyReading) -> Result<Option<Embedding>> {
        let array = npy::parse(bytes)?;
        let d = self.family.vector_width();
        let w = self.family.feature_width();
        let shape = array.shape.as_slice();
        let is_vector = matches!(shape, [1, n] if *n == d);
        // Forced, any single row is a vector (it may come from another model).
        let is_row = matches!(shape, [1, n] | [n] if *n > 0);
        let is_features = w.is_some_and(|w| {
            matches!(shape, [n, x] if *n > 0 && *x == w)
                || matches!(shape, [1, n, x] if *n > 0 && *x == w)
        });
        let vector = || Embedding {
            shape: vec![1, array.data.len()],
            data: array.data.clone(),
        };
        let refuse = |hint| Error::NpyShape {
            shape: array.shape.clone(),
            vector: d,
            features: w.unwrap_or(0),
            hint,
        };
        match reading {
            NpyReading::Auto if matches!(shape, [1, _]) && is_vector => Ok(Some(vector())),
            NpyReading::Auto if is_features => Ok(None),
            NpyReading::Auto => Err(refuse("")),
            NpyReading::Vector if is_row => Ok(Some(vector())),
            NpyReading::Vector => Err(refuse(" (read as a vector, as asked)")),
            NpyReading::Features if is_features => Ok(None),
            NpyReading::Features => Err(refuse(" (read as audio features, as asked)")),
        }
    }

    /// Converts a pending input for its encoder.
    fn prepare(&self, pending: Pending, progress: &dyn Progress) -> Result<Prepared> {
        let modality = self.accepted(pending.kind)?;
        let input = self
            .family
            .prepare(pending.kind, &pending.name, pending.bytes, progress)?;
        Ok(Prepared {
            index: pending.index,
            name: pending.name,
            modality,
            input,
            key: pending.key,
            caption: pending.caption,
        })
    }
}

/// What looking an input up gave.
enum Found {
    /// Its result, without the model.
    Done(Embedded),
    /// It needs the model.
    Pending(Pending),
}

/// An item's kind, from its name.
fn kind_of(item: &Item) -> Result<FileKind> {
    if let Item::Text(_) = item {
        return Ok(FileKind::Text);
    }
    let name = item.name();
    FileKind::of(name).ok_or_else(|| Error::UnsupportedKind {
        extension: name
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_else(|| "(no extension)".to_string()),
    })
}

/// An item's bytes (a file is read here, once).
fn bytes_of(item: &Item) -> Result<Vec<u8>> {
    match item {
        Item::File(path) => std::fs::read(path).map_err(|e| Error::io(path, e)),
        Item::Bytes { bytes, .. } => Ok(bytes.clone()),
        Item::Text(text) => Ok(text.clone().into_bytes()),
    }
}

/// A kind of file in words, for messages.
pub fn kind_description(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Text => "text",
        FileKind::Abc | FileKind::MusicXml => "sheet music",
        FileKind::Mtf | FileKind::Midi => "MIDI",
        FileKind::MertFeatures | FileKind::Audio => "audio",
        FileKind::Image => "images",
    }
}
