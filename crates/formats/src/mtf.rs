//! MTF → MIDI, the way back from the text CLaMP 3 reads (see [`crate::midi`] for the format).
//!
//! Port of `str_to_msg` and `convert_mtf2midi` in the reference's
//! `preprocessing/midi/batch_mtf2midi.py`
//! (<https://github.com/sanderwood/clamp3/blob/9016d2b/preprocessing/midi/batch_mtf2midi.py>):
//! the first line gives `ticks_per_beat`, every other line becomes one message of a single track,
//! and the result is what mido 1.3.0's `MidiFile.save` writes for a format-1 file with that track
//! (running status for channel messages, one `end_of_track` at the end carrying the delta times of
//! any `end_of_track` lines).
//!
//! The reference's reading rules are kept, odd ones included: a line containing `unknown_meta`
//! anywhere is skipped; a line with only a type name gives mido's default message (`note_on` is
//! channel 0, note 0, velocity 64); values beyond the ones a message needs are ignored; numbers
//! are read as Python's `float()` and must be whole where mido wants an `int`; `[]`, `()` and
//! `(5,)` cannot be read back; text goes through Python's `unicode_escape` decoding. Whatever makes
//! the reference fail is an [`Error::AtLine`] naming the line and the reason, including the
//! messages mido refuses to save (`tune_request`, `clock`, `start`, `continue`, `stop`).
//! Where mido writes a partial file before failing, nothing is returned here.
//!
//! Known differences, all on text no converter writes: numbers spelled with non-ASCII digits
//! (Python accepts `٣`), delta times of 2^127 ticks or more, and `\N{name}` escapes in text are
//! errors here, while the reference converts them.
//!
//! ```
//! # fn main() -> clamp3_formats::Result<()> {
//! let mtf = "ticks_per_beat 96\nnote_on 0 0 60 64\nnote_on 96 0 60 0\nend_of_track 0";
//! let midi = clamp3_formats::mtf::mtf_to_midi(mtf)?;
//! assert_eq!(&midi[..14], b"MThd\0\0\0\x06\0\x01\0\x01\0\x60");
//! assert_eq!(clamp3_formats::midi::midi_to_mtf(&midi, true)?, mtf);
//! # Ok(())
//! # }
//! ```

use crate::midi::pystr::{python_float, python_int, splitlines, unicode_unescape_latin1};
use crate::midi::{denominator_exponent_ok, write_vlq, Msg, Smpte, TextKind, KEY_SIGNATURES};
use crate::{Error, Result};

/// Converts MTF text to the bytes of a Standard MIDI File, as the reference's
/// `batch_mtf2midi.py` writes them with mido.
///
/// # Errors
///
/// [`Error::AtLine`] (1-based line) for every input the reference cannot convert: a missing or
/// malformed `ticks_per_beat` line, an unknown message type, too few or unreadable values, values
/// out of mido's ranges, fractional or negative delta times, and messages mido refuses to write
/// to a file.
pub fn mtf_to_midi(text: &str) -> Result<Vec<u8>> {
    let lines = splitlines(text);
    let Some(first) = lines.first() else {
        return Err(at(
            1,
            "the text is empty; expected a first line `ticks_per_beat N`",
        ));
    };
    let ticks_per_beat = parse_ticks_per_beat(first)?;

    let mut messages = Vec::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate().skip(1) {
        if line.contains("unknown_meta") {
            continue;
        }
        let (time, msg) = parse_line(line).map_err(|message| at(index + 1, message))?;
        messages.push((index + 1, time, msg));
    }

    let mut out = Vec::with_capacity(22 + messages.len() * 4);
    out.extend_from_slice(b"MThd\0\0\0\x06\0\x01\0\x01");
    out.extend_from_slice(&ticks_per_beat.to_be_bytes());
    out.extend_from_slice(b"MTrk\0\0\0\0");
    let track_start = out.len();

    // mido's `fix_end_of_track` and `write_track`.
    let mut running_status = None;
    let mut accumulated: i128 = 0;
    let mut last_line = 1;
    for (line, time, msg) in &messages {
        last_line = *line;
        let time = accumulated
            .checked_add(*time)
            .ok_or_else(|| at(*line, "delta time overflows 128 bits"))?;
        if *msg == Msg::EndOfTrack {
            accumulated = time;
            continue;
        }
        accumulated = 0;
        write_message(*line, time, msg, &mut running_status, &mut out)?;
    }
    write_message(
        last_line,
        accumulated,
        &Msg::EndOfTrack,
        &mut running_status,
        &mut out,
    )?;

    let track_len = u32::try_from(out.len() - track_start)
        .map_err(|_| at(last_line, "the track is longer than 4 GiB"))?;
    out[track_start - 4..track_start].copy_from_slice(&track_len.to_be_bytes());
    Ok(out)
}

fn at(line: usize, message: impl Into<String>) -> Error {
    Error::AtLine {
        line,
        message: message.into(),
    }
}

/// `int(line.split(" ")[1])`, which `struct.pack('>h')` must then accept.
fn parse_ticks_per_beat(line: &str) -> Result<i16> {
    let Some(word) = line.split(' ').nth(1) else {
        return Err(at(
            1,
            format!("expected `ticks_per_beat N`, found {line:?} (no second word)"),
        ));
    };
    let value = python_int(word).ok_or_else(|| {
        at(
            1,
            format!("expected an integer ticks_per_beat, found {word:?}"),
        )
    })?;
    i16::try_from(value).map_err(|_| {
        at(
            1,
            format!("ticks_per_beat {value} does not fit the header (-32768..=32767)"),
        )
    })
}

fn write_message(
    line: usize,
    time: i128,
    msg: &Msg,
    running_status: &mut Option<u8>,
    out: &mut Vec<u8>,
) -> Result<()> {
    let Ok(time) = u128::try_from(time) else {
        return Err(at(
            line,
            format!(
                "{} has the delta time {time}; MIDI files need non-negative times",
                msg.type_name()
            ),
        ));
    };
    if msg.is_refused_in_files() {
        return Err(at(
            line,
            format!(
                "{} is a realtime message, which mido does not allow in MIDI files",
                msg.type_name()
            ),
        ));
    }
    write_vlq(time, out);
    msg.encode(running_status, out);
    Ok(())
}

/// One value of a line as `str_to_msg` splits it.
#[derive(Debug)]
enum Value<'a> {
    /// A space-separated word.
    Word(&'a str),
    /// A `[..]` or `(..)` group of integers.
    List(Vec<i128>),
    /// The text of a text-like meta message, unescaped to Latin-1 bytes.
    Text(Vec<u8>),
}

/// How `setattr` treats a message attribute.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// `time`: any number; MIDI files then need a whole one.
    Time,
    /// An integer in the inclusive range.
    Int(i128, i128),
    /// `smpte_offset.frame_rate`: 24, 25, 29.97 or 30 (stored as its code 0..3).
    FrameRate,
    /// `time_signature.denominator`: a power of two mido's log check accepts (stored as its
    /// exponent).
    Denominator,
    /// `key_signature.key` (stored as an index into the key table).
    Key,
    /// Text of a text-like meta message.
    Text,
    /// Sysex data bytes, 0..127.
    SysexData,
    /// Sequencer-specific data bytes, 0..255.
    MetaData,
}

/// An attribute: name, kind and mido's default (for numeric kinds).
type Field = (&'static str, Kind, i128);

const TIME: Field = ("time", Kind::Time, 0);
const CHANNEL: Field = ("channel", Kind::Int(0, 15), 0);
/// MIDI data bytes.
const BYTE7: Kind = Kind::Int(0, 127);

/// Attributes in mido's `__dict__` order after `type`: `time` first for MIDI messages, last for
/// meta messages.
fn fields(type_name: &str) -> Option<&'static [Field]> {
    Some(match type_name {
        "note_off" | "note_on" => &[TIME, CHANNEL, ("note", BYTE7, 0), ("velocity", BYTE7, 64)],
        "polytouch" => &[TIME, CHANNEL, ("note", BYTE7, 0), ("value", BYTE7, 0)],
        "control_change" => &[TIME, CHANNEL, ("control", BYTE7, 0), ("value", BYTE7, 0)],
        "program_change" => &[TIME, CHANNEL, ("program", BYTE7, 0)],
        "aftertouch" => &[TIME, CHANNEL, ("value", BYTE7, 0)],
        "pitchwheel" => &[TIME, CHANNEL, ("pitch", Kind::Int(-8192, 8191), 0)],
        "sysex" => &[TIME, ("data", Kind::SysexData, 0)],
        "quarter_frame" => &[
            TIME,
            ("frame_type", Kind::Int(0, 7), 0),
            ("frame_value", Kind::Int(0, 15), 0),
        ],
        "songpos" => &[TIME, ("pos", Kind::Int(0, 16383), 0)],
        "song_select" => &[TIME, ("song", BYTE7, 0)],
        "tune_request" | "clock" | "start" | "continue" | "stop" | "active_sensing" | "reset"
        | "end_of_track" => &[TIME],
        "sequence_number" => &[("number", Kind::Int(0, 0xFFFF), 0), TIME],
        "text" | "copyright" | "lyrics" | "marker" | "cue_marker" => {
            &[("text", Kind::Text, 0), TIME]
        }
        "track_name" | "instrument_name" | "device_name" => &[("name", Kind::Text, 0), TIME],
        "channel_prefix" => &[("channel", Kind::Int(0, 255), 0), TIME],
        "midi_port" => &[("port", Kind::Int(0, 255), 0), TIME],
        "set_tempo" => &[("tempo", Kind::Int(0, 0xFF_FFFF), 500_000), TIME],
        "smpte_offset" => &[
            ("frame_rate", Kind::FrameRate, 0),
            ("hours", Kind::Int(0, 255), 0),
            ("minutes", Kind::Int(0, 59), 0),
            ("seconds", Kind::Int(0, 59), 0),
            ("frames", Kind::Int(0, 255), 0),
            ("sub_frames", Kind::Int(0, 99), 0),
            TIME,
        ],
        "time_signature" => &[
            ("numerator", Kind::Int(0, 255), 4),
            ("denominator", Kind::Denominator, 2),
            ("clocks_per_click", Kind::Int(0, 255), 24),
            ("notated_32nd_notes_per_beat", Kind::Int(0, 255), 8),
            TIME,
        ],
        // Index 7 of the key table is C major, mido's default.
        "key_signature" => &[("key", Kind::Key, 7), TIME],
        "sequencer_specific" => &[("data", Kind::MetaData, 0), TIME],
        _ => return None,
    })
}

/// An attribute value after mido's checks.
#[derive(Debug, Clone)]
enum Stored {
    Int(i128),
    Bytes(Vec<u8>),
}

/// `str_to_msg` on one line, returning the message and its delta time.
fn parse_line(line: &str) -> std::result::Result<(i128, Msg), String> {
    let type_name = line.split(' ').next().unwrap_or("");
    let fields = fields(type_name).ok_or_else(|| {
        format!("unknown message type {type_name:?} (expected a mido message type such as note_on)")
    })?;
    let values = split_values(line, type_name)?;

    let mut stored: Vec<Stored> = fields
        .iter()
        .map(|&(_, kind, default)| match kind {
            Kind::Text | Kind::SysexData | Kind::MetaData => Stored::Bytes(Vec::new()),
            _ => Stored::Int(default),
        })
        .collect();
    if values.len() != 1 {
        for (i, &(name, kind, _)) in fields.iter().enumerate() {
            let Some(value) = values.get(i + 1) else {
                return Err(format!(
                    "{type_name} needs {} values after its type, found {}",
                    fields.len(),
                    values.len().saturating_sub(1)
                ));
            };
            stored[i] = check_value(type_name, name, kind, value)?;
        }
    }
    build(type_name, &stored)
}

/// The three ways `str_to_msg` splits a line.
fn split_values<'a>(
    line: &'a str,
    type_name: &'a str,
) -> std::result::Result<Vec<Value<'a>>, String> {
    let word = Value::Word;
    if TextKind::from_name(type_name).is_some() {
        let words: Vec<&str> = line.split(' ').collect();
        let inner = if words.len() > 2 {
            words[1..words.len() - 1].join(" ")
        } else {
            String::new()
        };
        let text = unicode_unescape_latin1(&inner)?;
        let last = words.last().copied().unwrap_or("");
        return Ok(vec![word(type_name), Value::Text(text), word(last)]);
    }
    let (open, close) = if line.contains('[') {
        ('[', ']')
    } else if line.contains('(') {
        ('(', ')')
    } else {
        return Ok(line.split(' ').map(word).collect());
    };
    let left = line.find(open).unwrap_or(0);
    let right = line
        .find(close)
        .ok_or_else(|| format!("found {open:?} without a closing {close:?}"))?;
    let inner = if right > left {
        &line[left + 1..right]
    } else {
        ""
    };
    let numbers = inner
        .split(", ")
        .map(|n| {
            python_int(n).ok_or_else(|| {
                format!(
                    "expected integers separated by \", \" inside {open}{close}, found {n:?} \
                     (empty and one-element groups such as [] and (5,) cannot be read back)"
                )
            })
        })
        .collect::<std::result::Result<Vec<i128>, String>>()?;
    let mut values: Vec<Value> = line[..left]
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(word)
        .collect();
    values.push(Value::List(numbers));
    values.extend(
        line[right + 1..]
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(word),
    );
    Ok(values)
}

/// A number as `str_to_msg` makes it: `float(value)`, turned into an `int` when whole.
enum Number {
    Int(i128),
    /// Whole but beyond `i128` (only a time signature denominator may be that large).
    BigInt(f64),
    Float(f64),
}

fn number(type_name: &str, name: &str, value: &Value<'_>) -> std::result::Result<Number, String> {
    let Value::Word(word) = value else {
        return Err(format!(
            "{type_name} {name}: expected a number, found a list or text"
        ));
    };
    // Fast path: up to 15 ASCII digits are exact in an f64, so `int(float(word))` is the integer.
    if !word.is_empty() && word.len() <= 15 && word.bytes().all(|b| b.is_ascii_digit()) {
        let v = word
            .bytes()
            .fold(0i128, |acc, b| acc * 10 + i128::from(b - b'0'));
        return Ok(Number::Int(v));
    }
    let f = python_float(word)
        .ok_or_else(|| format!("{type_name} {name}: expected a number, found {word:?}"))?;
    Ok(if f.is_finite() && f.fract() == 0.0 {
        // 2^127 is exactly representable; below it the conversion is exact.
        if f.abs() < 2f64.powi(127) {
            Number::Int(f as i128)
        } else {
            Number::BigInt(f)
        }
    } else {
        Number::Float(f)
    })
}

fn check_value(
    type_name: &str,
    name: &str,
    kind: Kind,
    value: &Value<'_>,
) -> std::result::Result<Stored, String> {
    let not_int = |n: &Number| match n {
        Number::Float(f) => format!("{type_name} {name} must be a whole number, found {f}"),
        _ => format!("{type_name} {name} is out of range"),
    };
    match kind {
        Kind::Time => match number(type_name, name, value)? {
            Number::Int(v) => Ok(Stored::Int(v)),
            Number::BigInt(f) => Err(format!(
                "{type_name} time {f} is too large (this port stops at 2^127 ticks)"
            )),
            Number::Float(f) => Err(format!(
                "{type_name} time {f} is not a whole number of ticks (mido: \
                 `message time must be int in MIDI file`)"
            )),
        },
        Kind::Int(low, high) => match number(type_name, name, value)? {
            Number::Int(v) if (low..=high).contains(&v) => Ok(Stored::Int(v)),
            Number::Int(v) => Err(format!(
                "{type_name} {name} must be in range {low}..{high}, found {v}"
            )),
            other => Err(not_int(&other)),
        },
        Kind::FrameRate => {
            let code = match number(type_name, name, value)? {
                Number::Int(24) => 0,
                Number::Int(25) => 1,
                Number::Float(29.97) => 2,
                Number::Int(30) => 3,
                _ => {
                    return Err(format!(
                        "{type_name} frame_rate must be one of 24, 25, 29.97, 30"
                    ))
                }
            };
            Ok(Stored::Int(code))
        }
        Kind::Denominator => {
            let v = match number(type_name, name, value)? {
                Number::Int(v) if v >= 1 => v as f64,
                Number::BigInt(f) if f > 0.0 && f <= 2f64.powi(255) => f,
                other => {
                    return Err(match other {
                        Number::Float(_) => not_int(&other),
                        _ => format!("{type_name} denominator must be in range 1..2**255"),
                    })
                }
            };
            // mido: `math.log(value, 2)` must be whole; its int is what gets written.
            let exponent = v.ln() / 2f64.ln();
            if exponent != exponent.trunc() || !(0.0..=255.0).contains(&exponent) {
                return Err(format!(
                    "{type_name} denominator must be a power of 2 (mido's log check), found {v}"
                ));
            }
            let exponent = exponent as u8;
            if !denominator_exponent_ok(exponent) {
                return Err(format!(
                    "{type_name} denominator 2**{exponent} fails mido's power-of-2 check"
                ));
            }
            Ok(Stored::Int(i128::from(exponent)))
        }
        Kind::Key => match value {
            Value::Word(w) => KEY_SIGNATURES
                .iter()
                .position(|k| k.2 == *w)
                .map(|i| Stored::Int(i as i128))
                .ok_or_else(|| format!("{type_name}: invalid key {w:?}")),
            _ => Err(format!(
                "{type_name}: key must be a key name such as C or F#m"
            )),
        },
        Kind::Text => match value {
            Value::Text(t) => Ok(Stored::Bytes(t.clone())),
            _ => Err(format!("{type_name} {name} must be text")),
        },
        Kind::SysexData | Kind::MetaData => {
            let max = if matches!(kind, Kind::SysexData) {
                127
            } else {
                255
            };
            match value {
                // An empty word is an empty sequence to Python.
                Value::Word("") => Ok(Stored::Bytes(Vec::new())),
                Value::List(items) => items
                    .iter()
                    .map(|&b| {
                        u8::try_from(b).ok().filter(|&b| b <= max).ok_or_else(|| {
                            format!("{type_name} data byte {b} is not in range 0..{max}")
                        })
                    })
                    .collect::<std::result::Result<Vec<u8>, String>>()
                    .map(Stored::Bytes),
                _ => Err(format!(
                    "{type_name} data must be a list of integers such as [1, 2]"
                )),
            }
        }
    }
}

fn build(type_name: &str, stored: &[Stored]) -> std::result::Result<(i128, Msg), String> {
    let int = |i: usize| match stored.get(i) {
        Some(Stored::Int(v)) => *v,
        _ => 0,
    };
    // Every value was range-checked against its field, so these casts do not truncate.
    let u8_at = |i: usize| int(i) as u8;
    let bytes = |i: usize| match stored.get(i) {
        Some(Stored::Bytes(b)) => b.clone(),
        _ => Vec::new(),
    };
    if let Some(kind) = TextKind::from_name(type_name) {
        return Ok((int(1), Msg::Text(kind, bytes(0))));
    }
    let channel_msg = |make: fn(u8, u8, u8) -> Msg| (int(0), make(u8_at(1), u8_at(2), u8_at(3)));
    Ok(match type_name {
        "note_off" => channel_msg(|channel, note, velocity| Msg::NoteOff {
            channel,
            note,
            velocity,
        }),
        "note_on" => channel_msg(|channel, note, velocity| Msg::NoteOn {
            channel,
            note,
            velocity,
        }),
        "polytouch" => channel_msg(|channel, note, value| Msg::Polytouch {
            channel,
            note,
            value,
        }),
        "control_change" => channel_msg(|channel, control, value| Msg::ControlChange {
            channel,
            control,
            value,
        }),
        "program_change" => {
            channel_msg(|channel, program, _| Msg::ProgramChange { channel, program })
        }
        "aftertouch" => channel_msg(|channel, value, _| Msg::Aftertouch { channel, value }),
        "pitchwheel" => (
            int(0),
            Msg::Pitchwheel {
                channel: u8_at(1),
                pitch: int(2) as i16,
            },
        ),
        "sysex" => (int(0), Msg::Sysex(bytes(1))),
        "quarter_frame" => (
            int(0),
            Msg::QuarterFrame {
                frame_type: u8_at(1),
                frame_value: u8_at(2),
            },
        ),
        "songpos" => (int(0), Msg::Songpos(int(1) as u16)),
        "song_select" => (int(0), Msg::SongSelect(u8_at(1))),
        "tune_request" => (int(0), Msg::TuneRequest),
        "clock" => (int(0), Msg::Clock),
        "start" => (int(0), Msg::Start),
        "continue" => (int(0), Msg::Continue),
        "stop" => (int(0), Msg::Stop),
        "active_sensing" => (int(0), Msg::ActiveSensing),
        "reset" => (int(0), Msg::Reset),
        "end_of_track" => (int(0), Msg::EndOfTrack),
        "sequence_number" => (int(1), Msg::SequenceNumber(int(0) as u16)),
        "channel_prefix" => (int(1), Msg::ChannelPrefix(u8_at(0))),
        "midi_port" => (int(1), Msg::MidiPort(u8_at(0))),
        "set_tempo" => (int(1), Msg::SetTempo(int(0) as u32)),
        "smpte_offset" => (
            int(6),
            Msg::SmpteOffset(Smpte {
                frame_rate: u8_at(0),
                hours: u8_at(1),
                minutes: u8_at(2),
                seconds: u8_at(3),
                frames: u8_at(4),
                sub_frames: u8_at(5),
            }),
        ),
        "time_signature" => (
            int(4),
            Msg::TimeSignature {
                numerator: u8_at(0),
                denominator_log2: u8_at(1),
                clocks_per_click: u8_at(2),
                notated_32nd_notes_per_beat: u8_at(3),
            },
        ),
        "key_signature" => (int(1), Msg::KeySignature(int(0) as usize)),
        "sequencer_specific" => (int(1), Msg::SequencerSpecific(bytes(0))),
        other => return Err(format!("unknown message type {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(midi: &[u8]) -> &[u8] {
        &midi[22..]
    }

    #[test]
    fn running_status_and_end_of_track() {
        let midi = mtf_to_midi(
            "ticks_per_beat 96\nnote_on 0 0 60 64\nend_of_track 5\nnote_on 3 0 60 0\nset_tempo 500000 0",
        )
        .unwrap();
        assert_eq!(
            track(&midi),
            b"\x00\x90\x3c\x40\x08\x3c\x00\x00\xff\x51\x03\x07\xa1\x20\x00\xff\x2f\x00"
        );
        assert_eq!(&midi[18..22], &(track(&midi).len() as u32).to_be_bytes());
    }

    #[test]
    fn reference_quirks() {
        // A type alone gives mido's defaults; extra values are ignored; unknown_meta is skipped.
        let midi = mtf_to_midi(
            "ticks_per_beat 1\nnote_on\nnote_on 1.0 0 60 64 99\nunknown_meta 8 (1, 2) 0\nsysex 0 [1, 2]",
        )
        .unwrap();
        assert_eq!(
            track(&midi),
            b"\x00\x90\x00\x40\x01\x3c\x40\x00\xf0\x03\x01\x02\xf7\x00\xff\x2f\x00"
        );
    }

    #[test]
    fn text_is_unescaped_to_latin1() {
        let midi = mtf_to_midi("ticks_per_beat 1\ntext caf\\xe9  x\\\\ 0").unwrap();
        assert_eq!(
            track(&midi),
            b"\x00\xff\x01\x08caf\xe9  x\\\x00\xff\x2f\x00"
        );
    }

    #[test]
    fn failures_of_the_reference_are_errors() {
        for (mtf, line) in [
            ("", 1),
            ("ticks_per_beat", 1),
            ("ticks_per_beat 99999", 1),
            ("ticks_per_beat 1\nsysex 0 []", 2),
            ("ticks_per_beat 1\nsequencer_specific (5,) 0", 2),
            ("ticks_per_beat 1\nnote_on 0 0 60 64\ntune_request 0", 3),
            ("ticks_per_beat 1\nnote_on 0.5 0 60 64", 2),
            ("ticks_per_beat 1\nnote_on -1 0 60 64", 2),
            ("ticks_per_beat 1\nnote_on 0 16 60 64", 2),
            ("ticks_per_beat 1\nnote_on 0 0 60", 2),
            ("ticks_per_beat 1\nbogus 0", 2),
            ("ticks_per_beat 1\ntime_signature 4 3 24 8 0", 2),
            ("ticks_per_beat 1\ntime_signature 4 536870912 24 8 0", 2),
            ("ticks_per_beat 1\nkey_signature H 0", 2),
            ("ticks_per_beat 1\ntext \\u20ac 0", 2),
        ] {
            match mtf_to_midi(mtf) {
                Err(Error::AtLine { line: l, .. }) => assert_eq!(l, line, "{mtf:?}"),
                other => panic!("{mtf:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn negative_time_can_be_absorbed_by_end_of_track() {
        let midi = mtf_to_midi("ticks_per_beat 1\nend_of_track 5\nnote_on -2 0 60 64").unwrap();
        assert_eq!(track(&midi), b"\x03\x90\x3c\x40\x00\xff\x2f\x00");
    }
}
