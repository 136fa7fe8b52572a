//! MIDI messages as mido 1.3.0 models them: what a MIDI file holds, how MTF prints it and how it
//! is written back.
//!
//! mido's attribute order (`msg.dict()`), value ranges (its `check_*` functions and meta specs) and
//! byte encodings are reproduced here because MTF is literally mido's `dict()` values joined by
//! spaces: `mido/messages/specs.py`, `checks.py`, `encode.py` and `mido/midifiles/meta.py` of
//! mido 1.3.0.

use std::fmt::Write as _;

use super::pystr::unicode_escape_latin1;

/// The eight text-like meta messages; m3 mode drops them from MTF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextKind {
    Text,
    Copyright,
    TrackName,
    InstrumentName,
    Lyrics,
    Marker,
    CueMarker,
    DeviceName,
}

impl TextKind {
    pub(crate) const ALL: [TextKind; 8] = [
        TextKind::Text,
        TextKind::Copyright,
        TextKind::TrackName,
        TextKind::InstrumentName,
        TextKind::Lyrics,
        TextKind::Marker,
        TextKind::CueMarker,
        TextKind::DeviceName,
    ];

    /// mido's type name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            TextKind::Text => "text",
            TextKind::Copyright => "copyright",
            TextKind::TrackName => "track_name",
            TextKind::InstrumentName => "instrument_name",
            TextKind::Lyrics => "lyrics",
            TextKind::Marker => "marker",
            TextKind::CueMarker => "cue_marker",
            TextKind::DeviceName => "device_name",
        }
    }

    /// The meta type byte in a MIDI file.
    pub(crate) fn type_byte(self) -> u8 {
        match self {
            TextKind::Text => 0x01,
            TextKind::Copyright => 0x02,
            TextKind::TrackName => 0x03,
            TextKind::InstrumentName => 0x04,
            TextKind::Lyrics => 0x05,
            TextKind::Marker => 0x06,
            TextKind::CueMarker => 0x07,
            TextKind::DeviceName => 0x09,
        }
    }

    pub(crate) fn from_type_byte(byte: u8) -> Option<TextKind> {
        TextKind::ALL.into_iter().find(|k| k.type_byte() == byte)
    }

    pub(crate) fn from_name(name: &str) -> Option<TextKind> {
        TextKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// mido's key signature table (`_key_signature_decode`): (sharps, mode, name); flats are negative
/// sharps, mode 0 is major and 1 minor.
pub(crate) const KEY_SIGNATURES: [(i8, u8, &str); 30] = [
    (-7, 0, "Cb"),
    (-6, 0, "Gb"),
    (-5, 0, "Db"),
    (-4, 0, "Ab"),
    (-3, 0, "Eb"),
    (-2, 0, "Bb"),
    (-1, 0, "F"),
    (0, 0, "C"),
    (1, 0, "G"),
    (2, 0, "D"),
    (3, 0, "A"),
    (4, 0, "E"),
    (5, 0, "B"),
    (6, 0, "F#"),
    (7, 0, "C#"),
    (-7, 1, "Abm"),
    (-6, 1, "Ebm"),
    (-5, 1, "Bbm"),
    (-4, 1, "Fm"),
    (-3, 1, "Cm"),
    (-2, 1, "Gm"),
    (-1, 1, "Dm"),
    (0, 1, "Am"),
    (1, 1, "Em"),
    (2, 1, "Bm"),
    (3, 1, "F#m"),
    (4, 1, "C#m"),
    (5, 1, "G#m"),
    (6, 1, "D#m"),
    (7, 1, "A#m"),
];

/// SMPTE frame rates by their 2-bit code (`_smpte_framerate_decode`); 29.97 is printed as a float.
pub(crate) const SMPTE_FRAME_RATES: [&str; 4] = ["24", "25", "29.97", "30"];

/// Whether mido accepts `2**exponent` as a time signature denominator.
///
/// mido checks `math.log(value, 2) == int(math.log(value, 2))`, and `log(x) / log(2)` is not exact
/// for some powers of two (`math.log(2**29, 2) == 29.000000000000004`), so those denominators are
/// refused (`denominator must be a power of 2`). The same libm computation is done here; a unit
/// test pins the result to the table CPython gives.
pub(crate) fn denominator_exponent_ok(exponent: u8) -> bool {
    let ratio = 2f64.powi(i32::from(exponent)).ln() / 2f64.ln();
    ratio == ratio.trunc()
}

/// One message of a track, with mido's attributes (time is kept beside it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Msg {
    NoteOff {
        channel: u8,
        note: u8,
        velocity: u8,
    },
    NoteOn {
        channel: u8,
        note: u8,
        velocity: u8,
    },
    Polytouch {
        channel: u8,
        note: u8,
        value: u8,
    },
    ControlChange {
        channel: u8,
        control: u8,
        value: u8,
    },
    ProgramChange {
        channel: u8,
        program: u8,
    },
    Aftertouch {
        channel: u8,
        value: u8,
    },
    /// -8192..=8191.
    Pitchwheel {
        channel: u8,
        pitch: i16,
    },
    /// Data bytes without the F0/F7 framing, each 0..=127.
    Sysex(Vec<u8>),
    QuarterFrame {
        frame_type: u8,
        frame_value: u8,
    },
    /// 0..=16383.
    Songpos(u16),
    SongSelect(u8),
    TuneRequest,
    Clock,
    Start,
    Continue,
    Stop,
    ActiveSensing,
    Reset,
    SequenceNumber(u16),
    /// Text as Latin-1: one byte per character.
    Text(TextKind, Vec<u8>),
    ChannelPrefix(u8),
    MidiPort(u8),
    EndOfTrack,
    /// 0..=0xFFFFFF microseconds per beat.
    SetTempo(u32),
    SmpteOffset(Smpte),
    /// `denominator` is `2**denominator_log2`.
    TimeSignature {
        numerator: u8,
        denominator_log2: u8,
        clocks_per_click: u8,
        notated_32nd_notes_per_beat: u8,
    },
    /// Index into [`KEY_SIGNATURES`].
    KeySignature(usize),
    SequencerSpecific(Vec<u8>),
    /// A meta type mido does not know; printed and kept as raw bytes.
    UnknownMeta {
        type_byte: u8,
        data: Vec<u8>,
    },
}

/// `smpte_offset` fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Smpte {
    /// Index into [`SMPTE_FRAME_RATES`].
    pub frame_rate: u8,
    pub hours: u8,
    pub minutes: u8,
    pub seconds: u8,
    pub frames: u8,
    pub sub_frames: u8,
}

impl Msg {
    /// mido's `type` string.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Msg::NoteOff { .. } => "note_off",
            Msg::NoteOn { .. } => "note_on",
            Msg::Polytouch { .. } => "polytouch",
            Msg::ControlChange { .. } => "control_change",
            Msg::ProgramChange { .. } => "program_change",
            Msg::Aftertouch { .. } => "aftertouch",
            Msg::Pitchwheel { .. } => "pitchwheel",
            Msg::Sysex(_) => "sysex",
            Msg::QuarterFrame { .. } => "quarter_frame",
            Msg::Songpos(_) => "songpos",
            Msg::SongSelect(_) => "song_select",
            Msg::TuneRequest => "tune_request",
            Msg::Clock => "clock",
            Msg::Start => "start",
            Msg::Continue => "continue",
            Msg::Stop => "stop",
            Msg::ActiveSensing => "active_sensing",
            Msg::Reset => "reset",
            Msg::SequenceNumber(_) => "sequence_number",
            Msg::Text(kind, _) => kind.name(),
            Msg::ChannelPrefix(_) => "channel_prefix",
            Msg::MidiPort(_) => "midi_port",
            Msg::EndOfTrack => "end_of_track",
            Msg::SetTempo(_) => "set_tempo",
            Msg::SmpteOffset(_) => "smpte_offset",
            Msg::TimeSignature { .. } => "time_signature",
            Msg::KeySignature(_) => "key_signature",
            Msg::SequencerSpecific(_) => "sequencer_specific",
            Msg::UnknownMeta { .. } => "unknown_meta",
        }
    }

    /// mido's `is_realtime`: the types `MidiFile.save` refuses (`REALTIME_TYPES`, which includes
    /// `tune_request` but not `active_sensing` or `reset`).
    pub(crate) fn is_refused_in_files(&self) -> bool {
        matches!(
            self,
            Msg::TuneRequest | Msg::Clock | Msg::Start | Msg::Continue | Msg::Stop
        )
    }

    /// Appends the MTF line of this message: mido's `msg.dict()` values joined by spaces, passed
    /// through `unicode_escape` (only text can hold characters it changes).
    pub(crate) fn write_mtf(&self, time: u128, out: &mut String) {
        out.push_str(self.type_name());
        // `write!` into a String cannot fail.
        let mut push = |args: std::fmt::Arguments<'_>| {
            let _ = out.write_fmt(args);
        };
        match self {
            Msg::NoteOff {
                channel,
                note,
                velocity,
            }
            | Msg::NoteOn {
                channel,
                note,
                velocity,
            } => push(format_args!(" {time} {channel} {note} {velocity}")),
            Msg::Polytouch {
                channel,
                note,
                value,
            } => push(format_args!(" {time} {channel} {note} {value}")),
            Msg::ControlChange {
                channel,
                control,
                value,
            } => push(format_args!(" {time} {channel} {control} {value}")),
            Msg::ProgramChange { channel, program } => {
                push(format_args!(" {time} {channel} {program}"))
            }
            Msg::Aftertouch { channel, value } => push(format_args!(" {time} {channel} {value}")),
            Msg::Pitchwheel { channel, pitch } => push(format_args!(" {time} {channel} {pitch}")),
            Msg::Sysex(data) => {
                push(format_args!(" {time} "));
                write_python_sequence(out, data, '[', ']');
            }
            Msg::QuarterFrame {
                frame_type,
                frame_value,
            } => push(format_args!(" {time} {frame_type} {frame_value}")),
            Msg::Songpos(pos) => push(format_args!(" {time} {pos}")),
            Msg::SongSelect(song) => push(format_args!(" {time} {song}")),
            Msg::TuneRequest
            | Msg::Clock
            | Msg::Start
            | Msg::Continue
            | Msg::Stop
            | Msg::ActiveSensing
            | Msg::Reset => push(format_args!(" {time}")),
            Msg::SequenceNumber(n) => push(format_args!(" {n} {time}")),
            Msg::Text(_, text) => {
                out.push(' ');
                unicode_escape_latin1(text, out);
                let _ = write!(out, " {time}");
            }
            Msg::ChannelPrefix(v) | Msg::MidiPort(v) => push(format_args!(" {v} {time}")),
            Msg::EndOfTrack => push(format_args!(" {time}")),
            Msg::SetTempo(tempo) => push(format_args!(" {tempo} {time}")),
            Msg::SmpteOffset(s) => push(format_args!(
                " {} {} {} {} {} {} {time}",
                SMPTE_FRAME_RATES[usize::from(s.frame_rate & 3)],
                s.hours,
                s.minutes,
                s.seconds,
                s.frames,
                s.sub_frames
            )),
            Msg::TimeSignature {
                numerator,
                denominator_log2,
                clocks_per_click,
                notated_32nd_notes_per_beat,
            } => push(format_args!(
                " {numerator} {} {clocks_per_click} {notated_32nd_notes_per_beat} {time}",
                pow2_decimal(*denominator_log2)
            )),
            Msg::KeySignature(index) => {
                let name = KEY_SIGNATURES.get(*index).map_or("C", |k| k.2);
                push(format_args!(" {name} {time}"))
            }
            Msg::SequencerSpecific(data) => {
                out.push(' ');
                write_python_sequence(out, data, '(', ')');
                let _ = write!(out, " {time}");
            }
            Msg::UnknownMeta { type_byte, data } => {
                let _ = write!(out, " {type_byte} ");
                write_python_sequence(out, data, '(', ')');
                let _ = write!(out, " {time}");
            }
        }
    }

    /// Appends the bytes `mido.MidiFile.save` writes for this message after its delta time
    /// (`write_track`), updating the running status as mido does: channel messages share a
    /// status byte with the previous one; meta, sysex and system messages clear it.
    pub(crate) fn encode(&self, running_status: &mut Option<u8>, out: &mut Vec<u8>) {
        let channel_message = |status: u8, data: &[u8], rs: &mut Option<u8>, out: &mut Vec<u8>| {
            if *rs != Some(status) {
                out.push(status);
            }
            out.extend_from_slice(data);
            *rs = Some(status);
        };
        let meta = |type_byte: u8, data: &[u8], rs: &mut Option<u8>, out: &mut Vec<u8>| {
            out.push(0xFF);
            out.push(type_byte);
            write_vlq(data.len() as u128, out);
            out.extend_from_slice(data);
            *rs = None;
        };
        let system = |bytes: &[u8], rs: &mut Option<u8>, out: &mut Vec<u8>| {
            out.extend_from_slice(bytes);
            *rs = None;
        };
        let rs = running_status;
        match self {
            Msg::NoteOff {
                channel,
                note,
                velocity,
            } => channel_message(0x80 | channel, &[*note, *velocity], rs, out),
            Msg::NoteOn {
                channel,
                note,
                velocity,
            } => channel_message(0x90 | channel, &[*note, *velocity], rs, out),
            Msg::Polytouch {
                channel,
                note,
                value,
            } => channel_message(0xA0 | channel, &[*note, *value], rs, out),
            Msg::ControlChange {
                channel,
                control,
                value,
            } => channel_message(0xB0 | channel, &[*control, *value], rs, out),
            Msg::ProgramChange { channel, program } => {
                channel_message(0xC0 | channel, &[*program], rs, out)
            }
            Msg::Aftertouch { channel, value } => {
                channel_message(0xD0 | channel, &[*value], rs, out)
            }
            Msg::Pitchwheel { channel, pitch } => {
                // Both 0..=16383 after the offset, so the casts cannot truncate.
                let raw = (i32::from(*pitch) + 8192).clamp(0, 16383) as u16;
                let data = [(raw & 0x7F) as u8, (raw >> 7) as u8];
                channel_message(0xE0 | channel, &data, rs, out)
            }
            Msg::Sysex(data) => {
                out.push(0xF0);
                write_vlq(data.len() as u128 + 1, out);
                out.extend_from_slice(data);
                out.push(0xF7);
                *rs = None;
            }
            Msg::QuarterFrame {
                frame_type,
                frame_value,
            } => system(&[0xF1, (frame_type << 4) | frame_value], rs, out),
            Msg::Songpos(pos) => system(&[0xF2, (pos & 0x7F) as u8, (pos >> 7) as u8], rs, out),
            Msg::SongSelect(song) => system(&[0xF3, *song], rs, out),
            Msg::TuneRequest => system(&[0xF6], rs, out),
            Msg::Clock => system(&[0xF8], rs, out),
            Msg::Start => system(&[0xFA], rs, out),
            Msg::Continue => system(&[0xFB], rs, out),
            Msg::Stop => system(&[0xFC], rs, out),
            Msg::ActiveSensing => system(&[0xFE], rs, out),
            Msg::Reset => system(&[0xFF], rs, out),
            Msg::SequenceNumber(n) => meta(0x00, &n.to_be_bytes(), rs, out),
            Msg::Text(kind, text) => meta(kind.type_byte(), text, rs, out),
            Msg::ChannelPrefix(c) => meta(0x20, &[*c], rs, out),
            Msg::MidiPort(p) => meta(0x21, &[*p], rs, out),
            Msg::EndOfTrack => meta(0x2F, &[], rs, out),
            Msg::SetTempo(t) => {
                let b = t.to_be_bytes();
                meta(0x51, &b[1..], rs, out)
            }
            Msg::SmpteOffset(s) => meta(
                0x54,
                &[
                    (s.frame_rate << 5) | s.hours,
                    s.minutes,
                    s.seconds,
                    s.frames,
                    s.sub_frames,
                ],
                rs,
                out,
            ),
            Msg::TimeSignature {
                numerator,
                denominator_log2,
                clocks_per_click,
                notated_32nd_notes_per_beat,
            } => meta(
                0x58,
                &[
                    *numerator,
                    *denominator_log2,
                    *clocks_per_click,
                    *notated_32nd_notes_per_beat,
                ],
                rs,
                out,
            ),
            Msg::KeySignature(index) => {
                let (sharps, mode, _) = KEY_SIGNATURES.get(*index).copied().unwrap_or((0, 0, "C"));
                meta(0x59, &[sharps.to_be_bytes()[0], mode], rs, out)
            }
            Msg::SequencerSpecific(data) => meta(0x7F, data, rs, out),
            Msg::UnknownMeta { type_byte, data } => meta(*type_byte, data, rs, out),
        }
    }
}

/// Writes a variable-length quantity (big-endian 7-bit groups, high bit on all but the last).
pub(crate) fn write_vlq(mut value: u128, out: &mut Vec<u8>) {
    let mut groups = [0u8; 19];
    let mut n = 0;
    loop {
        groups[n] = (value & 0x7F) as u8;
        n += 1;
        value >>= 7;
        if value == 0 {
            break;
        }
    }
    for i in (0..n).rev() {
        out.push(if i == 0 { groups[i] } else { groups[i] | 0x80 });
    }
}

/// Python's `repr` of a list (`[1, 2]`, `[]`) or tuple (`(1, 2)`, `(5,)`, `()`) of small ints.
fn write_python_sequence(out: &mut String, data: &[u8], open: char, close: char) {
    out.push(open);
    for (i, byte) in data.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{byte}");
    }
    if open == '(' && data.len() == 1 {
        out.push(',');
    }
    out.push(close);
}

/// `2**exponent` in decimal (time signature denominators reach 2**255).
pub(crate) fn pow2_decimal(exponent: u8) -> String {
    if exponent < 128 {
        return (1u128 << exponent).to_string();
    }
    // Little-endian base-10^9 limbs, doubled `exponent` times from 1.
    let mut limbs: Vec<u32> = vec![1];
    for _ in 0..exponent {
        let mut carry = 0u32;
        for limb in &mut limbs {
            let v = *limb * 2 + carry;
            *limb = v % 1_000_000_000;
            carry = v / 1_000_000_000;
        }
        if carry > 0 {
            limbs.push(carry);
        }
    }
    let mut s = String::new();
    for (i, limb) in limbs.iter().rev().enumerate() {
        if i == 0 {
            let _ = write!(s, "{limb}");
        } else {
            let _ = write!(s, "{limb:09}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[k for k in range(256) if math.log(2**k, 2) != int(math.log(2**k, 2))]` in CPython 3.11.
    const CPYTHON_BAD_DENOMINATOR_EXPONENTS: [u8; 51] = [
        29, 31, 39, 47, 51, 55, 58, 59, 62, 78, 93, 94, 95, 101, 102, 109, 110, 116, 117, 118, 124,
        125, 141, 156, 171, 179, 186, 187, 188, 189, 190, 201, 202, 203, 204, 205, 217, 218, 219,
        220, 221, 232, 233, 234, 235, 236, 247, 248, 249, 250, 251,
    ];

    #[test]
    fn denominator_check_matches_cpython() {
        for k in 0..=255u8 {
            assert_eq!(
                denominator_exponent_ok(k),
                !CPYTHON_BAD_DENOMINATOR_EXPONENTS.contains(&k),
                "exponent {k}"
            );
        }
    }

    #[test]
    fn pow2_decimal_big() {
        assert_eq!(pow2_decimal(0), "1");
        assert_eq!(pow2_decimal(127), (1u128 << 127).to_string());
        assert_eq!(
            pow2_decimal(255),
            "57896044618658097711785492504343953926634992332820282019728792003956564819968"
        );
        assert_eq!(pow2_decimal(128), "340282366920938463463374607431768211456");
    }

    #[test]
    fn python_sequences() {
        let mut s = String::new();
        write_python_sequence(&mut s, &[5], '(', ')');
        write_python_sequence(&mut s, &[], '(', ')');
        write_python_sequence(&mut s, &[1, 2], '[', ']');
        write_python_sequence(&mut s, &[], '[', ']');
        assert_eq!(s, "(5,)()[1, 2][]");
    }

    #[test]
    fn vlq() {
        let mut out = Vec::new();
        write_vlq(0, &mut out);
        write_vlq(127, &mut out);
        write_vlq(128, &mut out);
        write_vlq(0x0FFF_FFFF, &mut out);
        assert_eq!(out, [0x00, 0x7F, 0x81, 0x00, 0xFF, 0xFF, 0xFF, 0x7F]);
    }
}
