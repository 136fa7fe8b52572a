//! Decoding any supported file to a mono `f32` stream with symphonia.
//!
//! Matches what the reference gets from `torchaudio.load` (FFmpeg backend) followed by
//! `torch.mean(waveform, dim=0)` (`preprocessing/audio/MERT_utils.py`, `load_audio`):
//!
//! - integer PCM scaled to [-1, 1) by `2^(bits-1)` (16-bit / 32768, 24-bit / 2^23), float as stored;
//! - MP3 with the LAME/Xing gapless header honoured: encoder delay plus the 529-sample decoder
//!   delay trimmed at the start, the encoder padding at the end, exactly as FFmpeg's `mp3float`
//!   does, so the decoded length equals the error length;
//! - Ogg Vorbis with the granule-position trimming of the container;
//! - channels averaged in `f32` (sum in channel order, then divided by the channel count).
//!
//! Decoding streams packet by packet: only one packet of audio is held at a time, so a long file
//! costs the mono output and nothing else.

use crate::{Error, Result};
use std::fs::File;
use std::path::{Path, PathBuf};
use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::codecs::CodecParameters;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::{MetadataOptions, StandardTag};

/// Decodes an audio file packet by packet and hands out mono chunks.
///
/// ```no_run
/// # fn main() -> clamp3_audio::Result<()> {
/// let mut decoder = clamp3_audio::MonoDecoder::open("song.flac".as_ref())?;
/// let rate = decoder.sample_rate();
/// let mut mono = Vec::new();
/// while decoder.next_chunk(&mut mono)? {}
/// println!("{} samples at {rate} Hz", mono.len());
/// # Ok(()) }
/// ```
pub struct MonoDecoder {
    path: PathBuf,
    reader: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    sample_rate: u32,
    num_frames: Option<u64>,
    planes: Vec<Vec<f32>>,
}

impl std::fmt::Debug for MonoDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonoDecoder")
            .field("path", &self.path)
            .field("track_id", &self.track_id)
            .field("sample_rate", &self.sample_rate)
            .finish_non_exhaustive()
    }
}

impl MonoDecoder {
    /// Opens `path`, finds its first decodable audio track and prepares its decoder.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|error| Error::Io {
            path: path.to_path_buf(),
            error,
        })?;
        Self::from_source(path, Box::new(file))
    }

    /// A decoder over a file's bytes already in memory; `path` names it in errors and its
    /// extension hints the container.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self> {
        Self::from_source(path, Box::new(std::io::Cursor::new(bytes)))
    }

    fn from_source(path: &Path, source: Box<dyn MediaSource>) -> Result<Self> {
        let unsupported = |reason: String| Error::Unsupported {
            path: path.to_path_buf(),
            reason,
        };
        let mss = MediaSourceStream::new(source, MediaSourceStreamOptions::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let reader = symphonia::default::get_probe()
            .probe(
                &hint,
                mss,
                FormatOptions::default(),
                MetadataOptions::default(),
            )
            .map_err(|e| match e {
                SymphoniaError::IoError(error) => Error::Io {
                    path: path.to_path_buf(),
                    error,
                },
                other => unsupported(format!("not a recognised audio container ({other})")),
            })?;
        let track = reader
            .default_track(TrackType::Audio)
            .ok_or_else(|| unsupported("no audio track with a known codec".to_string()))?;
        let params = match &track.codec_params {
            Some(CodecParameters::Audio(p)) => p.clone(),
            _ => {
                return Err(unsupported(
                    "the audio track has no codec parameters".into(),
                ))
            }
        };
        let track_id = track.id;
        let num_frames = track.num_frames;
        let sample_rate = params
            .sample_rate
            .filter(|&r| r > 0)
            .ok_or_else(|| unsupported("the audio track has no sample rate".to_string()))?;
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(&params, &AudioDecoderOptions::default().gapless(true))
            .map_err(|e| unsupported(format!("no decoder for this codec ({e})")))?;
        Ok(Self {
            path: path.to_path_buf(),
            reader,
            decoder,
            track_id,
            sample_rate,
            num_frames,
            planes: Vec::new(),
        })
    }

    /// The sample rate of the decoded audio, in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// The number of frames the container announces (after gapless trimming), when it does.
    /// Only a hint for reserving memory: the stream may be shorter or longer.
    pub fn frames_hint(&self) -> Option<u64> {
        self.num_frames
    }

    /// The length in seconds the container announces, when it does (no decoding).
    pub fn duration_hint(&self) -> Option<f64> {
        self.num_frames
            .map(|frames| frames as f64 / f64::from(self.sample_rate))
    }

    /// The file's descriptive tags (ID3, Vorbis comments, RIFF INFO, MP4 atoms) that symphonia
    /// recognises, as `(name, value)` with names `title`, `artist`, `album`, `album_artist`,
    /// `composer`, `genre`, `date`; the first value of each name wins.
    pub fn tags(&mut self) -> Vec<(&'static str, String)> {
        let mut out: Vec<(&'static str, String)> = Vec::new();
        let mut metadata = self.reader.metadata();
        let Some(revision) = metadata.skip_to_latest() else {
            return out;
        };
        let containers =
            std::iter::once(&revision.media).chain(revision.per_track.iter().map(|t| &t.metadata));
        for tag in containers.flat_map(|c| &c.tags) {
            let Some((name, value)) = tag.std.as_ref().and_then(standard_tag) else {
                continue;
            };
            let value = value.trim();
            if !value.is_empty() && !out.iter().any(|(n, _)| *n == name) {
                out.push((name, value.to_string()));
            }
        }
        out
    }

    /// Decodes the next packet and appends its mono mix to `out`. Returns `false` at the end of
    /// the stream. Packets the codec reports as malformed are skipped, as FFmpeg does.
    pub fn next_chunk(&mut self, out: &mut Vec<f32>) -> Result<bool> {
        loop {
            let packet = match self.reader.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(false),
                // Some demuxers report a truncated final page/frame as an unexpected EOF.
                Err(SymphoniaError::IoError(e))
                    if e.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    return Ok(false)
                }
                Err(e) => return Err(self.decode_error(e)),
            };
            if packet.track_id != self.track_id {
                continue;
            }
            let buf = match self.decoder.decode(&packet) {
                Ok(buf) => buf,
                Err(SymphoniaError::DecodeError(_)) => continue,
                Err(e) => return Err(self.decode_error(e)),
            };
            if buf.spec().rate() != self.sample_rate {
                return Err(Error::Unsupported {
                    path: self.path.clone(),
                    reason: format!(
                        "the sample rate changes mid-stream ({} Hz, then {} Hz)",
                        self.sample_rate,
                        buf.spec().rate()
                    ),
                });
            }
            let frames = buf.frames();
            if frames == 0 {
                continue;
            }
            buf.copy_to_vecs_planar::<f32>(&mut self.planes);
            downmix(&self.planes, frames, out);
            return Ok(true);
        }
    }

    fn decode_error(&self, e: SymphoniaError) -> Error {
        match e {
            SymphoniaError::IoError(error) => Error::Io {
                path: self.path.clone(),
                error,
            },
            SymphoniaError::Unsupported(what) => Error::Unsupported {
                path: self.path.clone(),
                reason: what.to_string(),
            },
            other => Error::Decode {
                path: self.path.clone(),
                reason: other.to_string(),
            },
        }
    }
}

/// The name clamp3 gives a standard tag it keeps, and its text.
fn standard_tag(tag: &StandardTag) -> Option<(&'static str, &str)> {
    Some(match tag {
        StandardTag::TrackTitle(v) => ("title", v.as_str()),
        StandardTag::Artist(v) => ("artist", v.as_str()),
        StandardTag::Album(v) => ("album", v.as_str()),
        StandardTag::AlbumArtist(v) => ("album_artist", v.as_str()),
        StandardTag::Composer(v) => ("composer", v.as_str()),
        StandardTag::Genre(v) => ("genre", v.as_str()),
        StandardTag::RecordingDate(v) | StandardTag::ReleaseDate(v) => ("date", v.as_str()),
        _ => return None,
    })
}

/// Appends the mean of the first `frames` samples of each plane to `out`, computed as
/// `torch.mean(dim=0)` does in `f32`: the channels summed in order, then divided by their count.
fn downmix(planes: &[Vec<f32>], frames: usize, out: &mut Vec<f32>) {
    match planes {
        [] => {}
        [mono] => out.extend_from_slice(&mono[..frames]),
        [first, rest @ ..] => {
            let n = planes.len() as f32;
            let start = out.len();
            out.extend_from_slice(&first[..frames]);
            for plane in rest {
                for (acc, &s) in out[start..].iter_mut().zip(&plane[..frames]) {
                    *acc += s;
                }
            }
            for acc in &mut out[start..] {
                *acc /= n;
            }
        }
    }
}

/// Decodes the whole of `path` to mono. Returns the samples and their rate in Hz.
pub fn decode_mono(path: &Path) -> Result<(Vec<f32>, u32)> {
    let mut decoder = MonoDecoder::open(path)?;
    let mut out = Vec::new();
    while decoder.next_chunk(&mut out)? {}
    Ok((out, decoder.sample_rate()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downmix_is_channel_mean() {
        let planes = vec![
            vec![1.0, 0.5, 9.0],
            vec![0.0, -0.5, 9.0],
            vec![2.0, 3.0, 9.0],
        ];
        let mut out = vec![7.0];
        downmix(&planes, 2, &mut out);
        assert_eq!(out, vec![7.0, 1.0, 1.0]);
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = MonoDecoder::open(Path::new("/nonexistent/x.wav")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x.wav"), "{err}");
    }
}
