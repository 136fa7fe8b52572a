//! Many model inputs → vectors, with the segments of different files batched together.
//!
//! The reference runs every file alone, one segment at a time, padded to the full segment length.
//! Here the segments of all inputs of one modality are sorted by length and packed into batches
//! of similar length; a batch whose segments differ in length is padded to its longest and
//! masked, so every segment still sees only its own items. A folder of short files (a text query,
//! a lead sheet) then runs in a few full forward passes instead of one tiny pass per file.
//!
//! A model family plugs in through [`Encoder`]: its segmenting rule, encoders and projections.

use crate::embed::{Embedding, Pooling};
use crate::input::ModelInput;
use crate::segment::Segments;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use clamp3_models::{masked_mean, Clamp3Model, EncoderInput, Modality};
use rayon::prelude::*;

/// How a family cuts a long input before encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segmenting {
    /// Segments of `length` at 0, L, 2L, …, the last one replaced by the last L items; the global
    /// vector is the average of the segments' vectors weighted by their new items (CLaMP 2 and 3).
    Overlapping {
        /// Segment length L.
        length: usize,
    },
    /// Only the first `max` items are encoded, as one segment (CLaMP 1).
    Truncate {
        /// How many items are kept.
        max: usize,
    },
}

impl Segmenting {
    /// The segments of an input of `len` ≥ 1 items.
    pub fn plan(self, len: usize) -> Segments {
        match self {
            Segmenting::Overlapping { length } => Segments::plan(len, length),
            Segmenting::Truncate { max } => {
                let length = len.min(max);
                Segments {
                    starts: vec![0],
                    length,
                    weights: vec![length],
                    last_rows: length,
                }
            }
        }
    }
}

/// What a model family provides to turn model inputs into vectors: CLaMP 3's three encoders, or
/// another family's. Encoders take batches of equal-length segments, with a mask when padded.
pub trait Encoder: Send + Sync {
    /// The device the weights live on.
    fn device(&self) -> &Device;
    /// How inputs of a modality are segmented.
    fn segmenting(&self, modality: Modality) -> Segmenting;
    /// The row width of an input of the modality, where rows are vectors (audio features).
    fn input_width(&self, modality: Modality) -> Option<usize>;
    /// The value padding items are filled with for token or patch inputs (masked out anyway;
    /// it only has to be a valid input).
    fn padding_id(&self, modality: Modality) -> u32;
    /// Runs the encoder of `modality` on `[batch, seq(, width)]`: the last hidden state
    /// `[batch, seq, H]`. `mask` (`[batch, seq]`, 1 real / 0 padding) is given when the batch
    /// holds segments of different lengths.
    fn encode(&self, modality: Modality, batch: &Tensor, mask: Option<&Tensor>) -> Result<Tensor>;
    /// Projects pooled hidden states `[batch, H]` into the shared space `[batch, D]`.
    fn project(&self, modality: Modality, pooled: &Tensor) -> Result<Tensor>;
}

impl Encoder for Clamp3Model {
    fn device(&self) -> &Device {
        Clamp3Model::device(self)
    }

    fn segmenting(&self, modality: Modality) -> Segmenting {
        Segmenting::Overlapping {
            length: self.segment_length(modality),
        }
    }

    fn input_width(&self, modality: Modality) -> Option<usize> {
        (modality == Modality::Audio).then(|| self.encoder_width(Modality::Audio))
    }

    fn padding_id(&self, modality: Modality) -> u32 {
        match modality {
            Modality::Text => self.config().text_model.pad_token_id,
            _ => 0,
        }
    }

    fn encode(&self, modality: Modality, batch: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        Ok(Clamp3Model::encode(
            self,
            EncoderInput::of(modality, batch),
            mask,
        )?)
    }

    fn project(&self, modality: Modality, pooled: &Tensor) -> Result<Tensor> {
        Ok(Clamp3Model::project(self, modality, pooled)?)
    }
}

/// Limits on one forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most rows (segments × padded length) in one forward pass: bounds activation memory.
    pub max_rows: usize,
    /// Most segments in one forward pass.
    pub max_segments: usize,
}

impl BatchLimits {
    /// What suits a device. On the CPU, 512 rows (one full 512-patch segment, a few dozen lead
    /// sheets or short texts): measured on full-size CLaMP 3 over WikiMT tunes, 512 rows cost
    /// 0.149 CPU s per tune against 0.167 at 256, 0.196 at 2048 and 0.247 at 4096, because the
    /// element-wise ops between the matrix products stream activations that no longer fit the
    /// caches. A GPU wants large batches.
    pub fn for_device(device: &Device) -> Self {
        if device.is_cpu() {
            BatchLimits {
                max_rows: 512,
                max_segments: 64,
            }
        } else {
            BatchLimits {
                max_rows: 16384,
                max_segments: 256,
            }
        }
    }
}

/// One segment of one input, waiting for a batch.
#[derive(Debug, Clone, Copy)]
struct Segment {
    input: usize,
    ordinal: usize,
    start: usize,
    length: usize,
}

/// What one encoded segment gave.
enum SegmentOutput {
    /// Its projected vector.
    Vector(Vec<f32>),
    /// Its hidden rows `[length, H]`, row-major.
    Rows(Vec<f32>),
}

/// Embeds many inputs, batching segments across them; one result per input, in input order.
/// An input that cannot be encoded fails alone: when a batch fails, its inputs are retried one by
/// one so the error lands on the input that caused it.
pub fn embed_many(
    encoder: &dyn Encoder,
    inputs: &[&ModelInput],
    pooling: Pooling,
    limits: BatchLimits,
) -> Vec<Result<Embedding>> {
    let mut results: Vec<Option<Result<Embedding>>> = inputs.iter().map(|_| None).collect();
    for modality in [Modality::Text, Modality::Symbolic, Modality::Audio] {
        let members: Vec<usize> = (0..inputs.len())
            .filter(|&i| inputs[i].modality() == modality)
            .collect();
        if members.is_empty() {
            continue;
        }
        let group: Vec<&ModelInput> = members.iter().map(|&i| inputs[i]).collect();
        for (i, result) in members
            .into_iter()
            .zip(embed_modality(encoder, modality, &group, pooling, limits))
        {
            results[i] = Some(result);
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or(Err(Error::Empty("the input has no items"))))
        .collect()
}

/// [`embed_many`] for inputs of one modality.
fn embed_modality(
    encoder: &dyn Encoder,
    modality: Modality,
    inputs: &[&ModelInput],
    pooling: Pooling,
    limits: BatchLimits,
) -> Vec<Result<Embedding>> {
    let segmenting = encoder.segmenting(modality);
    let mut plans: Vec<Result<Segments>> = Vec::with_capacity(inputs.len());
    let mut segments = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let plan = check(encoder, modality, input).map(|()| segmenting.plan(input.len()));
        if let Ok(plan) = &plan {
            for (ordinal, &start) in plan.starts.iter().enumerate() {
                segments.push(Segment {
                    input: i,
                    ordinal,
                    start,
                    length: plan.length,
                });
            }
        }
        plans.push(plan);
    }
    // Longest first, and the segments of one input together: batches pad little and an input's
    // segments usually share a batch.
    segments.sort_by_key(|s| (std::cmp::Reverse(s.length), s.input, s.ordinal));
    let mut outputs: Vec<Vec<Option<SegmentOutput>>> = plans
        .iter()
        .map(|p| p.as_ref().map_or(0, |p| p.starts.len()))
        .map(|n| (0..n).map(|_| None).collect())
        .collect();
    let mut failures: Vec<Option<Error>> = inputs.iter().map(|_| None).collect();
    let batches = pack(&segments, limits);
    let encode = |batch: &&[Segment]| encode_batch(encoder, modality, inputs, batch, pooling);
    // On the CPU only the matrix products of a forward pass use every core; its element-wise
    // ops, softmax and layer norms run on one. Two batches in flight keep all cores busy.
    let encoded: Vec<Result<Vec<SegmentOutput>>> = if encoder.device().is_cpu() {
        batches.par_iter().map(encode).collect()
    } else {
        batches.iter().map(encode).collect()
    };
    for (batch, result) in batches.into_iter().zip(encoded) {
        match result {
            Ok(done) => {
                for (segment, output) in batch.iter().zip(done) {
                    outputs[segment.input][segment.ordinal] = Some(output);
                }
            }
            Err(error) => {
                let culprits: std::collections::BTreeSet<usize> =
                    batch.iter().map(|s| s.input).collect();
                if let [only] = culprits.iter().copied().collect::<Vec<_>>()[..] {
                    failures[only].get_or_insert(error);
                    continue;
                }
                // Alone, each input either works or carries its own error.
                for i in culprits {
                    let own: Vec<Segment> =
                        batch.iter().filter(|s| s.input == i).copied().collect();
                    match encode_batch(encoder, modality, inputs, &own, pooling) {
                        Ok(done) => {
                            for (segment, output) in own.iter().zip(done) {
                                outputs[i][segment.ordinal] = Some(output);
                            }
                        }
                        Err(e) => {
                            failures[i].get_or_insert(e);
                        }
                    }
                }
            }
        }
    }
    plans
        .into_iter()
        .zip(outputs)
        .zip(failures)
        .zip(inputs)
        .map(|(((plan, outputs), failure), input)| {
            let plan = plan?;
            if let Some(error) = failure {
                return Err(error);
            }
            let outputs: Vec<SegmentOutput> = outputs
                .into_iter()
                .map(|o| o.ok_or(Error::Empty("a segment was not encoded")))
                .collect::<Result<_>>()?;
            Ok(assemble(&plan, outputs, input.len(), pooling))
        })
        .collect()
}

/// Refuses inputs the encoder cannot take before they reach a batch.
fn check(encoder: &dyn Encoder, modality: Modality, input: &ModelInput) -> Result<()> {
    if input.is_empty() {
        return Err(Error::Empty("the input has no items"));
    }
    if let (ModelInput::Features { width, .. }, Some(expected)) =
        (input, encoder.input_width(modality))
    {
        if *width != expected {
            return Err(Error::Npy(format!(
                "feature rows are {width} wide, the audio encoder expects {expected}"
            )));
        }
    }
    Ok(())
}

/// Cuts length-sorted segments into batches within the limits; a batch is padded to its first
/// (longest) segment.
fn pack(segments: &[Segment], limits: BatchLimits) -> Vec<&[Segment]> {
    let mut batches = Vec::new();
    let mut begin = 0;
    while begin < segments.len() {
        let padded = segments[begin].length.max(1);
        let fit = (limits.max_rows / padded).clamp(1, limits.max_segments.max(1));
        let end = (begin + fit).min(segments.len());
        batches.push(&segments[begin..end]);
        begin = end;
    }
    batches
}

/// Encodes one batch (padding and masking when its segments differ in length) and pools it.
fn encode_batch(
    encoder: &dyn Encoder,
    modality: Modality,
    inputs: &[&ModelInput],
    batch: &[Segment],
    pooling: Pooling,
) -> Result<Vec<SegmentOutput>> {
    let device = encoder.device();
    let b = batch.len();
    let padded = batch.iter().map(|s| s.length).max().unwrap_or(0);
    let ragged = batch.iter().any(|s| s.length != padded);
    let pad_id = encoder.padding_id(modality);
    let tensor = match inputs[batch[0].input] {
        ModelInput::TokenIds(_) => {
            let mut rows = Vec::with_capacity(b * padded);
            for s in batch {
                let ModelInput::TokenIds(ids) = inputs[s.input] else {
                    return Err(Error::Empty("mixed inputs in one batch"));
                };
                rows.extend_from_slice(&ids[s.start..s.start + s.length]);
                rows.extend(std::iter::repeat_n(pad_id, padded - s.length));
            }
            Tensor::from_vec(rows, (b, padded), device)?
        }
        ModelInput::Patches(first) => {
            let width = first.first().map_or(0, |p| p.len());
            let mut rows: Vec<u32> = Vec::with_capacity(b * padded * width);
            for s in batch {
                let ModelInput::Patches(patches) = inputs[s.input] else {
                    return Err(Error::Empty("mixed inputs in one batch"));
                };
                for patch in &patches[s.start..s.start + s.length] {
                    if patch.len() != width {
                        return Err(Error::Empty("patches of different widths"));
                    }
                    rows.extend(patch.iter().map(|&v| u32::from(v)));
                }
                rows.extend(std::iter::repeat_n(pad_id, (padded - s.length) * width));
            }
            Tensor::from_vec(rows, (b, padded, width), device)?
        }
        ModelInput::Features { width, .. } => {
            let width = *width;
            let mut rows = Vec::with_capacity(b * padded * width);
            for s in batch {
                let ModelInput::Features { data, .. } = inputs[s.input] else {
                    return Err(Error::Empty("mixed inputs in one batch"));
                };
                rows.extend_from_slice(&data[s.start * width..(s.start + s.length) * width]);
                rows.extend(std::iter::repeat_n(0.0, (padded - s.length) * width));
            }
            Tensor::from_vec(rows, (b, padded, width), device)?
        }
    };
    let mask = if ragged {
        let mut mask = Vec::with_capacity(b * padded);
        for s in batch {
            mask.extend(std::iter::repeat_n(1u32, s.length));
            mask.extend(std::iter::repeat_n(0u32, padded - s.length));
        }
        Some(Tensor::from_vec(mask, (b, padded), device)?)
    } else {
        None
    };
    let hidden = encoder.encode(modality, &tensor, mask.as_ref())?;
    match pooling {
        Pooling::Global => {
            let pooled = masked_mean(&hidden, mask.as_ref())?;
            let projected = encoder
                .project(modality, &pooled)?
                .to_device(&Device::Cpu)?
                .to_dtype(DType::F32)?;
            Ok(projected
                .to_vec2::<f32>()?
                .into_iter()
                .map(SegmentOutput::Vector)
                .collect())
        }
        Pooling::Local => {
            let hidden = hidden.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
            let h = hidden.dim(2)?;
            let flat = hidden.flatten_all()?.to_vec1::<f32>()?;
            Ok(batch
                .iter()
                .enumerate()
                .map(|(row, s)| {
                    let begin = row * padded * h;
                    SegmentOutput::Rows(flat[begin..begin + s.length * h].to_vec())
                })
                .collect())
        }
    }
}

/// One input's segment outputs → its embedding, as `extract_clamp3.py` combines them.
fn assemble(
    plan: &Segments,
    outputs: Vec<SegmentOutput>,
    len: usize,
    pooling: Pooling,
) -> Embedding {
    match pooling {
        Pooling::Global => {
            let total: usize = plan.weights.iter().sum();
            let mut sum: Vec<f32> = Vec::new();
            for (output, &weight) in outputs.iter().zip(&plan.weights) {
                let SegmentOutput::Vector(v) = output else {
                    continue;
                };
                if sum.is_empty() {
                    sum = vec![0.0; v.len()];
                }
                for (acc, x) in sum.iter_mut().zip(v) {
                    *acc += x * weight as f32;
                }
            }
            let data: Vec<f32> = sum.into_iter().map(|v| v / total as f32).collect();
            Embedding {
                shape: vec![1, data.len()],
                data,
            }
        }
        Pooling::Local => {
            let segments = outputs.len();
            let mut data = Vec::new();
            let mut h = 0;
            for (i, output) in outputs.into_iter().enumerate() {
                let SegmentOutput::Rows(rows) = output else {
                    continue;
                };
                h = rows.len() / plan.length.max(1);
                if i + 1 < segments {
                    data.extend_from_slice(&rows);
                } else {
                    // The last segment overlaps the one before: keep only its new rows.
                    data.extend_from_slice(&rows[(plan.length - plan.last_rows) * h..]);
                }
            }
            let n = data.len().checked_div(h).unwrap_or(0);
            debug_assert!(n == len || n == plan.length, "local rows add up");
            Embedding {
                shape: vec![1, n, h],
                data,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(input: usize, length: usize) -> Segment {
        Segment {
            input,
            ordinal: 0,
            start: 0,
            length,
        }
    }

    #[test]
    fn packing_respects_both_limits() {
        let segments: Vec<Segment> = [512, 512, 300, 128, 128, 128, 20]
            .iter()
            .enumerate()
            .map(|(i, &l)| segment(i, l))
            .collect();
        let limits = BatchLimits {
            max_rows: 1024,
            max_segments: 3,
        };
        let sizes: Vec<usize> = pack(&segments, limits).iter().map(|b| b.len()).collect();
        // 1024 / 512 = 2; then 1024 / 300 = 3 (capped at 3); then the last one.
        assert_eq!(sizes, [2, 3, 2]);
    }

    #[test]
    fn a_segment_longer_than_the_row_limit_still_runs_alone() {
        let segments = [segment(0, 5000), segment(1, 5000)];
        let sizes: Vec<usize> = pack(&segments, BatchLimits::for_device(&Device::Cpu))
            .iter()
            .map(|b| b.len())
            .collect();
        assert_eq!(sizes, [1, 1]);
    }

    #[test]
    fn truncation_is_one_segment() {
        let plan = Segmenting::Truncate { max: 10 }.plan(25);
        assert_eq!(
            (plan.starts, plan.length, plan.weights),
            (vec![0], 10, vec![10])
        );
        let plan = Segmenting::Truncate { max: 10 }.plan(4);
        assert_eq!(plan.length, 4);
    }
}
