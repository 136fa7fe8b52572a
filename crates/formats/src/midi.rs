//! MIDI → MTF (MIDI Text Format), the text CLaMP 3 reads performance MIDI as.
//!
//! Port of `load_midi` in the reference's `preprocessing/midi/batch_midi2mtf.py`
//! (<https://github.com/sanderwood/clamp3/blob/9016d2b/preprocessing/midi/batch_midi2mtf.py>),
//! which reads the file with mido 1.3.0 and prints every message of `MidiFile.merged_track`:
//!
//! ```text
//! ticks_per_beat 480
//! set_tempo 500000 0
//! note_on 0 0 60 64
//! note_off 480 0 60 0
//! end_of_track 0
//! ```
//!
//! The first line holds the header's division read as a signed 16-bit number; each other line is
//! mido's `msg.dict()` values joined by spaces (`type time channel data…` for channel messages,
//! `type fields… time` for meta messages), passed through Python's `unicode_escape`. Lines are
//! joined with `\n`, without a final newline. In m3 mode ([`midi_to_mtf`] with `m3_compatible`)
//! text-like meta messages are left out, and their delta times with them.
//!
//! The reader is written here rather than taken from a MIDI crate because MTF spells out mido's
//! quirks, and a general parser smooths them over: running status survives sysex (a data byte
//! after a sysex starts another sysex), unknown meta messages lose their delta time, a track is
//! read until the bytes consumed equal the chunk length exactly, extra chunks after the header's
//! track count are ignored, and some well-formed values are refused (an SMPTE offset of 60
//! minutes, some time signature denominators). Every refusal is an [`Error::Midi`] naming the
//! byte offset and the reason; files mido cannot merge (format 2) give [`Error::MidiFormat2`].
//! One limit is this port's own: mido reads variable-length numbers of any size, here a delta
//! time must fit 128 bits (19 bytes).
//!
//! ```
//! # fn main() -> clamp3_formats::Result<()> {
//! // A format-0 file with one note.
//! let mut midi = b"MThd\0\0\0\x06\0\0\0\x01\x01\xe0MTrk\0\0\0\x0b".to_vec();
//! // note_on, then a second note_on by running status, then end_of_track.
//! midi.extend_from_slice(b"\x00\x90\x3c\x40\x60\x3c\x00\x00\xff\x2f\x00");
//! let mtf = clamp3_formats::midi::midi_to_mtf(&midi, true)?;
//! assert_eq!(mtf, "ticks_per_beat 480\nnote_on 0 0 60 64\nnote_on 96 0 60 0\nend_of_track 0");
//! # Ok(())
//! # }
//! ```

mod message;
pub(crate) mod pystr;

pub(crate) use message::{
    denominator_exponent_ok, write_vlq, Msg, Smpte, TextKind, KEY_SIGNATURES,
};

use crate::{Error, Result};

/// The longest sysex or meta payload mido reads (`MAX_MESSAGE_LENGTH`); longer ones are refused.
const MAX_MESSAGE_LENGTH: u128 = 1_000_000;

/// A message with its time in ticks (a delta or an absolute time, as the context says).
#[derive(Debug, Clone)]
struct Timed {
    time: u128,
    msg: Msg,
}

/// A MIDI file as mido reads it: header fields and tracks of delta-timed messages.
struct MidiFile {
    format: i16,
    ticks_per_beat: i16,
    tracks: Vec<Vec<Timed>>,
}

/// Converts a Standard MIDI File to MTF text, as the reference's `batch_midi2mtf.py` does with
/// `--m3_compatible` when `m3_compatible` is true.
///
/// With `m3_compatible` the meta messages `text`, `copyright`, `track_name`, `instrument_name`,
/// `lyrics`, `marker`, `cue_marker` and `device_name` are dropped (the next message keeps its own
/// delta time); without it every message is kept.
///
/// # Errors
///
/// [`Error::Midi`] when the bytes are not a MIDI file mido can read (truncated file, missing
/// `MThd`/`MTrk`, data byte above 127, undefined status byte, malformed meta message, …), and
/// [`Error::MidiFormat2`] for format-2 files, which have no merged track.
pub fn midi_to_mtf(bytes: &[u8], m3_compatible: bool) -> Result<String> {
    let file = read_midi(bytes)?;
    if file.format == 2 {
        return Err(Error::MidiFormat2);
    }
    let merged = merge_tracks(file.tracks)?;
    let mut out = String::with_capacity(merged.len() * 20 + 24);
    out.push_str("ticks_per_beat ");
    out.push_str(&file.ticks_per_beat.to_string());
    for timed in &merged {
        if m3_compatible && matches!(timed.msg, Msg::Text(..)) {
            continue;
        }
        out.push('\n');
        timed.msg.write_mtf(timed.time, &mut out);
    }
    Ok(out)
}

/// mido's `merge_tracks`: absolute times, a stable sort by time (ties keep track order), delta
/// times again, every `end_of_track` removed with its delta added to the next message, and one
/// `end_of_track` carrying what is left.
fn merge_tracks(tracks: Vec<Vec<Timed>>) -> Result<Vec<Timed>> {
    let total: usize = tracks.iter().map(Vec::len).sum();
    let mut absolute = Vec::with_capacity(total);
    for track in tracks {
        let mut now: u128 = 0;
        for timed in track {
            now = now.checked_add(timed.time).ok_or_else(time_overflow)?;
            absolute.push(Timed {
                time: now,
                msg: timed.msg,
            });
        }
    }
    absolute.sort_by_key(|t| t.time);
    let mut merged = Vec::with_capacity(absolute.len() + 1);
    let mut previous = 0;
    let mut accumulated: u128 = 0;
    for timed in absolute {
        let delta = timed.time - previous;
        previous = timed.time;
        if timed.msg == Msg::EndOfTrack {
            accumulated += delta;
        } else {
            merged.push(Timed {
                time: accumulated + delta,
                msg: timed.msg,
            });
            accumulated = 0;
        }
    }
    merged.push(Timed {
        time: accumulated,
        msg: Msg::EndOfTrack,
    });
    Ok(merged)
}

fn time_overflow() -> Error {
    Error::Midi {
        offset: 0,
        message: "absolute time of a track exceeds 2^128 ticks".into(),
    }
}

/// A cursor over the file's bytes with mido's reading primitives.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn error(&self, message: impl Into<String>) -> Error {
        Error::Midi {
            offset: self.pos,
            message: message.into(),
        }
    }

    fn eof(&self, what: &str) -> Error {
        self.error(format!(
            "unexpected end of file while reading {what} (the file is {} bytes long)",
            self.bytes.len()
        ))
    }

    fn byte(&mut self, what: &str) -> Result<u8> {
        let b = *self.bytes.get(self.pos).ok_or_else(|| self.eof(what))?;
        self.pos += 1;
        Ok(b)
    }

    /// `read(size)`: up to `size` bytes, fewer at the end of the file.
    fn take_up_to(&mut self, size: usize) -> &[u8] {
        let end = self.pos.saturating_add(size).min(self.bytes.len());
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        slice
    }

    /// `read_bytes`: exactly `size` bytes, refusing sizes over mido's limit.
    fn take(&mut self, size: u128, what: &str) -> Result<Vec<u8>> {
        if size > MAX_MESSAGE_LENGTH {
            return Err(self.error(format!(
                "{what} length {size} exceeds the maximum length {MAX_MESSAGE_LENGTH}"
            )));
        }
        let size = size as usize; // at most MAX_MESSAGE_LENGTH
        if self.bytes.len() - self.pos < size {
            self.pos = self.bytes.len();
            return Err(self.eof(what));
        }
        let out = self.bytes[self.pos..self.pos + size].to_vec();
        self.pos += size;
        Ok(out)
    }

    /// A variable-length quantity; mido has no length limit, here it must fit 128 bits.
    fn vlq(&mut self, what: &str) -> Result<u128> {
        let mut value: u128 = 0;
        loop {
            let b = self.byte(what)?;
            if value >> 121 != 0 {
                return Err(self.error(format!("{what} does not fit in 128 bits")));
            }
            value = (value << 7) | u128::from(b & 0x7F);
            if b < 0x80 {
                return Ok(value);
            }
        }
    }

    /// A chunk header: 4-byte name and big-endian 32-bit length.
    fn chunk_header(&mut self, what: &str) -> Result<([u8; 4], u32)> {
        if self.bytes.len() - self.pos < 8 {
            self.pos = self.bytes.len();
            return Err(self.eof(what));
        }
        let h = &self.bytes[self.pos..self.pos + 8];
        let name = [h[0], h[1], h[2], h[3]];
        let size = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        self.pos += 8;
        Ok((name, size))
    }
}

/// mido's `MidiFile._load`.
fn read_midi(bytes: &[u8]) -> Result<MidiFile> {
    let mut r = Reader { bytes, pos: 0 };
    let (name, size) = r.chunk_header("the MThd header")?;
    if &name != b"MThd" {
        return Err(Error::Midi {
            offset: 0,
            message: format!(
                "expected the chunk name \"MThd\", found {:?}: probably not a MIDI file",
                String::from_utf8_lossy(&name)
            ),
        });
    }
    let header = r.take_up_to(size as usize).to_vec();
    if header.len() < 6 {
        return Err(r.error(format!(
            "the MThd header holds {} bytes, expected at least 6",
            header.len()
        )));
    }
    let format = i16::from_be_bytes([header[0], header[1]]);
    let track_count = i16::from_be_bytes([header[2], header[3]]);
    let ticks_per_beat = i16::from_be_bytes([header[4], header[5]]);
    let track_count = usize::try_from(track_count).unwrap_or(0);
    let mut tracks = Vec::with_capacity(track_count.min(64));
    for index in 0..track_count {
        tracks.push(read_track(&mut r, index)?);
    }
    Ok(MidiFile {
        format,
        ticks_per_beat,
        tracks,
    })
}

/// Bytes a channel or system message takes, status byte included (mido's spec `length`);
/// `None` for the undefined status bytes 0xF4, 0xF5, 0xF9, 0xFD.
fn message_length(status: u8) -> Option<usize> {
    match status {
        0x80..=0xBF | 0xE0..=0xEF | 0xF2 => Some(3),
        0xC0..=0xDF | 0xF1 | 0xF3 => Some(2),
        0xF6 | 0xF8 | 0xFA | 0xFB | 0xFC | 0xFE | 0xFF => Some(1),
        _ => None,
    }
}

/// mido's `read_track`.
fn read_track(r: &mut Reader<'_>, index: usize) -> Result<Vec<Timed>> {
    let what = format!("the header of track {index}");
    let (name, size) = r.chunk_header(&what)?;
    if &name != b"MTrk" {
        return Err(Error::Midi {
            offset: r.pos - 8,
            message: format!(
                "expected the chunk name \"MTrk\" at the start of track {index}, found {:?}",
                String::from_utf8_lossy(&name)
            ),
        });
    }
    let start = r.pos;
    let mut track = Vec::new();
    let mut last_status: Option<u8> = None;
    // mido stops only when the bytes read equal the chunk length exactly; a message that runs
    // past the end of the chunk keeps it reading into whatever follows.
    while (r.pos - start) as u64 != u64::from(size) {
        let delta = r.vlq("a delta time")?;
        let status_offset = r.pos;
        let mut status = r.byte("a status byte")?;
        let mut peek = None;
        if status < 0x80 {
            let Some(last) = last_status else {
                return Err(Error::Midi {
                    offset: status_offset,
                    message: format!(
                        "data byte 0x{status:02x} where a status byte was expected \
                         (running status without a previous status)"
                    ),
                });
            };
            peek = Some(status);
            status = last;
        } else if status != 0xFF {
            // Meta messages do not set running status; everything else does, sysex included.
            last_status = Some(status);
        }
        let msg = match status {
            0xFF => read_meta(r)?,
            // A running-status byte after a sysex is dropped: mido reads a sysex length next.
            0xF0 | 0xF7 => read_sysex(r)?,
            _ => read_channel_or_system(r, status, peek, status_offset)?,
        };
        // mido builds unknown meta messages without their delta time.
        let time = if matches!(msg, Msg::UnknownMeta { .. }) {
            0
        } else {
            delta
        };
        track.push(Timed { time, msg });
    }
    Ok(track)
}

fn read_sysex(r: &mut Reader<'_>) -> Result<Msg> {
    let length = r.vlq("a sysex length")?;
    let start = r.pos;
    let mut data = r.take(length, "sysex")?;
    if data.first() == Some(&0xF0) {
        data.remove(0);
    }
    if data.last() == Some(&0xF7) {
        data.pop();
    }
    if let Some(b) = data.iter().find(|&&b| b > 127) {
        return Err(Error::Midi {
            offset: start,
            message: format!("sysex data byte 0x{b:02x} is not in range 0..127"),
        });
    }
    Ok(Msg::Sysex(data))
}

fn read_channel_or_system(
    r: &mut Reader<'_>,
    status: u8,
    peek: Option<u8>,
    status_offset: usize,
) -> Result<Msg> {
    let Some(length) = message_length(status) else {
        return Err(Error::Midi {
            offset: status_offset,
            message: format!("undefined status byte 0x{status:02x}"),
        });
    };
    let mut data = [0u8; 2];
    let mut n = 0;
    if let Some(p) = peek {
        if length == 1 {
            return Err(Error::Midi {
                offset: status_offset,
                message: format!(
                    "data byte 0x{p:02x} after a 0x{status:02x} message, which takes no data \
                     (wrong number of bytes for running status)"
                ),
            });
        }
        data[0] = p;
        n = 1;
    }
    while n < length - 1 {
        data[n] = r.byte("message data")?;
        n += 1;
    }
    if let Some(b) = data[..n].iter().find(|&&b| b > 127) {
        return Err(r.error(format!(
            "data byte 0x{b:02x} of a 0x{status:02x} message is not in range 0..127"
        )));
    }
    let channel = status & 0x0F;
    let [a, b] = data;
    Ok(match status {
        0x80..=0x8F => Msg::NoteOff {
            channel,
            note: a,
            velocity: b,
        },
        0x90..=0x9F => Msg::NoteOn {
            channel,
            note: a,
            velocity: b,
        },
        0xA0..=0xAF => Msg::Polytouch {
            channel,
            note: a,
            value: b,
        },
        0xB0..=0xBF => Msg::ControlChange {
            channel,
            control: a,
            value: b,
        },
        0xC0..=0xCF => Msg::ProgramChange {
            channel,
            program: a,
        },
        0xD0..=0xDF => Msg::Aftertouch { channel, value: a },
        0xE0..=0xEF => Msg::Pitchwheel {
            channel,
            // 14 bits minus 8192: -8192..=8191.
            pitch: (i16::from(a) | (i16::from(b) << 7)) - 8192,
        },
        0xF1 => Msg::QuarterFrame {
            frame_type: a >> 4,
            frame_value: a & 0x0F,
        },
        0xF2 => Msg::Songpos(u16::from(a) | (u16::from(b) << 7)),
        0xF3 => Msg::SongSelect(a),
        0xF6 => Msg::TuneRequest,
        0xF8 => Msg::Clock,
        0xFA => Msg::Start,
        0xFB => Msg::Continue,
        0xFC => Msg::Stop,
        0xFE => Msg::ActiveSensing,
        _ => Msg::Reset,
    })
}

/// mido's `read_meta_message` and `build_meta_message`, with the checks its meta specs make.
fn read_meta(r: &mut Reader<'_>) -> Result<Msg> {
    let type_offset = r.pos;
    let type_byte = r.byte("a meta message type")?;
    let length = r.vlq("a meta message length")?;
    let data = r.take(length, "meta message")?;
    let bad = |message: String| Error::Midi {
        offset: type_offset - 1,
        message,
    };
    let short = |name: &str, needed: usize| {
        bad(format!(
            "{name} meta message (0x{type_byte:02x}) holds {} data bytes, expected {needed}",
            data.len()
        ))
    };
    let need = |name: &str, needed: usize| {
        if data.len() < needed {
            Err(short(name, needed))
        } else {
            Ok(&data[..needed])
        }
    };
    if let Some(kind) = TextKind::from_type_byte(type_byte) {
        return Ok(Msg::Text(kind, data));
    }
    Ok(match type_byte {
        0x00 => match data.len() {
            0 => Msg::SequenceNumber(0),
            _ => {
                let d = need("sequence_number", 2)?;
                Msg::SequenceNumber(u16::from_be_bytes([d[0], d[1]]))
            }
        },
        0x20 => Msg::ChannelPrefix(need("channel_prefix", 1)?[0]),
        0x21 => Msg::MidiPort(data.first().copied().unwrap_or(0)),
        0x2F => Msg::EndOfTrack,
        0x51 => {
            let d = need("set_tempo", 3)?;
            Msg::SetTempo(u32::from_be_bytes([0, d[0], d[1], d[2]]))
        }
        0x54 => {
            let d = need("smpte_offset", 5)?;
            let frame_rate = d[0] >> 5;
            if frame_rate > 3 {
                return Err(bad(format!(
                    "smpte_offset frame rate code {frame_rate} is not one of 0..3"
                )));
            }
            let check = |name: &str, value: u8, max: u8| {
                if value > max {
                    Err(bad(format!(
                        "smpte_offset {name} {value} is not in range 0..{max}"
                    )))
                } else {
                    Ok(value)
                }
            };
            Msg::SmpteOffset(Smpte {
                frame_rate,
                hours: d[0] & 0x1F,
                minutes: check("minutes", d[1], 59)?,
                seconds: check("seconds", d[2], 59)?,
                frames: d[3],
                sub_frames: check("sub_frames", d[4], 99)?,
            })
        }
        0x58 => {
            let d = need("time_signature", 4)?;
            if !denominator_exponent_ok(d[1]) {
                return Err(bad(format!(
                    "time_signature denominator 2**{} is refused by mido \
                     (`denominator must be a power of 2`: math.log(2**{0}, 2) is not exact)",
                    d[1]
                )));
            }
            Msg::TimeSignature {
                numerator: d[0],
                denominator_log2: d[1],
                clocks_per_click: d[2],
                notated_32nd_notes_per_beat: d[3],
            }
        }
        0x59 => {
            let d = need("key_signature", 2)?;
            let sharps = i8::from_be_bytes([d[0]]);
            let mode = d[1];
            let index = KEY_SIGNATURES
                .iter()
                .position(|&(s, m, _)| s == sharps && m == mode)
                .ok_or_else(|| {
                    bad(format!(
                        "could not decode key_signature with {sharps} sharps and mode {mode} \
                         (expected -7..7 sharps and mode 0 or 1)"
                    ))
                })?;
            Msg::KeySignature(index)
        }
        0x7F => Msg::SequencerSpecific(data),
        _ => Msg::UnknownMeta { type_byte, data },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(format: u16, tracks: &[&[u8]]) -> Vec<u8> {
        let mut out = b"MThd\0\0\0\x06".to_vec();
        out.extend_from_slice(&format.to_be_bytes());
        out.extend_from_slice(&(tracks.len() as u16).to_be_bytes());
        out.extend_from_slice(&96u16.to_be_bytes());
        for t in tracks {
            out.extend_from_slice(b"MTrk");
            out.extend_from_slice(&(t.len() as u32).to_be_bytes());
            out.extend_from_slice(t);
        }
        out
    }

    #[test]
    fn merge_keeps_track_order_on_ties_and_moves_end_of_track() {
        let a: &[u8] = b"\x00\x90\x3c\x40\x10\x80\x3c\x00\x05\xff\x2f\x00";
        let b: &[u8] = b"\x10\x91\x3e\x40\x00\xff\x2f\x00";
        let mtf = midi_to_mtf(&file(1, &[a, b]), true).unwrap();
        assert_eq!(
            mtf,
            "ticks_per_beat 96\nnote_on 0 0 60 64\nnote_off 16 0 60 0\n\
             note_on 0 1 62 64\nend_of_track 5"
        );
    }

    #[test]
    fn m3_mode_drops_text_with_its_delta() {
        let t: &[u8] = b"\x00\x90\x3c\x40\x07\xff\x01\x02a\\\x03\x80\x3c\x00\x00\xff\x2f\x00";
        let f = file(0, &[t]);
        assert_eq!(
            midi_to_mtf(&f, true).unwrap(),
            "ticks_per_beat 96\nnote_on 0 0 60 64\nnote_off 3 0 60 0\nend_of_track 0"
        );
        assert_eq!(
            midi_to_mtf(&f, false).unwrap(),
            "ticks_per_beat 96\nnote_on 0 0 60 64\ntext a\\\\ 7\nnote_off 3 0 60 0\nend_of_track 0"
        );
    }

    #[test]
    fn running_status_after_sysex_reads_another_sysex() {
        // F0 01 7F F7, then data byte 0x02: mido treats it as running status F0 and reads a
        // sysex length from the next byte (0x01), then one byte.
        let t: &[u8] = b"\x00\xf0\x02\x7f\xf7\x00\x02\x01\x05";
        let mtf = midi_to_mtf(&file(0, &[t]), true).unwrap();
        assert_eq!(
            mtf,
            "ticks_per_beat 96\nsysex 0 [127]\nsysex 0 [5]\nend_of_track 0"
        );
    }

    #[test]
    fn format_2_is_refused() {
        let t: &[u8] = b"\x00\xff\x2f\x00";
        assert!(matches!(
            midi_to_mtf(&file(2, &[t]), true),
            Err(Error::MidiFormat2)
        ));
    }

    #[test]
    fn errors_name_offset_and_reason() {
        let err = midi_to_mtf(b"", true).unwrap_err().to_string();
        assert!(err.contains("unexpected end of file"), "{err}");
        let err = midi_to_mtf(b"RIFF\0\0\0\x04abcd", true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("MThd"), "{err}");
        let t: &[u8] = b"\x00\x90\x3c\x90";
        let err = midi_to_mtf(&file(0, &[t]), true).unwrap_err().to_string();
        assert!(err.contains("0..127"), "{err}");
    }
}
