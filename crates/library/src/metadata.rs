//! What a file says about itself: titles, composers, track names, tags, and its size for the
//! model (audio length, patch count). Read when an item is added; never fails the add: a file
//! the model can embed but whose metadata cannot be read just has less of it.

use clamp3_features::input::{symbolic_input, symbolic_text};
use clamp3_features::FileKind;
use std::collections::BTreeMap;
use std::path::Path;

/// The metadata of one file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Described {
    /// Its title.
    pub title: Option<String>,
    /// Everything else, by name.
    pub metadata: BTreeMap<String, String>,
    /// Audio length in seconds.
    pub duration_s: Option<f64>,
    /// M3 patch count of sheet music and MIDI.
    pub patches: Option<usize>,
}

/// The metadata of `path` (of `kind`) whose contents are `bytes`.
pub fn describe(path: &Path, kind: FileKind, bytes: &[u8]) -> Described {
    let mut out = Described::default();
    match kind {
        FileKind::Text => {
            out.title = String::from_utf8_lossy(bytes)
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map(|l| l.chars().take(120).collect());
        }
        FileKind::Abc | FileKind::MusicXml | FileKind::Midi | FileKind::Mtf => {
            let text = symbolic_text(kind, path, bytes).ok();
            if let Some(text) = &text {
                out.patches = symbolic_input(text).ok().map(|input| input.len());
            }
            match kind {
                FileKind::Abc | FileKind::MusicXml => {
                    if let Some(text) = &text {
                        abc_headers(text, &mut out);
                    }
                }
                FileKind::Midi => {
                    // The M3 text drops names and tempo; the full MTF keeps them.
                    if let Ok(full) = clamp3_formats::midi::midi_to_mtf(bytes, false) {
                        mtf_meta(&full, &mut out);
                    }
                }
                _ => {
                    if let Some(text) = &text {
                        mtf_meta(text, &mut out);
                    }
                }
            }
        }
        FileKind::Audio => {
            if let Ok(mut decoder) = clamp3_audio::MonoDecoder::open(path) {
                out.duration_s = decoder.duration_hint();
                for (name, value) in decoder.tags() {
                    if name == "title" {
                        out.title = Some(value);
                    } else {
                        out.metadata.insert(name.to_string(), value);
                    }
                }
            }
        }
        FileKind::MertFeatures | FileKind::Image => {}
    }
    out
}

/// ABC header fields: `T:` (the first is the title, later ones subtitles), `C:` composer,
/// `O:` origin, `R:` rhythm, `M:` meter, `K:` key, `Q:` tempo, `Z:` transcriber.
fn abc_headers(text: &str, out: &mut Described) {
    for line in text.lines() {
        let Some((field, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if value.is_empty() || field.len() != 1 {
            continue;
        }
        let name = match field {
            "T" if out.title.is_none() => {
                out.title = Some(value.to_string());
                continue;
            }
            "T" => "subtitle",
            "C" => "composer",
            "O" => "origin",
            "R" => "rhythm",
            "M" => "meter",
            "K" => "key",
            "Q" => "tempo",
            "Z" => "transcription",
            _ => continue,
        };
        out.metadata
            .entry(name.to_string())
            .or_insert_with(|| value.to_string());
        // The body starts after `K:`: fields there are inline changes, not the tune's.
        if field == "K" {
            break;
        }
    }
}

/// MTF meta messages: track names (the first is the title), copyright, the first tempo (as
/// beats per minute), time and key signatures.
fn mtf_meta(text: &str, out: &mut Described) {
    let mut tracks: Vec<String> = Vec::new();
    for line in text.lines() {
        let Some((kind, rest)) = line.split_once(' ') else {
            continue;
        };
        match kind {
            "track_name" | "copyright" => {
                // `<kind> <text> <time>`: the text may hold spaces, the time never.
                let Some((name, _time)) = rest.rsplit_once(' ') else {
                    continue;
                };
                let name = name.trim();
                if name.is_empty() {
                    continue;
                }
                if kind == "copyright" {
                    out.metadata
                        .entry("copyright".into())
                        .or_insert_with(|| name.to_string());
                } else if !tracks.iter().any(|t| t == name) {
                    tracks.push(name.to_string());
                }
            }
            "set_tempo" if !out.metadata.contains_key("tempo") => {
                let micros = rest.split(' ').next().and_then(|t| t.parse::<f64>().ok());
                if let Some(micros) = micros.filter(|&m| m > 0.0) {
                    let bpm = 60_000_000.0 / micros;
                    out.metadata
                        .insert("tempo".into(), format!("{:.0}", bpm.round()));
                }
            }
            "time_signature" if !out.metadata.contains_key("meter") => {
                let mut fields = rest.split(' ');
                if let (Some(n), Some(d)) = (fields.next(), fields.next()) {
                    out.metadata.insert("meter".into(), format!("{n}/{d}"));
                }
            }
            "key_signature" if !out.metadata.contains_key("key") => {
                if let Some(key) = rest.split(' ').next() {
                    out.metadata.insert("key".into(), key.to_string());
                }
            }
            _ => {}
        }
    }
    if let Some(first) = tracks.first() {
        out.title = Some(first.clone());
    }
    if tracks.len() > 1 {
        out.metadata.insert("tracks".into(), tracks.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abc_headers_stop_at_the_key() {
        let mut out = Described::default();
        abc_headers(
            "X:1\nT:Tune\nT:Second\nC:Trad.\nM:6/8\nK:G\nT:inline\n|:GAB|]\n",
            &mut out,
        );
        assert_eq!(out.title.as_deref(), Some("Tune"));
        assert_eq!(out.metadata["subtitle"], "Second");
        assert_eq!(out.metadata["composer"], "Trad.");
        assert_eq!(out.metadata["meter"], "6/8");
        assert_eq!(out.metadata["key"], "G");
    }

    #[test]
    fn mtf_names_and_tempo() {
        let mut out = Described::default();
        mtf_meta(
            "ticks_per_beat 480\ntrack_name Grand Piano 0\nset_tempo 400000 0\ntime_signature 3 4 24 8 0\ntrack_name Strings 0\nset_tempo 500000 10\n",
            &mut out,
        );
        assert_eq!(out.title.as_deref(), Some("Grand Piano"));
        assert_eq!(out.metadata["tempo"], "150");
        assert_eq!(out.metadata["meter"], "3/4");
        assert_eq!(out.metadata["tracks"], "Grand Piano, Strings");
    }
}
