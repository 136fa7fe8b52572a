//! Model inputs → CLaMP 3 vectors (global) or per-item hidden states (local).

use crate::input::ModelInput;
use crate::segment::Segments;
use crate::Result;
use candle_core::{DType, Tensor};
use clamp3_models::{masked_mean, Clamp3Model, EncoderInput};

/// Segments encoded per forward pass: bounds activation memory on very long inputs while still
/// batching the common cases (a 5000-patch score is 10 segments of 512).
const MAX_SEGMENTS_PER_BATCH: usize = 8;

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

/// Stacks the segments `starts[i]..starts[i]+length` of an input into one batch tensor.
fn segment_batch(
    input: &ModelInput,
    starts: &[usize],
    length: usize,
    model: &Clamp3Model,
) -> Result<Tensor> {
    let device = model.device();
    let b = starts.len();
    Ok(match input {
        ModelInput::TokenIds(ids) => {
            let rows: Vec<u32> = starts
                .iter()
                .flat_map(|&s| ids[s..s + length].iter().copied())
                .collect();
            Tensor::from_vec(rows, (b, length), device)?
        }
        ModelInput::Patches(patches) => {
            let width = patches.first().map_or(0, |p| p.len());
            let rows: Vec<u32> = starts
                .iter()
                .flat_map(|&s| {
                    patches[s..s + length]
                        .iter()
                        .flat_map(|p| p.iter().map(|&v| u32::from(v)))
                })
                .collect();
            Tensor::from_vec(rows, (b, length, width), device)?
        }
        ModelInput::Features { width, data } => {
            let rows: Vec<f32> = starts
                .iter()
                .flat_map(|&s| data[s * width..(s + length) * width].iter().copied())
                .collect();
            Tensor::from_vec(rows, (b, length, *width), device)?
        }
    })
}

fn encoder_input<'a>(t: &'a Tensor, input: &ModelInput) -> EncoderInput<'a> {
    match input {
        ModelInput::TokenIds(_) => EncoderInput::TokenIds(t),
        ModelInput::Patches(_) => EncoderInput::Patches(t),
        ModelInput::Features { .. } => EncoderInput::Features(t),
    }
}

/// Encodes an input the way `extract_clamp3.py` does, but computing each segment at its real
/// length (all segments of a file have the same length, so no padding is needed).
pub fn embed(model: &Clamp3Model, input: &ModelInput, pooling: Pooling) -> Result<Embedding> {
    let modality = input.modality();
    let n = input.len();
    if n == 0 {
        return Err(crate::Error::Empty("the input has no items"));
    }
    if let ModelInput::Features { width, .. } = input {
        let expected = model.encoder_width(modality);
        if *width != expected {
            return Err(crate::Error::Npy(format!(
                "feature rows are {width} wide, the audio encoder expects {expected}"
            )));
        }
    }
    let plan = Segments::plan(n, model.segment_length(modality));
    let mut outputs = Vec::with_capacity(plan.starts.len());
    for starts in plan.starts.chunks(MAX_SEGMENTS_PER_BATCH) {
        let batch = segment_batch(input, starts, plan.length, model)?;
        let hidden = model.encode(encoder_input(&batch, input), None)?;
        outputs.push(match pooling {
            Pooling::Global => model.project(modality, &masked_mean(&hidden, None)?)?,
            Pooling::Local => hidden,
        });
    }
    let stacked = Tensor::cat(&outputs, 0)?
        .to_device(&candle_core::Device::Cpu)?
        .to_dtype(DType::F32)?;
    match pooling {
        Pooling::Global => {
            let per_segment = stacked.to_vec2::<f32>()?;
            let d = per_segment.first().map_or(0, Vec::len);
            let total: usize = plan.weights.iter().sum();
            let mut sum = vec![0f32; d];
            for (row, &w) in per_segment.iter().zip(&plan.weights) {
                for (acc, v) in sum.iter_mut().zip(row) {
                    *acc += v * w as f32;
                }
            }
            let data = sum.into_iter().map(|v| v / total as f32).collect();
            Ok(Embedding {
                shape: vec![1, d],
                data,
            })
        }
        Pooling::Local => {
            let (segments, length, h) = stacked.dims3()?;
            let flat = stacked.flatten_all()?.to_vec1::<f32>()?;
            let keep_full = (segments - 1) * length * h;
            let last_start = (segments - 1) * length + (length - plan.last_rows);
            let mut data = Vec::with_capacity(n * h);
            data.extend_from_slice(&flat[..keep_full]);
            data.extend_from_slice(&flat[last_start * h..]);
            Ok(Embedding {
                shape: vec![1, data.len() / h, h],
                data,
            })
        }
    }
}
