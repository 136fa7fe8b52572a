//! Model inputs → CLaMP 3 vectors (global) or per-item hidden states (local).

use crate::batch::{embed_many, BatchLimits, Encoder};
use crate::input::ModelInput;
use crate::Result;

/// What to extract from a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pooling {
    /// One D-wide vector in the shared space (`--get_global` upstream).
    Global,
    /// The encoder's last hidden state for every item, H wide, unprojected.
    Local,
}

/// An extracted array, shaped as the reference saves it: `[1, D]` or `[1, n, H]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    /// The shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

impl Embedding {
    /// The array as `.npy` file contents (float32, C order), as `numpy.save` writes it.
    pub fn to_npy(&self) -> Vec<u8> {
        crate::npy::encode_f32(&self.shape, &self.data)
    }
}

/// Encodes one input the way `extract_clamp3.py` does, but computing each segment at its real
/// length (all segments of a file have the same length, so no padding is needed). For many
/// inputs, [`embed_many`] batches their segments together.
pub fn embed(encoder: &dyn Encoder, input: &ModelInput, pooling: Pooling) -> Result<Embedding> {
    embed_many(
        encoder,
        &[input],
        pooling,
        BatchLimits::for_device(encoder.device()),
    )
    .pop()
    .unwrap_or(Err(crate::Error::Empty("the input has no items")))
}
