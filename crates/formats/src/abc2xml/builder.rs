//! abc2xml's `MusicXml` class: parse objects → MusicXML elements, measure by measure, voice by
//! voice, then the voices merged into parts and staves as `%%score` says.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;

use regex::Regex;

use super::parser::{simplify, ChordSym, Elem, Field, Lyric, Measure, Note, PercMidi, ScorePart};
use super::tree::{NodeId, Tree};
use crate::{Error, Result};

/// abc2xml's version, written into `<encoder>`.
pub(crate) const VERSION: u32 = 245;

fn re(pattern: &str) -> Regex {
    // The patterns are constants of this file; a typo fails every test at once.
    Regex::new(pattern).unwrap_or_else(|e| panic!("bad built-in pattern {pattern}: {e}"))
}

fn type_name(den: i128) -> Option<&'static str> {
    Some(match den {
        1 => "long",
        2 => "breve",
        4 => "whole",
        8 => "half",
        16 => "quarter",
        32 => "eighth",
        64 => "16th",
        128 => "32nd",
        256 => "64th",
        _ => return None,
    })
}
const TYPE_DENS: [i128; 9] = [1, 2, 4, 8, 16, 32, 64, 128, 256];

const DYNAMICS: [&str; 11] = [
    "p", "pp", "ppp", "pppp", "f", "ff", "fff", "ffff", "mp", "mf", "sfz",
];
const WEDGES: [&str; 8] = [
    ">(",
    ">)",
    "<(",
    "<)",
    "crescendo(",
    "crescendo)",
    "diminuendo(",
    "diminuendo)",
];

fn tempo_bpm(name: &str) -> Option<f64> {
    Some(match name {
        "larghissimo" => 40.0,
        "moderato" => 104.0,
        "adagissimo" => 44.0,
        "allegretto" => 112.0,
        "lentissimo" => 48.0,
        "allegro" => 120.0,
        "largo" => 56.0,
        "vivace" => 168.0,
        "adagio" => 59.0,
        "vivo" => 180.0,
        "lento" => 62.0,
        "presto" => 192.0,
        "larghetto" => 66.0,
        "allegrissimo" => 208.0,
        "adagietto" => 76.0,
        "vivacissimo" => 220.0,
        "andante" => 88.0,
        "prestissimo" => 240.0,
        "andantino" => 96.0,
        _ => return None,
    })
}

fn articulation(a: &str) -> Option<&'static str> {
    Some(match a {
        "." => "staccato",
        ">" | "accent" => "accent",
        "wedge" => "staccatissimo",
        "tenuto" => "tenuto",
        "breath" => "breath-mark",
        "marcato" | "^" => "strong-accent",
        "slide" => "scoop",
        _ => return None,
    })
}

fn ornament(a: &str) -> Option<&'static str> {
    Some(match a {
        "trill" | "T" => "trill-mark",
        "turn" => "turn",
        "uppermordent" | "pralltriller" => "inverted-mordent",
        "lowermordent" | "mordent" => "mordent",
        "invertedturn" => "inverted-turn",
        _ => return None,
    })
}

fn technical(a: &str) -> Option<&'static str> {
    Some(match a {
        "upbow" => "up-bow",
        "downbow" => "down-bow",
        "plus" => "stopped",
        "open" => "open-string",
        "snap" => "snap-pizzicato",
        "thumb" => "thumb-position",
        _ => return None,
    })
}

fn capo(d: &str) -> Option<(&'static str, &'static str, &'static str)> {
    Some(match d {
        "fine" => ("Fine", "fine", "yes"),
        "D.S." => ("D.S.", "dalsegno", "segno"),
        "D.C." | "dacapo" => ("D.C.", "dacapo", "yes"),
        "dacoda" => ("To Coda", "tocoda", "coda"),
        "coda" => ("coda", "coda", "coda"),
        "segno" => ("segno", "segno", "segno"),
        _ => return None,
    })
}

const SHARPNESS: [&str; 21] = [
    "Fb", "Cb", "Gb", "Db", "Ab", "Eb", "Bb", "F", "C", "G", "D", "A", "E", "B", "F#", "C#", "G#",
    "D#", "A#", "E#", "B#",
];

fn mode_offset(mode: &str) -> Option<(i64, &'static str)> {
    Some(match mode {
        "maj" => (8, "major"),
        "m" | "min" => (11, "minor"),
        "mix" => (9, "mixolydian"),
        "dor" => (10, "dorian"),
        "phr" => (12, "phrygian"),
        "lyd" => (7, "lydian"),
        "loc" => (13, "locrian"),
        _ => return None,
    })
}

fn clef_sign(clef: &str) -> (&'static str, &'static str) {
    match clef {
        "alto1" => ("C", "1"),
        "alto2" => ("C", "2"),
        "alto" => ("C", "3"),
        "alto4" | "tenor" => ("C", "4"),
        "bass3" => ("F", "3"),
        "bass" => ("F", "4"),
        "treble" => ("G", "2"),
        "perc" => ("percussion", ""),
        "tab" => ("TAB", "5"),
        _ => ("", ""),
    }
}

fn clef_for_line(step: &str) -> &'static str {
    match step {
        "B" => "treble",
        "G" => "alto1",
        "E" => "alto2",
        "C" => "alto",
        "A" => "tenor",
        "F" => "bass3",
        _ => "bass",
    }
}

fn alter_of(acc: &str) -> &'static str {
    match acc {
        "=" => "0",
        "_" => "-1",
        "__" => "-2",
        "^" => "1",
        _ => "2",
    }
}

fn accidental_name(acc: &str) -> &'static str {
    match acc {
        "=" => "natural",
        "_" => "flat",
        "__" => "flat-flat",
        "^" => "sharp",
        _ => "sharp-sharp",
    }
}

fn chord_kind(k: &str) -> Option<String> {
    let (maj, min, aug, dim, dom) = ("major", "minor", "augmented", "diminished", "dominant");
    let s = |a: &str, b: &str| format!("{a}{b}");
    Some(match k {
        "ma" | "Maj" | "maj" | "M" => maj.into(),
        "mi" | "min" | "m" | "-" => min.into(),
        "aug" | "+" => aug.into(),
        "dim" | "o" => dim.into(),
        "7" => dom.into(),
        "ma7" | "Maj7" | "M7" | "maj7" => s(maj, "-seventh"),
        "mi7" | "min7" | "m7" | "-7" => s(min, "-seventh"),
        "dim7" | "o7" => s(dim, "-seventh"),
        "aug7" | "+7" => s(aug, "-seventh"),
        "m7b5" | "mi7b5" => "half-diminished".into(),
        "6" | "ma6" | "M6" => s(maj, "-sixth"),
        "mi6" | "min6" | "m6" => s(min, "-sixth"),
        "9" => s(dom, "-ninth"),
        "ma9" | "M9" | "maj9" | "Maj9" => s(maj, "-ninth"),
        "mi9" | "min9" | "m9" => s(min, "-ninth"),
        "11" => s(dom, "-11th"),
        "ma11" | "M11" | "maj11" | "Maj11" => s(maj, "-11th"),
        "mi11" | "min11" | "m11" => s(min, "-11th"),
        "13" => s(dom, "-13th"),
        "ma13" | "M13" | "maj13" | "Maj13" => s(maj, "-13th"),
        "mi13" | "min13" | "m13" => s(min, "-13th"),
        "sus" | "sus4" => "suspended-fourth".into(),
        "sus2" => "suspended-second".into(),
        _ => return None,
    })
}

fn default_user_symbol(c: &str) -> Option<&'static str> {
    Some(match c {
        "~" => "roll",
        "H" => "fermata",
        "L" => ">",
        "M" => "lowermordent",
        "O" => "coda",
        "P" => "uppermordent",
        "S" => "segno",
        "T" => "trill",
        "u" => "upbow",
        "v" => "downbow",
        _ => return None,
    })
}

fn meta_name(t: &str) -> Option<&'static str> {
    Some(match t {
        "O" => "origin",
        "A" => "area",
        "Z" => "transcription",
        "N" => "notes",
        "G" => "group",
        "H" => "history",
        "R" => "rhythm",
        "B" => "book",
        "D" => "discography",
        "F" => "fileurl",
        "S" => "source",
        "P" => "partmap",
        "W" => "lyrics",
        _ => return None,
    })
}

const META_TYPES: [&str; 6] = [
    "composer",
    "lyricist",
    "poet",
    "arranger",
    "translator",
    "rights",
];
const PAGE_FORMAT_DEFAULTS: [f64; 7] = [0.75, 297.0, 210.0, 18.0, 18.0, 10.0, 10.0];

fn strip_deco(d: &str) -> &str {
    d.trim_matches(|c| c == '!' || c == '+')
}

/// An open tie: alteration, the notations element, overlay voice, the note element.
#[derive(Clone)]
struct OpenTie {
    alter: String,
    notations: NodeId,
    vnum: i64,
    note: NodeId,
}

/// A MIDI instrument used by a voice: part, voice, channel, program, volume, pan.
type MidiInst = (String, String, String, String, String, String);

/// Python-style ordered dict of field type → value.
pub(crate) type FieldMap = Vec<(String, String)>;

fn fm_get<'a>(m: &'a FieldMap, k: &str) -> Option<&'a str> {
    m.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
}

pub(crate) fn fm_set(m: &mut FieldMap, k: &str, v: String) {
    match m.iter_mut().find(|(a, _)| a == k) {
        Some(slot) => slot.1 = v,
        None => m.push((k.to_string(), v)),
    }
}

fn fm_del(m: &mut FieldMap, k: &str) {
    m.retain(|(a, _)| a != k);
}

/// The measure, level, staff and attribute list of a field in the body.
type BodyContext<'a> = (NodeId, usize, i64, &'a mut Vec<(u8, NodeId)>);

/// A parsed voice: id, its `V:` definition's tokens, its measures.
pub(crate) type ParsedVoice = (String, Option<Vec<String>>, Vec<Measure>);

/// Percussion map entry: display step, octave, MIDI number, note head.
type PercEntry = (String, i64, String, String);

/// The converter's state (abc2xml's `MusicXml` after `reset`).
pub(crate) struct Builder {
    pub tree: Tree,
    pub divisions: i128,
    ties: BTreeMap<(String, i64), OpenTie>,
    slurstack: HashMap<i64, Vec<i64>>,
    slurbeg: Vec<String>,
    tmnum: i128,
    tmden: i128,
    ntup: i64,
    trem: i64,
    intrem: bool,
    tupnts: Vec<(i128, NodeId)>,
    irrtup: bool,
    ntype: String,
    unit_l: (i128, i128),
    unit_lcur: (i128, i128),
    key_alts: BTreeMap<String, String>,
    msre_alts: HashMap<(String, i64), String>,
    cur_volta: String,
    pub title: String,
    pub metadata: FieldMap,
    lyrdash: HashSet<usize>,
    usr_syms: HashMap<String, String>,
    prev_note: Option<NodeId>,
    prev_lyric: HashMap<usize, NodeId>,
    grcbbrk: bool,
    linebrk: bool,
    nextdecos: Vec<String>,
    prevmsre: Option<NodeId>,
    supports_tag: bool,
    stave_defs: Vec<String>,
    staves: Vec<Vec<String>>,
    groups: Vec<String>,
    grands: Vec<Vec<String>>,
    g_staff_nums: HashMap<String, i64>,
    g_staff_nums_org: HashMap<String, i64>,
    g_nstaves: HashMap<String, i64>,
    page_fmt_abc: Option<[f64; 7]>,
    mdur: (i128, i128),
    gtrans: i64,
    midprg: [String; 4],
    vid: String,
    pid: String,
    gcue_on: bool,
    perc_voice: bool,
    perc_map: HashMap<(String, String, i64), PercEntry>,
    vcepid: HashMap<String, String>,
    midi_inst: BTreeMap<String, MidiInst>,
    chord_decos: HashSet<String>,
    overlay_vnum: i64,
    glisnum: i64,
    slidenum: i64,
    acciatura: bool,
    rb_stop: bool,
    cur_clef: String,
    nostems: bool,
    g_time: (i128, i128),
    /// Diagnostics the reference prints on stderr.
    pub warnings: Vec<String>,
}

/// Voice definitions: id → (name, subname, definition text).
pub(crate) type VoiceDefs = Vec<(String, (String, String, String))>;

fn vd_get<'a>(v: &'a VoiceDefs, id: &str) -> Option<&'a (String, String, String)> {
    v.iter().find(|(k, _)| k == id).map(|(_, d)| d)
}

fn vd_set(v: &mut VoiceDefs, id: &str, d: (String, String, String)) {
    match v.iter_mut().find(|(k, _)| k == id) {
        Some(slot) => slot.1 = d,
        None => v.push((id.to_string(), d)),
    }
}

static CLEF_NAME: LazyLock<Regex> =
    LazyLock::new(|| re(r"alto1|alto2|alto4|alto|tenor|bass3|bass|treble|perc|none|tab"));
static CLEF_MIDDLE: LazyLock<Regex> = LazyLock::new(|| re(r"(?:^m=| m=|middle=)([A-Ga-g])([,']*)"));
static OCTAVE_EQ: LazyLock<Regex> = LazyLock::new(|| re(r"octave=([-+]?\d)"));
static TRANSPOSE_EQ: LazyLock<Regex> = LazyLock::new(|| re(r"(?:^t=| t=|transpose=)(-?[\d]+)"));
static CLEF_OCTAVE: LazyLock<Regex> = LazyLock::new(|| re(r"([+-^_])(8|15)"));
static CUE: LazyLock<Regex> = LazyLock::new(|| re(r"cue=(on|off)"));
static STAFFLINES: LazyLock<Regex> = LazyLock::new(|| re(r"stafflines=\s*(\d)"));
static PERC_EQ: LazyLock<Regex> = LazyLock::new(|| re(r"(perc|map)\s*=\s*(\S*)"));
static PERC_ANY: LazyLock<Regex> = LazyLock::new(|| re(r"perc|map"));
static KEY: LazyLock<Regex> = LazyLock::new(|| re(r"^\s*([A-G][#b]?)\s*([a-zA-Z]*)"));
static KEY_ALTS: LazyLock<Regex> = LazyLock::new(|| re(r"\s((\s?[=^_][A-Ga-g])+)"));
static KEY_ALT: LazyLock<Regex> = LazyLock::new(|| re(r"[=^_][A-Ga-g]"));
static TEMPO: LazyLock<Regex> = LazyLock::new(|| re(r"(\d)/(\d\d?)\s*=\s*(\d[.\d]*)|(\d[.\d]*)"));
static TEMPO_TEXT: LazyLock<Regex> = LazyLock::new(|| re(r#""([^"]*)""#));
static STAFF_NUM: LazyLock<Regex> = LazyLock::new(|| re(r"staff *([+-]?)(\d)"));
static PAGE_VALUE: LazyLock<Regex> = LazyLock::new(|| re(r"[^.\d]*([\d.]+)\s*(cm|in|pt)?"));
static MIDI_PROGRAM: LazyLock<Regex> = LazyLock::new(|| re(r"program *(\d*) +(\d+)"));
static MIDI_CHANNEL: LazyLock<Regex> = LazyLock::new(|| re(r"channel *(\d+)"));
static MIDI_DRUMMAP: LazyLock<Regex> =
    LazyLock::new(|| re(r"drummap\s+([_=^]*)([A-Ga-g])([,']*)\s+(\d+)"));
static MIDI_CONTROL: LazyLock<Regex> = LazyLock::new(|| re(r"control *(\d+) +(\d+)"));
static MIDI_TRANSPOSE: LazyLock<Regex> = LazyLock::new(|| re(r"transpose[^-\d]*(-?\d+)"));
static VOICE_NAME: LazyLock<Regex> = LazyLock::new(|| re(r#"(?:name|nm)="([^"]*)""#));
static VOICE_SUBNAME: LazyLock<Regex> = LazyLock::new(|| re(r#"(?:subname|snm|sname)="([^"]*)""#));
static HEAD_DASH: LazyLock<Regex> = LazyLock::new(|| re(r"(.)-([^x])"));
static NOTEHEAD_SIGN: LazyLock<Regex> = LazyLock::new(|| re(r"[+-]$"));

fn unsupported(what: &str) -> Error {
    Error::Abc2Xml {
        reason: format!("unsupported ABC feature (not ported): {what}"),
    }
}

/// Python's `'%g' % x`.
pub(crate) fn format_g(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let exp = x.abs().log10().floor() as i32;
    let s = format!("{:.5e}", x);
    let (mant, e) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i32 = e.parse().unwrap_or(exp);
    if !(-4..6).contains(&e) {
        let mant = mant.trim_end_matches('0').trim_end_matches('.');
        let sign = if e < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", e.abs());
    }
    let decimals = (5 - e).max(0) as usize;
    let s = format!("{:.*}", decimals, x);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn py_round_div(num: i128, den: i128) -> i128 {
    // int(round(64 * float(num) / den)): round half to even on the float
    let v = 64.0 * num as f64 / den as f64;
    let r = v.round();
    let r = if (v - v.trunc()).abs() == 0.5 {
        2.0 * (v / 2.0).round()
    } else {
        r
    };
    r as i128
}

impl Builder {
    pub(crate) fn new() -> Builder {
        Builder {
            tree: Tree::default(),
            divisions: 2520,
            ties: BTreeMap::new(),
            slurstack: HashMap::new(),
            slurbeg: Vec::new(),
            tmnum: 0,
            tmden: 0,
            ntup: 0,
            trem: 0,
            intrem: false,
            tupnts: Vec::new(),
            irrtup: false,
            ntype: String::new(),
            unit_l: (1, 8),
            unit_lcur: (1, 8),
            key_alts: BTreeMap::new(),
            msre_alts: HashMap::new(),
            cur_volta: String::new(),
            title: String::new(),
            metadata: Vec::new(),
            lyrdash: HashSet::new(),
            usr_syms: HashMap::new(),
            prev_note: None,
            prev_lyric: HashMap::new(),
            grcbbrk: false,
            linebrk: false,
            nextdecos: Vec::new(),
            prevmsre: None,
            supports_tag: false,
            stave_defs: Vec::new(),
            staves: Vec::new(),
            groups: Vec::new(),
            grands: Vec::new(),
            g_staff_nums: HashMap::new(),
            g_staff_nums_org: HashMap::new(),
            g_nstaves: HashMap::new(),
            page_fmt_abc: None,
            mdur: (4, 4),
            gtrans: 0,
            midprg: Default::default(),
            vid: String::new(),
            pid: String::new(),
            gcue_on: false,
            perc_voice: false,
            perc_map: HashMap::new(),
            vcepid: HashMap::new(),
            midi_inst: BTreeMap::new(),
            chord_decos: HashSet::new(),
            overlay_vnum: 0,
            glisnum: 0,
            slidenum: 0,
            acciatura: false,
            rb_stop: false,
            cur_clef: String::new(),
            nostems: false,
            g_time: (0, 0),
            warnings: Vec::new(),
        }
    }

    fn info(&mut self, s: String) {
        self.warnings.push(s);
    }

    fn gstaff(&self) -> i64 {
        self.g_staff_nums.get(&self.vid).copied().unwrap_or(0)
    }

    fn usr_sym(&self, d: &str) -> String {
        match self.usr_syms.get(d) {
            Some(s) => s.clone(),
            None => default_user_symbol(d).unwrap_or(d).to_string(),
        }
    }

    /// `addDirection`: a `<direction>` with one or more direction types.
    #[allow(clippy::too_many_arguments)]
    fn add_direction(
        &mut self,
        parent: NodeId,
        elems: Vec<(NodeId, Vec<NodeId>)>,
        lev: usize,
        gstaff: i64,
        placement: &str,
        cue_on: bool,
    ) -> NodeId {
        let t = &mut self.tree;
        let dir = t.element("direction", &[("placement", placement)]);
        t.add(parent, dir, lev);
        for (elem, subelms) in elems {
            let typ = t.element("direction-type", &[]);
            t.add(dir, typ, lev + 1);
            t.add(typ, elem, lev + 2);
            for sub in subelms {
                t.add(elem, sub, lev + 3);
            }
        }
        if cue_on {
            let l = t.element("level", &[("size", "cue")]);
            t.add(dir, l, lev + 1);
        }
        if gstaff != 0 {
            t.add_text(dir, "staff", gstaff.to_string(), lev + 1);
        }
        dir
    }

    fn mk_pitch(
        &mut self,
        acc: &str,
        note: &str,
        oct: i64,
        lev: usize,
    ) -> (NodeId, String, String, String) {
        if self.perc_voice {
            let octq = oct + self.gtrans;
            let key = (self.pid.clone(), format!("{acc}{note}"), octq);
            let found = self
                .perc_map
                .get(&key)
                .or_else(|| {
                    self.perc_map
                        .get(&(String::new(), format!("{acc}{note}"), octq))
                })
                .cloned();
            let (mut step, soct, midi, notehead) = match &found {
                Some((s, o, m, h)) => (s.clone(), *o, m.clone(), h.clone()),
                None => (note.to_string(), octq, String::new(), String::new()),
            };
            let mut octnum = if step.to_uppercase() == step { 4 } else { 5 } + soct;
            let (midi, notehead) = if found.is_none() {
                let up = step.to_uppercase();
                let idx = "CDEFGAB".find(&up).unwrap_or(0);
                let midi = octnum * 12
                    + [0, 2, 4, 5, 7, 9, 11][idx]
                    + match acc {
                        "^" => 1,
                        "_" => -1,
                        _ => 0,
                    }
                    + 12;
                let notehead = match acc {
                    "^" => "x",
                    "_" => "circle-x",
                    _ => "normal",
                };
                self.perc_map.insert(
                    key,
                    (
                        note.to_string(),
                        octq,
                        midi.to_string(),
                        notehead.to_string(),
                    ),
                );
                (midi.to_string(), notehead.to_string())
            } else {
                let (s, o) = step_trans(&step.to_uppercase(), octnum, &self.cur_clef);
                step = s;
                octnum = o;
                (midi, notehead)
            };
            let t = &mut self.tree;
            let pitch = t.element("unpitched", &[]);
            t.add_text(pitch, "display-step", step.to_uppercase(), lev + 1);
            t.add_text(pitch, "display-octave", octnum.to_string(), lev + 1);
            return (pitch, String::new(), midi, notehead);
        }
        let n_up = note.to_uppercase();
        let octnum = if n_up == note { 4 } else { 5 } + oct + self.gtrans;
        let pitch = self.tree.element("pitch", &[]);
        self.tree.add_text(pitch, "step", n_up.clone(), lev + 1);
        let mut alter = String::new();
        if let Some(tie) = self.ties.get(&(note.to_string(), oct)) {
            if tie.vnum == self.overlay_vnum {
                alter = tie.alter.clone();
            }
        } else if !acc.is_empty() {
            self.msre_alts
                .insert((n_up.clone(), octnum), alter_of(acc).to_string());
            alter = alter_of(acc).to_string();
        } else if let Some(a) = self.msre_alts.get(&(n_up.clone(), octnum)) {
            alter = a.clone();
        } else if let Some(a) = self.key_alts.get(&n_up) {
            alter = a.clone();
        }
        if !alter.is_empty() {
            self.tree.add_text(pitch, "alter", alter.clone(), lev + 1);
        }
        self.tree
            .add_text(pitch, "octave", octnum.to_string(), lev + 1);
        (pitch, alter, String::new(), String::new())
    }

    fn get_note_decos(&mut self, n: &Note) -> Vec<String> {
        let mut decos = std::mem::take(&mut self.nextdecos);
        if let Some(nd) = &n.deco {
            for d in nd {
                let sym = self.usr_sym(d);
                decos.push(strip_deco(&sym).to_string());
            }
        }
        decos
    }

    fn mk_note(&mut self, n: &Note, lev: usize) -> Result<NodeId> {
        let isgrace = n.grace;
        let ischord = n.chord;
        if self.ntup >= 0 && !isgrace && !ischord {
            self.ntup -= 1;
            if self.ntup == -1 && self.trem <= 0 {
                self.intrem = false;
            }
        }
        let (mut nnum, mut nden) = n.dur;
        if self.intrem {
            nnum += nnum;
        }
        if nden == 0 {
            nden = 1;
        }
        let (mut num, mut den) = simplify(nnum * self.unit_lcur.0, nden * self.unit_lcur.1);
        if den > 64 {
            let r = py_round_div(num, den);
            let s = simplify(r.max(1), 64);
            num = s.0;
            den = s.1;
            self.info(format!("duration too small: rounded to {num}/{den}"));
        }
        if n.rest && (n.rest_sym == 'Z' || n.rest_sym == 'X') {
            (num, den) = self.mdur;
        }
        let no_msr_rest = !(n.rest && (num, den) == self.mdur);
        if den == 0 {
            return Err(Error::Abc2Xml {
                reason: "integer division or modulo by zero (a zero duration)".into(),
            });
        }
        let mut dvs = (4 * self.divisions * num).div_euclid(den);
        let mut rdvs = dvs;
        (num, den) = simplify(num, den * 4);
        let mut ndot = 0;
        if num == 3 && no_msr_rest {
            ndot = 1;
            den = den.div_euclid(2);
        }
        if num == 7 && no_msr_rest {
            ndot = 2;
            den = den.div_euclid(4);
        }
        let nt = self.tree.element("note", &[]);
        if isgrace {
            let grace = self.tree.element("grace", &[]);
            if self.acciatura {
                self.tree.set(grace, "slash", "yes");
                self.acciatura = false;
            }
            self.tree.add(nt, grace, lev + 1);
            dvs = 0;
            rdvs = 0;
            if den <= 16 {
                den = 32;
            }
        }
        if self.gcue_on {
            let cue = self.tree.element("cue", &[]);
            self.tree.add(nt, cue, lev + 1);
        }
        if ischord {
            let chord = self.tree.element("chord", &[]);
            self.tree.add(nt, chord, lev + 1);
            rdvs = 0;
        }
        if type_name(den).is_none() {
            self.info(format!("illegal duration {nnum}/{nden}"));
            den = match TYPE_DENS.iter().copied().filter(|&x| x > den).min() {
                Some(d) => d,
                None => {
                    return Err(Error::Abc2Xml {
                        reason: format!(
                            "min() arg is an empty sequence (note length {nnum}/{nden})"
                        ),
                    })
                }
            };
        }
        let xmltype = type_name(den).unwrap_or("quarter");
        let (mut acc, mut step, mut oct): (String, String, Option<i64>) =
            (String::new(), "C".into(), None);
        let (mut alter, mut midi, mut notehead) = (String::new(), String::new(), String::new());
        if n.rest {
            if n.rest_sym == 'x' || n.rest_sym == 'X' {
                self.tree.set(nt, "print-object", "no");
            }
            let rest = self.tree.element("rest", &[]);
            if !no_msr_rest {
                self.tree.set(rest, "measure", "yes");
            }
            self.tree.add(nt, rest, lev + 1);
        } else if let Some(p) = &n.pitch {
            acc = p.acc.clone();
            step = p.step.clone();
            oct = Some(p.oct);
            let (pitch, a, m, h) = self.mk_pitch(&acc, &step, p.oct, lev + 1);
            alter = a;
            midi = m;
            notehead = h;
            if !midi.is_empty() {
                acc.clear();
            }
            self.tree.add(nt, pitch, lev + 1);
        }
        if self.ntup >= 0 {
            if self.tmnum == 0 {
                return Err(Error::Abc2Xml {
                    reason: "integer division or modulo by zero (a tuplet of 0 notes)".into(),
                });
            }
            dvs = (dvs * self.tmden).div_euclid(self.tmnum);
        }
        if dvs != 0 {
            self.tree.add_text(nt, "duration", dvs.to_string(), lev + 1);
            if !ischord {
                self.g_time = (self.g_time.1, self.g_time.1 + dvs);
            }
        }
        let ptup: Option<(String, i64)> = oct.map(|o| (step.clone(), o));
        let tstop = ptup
            .as_ref()
            .and_then(|p| self.ties.get(p))
            .is_some_and(|t| t.vnum == self.overlay_vnum);
        if tstop {
            let tie = self.tree.element("tie", &[("type", "stop")]);
            self.tree.add(nt, tie, lev + 1);
        }
        if n.tie.is_some() {
            let tie = self.tree.element("tie", &[("type", "start")]);
            self.tree.add(nt, tie, lev + 1);
        }
        if (self.midprg.iter().any(|s| !s.is_empty()) || !midi.is_empty()) && !n.rest {
            let inst_id = format!(
                "I{}-{}",
                self.pid,
                if midi.is_empty() {
                    self.vid.clone()
                } else {
                    format!("X{midi}")
                }
            );
            let (chan, mnum) = if midi.is_empty() {
                (self.midprg[0].clone(), self.midprg[1].clone())
            } else {
                ("10".to_string(), midi.clone())
            };
            let inst = self.tree.element("instrument", &[("id", &inst_id)]);
            self.tree.add(nt, inst, lev + 1);
            if !self.midi_inst.contains_key(&inst_id) {
                self.midi_inst.insert(
                    inst_id,
                    (
                        self.pid.clone(),
                        self.vid.clone(),
                        chan,
                        mnum,
                        self.midprg[2].clone(),
                        self.midprg[3].clone(),
                    ),
                );
            }
        }
        self.tree.add_text(nt, "voice", "1", lev + 1);
        if no_msr_rest {
            self.tree.add_text(nt, "type", xmltype, lev + 1);
        }
        for _ in 0..ndot {
            let dot = self.tree.element("dot", &[]);
            self.tree.add(nt, dot, lev + 1);
        }
        let mut decos = self.get_note_decos(n);
        if !acc.is_empty() && !tstop {
            let e = self.tree.element("accidental", &[]);
            if let Some(i) = decos.iter().position(|d| d == "courtesy") {
                self.tree.set(e, "parentheses", "yes");
                decos.remove(i);
            }
            self.tree.set_text(e, accidental_name(&acc));
            self.tree.add(nt, e, lev + 1);
        }
        let mut tupnotation = "";
        if self.ntup >= 0 {
            let tmod = self.tree.element("time-modification", &[]);
            self.tree
                .add_text(tmod, "actual-notes", self.tmnum.to_string(), lev + 2);
            self.tree
                .add_text(tmod, "normal-notes", self.tmden.to_string(), lev + 2);
            self.tree.add(nt, tmod, lev + 1);
            if self.ntup > 0 && self.tupnts.is_empty() {
                tupnotation = "start";
            }
            self.tupnts.push((rdvs, tmod));
            if self.ntup == 0 {
                if rdvs != 0 {
                    tupnotation = "stop";
                }
                self.cmp_norm_type(rdvs, lev + 1);
            }
        }
        let mut has_stem = true;
        if !ischord {
            self.chord_decos.clear();
        }
        if decos.iter().any(|d| d == "stemless")
            || (self.nostems && !n.rest)
            || self.chord_decos.contains("stemless")
        {
            has_stem = false;
            self.tree.add_text(nt, "stem", "none", lev + 1);
            if let Some(i) = decos.iter().position(|d| d == "stemless") {
                decos.remove(i);
            }
            if n.pitches.is_some() {
                self.chord_decos.insert("stemless".into());
            }
        }
        if !notehead.is_empty() {
            let nh = self.tree.add_text(
                nt,
                "notehead",
                NOTEHEAD_SIGN.replace(&notehead, "").to_string(),
                lev + 1,
            );
            if notehead.ends_with('+') || notehead.ends_with('-') {
                self.tree.set(
                    nh,
                    "filled",
                    if notehead.ends_with('+') { "yes" } else { "no" },
                );
            }
        }
        let gstaff = self.gstaff();
        if gstaff != 0 {
            self.tree.add_text(nt, "staff", gstaff.to_string(), lev + 1);
        }
        if has_stem {
            self.do_beams(n, nt, den, lev + 1);
        }
        self.do_notations(n, decos, ptup, &alter, tupnotation, tstop, nt, lev + 1);
        if !n.lyrics.is_empty() {
            self.do_lyr(n, nt, lev + 1);
        } else {
            self.prev_lyric.clear();
        }
        Ok(nt)
    }

    fn cmp_norm_type(&mut self, rdvs: i128, lev: usize) {
        if rdvs != 0 {
            let durs: Vec<i128> = self
                .tupnts
                .iter()
                .map(|(d, _)| *d)
                .filter(|&d| d > 0)
                .collect();
            let ndur = durs.iter().sum::<i128>().div_euclid(self.tmnum);
            self.irrtup = durs.iter().any(|&d| d != ndur);
            let tix = if ndur == 0 {
                -1
            } else {
                (16 * self.divisions).div_euclid(ndur)
            };
            match type_name(tix) {
                Some(t) => self.ntype = t.to_string(),
                None => self.irrtup = false,
            }
        }
        if self.irrtup {
            for (_, tmod) in self.tupnts.clone() {
                let ntype = self.ntype.clone();
                self.tree.add_text(tmod, "normal-type", ntype, lev + 1);
            }
        }
        self.tupnts.clear();
    }

    fn push_slur(&mut self, stem: i64) -> i64 {
        let num = self.slurstack.values().map(Vec::len).sum::<usize>() as i64 + 1;
        self.slurstack.entry(stem).or_default().push(num);
        num
    }

    #[allow(clippy::too_many_arguments)]
    fn do_notations(
        &mut self,
        n: &Note,
        decos: Vec<String>,
        ptup: Option<(String, i64)>,
        alter: &str,
        tupnotation: &str,
        tstop: bool,
        nt: NodeId,
        lev: usize,
    ) {
        let mut slurs: Vec<String> = n.slurs.clone().unwrap_or_default();
        let ov = self.overlay_vnum;
        let open: Vec<((String, i64), OpenTie)> = self
            .ties
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (pt, tie) in open {
            if tie.vnum != self.overlay_vnum {
                continue;
            }
            if let Some(pts) = &n.pitches {
                if pts.contains(&pt) {
                    continue;
                }
            }
            if n.chord {
                continue;
            }
            if ptup.as_ref() == Some(&pt) {
                continue;
            }
            if n.grace {
                continue;
            }
            self.info(format!(
                "tie between different pitches: {}{} converted to slur",
                pt.0, pt.1
            ));
            self.ties.remove(&pt);
            let start_tie = self
                .tree
                .findall(tie.note, "tie")
                .into_iter()
                .find(|&t| self.tree.get(t, "type") == Some("start"));
            if let Some(e) = start_tie {
                self.tree.remove(tie.note, e);
            }
            let tied = self
                .tree
                .findall(tie.notations, "tied")
                .into_iter()
                .find(|&t| self.tree.get(t, "type") == Some("start"));
            if let Some(e) = tied {
                self.tree.set_tag(e, "slur");
                let num = self.push_slur(ov);
                self.tree.set(e, "number", num.to_string());
            }
            slurs.push(")".into());
        }
        let tstart = n.tie.as_deref();
        if !(tstop
            || tstart.is_some()
            || !decos.is_empty()
            || !slurs.is_empty()
            || !self.slurbeg.is_empty()
            || !tupnotation.is_empty()
            || self.trem != 0)
        {
            return;
        }
        let t = &mut self.tree;
        let nots = t.element("notations", &[]);
        let mut tupnotation = tupnotation;
        if self.trem != 0 {
            if self.trem < 0 {
                tupnotation = "single";
                self.trem = -self.trem;
            }
            if tupnotation.is_empty() {
                return;
            }
            let orn = t.element("ornaments", &[]);
            let trm = t.element("tremolo", &[("type", tupnotation)]);
            t.set_text(trm, self.trem.to_string());
            t.add(nots, orn, lev + 1);
            t.add(orn, trm, lev + 2);
            if tupnotation == "stop" || tupnotation == "single" {
                self.trem = 0;
            }
        } else if !tupnotation.is_empty() {
            let tup = t.element("tuplet", &[("type", tupnotation)]);
            if tupnotation == "start" {
                t.set(tup, "bracket", "yes");
            }
            t.add(nots, tup, lev + 1);
        }
        if tstop {
            if let Some(p) = &ptup {
                self.ties.remove(p);
            }
            let tie = self.tree.element("tied", &[("type", "stop")]);
            self.tree.add(nots, tie, lev + 1);
        }
        if let Some(ts) = tstart {
            if let Some(p) = &ptup {
                self.ties.insert(
                    p.clone(),
                    OpenTie {
                        alter: alter.to_string(),
                        notations: nots,
                        vnum: self.overlay_vnum,
                        note: nt,
                    },
                );
            } else {
                // a rest never starts a tie: its pitch tuple holds strings
                self.rest_tie_key_collision();
            }
            let tie = self.tree.element("tied", &[("type", "start")]);
            if ts == ".-" {
                self.tree.set(tie, "line-type", "dotted");
            }
            self.tree.add(nots, tie, lev + 1);
        }
        if !decos.is_empty() {
            let mut arts = Vec::new();
            for d in decos {
                let ntn = match d.as_str() {
                    "(" | ".(" | "(," | "('" | ".(," | ".('" => {
                        self.slurbeg.push(d);
                        continue;
                    }
                    "fermata" | "H" => self.tree.element("fermata", &[("type", "upright")]),
                    "arpeggio" => self.tree.element("arpeggiate", &[("number", "1")]),
                    "~(" | "~)" => {
                        let (tp, gn) = if d.ends_with('(') {
                            self.glisnum += 1;
                            ("start", self.glisnum)
                        } else {
                            let gn = self.glisnum;
                            self.glisnum -= 1;
                            ("stop", gn)
                        };
                        if self.glisnum < 0 {
                            self.glisnum = 0;
                            continue;
                        }
                        let gn = gn.to_string();
                        self.tree.element(
                            "glissando",
                            &[("line-type", "wavy"), ("number", &gn), ("type", tp)],
                        )
                    }
                    "-(" | "-)" => {
                        let (tp, gn) = if d.ends_with('(') {
                            self.slidenum += 1;
                            ("start", self.slidenum)
                        } else {
                            let gn = self.slidenum;
                            self.slidenum -= 1;
                            ("stop", gn)
                        };
                        if self.slidenum < 0 {
                            self.slidenum = 0;
                            continue;
                        }
                        let gn = gn.to_string();
                        self.tree.element(
                            "slide",
                            &[("line-type", "solid"), ("number", &gn), ("type", tp)],
                        )
                    }
                    _ => {
                        arts.push(d);
                        continue;
                    }
                };
                self.tree.add(nots, ntn, lev + 1);
            }
            if !arts.is_empty() {
                let rest = self.do_articulations(nots, arts, lev + 1);
                if !rest.is_empty() {
                    self.info(format!("unhandled note decorations: {rest:?}"));
                }
            }
        }
        for _ in &slurs {
            let Some(stack) = self.slurstack.get_mut(&ov) else {
                break;
            };
            let Some(num) = stack.pop() else { break };
            let slur = self
                .tree
                .element("slur", &[("number", &num.to_string()), ("type", "stop")]);
            self.tree.add(nots, slur, lev + 1);
        }
        while !self.slurbeg.is_empty() {
            let stp = self.slurbeg.remove(0);
            let num = self.push_slur(ov);
            let ntn = self
                .tree
                .element("slur", &[("number", &num.to_string()), ("type", "start")]);
            if stp.contains('.') {
                self.tree.set(ntn, "line-type", "dotted");
            }
            if stp.contains(',') {
                self.tree.set(ntn, "placement", "below");
            }
            if stp.contains('\'') {
                self.tree.set(ntn, "placement", "above");
            }
            self.tree.add(nots, ntn, lev + 1);
        }
        if !self.tree.children(nots).is_empty() {
            self.tree.add(nt, nots, lev);
        }
    }

    fn rest_tie_key_collision(&mut self) {
        self.info("a tie on a rest is ignored".into());
    }

    fn do_articulations(&mut self, nots: NodeId, arts: Vec<String>, lev: usize) -> Vec<String> {
        let mut decos = Vec::new();
        for a in arts {
            let t = &mut self.tree;
            if let Some(name) = articulation(&a) {
                let art = t.element("articulations", &[]);
                t.add(nots, art, lev);
                let e = t.element(name, &[]);
                t.add(art, e, lev + 1);
            } else if let Some(name) = ornament(&a) {
                let orn = t.element("ornaments", &[]);
                t.add(nots, orn, lev);
                let e = t.element(name, &[]);
                t.add(orn, e, lev + 1);
            } else if a == "trill(" || a == "trill)" {
                let orn = t.element("ornaments", &[]);
                t.add(nots, orn, lev);
                let typ = if a.ends_with('(') { "start" } else { "stop" };
                if typ == "start" {
                    let e = t.element("trill-mark", &[]);
                    t.add(orn, e, lev + 1);
                }
                let e = t.element("wavy-line", &[("type", typ)]);
                t.add(orn, e, lev + 1);
            } else if let Some(name) = technical(&a) {
                let tec = t.element("technical", &[]);
                t.add(nots, tec, lev);
                let e = t.element(name, &[]);
                t.add(tec, e, lev + 1);
            } else if "0123456".contains(a.as_str()) {
                let tec = t.element("technical", &[]);
                t.add(nots, tec, lev);
                t.add_text(tec, "fingering", a, lev + 1);
            } else {
                decos.push(a);
            }
        }
        decos
    }

    fn do_lyr(&mut self, n: &Note, nt: NodeId, lev: usize) {
        for (i, lyr) in n.lyrics.iter().enumerate() {
            let num = (i + 1).to_string();
            let lyrel = self.tree.element("lyric", &[("number", &num)]);
            match lyr {
                Lyric::Syl(text, dash) => {
                    let typ = if *dash {
                        if self.lyrdash.contains(&i) {
                            "middle"
                        } else {
                            self.lyrdash.insert(i);
                            "begin"
                        }
                    } else if self.lyrdash.remove(&i) {
                        "end"
                    } else {
                        "single"
                    };
                    self.tree.add_text(lyrel, "syllabic", typ, lev + 1);
                    let txt = lyric_text(&text.replace("%5d", "]"));
                    self.tree.add_text(lyrel, "text", txt, lev + 1);
                }
                Lyric::Ext if self.prev_lyric.contains_key(&i) => {
                    let prev = self.prev_lyric[&i];
                    match self.tree.find(prev, "extend") {
                        None => {
                            let ext = self.tree.element("extend", &[("type", "start")]);
                            self.tree.add(prev, ext, lev + 1);
                        }
                        Some(pext) => {
                            if self.tree.get(pext, "type") == Some("stop") {
                                self.tree.set(pext, "type", "continue");
                            }
                        }
                    }
                    let ext = self.tree.element("extend", &[("type", "stop")]);
                    self.tree.add(lyrel, ext, lev + 1);
                }
                Lyric::Ext => {
                    self.info("lyric extend error".into());
                    continue;
                }
                _ => continue,
            }
            self.tree.add(nt, lyrel, lev);
            self.prev_lyric.insert(i, lyrel);
        }
    }

    fn do_beams(&mut self, n: &Note, nt: NodeId, den: i128, lev: usize) {
        if n.chord || n.grace {
            self.grcbbrk = self.grcbbrk || n.bbrk;
            return;
        }
        let bbrk = self.grcbbrk || n.bbrk || den < 32;
        self.grcbbrk = false;
        let pbm = self.prev_note.and_then(|p| self.tree.find(p, "beam"));
        let bm = self.tree.element("beam", &[("number", "1")]);
        self.tree.set_text(bm, "begin");
        if let (Some(pbm), Some(prev)) = (pbm, self.prev_note) {
            if bbrk {
                match self.tree.text(pbm) {
                    Some("begin") => self.tree.remove(prev, pbm),
                    Some("continue") => self.tree.set_text(pbm, "end"),
                    _ => {}
                }
                self.prev_note = None;
            } else {
                self.tree.set_text(bm, "continue");
            }
        }
        if den >= 32 && !n.rest {
            self.tree.add(nt, bm, lev);
            self.prev_note = Some(nt);
        }
    }

    fn stop_beams(&mut self) {
        let Some(prev) = self.prev_note else { return };
        if let Some(pbm) = self.tree.find(prev, "beam") {
            match self.tree.text(pbm) {
                Some("begin") => self.tree.remove(prev, pbm),
                Some("continue") => self.tree.set_text(pbm, "end"),
                _ => {}
            }
        }
        self.prev_note = None;
    }

    fn staff_decos(&mut self, decos: &[String], maat: NodeId, lev: usize) {
        let gstaff = self.gstaff();
        for d in decos {
            let sym = self.usr_sym(d);
            let d = strip_deco(&sym).to_string();
            if DYNAMICS.contains(&d.as_str()) {
                let dynel = self.tree.element("dynamics", &[]);
                let sub = self.tree.element(&d, &[]);
                let cue = self.gcue_on;
                self.add_direction(maat, vec![(dynel, vec![sub])], lev, gstaff, "below", cue);
            } else if WEDGES.contains(&d.as_str()) {
                let typ = if d.contains(')') {
                    "stop"
                } else if d.contains('<') || d.contains("crescendo") {
                    "crescendo"
                } else {
                    "diminuendo"
                };
                let w = self.tree.element("wedge", &[("type", typ)]);
                self.add_direction(maat, vec![(w, vec![])], lev, gstaff, "below", false);
            } else if d.starts_with("8v") {
                let (mut typ, plce) = if d.contains('a') {
                    ("down", "above")
                } else {
                    ("up", "below")
                };
                if d.contains(')') {
                    typ = "stop";
                }
                let e = self
                    .tree
                    .element("octave-shift", &[("type", typ), ("size", "8")]);
                self.add_direction(maat, vec![(e, vec![])], lev, gstaff, plce, false);
            } else if d == "ped" || d == "ped-up" {
                let typ = if d.ends_with("up") { "stop" } else { "start" };
                let e = self.tree.element("pedal", &[("type", typ)]);
                self.add_direction(maat, vec![(e, vec![])], lev, gstaff, "below", false);
            } else if d == "coda" || d == "segno" {
                let (text, attr, val) = capo(&d).unwrap_or(("", "", ""));
                let e = self.tree.element(text, &[]);
                let dir = self.add_direction(maat, vec![(e, vec![])], lev, gstaff, "above", false);
                let sound = self.tree.element("sound", &[(attr, val)]);
                self.tree.add(dir, sound, lev + 1);
            } else if let Some((text, attr, val)) = capo(&d) {
                let words = self.tree.element("words", &[]);
                self.tree.set_text(words, text);
                let dir =
                    self.add_direction(maat, vec![(words, vec![])], lev, gstaff, "above", false);
                let sound = self.tree.element("sound", &[(attr, val)]);
                self.tree.add(dir, sound, lev + 1);
            } else if d == "(" || d == ".(" {
                self.slurbeg.push(d);
            } else if ["/-", "//-", "///-", "////-"].contains(&d.as_str()) {
                self.tmnum = 2;
                self.tmden = 1;
                self.ntup = 2;
                self.trem = d.len() as i64 - 1;
                self.intrem = true;
            } else if ["/", "//", "///"].contains(&d.as_str()) {
                self.trem = -(d.len() as i64);
            } else if d == "rbstop" {
                self.rb_stop = true;
            } else {
                self.nextdecos.push(d);
            }
        }
    }

    /// `doFields`: header or inline fields at the start of or within a measure.
    fn do_fields(&mut self, maat: NodeId, fieldmap: &FieldMap, lev: usize) -> Result<()> {
        let mut atts: Vec<(u8, NodeId)> = Vec::new();
        let gstaff = self.gstaff();
        for (ftype, field) in fieldmap {
            if field.is_empty() {
                continue;
            }
            match ftype.as_str() {
                "Div" => {
                    let d = self.tree.element("divisions", &[]);
                    self.tree.set_text(d, field.clone());
                    atts.push((1, d));
                }
                "gstaff" => {
                    let e = self.tree.element("staves", &[]);
                    self.tree.set_text(e, field.clone());
                    atts.push((4, e));
                }
                "M" => {
                    if field == "none" {
                        continue;
                    }
                    let mut field = match field.as_str() {
                        "C" => "4/4".to_string(),
                        "C|" => "2/2".to_string(),
                        f => f.to_string(),
                    };
                    let t = self.tree.element("time", &[]);
                    if !field.contains('/') {
                        self.info(format!("M:{field} not recognized, 4/4 assumed"));
                        field = "4/4".into();
                    }
                    let mut parts = field.split('/');
                    let mut beats = parts.next().unwrap_or("").to_string();
                    let mut btype = parts.next().unwrap_or("").to_string();
                    match (eval_beats(&beats), btype.trim().parse::<i128>()) {
                        (Some(b), Ok(bt)) if bt != 0 => self.mdur = simplify(b, bt),
                        _ => {
                            self.info(format!("error in M:{field}, 4/4 assumed"));
                            self.mdur = (4, 4);
                            beats = "4".into();
                            btype = "4".into();
                        }
                    }
                    self.tree.add_text(t, "beats", beats, lev + 2);
                    self.tree.add_text(t, "beat-type", btype, lev + 2);
                    atts.push((3, t));
                }
                "K" => {
                    self.do_key(field, lev, &mut atts);
                    self.do_clef(field, lev, gstaff, &mut atts)?;
                }
                "L" => {
                    let parsed: Option<Vec<i128>> =
                        field.split('/').map(|x| x.trim().parse().ok()).collect();
                    match parsed {
                        Some(v) if v.len() >= 2 && type_name(v[1]).is_some() => {
                            self.unit_lcur = (v[0], v[1]);
                        }
                        _ => {
                            self.info(format!("L:{field} is not allowed, 1/8 assumed"));
                            self.unit_lcur = (1, 8);
                        }
                    }
                }
                "V" => self.do_clef(field, lev, gstaff, &mut atts)?,
                "I" => self.do_field_i(field, Some((maat, lev, gstaff, &mut atts)))?,
                "Q" => self.do_tempo(maat, field, lev),
                "P" => {
                    let words = self.tree.element("rehearsal", &[("font-weight", "bold")]);
                    self.tree.set_text(words, field.clone());
                    self.add_direction(maat, vec![(words, vec![])], lev, gstaff, "above", false);
                }
                f if f.len() == 1 && "TCOAZNGHRBDFSU".contains(f) => {
                    self.info(format!(
                        "**illegal header field in body: {f}, content: {field}"
                    ));
                }
                f => self.info(format!("unhandled field: {f}, content: {field}")),
            }
        }
        if !atts.is_empty() {
            let att = self.tree.element("attributes", &[]);
            self.tree.add(maat, att, lev);
            atts.sort_by_key(|(k, _)| *k);
            for (_, e) in atts {
                self.tree.add(att, e, lev + 1);
            }
        }
        Ok(())
    }

    fn do_key(&mut self, field: &str, lev: usize, atts: &mut Vec<(u8, NodeId)>) {
        const ACCS: [&str; 7] = ["F", "C", "G", "D", "A", "E", "B"];
        let mut mode = String::new();
        let mut fifths = 0i64;
        if let Some(c) = KEY.captures(field) {
            let key = c[1].to_string();
            mode = c[2].to_lowercase().chars().take(3).collect();
            if mode_offset(&mode).is_none() {
                mode = "maj".into();
            }
            let off = mode_offset(&mode).map_or(8, |m| m.0);
            let idx = SHARPNESS.iter().position(|&s| s == key).unwrap_or(8) as i64;
            fifths = idx - off;
            self.key_alts.clear();
            if fifths >= 0 {
                for a in ACCS.iter().take(fifths as usize) {
                    self.key_alts.insert(a.to_string(), "1".into());
                }
            } else {
                let k = (-fifths) as usize;
                for a in ACCS.iter().skip(7usize.saturating_sub(k)) {
                    self.key_alts.insert(a.to_string(), "-1".into());
                }
            }
        } else if field.starts_with("none") || field.is_empty() {
            fifths = 0;
            mode = "maj".into();
        }
        let padded = format!(" {field}");
        if let Some(alts) = KEY_ALTS.captures(&padded) {
            let alts: Vec<(String, &'static str)> = KEY_ALT
                .find_iter(&alts[1])
                .map(|m| {
                    let s = m.as_str();
                    (s[1..].to_string(), alter_of(&s[..1]))
                })
                .collect();
            for (step, alter) in &alts {
                self.key_alts.insert(step.to_uppercase(), alter.to_string());
            }
            let k = self.tree.element("key", &[]);
            let lower: Vec<String> = alts
                .iter()
                .filter(|(s, _)| s.chars().all(|c| c.is_lowercase()))
                .map(|(s, _)| s.to_uppercase())
                .collect();
            let mut koctave = Vec::new();
            let items: Vec<(String, String)> = self
                .key_alts
                .iter()
                .map(|(a, b)| (a.clone(), b.clone()))
                .collect();
            for (step, alter) in items {
                if alter == "0" {
                    self.key_alts.remove(&step.to_uppercase());
                    continue;
                }
                self.tree
                    .add_text(k, "key-step", step.to_uppercase(), lev + 2);
                self.tree.add_text(k, "key-alter", alter, lev + 2);
                koctave.push(if lower.contains(&step) { "5" } else { "4" });
            }
            if !koctave.is_empty() {
                for oct in koctave {
                    let e = self.tree.element("key-octave", &[("number", oct)]);
                    self.tree.add(k, e, lev + 2);
                }
                atts.push((2, k));
            }
        } else if !mode.is_empty() {
            let k = self.tree.element("key", &[]);
            self.tree.add_text(k, "fifths", fifths.to_string(), lev + 2);
            let name = mode_offset(&mode).map_or("major", |m| m.1);
            self.tree.add_text(k, "mode", name, lev + 2);
            atts.push((2, k));
        }
    }

    fn do_clef(
        &mut self,
        field: &str,
        lev: usize,
        gstaff: i64,
        atts: &mut Vec<(u8, NodeId)>,
    ) -> Result<()> {
        let mut field = field.to_string();
        if PERC_ANY.is_match(&field) {
            let r = PERC_EQ.captures(&field);
            self.perc_voice = !matches!(&r, Some(c) if !["on", "true", "perc"].contains(&&c[2]));
            field = PERC_EQ.replace_all(&field, "").to_string();
        }
        let mut clef = String::new();
        let mut gtrans = 0;
        if let Some(m) = CLEF_NAME.find(&field) {
            clef = m.as_str().to_string();
        }
        if let Some(c) = CLEF_MIDDLE.captures(&field) {
            let note = &c[1];
            let octstr = &c[2];
            let n_up = note.to_uppercase();
            let octnum = if n_up == note { 4 } else { 5 }
                + if octstr.contains('\'') {
                    octstr.len() as i64
                } else {
                    -(octstr.len() as i64)
                };
            gtrans = if "AFD".contains(n_up.as_str()) { 3 } else { 4 } - octnum;
            if clef != "perc" && clef != "none" {
                clef = clef_for_line(&n_up).to_string();
            }
        }
        if !clef.is_empty() {
            self.gtrans = gtrans;
            if clef != "none" {
                self.cur_clef = clef.clone();
            }
            if clef == "tab" {
                return Err(unsupported("tablature staves (clef=tab)"));
            }
            let (sign, line) = clef_sign(&clef);
            if sign.is_empty() {
                return Ok(());
            }
            let c = self.tree.element("clef", &[]);
            if gstaff != 0 {
                self.tree.set(c, "number", gstaff.to_string());
            }
            self.tree.add_text(c, "sign", sign, lev + 2);
            if !line.is_empty() {
                self.tree.add_text(c, "line", line, lev + 2);
            }
            if let Some(t) = CLEF_OCTAVE.captures(&field) {
                let mut n = if "-_".contains(&t[1]) { -1 } else { 1 };
                if &t[2] == "15" {
                    n *= 2;
                }
                self.tree
                    .add_text(c, "clef-octave-change", n.to_string(), lev + 2);
                if "+-".contains(&t[1]) {
                    self.gtrans += n;
                }
            }
            atts.push((7, c));
        }
        if let Some(t) = OCTAVE_EQ.captures(&field) {
            let n: i64 = t[1].parse().unwrap_or(0);
            self.gtrans = gtrans + n;
        }
        if let Some(t) = TRANSPOSE_EQ.captures(&field) {
            let e = self.tree.element("transpose", &[]);
            self.tree
                .add_text(e, "chromatic", t[1].to_string(), lev + 3);
            atts.push((9, e));
        }
        if let Some(c) = CUE.captures(&field) {
            self.gcue_on = &c[1] == "on";
        }
        if let Some(s) = STAFFLINES.captures(&field) {
            let e = self.tree.element("staff-details", &[]);
            if gstaff != 0 {
                self.tree.set(e, "number", gstaff.to_string());
            }
            self.tree
                .add_text(e, "staff-lines", s[1].to_string(), lev + 2);
            atts.push((8, e));
        }
        Ok(())
    }

    fn do_tempo(&mut self, maat: NodeId, field: &str, lev: usize) {
        let gstaff = self.gstaff();
        let t = TEMPO.captures(field);
        let rtxt = TEMPO_TEXT.captures(field);
        if t.is_none() && rtxt.is_none() {
            return;
        }
        let mut elems = Vec::new();
        let (mut num, mut den, mut upm) = (1i128, 4i128, 120.0f64);
        if let Some(r) = &rtxt {
            let text = &r[1];
            upm = tempo_bpm(text.to_lowercase().trim()).unwrap_or(120.0);
            let words = self.tree.element("words", &[]);
            self.tree.set_text(words, text.to_string());
            elems.push((words, vec![]));
        }
        if let Some(t) = &t {
            let parsed = if let Some(g4) = t.get(4) {
                py_float(g4.as_str()).map(|u| (1, self.unit_lcur.1, u))
            } else {
                match (t[1].parse::<i128>(), t[2].parse::<i128>(), py_float(&t[3])) {
                    (Ok(a), Ok(b), Some(u)) => Some((a, b, u)),
                    _ => None,
                }
            };
            let Some((a, b, u)) = parsed else {
                self.info(format!("conversion error: {field}"));
                return;
            };
            (num, den) = simplify(a, b);
            upm = u;
            let (dotted, den_not) = if num == 3 {
                (true, den.div_euclid(2))
            } else {
                (false, den)
            };
            let metro = self.tree.element("metronome", &[]);
            let u = self.tree.element("beat-unit", &[]);
            self.tree
                .set_text(u, type_name(4 * den_not).unwrap_or("quarter"));
            let pm = self.tree.element("per-minute", &[]);
            let pm_text = format!("{:.2}", upm);
            let pm_text = pm_text.trim_end_matches('0').trim_end_matches('.');
            self.tree.set_text(pm, pm_text.to_string());
            let subelms = if dotted {
                let dot = self.tree.element("beat-unit-dot", &[]);
                vec![u, dot, pm]
            } else {
                vec![u, pm]
            };
            elems.push((metro, subelms));
        }
        let dir = self.add_direction(maat, elems, lev, gstaff, "above", false);
        if num != 1 && num != 3 {
            self.info(format!("in Q: numerator in {num}/{den} not supported"));
        }
        let qpm = 4.0 * num as f64 * upm / den as f64;
        let sound = self
            .tree
            .element("sound", &[("tempo", &format!("{:.2}", qpm))]);
        self.tree.add(dir, sound, lev + 1);
    }

    fn mk_barline(
        &mut self,
        maat: NodeId,
        loc: &str,
        lev: usize,
        style: &str,
        dir: &str,
        ending: &str,
    ) {
        let b = self.tree.element("barline", &[("location", loc)]);
        if !style.is_empty() {
            self.tree.add_text(b, "bar-style", style, lev + 1);
        }
        if !self.cur_volta.is_empty() {
            let end = self.tree.element(
                "ending",
                &[("number", &self.cur_volta.clone()), ("type", "stop")],
            );
            self.cur_volta.clear();
            if loc == "left" {
                let bp = self.tree.element("barline", &[("location", "right")]);
                self.tree.add(bp, end, lev + 1);
                if let Some(prev) = self.prevmsre {
                    self.tree.add(prev, bp, lev);
                }
            } else {
                self.tree.add(b, end, lev + 1);
            }
        }
        if !ending.is_empty() {
            let mut ending = ending.replace('-', ",");
            let mut endtxt = String::new();
            if ending.starts_with('"') {
                endtxt = ending.trim_matches('"').to_string();
                ending = "33".into();
            }
            let end = self
                .tree
                .element("ending", &[("number", &ending), ("type", "start")]);
            if !endtxt.is_empty() {
                self.tree.set_text(end, endtxt);
            }
            self.tree.add(b, end, lev + 1);
            self.cur_volta = ending;
        }
        if !dir.is_empty() {
            let r = self.tree.element("repeat", &[("direction", dir)]);
            self.tree.add(b, r, lev + 1);
        }
        self.tree.add(maat, b, lev);
    }

    fn do_chord_sym(&mut self, maat: NodeId, sym: &ChordSym, lev: usize) {
        let alter = |a: &str| match a {
            "#" => "1",
            "=" => "0",
            _ => "-1",
        };
        let t = &mut self.tree;
        let chord = t.element("harmony", &[]);
        t.add(maat, chord, lev);
        let root = t.element("root", &[]);
        t.add(chord, root, lev + 1);
        t.add_text(root, "root-step", sym.root[0].clone(), lev + 2);
        if sym.root.len() == 2 {
            t.add_text(root, "root-alter", alter(&sym.root[1]), lev + 2);
        }
        let kind = sym.kind.as_deref().map_or("major".to_string(), |k| {
            chord_kind(k).unwrap_or("major".into())
        });
        t.add_text(chord, "kind", kind, lev + 1);
        if let Some(b) = &sym.bass {
            let bass = t.element("bass", &[]);
            t.add(chord, bass, lev + 1);
            t.add_text(bass, "bass-step", b[0].clone(), lev + 2);
            if b.len() == 2 {
                t.add_text(bass, "bass-alter", alter(&b[1]), lev + 2);
            }
        }
        for deg in &sym.degrees {
            let (alt, d) = if let Some(d) = deg.strip_prefix('#') {
                ("1", d)
            } else if let Some(d) = deg.strip_prefix('b') {
                ("-1", d)
            } else {
                ("0", deg.as_str())
            };
            let degree = t.element("degree", &[]);
            t.add(chord, degree, lev + 1);
            t.add_text(degree, "degree-value", d, lev + 2);
            t.add_text(degree, "degree-alter", alt, lev + 2);
            t.add_text(degree, "degree-type", "add", lev + 2);
        }
    }

    /// `mkMeasure`: one measure element; also whether a voice overlay `&` ends it.
    fn mk_measure(
        &mut self,
        i: usize,
        t: &Measure,
        lev: usize,
        fieldmap: &FieldMap,
    ) -> Result<(NodeId, bool)> {
        self.msre_alts.clear();
        self.ntup = -1;
        self.trem = 0;
        self.intrem = false;
        self.acciatura = false;
        self.rb_stop = false;
        let mut overlay = false;
        let maat = self.tree.element("measure", &[("number", &i.to_string())]);
        if !fieldmap.is_empty() {
            self.do_fields(maat, fieldmap, lev + 1)?;
        }
        if self.linebrk {
            let e = self.tree.element("print", &[("new-system", "yes")]);
            self.tree.add(maat, e, lev + 1);
            self.linebrk = false;
        }
        for (it, x) in t.iter().enumerate() {
            match x {
                Elem::Note(n) => {
                    let fixed;
                    let n = if n.dur.0 == 0 {
                        fixed = Note {
                            dur: (1, n.dur.1),
                            ..n.clone()
                        };
                        &fixed
                    } else {
                        n
                    };
                    let note = self.mk_note(n, lev + 1)?;
                    self.tree.add(maat, note, lev + 1);
                }
                Elem::Lbar(bt) => {
                    let bar = bt[0].as_str();
                    if bar == "|" || bar == "[|" {
                    } else if bar.contains(':') {
                        let volta = if bt.len() == 2 { bt[1].as_str() } else { "" };
                        self.mk_barline(maat, "left", lev + 1, "heavy-light", "forward", volta);
                    } else {
                        self.mk_barline(maat, "left", lev + 1, "", "", bar);
                    }
                }
                Elem::Rbar(bar) => {
                    let bar = bar.as_str();
                    if bar == ".|" {
                        self.mk_barline(maat, "right", lev + 1, "dotted", "", "");
                    } else if bar.contains(':') {
                        self.mk_barline(maat, "right", lev + 1, "light-heavy", "backward", "");
                    } else if bar == "||" {
                        self.mk_barline(maat, "right", lev + 1, "light-light", "", "");
                    } else if bar == "[|]" || bar == "[]" {
                        self.mk_barline(maat, "right", lev + 1, "none", "", "");
                    } else if bar.contains('[') || bar.contains(']') {
                        self.mk_barline(maat, "right", lev + 1, "light-heavy", "", "");
                    } else if bar == "|" && self.rb_stop {
                        self.mk_barline(maat, "right", lev + 1, "regular", "", "");
                    } else if bar.starts_with('&') {
                        overlay = true;
                    }
                }
                Elem::Tup(tt) => {
                    let (n, mut into, mut nts) = match tt.len() {
                        3 => (tt[0], tt[1], tt[2]),
                        2 => (tt[0], tt[1], 0),
                        _ => (tt[0], 0, 0),
                    };
                    if into == 0 {
                        into = if [2, 4, 8].contains(&n) { 3 } else { 2 };
                    }
                    if nts == 0 {
                        nts = n;
                    }
                    self.tmnum = n as i128;
                    self.tmden = into as i128;
                    self.ntup = nts;
                }
                Elem::Deco(d) => self.staff_decos(d, maat, lev + 1),
                Elem::Text(pos, text) => {
                    let place = if pos == "^" { "above" } else { "below" };
                    let words = self.tree.element("words", &[]);
                    self.tree.set_text(words, text.clone());
                    let gstaff = self.gstaff();
                    self.add_direction(maat, vec![(words, vec![])], lev + 1, gstaff, place, false);
                }
                Elem::Inline(ft) => {
                    let fm = vec![(ft[0].clone(), ft[1..].join(" "))];
                    self.do_fields(maat, &fm, lev + 1)?;
                }
                Elem::Accia => self.acciatura = true,
                Elem::Linebrk => {
                    self.supports_tag = true;
                    if it > 0 && matches!(t[it - 1], Elem::Lbar(_)) {
                        let e = self.tree.element("print", &[("new-system", "yes")]);
                        self.tree.add(maat, e, lev + 1);
                    } else {
                        self.linebrk = true;
                    }
                }
                Elem::ChordSym(sym) => self.do_chord_sym(maat, sym, lev + 1),
                Elem::Chord(_) | Elem::Broken(_) | Elem::LyrBlk(_) => {}
            }
        }
        self.stop_beams();
        self.prevmsre = Some(maat);
        Ok((maat, overlay))
    }

    /// `mkPart`: all measures of one voice.
    fn mk_part(
        &mut self,
        maten: &[Measure],
        id: &str,
        lev: usize,
        attrs: &FieldMap,
        nstaves: i64,
    ) -> Result<NodeId> {
        self.slurstack.clear();
        self.glisnum = 0;
        self.slidenum = 0;
        self.unit_lcur = self.unit_l;
        self.cur_volta.clear();
        self.lyrdash.clear();
        self.linebrk = false;
        self.midprg = Default::default();
        self.gcue_on = false;
        self.gtrans = 0;
        self.perc_voice = false;
        self.cur_clef.clear();
        self.nostems = false;
        let part = self.tree.element("part", &[("id", id)]);
        self.overlay_vnum = 0;
        let gstaff = self.gstaff();
        let mut attrs_cpy = attrs.clone();
        if gstaff == 1 {
            fm_set(&mut attrs_cpy, "gstaff", nstaves.to_string());
        }
        if fm_get(&attrs_cpy, "V").is_some_and(|v| v.contains("perc")) {
            fm_del(&mut attrs_cpy, "K");
        }
        let (msre, mut overlay) = self.mk_measure(1, &maten[0], lev + 1, &attrs_cpy)?;
        self.tree.add(part, msre, lev + 1);
        for (i, maat) in maten[1..].iter().enumerate() {
            self.overlay_vnum = if overlay { self.overlay_vnum + 1 } else { 0 };
            let (msre, next_overlay) = self.mk_measure(i + 2, maat, lev + 1, &Vec::new())?;
            if overlay {
                let last = *self.tree.children(part).last().unwrap_or(&part);
                let vnum = self.overlay_vnum;
                merge_measure(&mut self.tree, last, msre, 0, vnum, false, true);
            } else {
                self.tree.add(part, msre, lev + 1);
            }
            overlay = next_overlay;
        }
        Ok(part)
    }

    fn mk_score_part(
        &mut self,
        id: &str,
        part_attr: &HashMap<String, (String, String)>,
        lev: usize,
    ) -> NodeId {
        let (naam, subnm) = part_attr.get(id).cloned().unwrap_or_default();
        let t = &mut self.tree;
        let sp = t.element("score-part", &[("id", &format!("P{id}"))]);
        let nm = t.element("part-name", &[]);
        t.set_text(nm, naam);
        t.add(sp, nm, lev + 1);
        if !subnm.is_empty() {
            let snm = t.element("part-abbreviation", &[]);
            t.set_text(snm, subnm);
            t.add(sp, snm, lev + 1);
        }
        let mut inst = Vec::new();
        for (inst_id, (pid, vid, chan, midprg, vol, pan)) in &self.midi_inst {
            let (midprg, midnot) = if chan == "10" {
                ("0".to_string(), midprg.clone())
            } else {
                (midprg.clone(), String::new())
            };
            if pid != id {
                continue;
            }
            let si = t.element("score-instrument", &[("id", inst_id)]);
            let pnm = part_attr.get(vid).map(|a| a.0.clone()).unwrap_or_default();
            t.add_text(
                si,
                "instrument-name",
                if pnm.is_empty() {
                    "dummy".to_string()
                } else {
                    pnm
                },
                lev + 2,
            );
            let mi = t.element("midi-instrument", &[("id", inst_id)]);
            if !chan.is_empty() {
                t.add_text(mi, "midi-channel", chan.clone(), lev + 2);
            }
            if !midprg.is_empty() {
                let v: i64 = midprg.parse().unwrap_or(0);
                t.add_text(mi, "midi-program", (v + 1).to_string(), lev + 2);
            }
            if !midnot.is_empty() {
                let v: i64 = midnot.parse().unwrap_or(0);
                t.add_text(mi, "midi-unpitched", (v + 1).to_string(), lev + 2);
            }
            if !vol.is_empty() {
                let v: i64 = vol.parse().unwrap_or(0);
                t.add_text(mi, "volume", format!("{:.2}", v as f64 / 1.27), lev + 2);
            }
            if !pan.is_empty() {
                let v: i64 = pan.parse().unwrap_or(0);
                t.add_text(
                    mi,
                    "pan",
                    format!("{:.2}", v as f64 / 127.0 * 180.0 - 90.0),
                    lev + 2,
                );
            }
            inst.push((si, mi));
        }
        for &(si, _) in &inst {
            t.add(sp, si, lev + 1);
        }
        for &(_, mi) in &inst {
            t.add(sp, mi, lev + 1);
        }
        sp
    }

    fn mk_partlist(
        &mut self,
        vids: &[String],
        part_attr: &HashMap<String, (String, String)>,
        lev: usize,
    ) -> NodeId {
        let partlist = self.tree.element("part-list", &[]);
        let mut g_num = 0;
        let groups = if self.groups.is_empty() {
            vids.to_vec()
        } else {
            self.groups.clone()
        };
        for g in groups {
            if g == "[" || g == "{" {
                g_num += 1;
                let t = &mut self.tree;
                let pg = t.element(
                    "part-group",
                    &[("number", &g_num.to_string()), ("type", "start")],
                );
                t.add(partlist, pg, lev + 1);
                t.add_text(
                    pg,
                    "group-symbol",
                    if g == "[" { "bracket" } else { "brace" },
                    lev + 2,
                );
                t.add_text(pg, "group-barline", "yes", lev + 2);
            } else if "}]".contains(g.as_str()) {
                let pg = self.tree.element(
                    "part-group",
                    &[("number", &g_num.to_string()), ("type", "stop")],
                );
                self.tree.add(partlist, pg, lev + 1);
                g_num -= 1;
            } else {
                if !vids.contains(&g) {
                    continue;
                }
                let sp = self.mk_score_part(&g, part_attr, lev + 1);
                self.tree.add(partlist, sp, lev + 1);
            }
        }
        partlist
    }

    /// `doField_I`. `body` carries the measure context for MIDI changes and transpositions in
    /// the body; in the header they do nothing.
    fn do_field_i(&mut self, x: &str, body: Option<BodyContext<'_>>) -> Result<()> {
        if x.starts_with("score") || x.starts_with("staves") {
            self.stave_defs.push(x.to_string());
        } else if x.starts_with("staffwidth") {
            self.info(format!("skipped I-field: {x}"));
        } else if x.starts_with("staff") {
            if let Some(r) = STAFF_NUM.captures(x) {
                let sign = &r[1];
                let mut num: i64 = r[2].parse().unwrap_or(0);
                let gstaff = self.gstaff();
                if !sign.is_empty() {
                    num = if sign == "-" {
                        gstaff - num
                    } else {
                        gstaff + num
                    };
                } else {
                    let vabc = self
                        .staves
                        .get((num - 1).max(0) as usize)
                        .filter(|_| num >= 1)
                        .and_then(|s| s.first().cloned());
                    num = vabc
                        .and_then(|v| self.g_staff_nums_org.get(&v).copied())
                        .unwrap_or(0);
                }
                let total = self.g_nstaves.get(&self.vid).copied().unwrap_or(0);
                if gstaff != 0 && num > 0 && num <= total {
                    self.g_staff_nums.insert(self.vid.clone(), num);
                } else {
                    self.info(format!("could not relocate to staff: {}", &r[0]));
                }
            } else {
                self.info(format!("not a valid staff redirection: {x}"));
            }
        } else if let Some(n) = [
            "scale",
            "pageheight",
            "pagewidth",
            "leftmargin",
            "rightmargin",
            "topmargin",
            "botmargin",
        ]
        .iter()
        .position(|p| x.starts_with(p))
        {
            let fmt = self.page_fmt_abc.get_or_insert(PAGE_FORMAT_DEFAULTS);
            match PAGE_VALUE.captures(x).and_then(|c| {
                let unit = match c.get(2).map(|m| m.as_str()) {
                    Some("cm") => 10.0,
                    Some("in") => 25.4,
                    Some("pt") => 25.4 / 72.0,
                    _ => 1.0,
                };
                py_float(&c[1]).map(|v| v * unit)
            }) {
                Some(v) => fmt[n] = v,
                None => self.info(format!("error in page format: {x}")),
            }
        } else if x.starts_with("MIDI") || x.starts_with("midi") {
            let r1 = MIDI_PROGRAM.captures(x);
            let r2 = MIDI_CHANNEL.captures(x);
            let r3 = MIDI_DRUMMAP.captures(x);
            let r4 = MIDI_CONTROL.captures(x);
            let (mut ch_nw, mut prg_nw, mut vol_nw, mut pan_nw) =
                (String::new(), String::new(), String::new(), String::new());
            if let Some(r) = &r1 {
                ch_nw = r[1].to_string();
                prg_nw = r[2].to_string();
            }
            if let Some(r) = &r2 {
                ch_nw = r[1].to_string();
            }
            if let Some(r) = &r4 {
                if &r[1] == "7" {
                    vol_nw = r[2].to_string();
                }
                if &r[1] == "10" {
                    pan_nw = r[2].to_string();
                }
            }
            let mut body = body;
            if r1.is_some() || r2.is_some() || r4.is_some() {
                let or = |a: String, b: &String| if a.is_empty() { b.clone() } else { a };
                let ch = or(ch_nw, &self.midprg[0]);
                let prg = or(prg_nw, &self.midprg[1]);
                let vol = or(vol_nw, &self.midprg[2]);
                let pan = or(pan_nw, &self.midprg[3]);
                let inst_id = format!("I{}-{}", self.pid, self.vid);
                if self.midi_inst.contains_key(&inst_id) {
                    if let Some((maat, lev, gstaff, _)) = body.as_mut() {
                        let (maat, lev, gstaff) = (*maat, *lev, *gstaff);
                        if !ch.is_empty() && ch != self.midprg[0] {
                            self.inst_dir(maat, lev, gstaff, "midi-channel", &ch, "chan: ");
                        }
                        if !prg.is_empty() && prg != self.midprg[1] {
                            let v: i64 = prg.parse().unwrap_or(0);
                            self.inst_dir(
                                maat,
                                lev,
                                gstaff,
                                "midi-program",
                                &(v + 1).to_string(),
                                "prog: ",
                            );
                        }
                    }
                }
                self.midprg = [ch, prg, vol, pan];
            }
            if let Some(r) = &r3 {
                let (acc, step, octs, midi) = (&r[1], &r[2], &r[3], &r[4]);
                let oct = if x.contains(',') {
                    -(octs.len() as i64)
                } else {
                    octs.len() as i64
                };
                let notehead = match acc {
                    "^" => "x",
                    "_" => "circle-x",
                    _ => "normal",
                };
                self.perc_map.insert(
                    (self.pid.clone(), format!("{acc}{step}"), oct),
                    (
                        step.to_string(),
                        oct,
                        midi.to_string(),
                        notehead.to_string(),
                    ),
                );
            }
            if let Some(r) = MIDI_TRANSPOSE.captures(x) {
                if let Some((_, lev, _, atts)) = body {
                    let e = self.tree.element("transpose", &[]);
                    self.tree
                        .add_text(e, "chromatic", r[1].to_string(), lev + 2);
                    atts.push((9, e));
                }
            }
        } else if x.starts_with("percmap") {
            self.read_perc_map(x)?;
        } else {
            self.info(format!("skipped I-field: {x}"));
        }
        Ok(())
    }

    /// `readPercMap`: an `I:percmap` line into the percussion map of the current part.
    fn read_perc_map(&mut self, x: &str) -> Result<()> {
        let m = super::parser::parse_percmap(x)?;
        let (nstep, noct) = m.display.clone().unwrap_or((m.step.clone(), m.oct));
        let midi = match &m.midi {
            PercMidi::Star => midi_value(&m.acc, &m.step, m.oct).to_string(),
            PercMidi::Pitch(a, s, o) => midi_value(a, s, *o).to_string(),
            PercMidi::Number(n) => n.to_string(),
            PercMidi::Name(name) => self.drum_midi_number(&name.to_lowercase()),
        };
        let head = HEAD_DASH.replace_all(&m.head, "$1 $2").to_string();
        self.perc_map.insert(
            (self.pid.clone(), format!("{}{}", m.acc, m.step), m.oct),
            (nstep, noct, midi, head),
        );
        Ok(())
    }

    /// `getMidNum`: the General MIDI number of a drum sound named by its `-`-separated parts.
    fn drum_midi_number(&mut self, name: &str) -> String {
        let mut ps: Vec<(&str, &str)> = GM_DRUMS.to_vec();
        for (ip, part) in name.split('-').enumerate() {
            ps.retain(|(nm, _)| nm.split('-').nth(ip).is_some_and(|x| x.contains(part)));
            if ps.len() <= 1 {
                break;
            }
        }
        match ps.first() {
            Some((_, n)) => n.to_string(),
            None => {
                self.info(format!("drum sound: {name} not found"));
                "38".into()
            }
        }
    }

    fn inst_dir(
        &mut self,
        maat: NodeId,
        lev: usize,
        gstaff: i64,
        midelm: &str,
        midnum: &str,
        label: &str,
    ) {
        let inst_id = format!("I{}-{}", self.pid, self.vid);
        let words = self.tree.element("words", &[]);
        self.tree.set_text(words, format!("{label}{midnum}"));
        let snd = self.tree.element("sound", &[]);
        let mi = self.tree.element("midi-instrument", &[("id", &inst_id)]);
        let dir = self.add_direction(maat, vec![(words, vec![])], lev, gstaff, "above", false);
        self.tree.add(dir, snd, lev + 1);
        self.tree.add(snd, mi, lev + 2);
        self.tree.add_text(mi, midelm, midnum.to_string(), lev + 3);
    }

    fn parse_stave_def(&mut self, vdefs: &mut VoiceDefs) -> Result<()> {
        for (vid, _) in vdefs.iter() {
            self.vcepid.insert(vid.clone(), vid.clone());
        }
        if self.stave_defs.is_empty() {
            return Ok(());
        }
        let dropped: Vec<String> = self.stave_defs[1..]
            .iter()
            .map(|x| format!("%%{x} dropped, multiple stave mappings not supported"))
            .collect();
        self.warnings.extend(dropped);
        let x = self.stave_defs[0].clone();
        let mut score = super::parser::parse_score(&x)?;
        let staves = mk_staves(&mut score, vdefs);
        self.staves = staves;
        self.grands = mk_grand(&mut score, vdefs);
        self.groups = mk_groups(&score);
        let mut d: HashMap<String, Vec<String>> = HashMap::new();
        for vgr in self.staves.iter().filter(|v| v.len() > 1) {
            d.insert(vgr[0].clone(), vgr.clone());
        }
        for gstaff in &self.grands {
            if gstaff.len() == 1 {
                continue;
            }
            for (i, v) in gstaff.iter().enumerate() {
                let members = d.get(v).cloned().unwrap_or_else(|| vec![v.clone()]);
                for vx in members {
                    self.g_staff_nums.insert(vx.clone(), i as i64 + 1);
                    self.g_nstaves.insert(vx, gstaff.len() as i64);
                }
            }
        }
        self.g_staff_nums_org = self.g_staff_nums.clone();
        for xmlpart in &self.grands {
            let pid = xmlpart[0].clone();
            for stf in xmlpart {
                for v in d.get(stf).cloned().unwrap_or_else(|| vec![stf.clone()]) {
                    self.vcepid.insert(v, pid.clone());
                }
            }
        }
        Ok(())
    }

    fn do_header_field(&mut self, fld: &Field, attrmap: &mut FieldMap) -> Result<()> {
        let typ = fld.t[0].as_str();
        let value = fld
            .t
            .get(1)
            .map(|v| v.replace("%5d", "]"))
            .unwrap_or_default();
        if value.is_empty() {
            return Ok(());
        }
        match typ {
            "M" | "K" | "Q" => fm_set(attrmap, typ, value),
            "L" => {
                let parsed: Option<Vec<i128>> =
                    fld.t[1].split('/').map(|x| x.trim().parse().ok()).collect();
                match parsed {
                    Some(v) if v.len() >= 2 && type_name(v[1]).is_some() => {
                        self.unit_l = (v[0], v[1])
                    }
                    _ => {
                        self.info(format!("L:{} is not allowed, 1/8 assumed", fld.t[1]));
                        self.unit_l = (1, 8);
                    }
                }
            }
            "T" => {
                self.title = if self.title.is_empty() {
                    value
                } else {
                    format!("{}\n{value}", self.title)
                };
            }
            "U" => {
                let sym = strip_deco(fld.t.get(2).map_or("", |s| s.as_str())).to_string();
                self.usr_syms.insert(value, sym);
            }
            "I" => self.do_field_i(&value, None)?,
            t if t.len() == 1 && "CRZNOAGHBDFSP".contains(t) => {
                let key = if t == "C" { "composer" } else { t };
                let c = fm_get(&self.metadata, key).unwrap_or("").to_string();
                let v = if c.is_empty() {
                    value
                } else {
                    format!("{c}\n{value}")
                };
                fm_set(&mut self.metadata, key, v);
            }
            _ => self.info(format!("skipped header: (field {},{})", typ, value)),
        }
        Ok(())
    }

    fn mk_identification(&mut self, score: NodeId, lev: usize, date: &str) {
        let t = &mut self.tree;
        if !self.title.is_empty() {
            let xs: Vec<&str> = self.title.split('\n').collect();
            let ys = xs[1..].join("\n");
            let w = t.element("work", &[]);
            t.add(score, w, lev + 1);
            if !ys.is_empty() {
                t.add_text(w, "work-number", ys, lev + 2);
            }
            t.add_text(w, "work-title", xs[0].to_string(), lev + 2);
        }
        let ident = t.element("identification", &[]);
        t.add(score, ident, lev + 1);
        for (mtype, mval) in &self.metadata {
            if META_TYPES.contains(&mtype.as_str()) && mtype != "rights" {
                let c = t.element("creator", &[("type", mtype)]);
                t.set_text(c, mval.clone());
                t.add(ident, c, lev + 2);
            }
        }
        if let Some(r) = fm_get(&self.metadata, "rights") {
            t.add_text(ident, "rights", r.to_string(), lev + 2);
        }
        let encoding = t.element("encoding", &[]);
        t.add(ident, encoding, lev + 2);
        let encoder = t.element("encoder", &[]);
        t.set_text(encoder, format!("abc2xml version {VERSION}"));
        t.add(encoding, encoder, lev + 3);
        if self.supports_tag {
            let s = t.element(
                "supports",
                &[
                    ("attribute", "new-system"),
                    ("element", "print"),
                    ("type", "yes"),
                    ("value", "yes"),
                ],
            );
            t.add(encoding, s, lev + 3);
        }
        let d = t.element("encoding-date", &[]);
        t.set_text(d, date.to_string());
        t.add(encoding, d, lev + 3);
        // addMeta
        let misc = t.element("miscellaneous", &[]);
        let mut any = false;
        let mut sorted = self.metadata.clone();
        sorted.sort();
        for (mtype, mval) in sorted {
            if mtype == "S" {
                t.add_text(ident, "source", mval, lev + 2);
            } else if META_TYPES.contains(&mtype.as_str()) {
                continue;
            } else {
                let name = meta_name(&mtype).unwrap_or("");
                let mf = t.element("miscellaneous-field", &[("name", name)]);
                t.set_text(mf, mval);
                t.add(misc, mf, lev + 3);
                any = true;
            }
        }
        if any {
            t.add(ident, misc, lev + 2);
        }
    }

    fn mk_defaults(&mut self, score: NodeId, lev: usize) {
        let Some([abc_scale, h, w, l, r, tm, b]) = self.page_fmt_abc else {
            return;
        };
        let space = abc_scale * 2.117;
        let mils = 4.0 * space;
        let scale = 40.0 / mils;
        let t = &mut self.tree;
        let dflts = t.element("defaults", &[]);
        t.add(score, dflts, lev);
        let scaling = t.element("scaling", &[]);
        t.add(dflts, scaling, lev + 1);
        t.add_text(scaling, "millimeters", format_g(mils), lev + 2);
        t.add_text(scaling, "tenths", "40", lev + 2);
        let layout = t.element("page-layout", &[]);
        t.add(dflts, layout, lev + 1);
        t.add_text(layout, "page-height", format_g(h * scale), lev + 2);
        t.add_text(layout, "page-width", format_g(w * scale), lev + 2);
        let margins = t.element("page-margins", &[("type", "both")]);
        t.add(layout, margins, lev + 2);
        t.add_text(margins, "left-margin", format_g(l * scale), lev + 3);
        t.add_text(margins, "right-margin", format_g(r * scale), lev + 3);
        t.add_text(margins, "top-margin", format_g(tm * scale), lev + 3);
        t.add_text(margins, "bottom-margin", format_g(b * scale), lev + 3);
    }

    /// `MusicXml.parse` after the grammar: the `<score-partwise>` element.
    pub(crate) fn build(
        &mut self,
        header: &[Field],
        mut ps: Vec<ParsedVoice>,
        date: &str,
    ) -> Result<NodeId> {
        let score = self.tree.element("score-partwise", &[]);
        let mut attrmap: FieldMap = vec![
            ("Div".into(), self.divisions.to_string()),
            ("K".into(), "C treble".into()),
            ("M".into(), "4/4".into()),
        ];
        for f in header {
            self.do_header_field(f, &mut attrmap)?;
        }
        let mut vdefs = self.voice_names_and_maps(&mut ps);
        self.parse_stave_def(&mut vdefs)?;
        let lev = 0;
        let mut vids = Vec::new();
        let mut parts = Vec::new();
        let mut part_attr: HashMap<String, (String, String)> = HashMap::new();
        for (vid, _, vce) in &ps {
            let (pname, psubnm, voicedef) = vd_get(&vdefs, vid).cloned().unwrap_or_default();
            fm_set(&mut attrmap, "V", voicedef);
            let pid = format!("P{vid}");
            self.vid = vid.clone();
            self.pid = self.vcepid.get(vid).cloned().unwrap_or_else(|| vid.clone());
            self.g_time = (0, 0);
            let nstaves = self.g_nstaves.get(vid).copied().unwrap_or(0);
            let part = self.mk_part(vce, &pid, lev + 1, &attrmap, nstaves)?;
            fm_del(&mut attrmap, "Q");
            parts.push(part);
            vids.push(vid.clone());
            part_attr.insert(vid.clone(), (pname, psubnm));
            if self.midprg.iter().any(|s| !s.is_empty()) && !self.perc_voice {
                let inst_id = format!("I{}-{}", self.pid, self.vid);
                if !self.midi_inst.contains_key(&inst_id) {
                    let m = self.midprg.clone();
                    self.midi_inst.insert(
                        inst_id,
                        (
                            self.pid.clone(),
                            self.vid.clone(),
                            m[0].clone(),
                            m[1].clone(),
                            m[2].clone(),
                            m[3].clone(),
                        ),
                    );
                }
            }
        }
        let staves = self.staves.clone();
        let (parts, vidsnew) = merge_parts(
            &mut self.tree,
            parts,
            vids.clone(),
            &staves,
            false,
            &mut self.warnings,
        );
        let grands = self.grands.clone();
        let (parts, vidsnew) = merge_parts(
            &mut self.tree,
            parts,
            vidsnew,
            &grands,
            true,
            &mut self.warnings,
        );
        self.reduce_mids(&parts, &vidsnew);
        self.mk_identification(score, lev, date);
        self.mk_defaults(score, lev + 1);
        let partlist = self.mk_partlist(&vids, &part_attr, lev + 1);
        self.tree.add(score, partlist, lev + 1);
        for part in parts {
            self.tree.add(score, part, lev + 1);
        }
        Ok(score)
    }

    fn voice_names_and_maps(&mut self, ps: &mut [ParsedVoice]) -> VoiceDefs {
        let mut vdefs = Vec::new();
        for (vid, vcedef, vce) in ps.iter_mut() {
            match vcedef {
                None => vd_set(&mut vdefs, vid, Default::default()),
                Some(t) => {
                    if t.len() < 3 {
                        t.resize(3, String::new());
                    }
                    if *vid != t[1] {
                        let msg =
                            format!("voice ids unequal: {} (reg-ex) != {} (grammar)", vid, t[1]);
                        self.info(msg);
                    }
                    let pname = VOICE_NAME
                        .captures(&t[2])
                        .map(|c| c[1].to_string())
                        .unwrap_or_default();
                    let psubnm = VOICE_SUBNAME
                        .captures(&t[2])
                        .map(|c| c[1].to_string())
                        .unwrap_or_default();
                    t[2] = t[2]
                        .replace(&format!("\"{pname}\""), "\"\"")
                        .replace(&format!("\"{psubnm}\""), "\"\"");
                    vd_set(&mut vdefs, vid, (pname, psubnm, t[2].clone()));
                }
            }
            for m in vce.iter() {
                for e in m {
                    if let Elem::Inline(t) = e {
                        if let Some(x) = t.get(1) {
                            if x.starts_with("score") || x.starts_with("staves") {
                                self.stave_defs.push(x.replace("%5d", "]"));
                            }
                        }
                    }
                }
            }
        }
        vdefs
    }

    fn reduce_mids(&mut self, parts: &[NodeId], vidsnew: &[String]) {
        for (pid, &part) in vidsnew.iter().zip(parts) {
            let mut mids: BTreeMap<(String, String), String> = BTreeMap::new();
            let mut repls: HashMap<String, String> = HashMap::new();
            let mut has_perc = false;
            let mut values: Vec<MidiInst> = self.midi_inst.values().cloned().collect();
            values.sort();
            for (ipid, ivid, ch, prg, _, _) in values {
                if &ipid != pid {
                    continue;
                }
                if ch == "10" {
                    has_perc = true;
                    continue;
                }
                let inst_id = format!("I{ipid}-{ivid}");
                let inst = (ch, prg);
                if let Some(existing) = mids.get(&inst) {
                    repls.insert(inst_id.clone(), existing.clone());
                    self.midi_inst.remove(&inst_id);
                } else {
                    mids.insert(inst, inst_id);
                }
            }
            if mids.len() < 2 && !has_perc {
                for m in self.tree.findall(part, "measure") {
                    for n in self.tree.findall(m, "note") {
                        if let Some(e) = self.tree.find(n, "instrument") {
                            self.tree.remove(n, e);
                        }
                    }
                }
            } else {
                for e in self.tree.findall(part, "measure/note/instrument") {
                    if let Some(id) = self.tree.get(e, "id").map(str::to_string) {
                        if let Some(r) = repls.get(&id) {
                            self.tree.set(e, "id", r.clone());
                        }
                    }
                }
            }
        }
    }
}

/// `midiVal`: the MIDI number of an ABC note.
fn midi_value(acc: &str, step: &str, oct: i64) -> i64 {
    let up = step.to_uppercase();
    let oct = if up == step { 4 } else { 5 } + oct;
    let idx = "CDEFGAB".find(&up).unwrap_or(0);
    oct * 12
        + [0, 2, 4, 5, 7, 9, 11][idx]
        + match acc {
            "^" => 1,
            "_" => -1,
            _ => 0,
        }
        + 12
}

/// abc2xml's channel 10 sound names (`ch10`).
const GM_DRUMS: [(&str, &str); 47] = [
    ("acoustic-bass-drum", "35"),
    ("bass-drum-1", "36"),
    ("side-stick", "37"),
    ("acoustic-snare", "38"),
    ("hand-clap", "39"),
    ("electric-snare", "40"),
    ("low-floor-tom", "41"),
    ("closed-hi-hat", "42"),
    ("high-floor-tom", "43"),
    ("pedal-hi-hat", "44"),
    ("low-tom", "45"),
    ("open-hi-hat", "46"),
    ("low-mid-tom", "47"),
    ("hi-mid-tom", "48"),
    ("crash-cymbal-1", "49"),
    ("high-tom", "50"),
    ("ride-cymbal-1", "51"),
    ("chinese-cymbal", "52"),
    ("ride-bell", "53"),
    ("tambourine", "54"),
    ("splash-cymbal", "55"),
    ("cowbell", "56"),
    ("crash-cymbal-2", "57"),
    ("vibraslap", "58"),
    ("ride-cymbal-2", "59"),
    ("hi-bongo", "60"),
    ("low-bongo", "61"),
    ("mute-hi-conga", "62"),
    ("open-hi-conga", "63"),
    ("low-conga", "64"),
    ("high-timbale", "65"),
    ("low-timbale", "66"),
    ("high-agogo", "67"),
    ("low-agogo", "68"),
    ("cabasa", "69"),
    ("maracas", "70"),
    ("short-whistle", "71"),
    ("long-whistle", "72"),
    ("short-guiro", "73"),
    ("long-guiro", "74"),
    ("claves", "75"),
    ("hi-wood-block", "76"),
    ("low-wood-block", "77"),
    ("mute-cuica", "78"),
    ("open-cuica", "79"),
    ("mute-triangle", "80"),
    ("open-triangle", "81"),
];

/// `eval(beats)` for the meter numerators abc2xml meets: an integer or a sum `2+3`.
fn eval_beats(beats: &str) -> Option<i128> {
    let mut sum = 0i128;
    for term in beats.split('+') {
        sum += term.trim().parse::<i128>().ok()?;
    }
    Some(sum)
}

/// Python's `float(s)` for the plain decimals the tempo and page patterns capture.
fn py_float(s: &str) -> Option<f64> {
    if s.matches('.').count() > 1 {
        return None;
    }
    s.parse().ok()
}

fn lyric_text(txt: &str) -> String {
    // re.sub(r'(?<!\\)~', ' ', txt) then re.sub(r'\\(.)', r'\1', txt)
    let chars: Vec<char> = txt.chars().collect();
    let mut spaced = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c == '~' && (i == 0 || chars[i - 1] != '\\') {
            spaced.push(' ');
        } else {
            spaced.push(c);
        }
    }
    let chars: Vec<char> = spaced.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' && i + 1 < chars.len() && chars[i + 1] != '\n' {
            out.push(chars[i + 1]);
            i += 2;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

fn step_trans(step: &str, soct: i64, clef: &str) -> (String, i64) {
    if clef.starts_with("bass") {
        let nm7 = ["C", "D", "E", "F", "G", "A", "B"];
        let idx = nm7.iter().position(|&s| s == step).unwrap_or(0) as i64;
        let n = 14 + idx - 12;
        return (
            nm7[n.rem_euclid(7) as usize].to_string(),
            soct + n.div_euclid(7) - 2,
        );
    }
    (step.to_string(), soct)
}

/// `mergeMeasure`: appends the notes of `m2` to `m1` after a backup.
fn merge_measure(
    t: &mut Tree,
    m1: NodeId,
    m2: NodeId,
    slur_offset: i64,
    voice_offset: i64,
    is_grand: bool,
    is_overlay: bool,
) {
    for slr in t.findall(m2, "note/notations/slur") {
        let n: i64 = t
            .get(slr, "number")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        t.set(slr, "number", (n + slur_offset).to_string());
    }
    for v in t.findall(m2, "note/voice") {
        let n: i64 = t.text(v).and_then(|v| v.parse().ok()).unwrap_or(0);
        t.set_text(v, (voice_offset + n).to_string());
    }
    let lnum_max = t
        .findall(m1, "note/lyric")
        .into_iter()
        .filter_map(|l| t.get(l, "number").and_then(|v| v.parse::<i64>().ok()))
        .max()
        .unwrap_or(0)
        .max(0);
    for el in t.findall(m2, "note/lyric") {
        let n: i64 = t
            .get(el, "number")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        t.set(el, "number", (n + lnum_max).to_string());
    }
    let mut dur1: i128 = 0;
    for n in t.findall(m1, "note") {
        if t.find(n, "grace").is_none() && t.find(n, "chord").is_none() {
            dur1 += t
                .find(n, "duration")
                .and_then(|d| t.text(d))
                .and_then(|v| v.parse::<i128>().ok())
                .unwrap_or(0);
        }
    }
    for b in t.findall(m1, "backup/duration") {
        dur1 -= t.text(b).and_then(|v| v.parse::<i128>().ok()).unwrap_or(0);
    }
    let mut repbar = None;
    let mut nns = 0;
    let mut es = Vec::new();
    for e in t.children(m2).to_vec() {
        let tag = t.tag(e).to_string();
        if tag == "attributes" {
            if !is_grand {
                continue;
            }
            nns += 1;
        }
        if tag == "print" {
            continue;
        }
        if tag == "note" && t.find(e, "rest").is_none() {
            nns += 1;
        }
        if tag == "barline" && t.find(e, "repeat").is_some() {
            repbar = Some(e);
        }
        es.push(e);
    }
    if nns > 0 {
        if dur1 > 0 {
            let b = t.element("backup", &[]);
            t.add(m1, b, 3);
            t.add_text(b, "duration", dur1.to_string(), 4);
        }
        for e in es {
            t.add(m1, e, 3);
        }
    } else if is_overlay {
        if let Some(r) = repbar {
            t.add(m1, r, 3);
        }
    }
}

fn merge_part_list(t: &mut Tree, parts: &[NodeId], is_grand: bool) -> NodeId {
    let p1 = parts[0];
    for &p2 in &parts[1..] {
        if is_grand {
            for m in t.findall(p2, "measure") {
                for e in t.findall(m, "attributes") {
                    for c in t.children(e).to_vec() {
                        let tag = t.tag(c);
                        if tag == "clef" || tag == "staff-details" {
                            continue;
                        }
                        t.remove(e, c);
                    }
                    if t.children(e).is_empty() {
                        t.remove(m, e);
                    }
                }
            }
        }
        let n1 = t.children(p1).len();
        let n2 = t.children(p2).len();
        for i in n1 + 1..n2 + 1 {
            let maat = t.element("measure", &[("number", &i.to_string())]);
            t.add(p1, maat, 2);
        }
        let slur_max = t
            .findall(p1, "measure/note/notations/slur")
            .into_iter()
            .filter_map(|s| t.get(s, "number").and_then(|v| v.parse::<i64>().ok()))
            .max()
            .unwrap_or(0)
            .max(0);
        let vnum_max = t
            .findall(p1, "measure/note/voice")
            .into_iter()
            .filter_map(|v| t.text(v).and_then(|v| v.parse::<i64>().ok()))
            .max()
            .unwrap_or(0)
            .max(0);
        let m1s = t.children(p1).to_vec();
        for (im, m2) in t.findall(p2, "measure").into_iter().enumerate() {
            if let Some(&m1) = m1s.get(im) {
                merge_measure(t, m1, m2, slur_max, vnum_max, is_grand, false);
            }
        }
    }
    p1
}

fn merge_parts(
    t: &mut Tree,
    parts: Vec<NodeId>,
    vids: Vec<String>,
    staves: &[Vec<String>],
    is_grand: bool,
    warnings: &mut Vec<String>,
) -> (Vec<NodeId>, Vec<String>) {
    if staves.is_empty() {
        return (parts, vids);
    }
    let mut partsnew = Vec::new();
    let mut vidsnew = Vec::new();
    for voice_ids in staves {
        let mut pixs = Vec::new();
        for vid in voice_ids {
            match vids.iter().position(|v| v == vid) {
                Some(i) => pixs.push(i),
                None => warnings.push(format!("score partname {vid} does not exist")),
            }
        }
        if !pixs.is_empty() {
            let xparts: Vec<NodeId> = pixs.iter().map(|&i| parts[i]).collect();
            let merged = if xparts.len() > 1 {
                merge_part_list(t, &xparts, is_grand)
            } else {
                xparts[0]
            };
            partsnew.push(merged);
            vidsnew.push(vids[pixs[0]].clone());
        }
    }
    (partsnew, vidsnew)
}

fn set_first_voice_name_from_group(vids: &[String], vdefs: &mut VoiceDefs) {
    let vids: Vec<&String> = vids.iter().filter(|v| vd_get(vdefs, v).is_some()).collect();
    let Some(vid0) = vids.first() else { return };
    let vdef0 = vd_get(vdefs, vid0).map(|d| d.2.clone()).unwrap_or_default();
    for vid in &vids {
        let Some((nm, snm, _)) = vd_get(vdefs, vid).cloned() else {
            continue;
        };
        if !nm.is_empty() {
            vd_set(vdefs, vid0, (nm, snm, vdef0));
            break;
        }
    }
}

fn first_vid(p: &ScorePart) -> Option<String> {
    match p {
        ScorePart::Vid(v) => Some(v.clone()),
        _ => None,
    }
}

/// `mkStaves`: `[[vid]]` per staff; voice groups are replaced by their first voice.
fn mk_staves(parts: &mut [ScorePart], vdefs: &mut VoiceDefs) -> Vec<Vec<String>> {
    let mut xs = Vec::new();
    for x in parts.iter_mut() {
        match x {
            ScorePart::Vid(v) => xs.push(vec![v.clone()]),
            ScorePart::VoiceGr(items) => {
                let vids: Vec<String> = items.iter().filter_map(first_vid).collect();
                xs.push(vids.clone());
                set_first_voice_name_from_group(&vids, vdefs);
                if let Some(first) = items.first().cloned() {
                    *x = first;
                }
            }
            ScorePart::Grand(_, items)
            | ScorePart::BraceGr(items)
            | ScorePart::BracketGr(items) => {
                xs.extend(mk_staves(items, vdefs));
            }
        }
    }
    xs
}

/// `mkGrand`: `[[vid]]` per part; accepted grand staves list their staves.
fn mk_grand(parts: &mut [ScorePart], vdefs: &mut VoiceDefs) -> Vec<Vec<String>> {
    let mut xs = Vec::new();
    for x in parts.iter_mut() {
        match x {
            ScorePart::Vid(v) => xs.push(vec![v.clone()]),
            ScorePart::Grand(open, items) => {
                let vids: Vec<String> = items.iter().filter_map(first_vid).collect();
                let named = vids
                    .iter()
                    .filter_map(|u| vd_get(vdefs, u))
                    .filter(|d| !d.0.is_empty())
                    .count();
                if named == 1 || open == "{*" {
                    xs.push(vids.clone());
                    set_first_voice_name_from_group(&vids, vdefs);
                    if let Some(first) = items.first().cloned() {
                        *x = first;
                    }
                } else {
                    xs.extend(vids.into_iter().map(|v| vec![v]));
                }
            }
            ScorePart::VoiceGr(items) | ScorePart::BraceGr(items) | ScorePart::BracketGr(items) => {
                xs.extend(mk_grand(items, vdefs));
            }
        }
    }
    xs
}

/// `mkGroups`: voice ids with `[`/`]` and `{`/`}` around groups.
fn mk_groups(parts: &[ScorePart]) -> Vec<String> {
    let mut xs = Vec::new();
    for x in parts {
        match x {
            ScorePart::Vid(v) => xs.push(v.clone()),
            ScorePart::BracketGr(items) => {
                xs.push("[".into());
                xs.extend(mk_groups(items));
                xs.push("]".into());
            }
            ScorePart::BraceGr(items) => {
                xs.push("{".into());
                xs.extend(mk_groups(items));
                xs.push("}".into());
            }
            ScorePart::Grand(open, items) => {
                xs.push(open.clone());
                xs.extend(mk_groups(items));
                xs.push("}".into());
            }
            ScorePart::VoiceGr(items) => xs.extend(mk_groups(items)),
        }
    }
    xs
}
