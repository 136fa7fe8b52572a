//! The model-family seam: what a family of models (CLaMP 3, and the earlier systems) provides so
//! the engine can turn files into its vectors without knowing anything else about it.
//!
//! A family is built from a [`ModelSpec`](crate::ModelSpec) without loading anything; it loads
//! its tokenizer, feature extractor and weights the first time an input needs them, so a run
//! whose inputs all hit the cache loads no model at all.

use crate::progress::Progress;
use crate::Result;
use clamp3_features::{Caption, Encoder, FileKind, ModelInput};
use clamp3_models::Modality;
use std::path::Path;

/// One model family, configured by a spec: preprocessing, identity and (lazily) its encoders.
pub trait Family: Send + Sync {
    /// The model's name, as `--model` takes it.
    fn name(&self) -> &str;

    /// The modality a kind of file is encoded as, or `None` when the family does not take it.
    fn modality_of(&self, kind: FileKind) -> Option<Modality>;

    /// What the family accepts, for messages ("text, sheet music, MIDI and audio").
    fn accepts(&self) -> &str;

    /// Everything besides an input's bytes that decides the vector of an input of `modality`:
    /// the weights, config, tokenizer or feature extractor files it goes through, the precision
    /// and the family's options. Computed without loading any model; per modality, so replacing
    /// the audio feature extractor re-embeds audio only, and a missing one fails audio only.
    fn identity(&self, modality: Modality) -> Result<String>;

    /// The width D of the family's vectors in the shared space (known without loading weights).
    fn vector_width(&self) -> usize;

    /// The width of the audio encoder's input rows (MERT features), if the family takes audio.
    fn feature_width(&self) -> Option<usize>;

    /// A file's bytes → what its encoder reads, with the family's preprocessing. `path` names
    /// the file (its extension may matter, e.g. `.mxl`); `progress` receives notices such as a
    /// licence note when a feature extractor is first downloaded.
    fn prepare(
        &self,
        kind: FileKind,
        path: &Path,
        bytes: Vec<u8>,
        progress: &dyn Progress,
    ) -> Result<ModelInput>;

    /// The encoders and projections, loaded on first use.
    fn encoder(&self) -> Result<&dyn Encoder>;

    /// The identity of the image captioner (its files), which keys cached captions. Only a
    /// family that takes images (`modality_of(FileKind::Image)`) needs one.
    fn caption_identity(&self) -> Result<String> {
        Err(crate::Error::Spec(format!(
            "{} does not caption images",
            self.name()
        )))
    }

    /// An image file's caption, which the family then embeds as a text (`FileKind::Text`).
    fn caption(&self, image: &[u8], progress: &dyn Progress) -> Result<Caption> {
        let _ = (image, progress);
        Err(crate::Error::Spec(format!(
            "{} does not caption images",
            self.name()
        )))
    }
}
