//! Audio front end for CLaMP 3, the second stage of the pipeline (formats → **audio** → models →
//! features → retrieval): decode, downmix, resample to 24 kHz, normalise, cut MERT windows.
//!
//! It reproduces `preprocessing/audio/extract_mert.py` of the reference up to the model input:
//!
//! - [`MonoDecoder`] / [`decode_mono`]: wav, flac, mp3 (gapless), ogg vorbis (and AAC in MP4)
//!   through symphonia, channels averaged to mono;
//! - [`Resampler`] / [`resample()`]: torchaudio's `Resample(orig, 24000)` with its defaults;
//! - [`load_mono_24k`]: both of the above, streamed packet by packet;
//! - [`normalize`]: zero mean, unit variance over the whole waveform;
//! - [`windows`]: 5 s windows, a last one shorter than 1 s dropped;
//! - [`load_for_mert`]: all of it, with an [`Error::TooShort`] naming the file when no window is
//!   left (the reference crashes there).
//!
//! Memory: only the 24 kHz mono waveform is held (230 kB per 10 s, 58 MB for ten minutes);
//! decoding and resampling stream, and windows are borrowed slices.
//!
//! ```no_run
//! # fn main() -> clamp3_audio::Result<()> {
//! let samples = clamp3_audio::load_for_mert("song.mp3".as_ref())?;
//! for window in clamp3_audio::windows(&samples) {
//!     assert!(window.len() >= clamp3_audio::MIN_WINDOW_SAMPLES);
//!     // run MERT on `window`
//! }
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod decode;
mod error;
pub mod resample;
mod window;

pub use decode::{decode_mono, MonoDecoder};
pub use error::{Error, Result};
pub use resample::{resample, Resampler};
pub use window::{normalize, window_count, windows, Windows, NORM_EPSILON};

use std::path::Path;

/// MERT's input rate in Hz.
pub const SAMPLE_RATE: u32 = 24_000;
/// Seconds per MERT window in the reference (`sliding_window_size_in_sec = 5`).
pub const WINDOW_SECONDS: usize = 5;
/// Samples per window: `WINDOW_SECONDS * SAMPLE_RATE` = 120000.
pub const WINDOW_SAMPLES: usize = WINDOW_SECONDS * SAMPLE_RATE as usize;
/// A last window shorter than this (1 s = 24000 samples) is dropped.
pub const MIN_WINDOW_SAMPLES: usize = SAMPLE_RATE as usize;

/// The most samples [`load_mono_24k`] reserves up front from a container's announced length
/// (one hour at 24 kHz, 346 MB); longer files still load, growing as they decode.
const MAX_RESERVED_SAMPLES: u64 = 3600 * SAMPLE_RATE as u64;

/// Decodes `path`, averages its channels and resamples to 24 kHz, streaming packet by packet.
/// The result equals the reference's `load_audio(path, 24000, is_mono=True)` (before
/// normalisation).
pub fn load_mono_24k(path: &Path) -> Result<Vec<f32>> {
    mono_24k(MonoDecoder::open(path)?)
}

/// [`load_for_mert`] of a file's bytes already in memory; `path` names it in errors and its
/// extension hints the container.
pub fn load_for_mert_bytes(path: &Path, bytes: Vec<u8>) -> Result<Vec<f32>> {
    let mut samples = mono_24k(MonoDecoder::from_bytes(path, bytes)?)?;
    check_windows(path, &samples)?;
    normalize(&mut samples);
    Ok(samples)
}

/// Decodes to mono and resamples to 24 kHz, streaming packet by packet.
fn mono_24k(mut decoder: MonoDecoder) -> Result<Vec<f32>> {
    let mut resampler = Resampler::new(decoder.sample_rate(), SAMPLE_RATE);
    let mut chunk = Vec::new();
    // Reserve the announced length (capped, in case the header lies) so that a long file does
    // not briefly hold two copies of its waveform while the vector grows.
    let expected = decoder.frames_hint().map_or(0, |frames| {
        let samples =
            frames.saturating_mul(u64::from(SAMPLE_RATE)) / u64::from(decoder.sample_rate());
        samples.min(MAX_RESERVED_SAMPLES) as usize + 1
    });
    let mut out = Vec::with_capacity(expected);
    while decoder.next_chunk(&mut chunk)? {
        resampler.push(&chunk, &mut out);
        chunk.clear();
    }
    resampler.finish(&mut out);
    Ok(out)
}

/// [`load_mono_24k`], then [`normalize`]: the waveform [`windows`] should cut. Fails with
/// [`Error::TooShort`] when it would give no window.
pub fn load_for_mert(path: &Path) -> Result<Vec<f32>> {
    let mut samples = load_mono_24k(path)?;
    check_windows(path, &samples)?;
    normalize(&mut samples);
    Ok(samples)
}

/// Fails with [`Error::TooShort`], naming `path`, when `samples` gives no window.
pub fn check_windows(path: &Path, samples: &[f32]) -> Result<()> {
    if window_count(samples.len()) == 0 {
        return Err(Error::TooShort {
            path: path.to_path_buf(),
            samples: samples.len(),
        });
    }
    Ok(())
}
