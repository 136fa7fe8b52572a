//! Audio files → MERT features → the audio encoder's input, as the reference's
//! `extract_mert.py --mean_features` followed by `extract_clamp3.py`'s `.npy` path.

use crate::input::{features_input, ModelInput};
use crate::npy::NpyArray;
use crate::Result;
use clamp3_models::mert::Mert;
use std::path::Path;

/// Decodes, resamples and normalises an audio file, runs MERT on its 5 s windows one at a time
/// (memory stays at one window's activations) and returns the `[1, windows, H]` array
/// `extract_mert.py` saves.
pub fn mert_features(mert: &Mert, path: &Path) -> Result<NpyArray> {
    features_of(mert, clamp3_audio::load_for_mert(path)?)
}

/// MERT features of a prepared (24 kHz, normalised) waveform.
fn features_of(mert: &Mert, samples: Vec<f32>) -> Result<NpyArray> {
    let features = mert.file_features(clamp3_audio::windows(&samples))?;
    Ok(NpyArray {
        shape: features.dims().to_vec(),
        data: features.flatten_all()?.to_vec1::<f32>()?,
    })
}

/// An audio file's bytes as the audio encoder reads them: MERT rows with a zero row at each end.
/// `path` names the file in errors and hints its container.
pub fn audio_input(mert: &Mert, path: &Path, bytes: Vec<u8>) -> Result<ModelInput> {
    features_input(&features_of(
        mert,
        clamp3_audio::load_for_mert_bytes(path, bytes)?,
    )?)
}
