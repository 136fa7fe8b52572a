//! The ABC grammar of abc2xml.py (its pyparsing 2.0.1 grammar `abc_grammar`), hand-written.
//!
//! Each function mirrors one pyparsing expression and follows pyparsing's rules exactly: every
//! token skips leading `" \n\t\r"` unless pyparsing's does not (`CharsNotIn`, the insides of
//! `Combine`, the lyric line), an `Optional` that fails still consumes the whitespace it
//! skipped, alternatives are tried in order (`MatchFirst`) except in `chord_sym ^
//! text_expression` (`Or`: the longest wins, the first on a tie), `oneOf` takes the longest
//! listed symbol, and repetitions never backtrack. The parse actions are applied as each
//! expression matches, so their one side effect, the position of the previous note that decides
//! beam breaks (`prevloc`), changes exactly as often as in the reference, including while a
//! chord or a measure is tried and then abandoned.

use super::limits;
use crate::{Error, Result};

/// One note or rest (abc2xml's `note` and `rest` parse objects).
#[derive(Debug, Clone, Default)]
pub(crate) struct Note {
    /// A rest (`x X z Z`), else a note.
    pub rest: bool,
    /// The rest symbol (`x X z Z`).
    pub rest_sym: char,
    pub pitch: Option<Pitch>,
    /// Decorations written inside a chord before the note (`[!f!c e]`).
    pub deco: Option<Vec<String>>,
    /// Duration in unit lengths, `(numerator, denominator)`.
    pub dur: (i128, i128),
    /// `-` or `.-`.
    pub tie: Option<String>,
    /// Slur ends `)` / `.)` after the note.
    pub slurs: Option<Vec<String>>,
    /// A space between the previous note and this one (a beam break).
    pub bbrk: bool,
    /// A chord note after the first.
    pub chord: bool,
    pub grace: bool,
    /// On the first note of a chord: the chord's pitches `(step, octave)`; empty for a chord of
    /// one note (the reference compares a tuple with a parse object there, never equal).
    pub pitches: Option<Vec<(String, i64)>>,
    /// Lyric syllables aligned to this note, one per verse.
    pub lyrics: Vec<Lyric>,
}

/// A pitch as written: accidental (`''` when none), step letter, octave marks (`'` +1, `,` -1).
#[derive(Debug, Clone)]
pub(crate) struct Pitch {
    pub acc: String,
    pub step: String,
    pub oct: i64,
}

/// One item of a lyric line.
#[derive(Debug, Clone)]
pub(crate) enum Lyric {
    /// A syllable and whether a `-` follows it.
    Syl(String, bool),
    /// `*` or `-`: no syllable on this note.
    Skip,
    /// `_`: extend the previous syllable.
    Ext,
    /// `|`: advance to the next bar.
    Sbar,
    /// No syllable left for this note.
    Empty,
}

/// A chord symbol `"Am7/G"`.
#[derive(Debug, Clone)]
pub(crate) struct ChordSym {
    pub root: Vec<String>,
    pub kind: Option<String>,
    pub degrees: Vec<String>,
    pub bass: Option<Vec<String>>,
}

/// A chord `[...]` before it is flattened into notes.
#[derive(Debug, Clone)]
pub(crate) struct Chord {
    pub objs: Vec<Elem>,
    pub dur: (i128, i128),
    pub tie: Option<String>,
    pub slurs: Option<Vec<String>>,
}

/// One element of a measure.
#[derive(Debug, Clone)]
pub(crate) enum Elem {
    Note(Note),
    Chord(Chord),
    Broken(String),
    Deco(Vec<String>),
    /// An annotation `"^text"`: position and text.
    Text(String, String),
    /// An inline field `[K:G]`: field letter, then its values.
    Inline(Vec<String>),
    Accia,
    Linebrk,
    ChordSym(ChordSym),
    /// Lyric lines `[w:...]`, one per verse.
    LyrBlk(Vec<Vec<Lyric>>),
    /// Left bar line: bar and/or volta.
    Lbar(Vec<String>),
    /// Right bar line.
    Rbar(String),
    /// Tuplet `(p:q:r`.
    Tup(Vec<i64>),
}

impl Elem {
    pub(crate) fn is_note(&self) -> bool {
        matches!(self, Elem::Note(n) if !n.rest)
    }
}

/// A measure: its elements after broken rhythms and chords are resolved.
pub(crate) type Measure = Vec<Elem>;

/// A header field `[K:G]`: `t` as the reference's `field` object holds it.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub t: Vec<String>,
}

const WS: [char; 4] = [' ', '\n', '\t', '\r'];

/// Python's `str.expandtabs()` (8 columns), which pyparsing applies before parsing.
pub(crate) fn expand_tabs(s: &str) -> String {
    if !s.contains('\t') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut col = 0usize;
    for c in s.chars() {
        match c {
            '\t' => {
                let n = 8 - col % 8;
                out.extend(std::iter::repeat_n(' ', n));
                col += n;
            }
            '\n' | '\r' => {
                out.push(c);
                col = 0;
            }
            _ => {
                out.push(c);
                col += 1;
            }
        }
    }
    out
}

/// Python's `str.strip()` whitespace.
pub(crate) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

fn parse_fail(what: &str, s: &[char], loc: usize) -> Error {
    let (mut line, mut col) = (1, 1);
    for &c in &s[..loc.min(s.len())] {
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    let text: String = s[loc.min(s.len())..]
        .iter()
        .take_while(|&&c| c != '\n')
        .take(40)
        .collect();
    Error::Abc2Xml {
        reason: format!("syntax error in {what} at line {line}, column {col}: {text:?}"),
    }
}

/// The parser state shared by all voices of one tune.
pub(crate) struct Grammar {
    /// Position of the previous note or rest in the string being parsed (`prevloc`), kept
    /// across voices as the reference's global is.
    prevloc: usize,
    depth: usize,
}

struct Src<'a> {
    s: &'a [char],
}

impl Src<'_> {
    fn at(&self, p: usize) -> Option<char> {
        self.s.get(p).copied()
    }
    fn skip(&self, mut p: usize) -> usize {
        while p < self.s.len() && WS.contains(&self.s[p]) {
            p += 1;
        }
        p
    }
    fn starts(&self, p: usize, lit: &str) -> bool {
        (p..).zip(lit.chars()).all(|(q, c)| self.at(q) == Some(c))
    }
    /// `Literal(lit)` with whitespace skipping: the position after it.
    fn lit(&self, p: usize, lit: &str) -> Option<usize> {
        let p = self.skip(p);
        self.starts(p, lit).then(|| p + lit.chars().count())
    }
    /// `oneOf(syms)`: the longest listed symbol at `p` (no whitespace skipping).
    fn one_of_raw(&self, p: usize, syms: &[&'static str]) -> Option<(usize, &'static str)> {
        let mut best: Option<(usize, &'static str)> = None;
        for &sym in syms {
            if self.starts(p, sym) {
                let n = sym.chars().count();
                if best.is_none_or(|(m, _)| n > m) {
                    best = Some((n, sym));
                }
            }
        }
        best.map(|(n, sym)| (p + n, sym))
    }
    fn one_of(&self, p: usize, syms: &[&'static str]) -> Option<(usize, &'static str)> {
        self.one_of_raw(self.skip(p), syms)
    }
    /// `Word(nums)` as an int (whitespace skipped).
    fn number(&self, p: usize) -> Result<Option<(usize, i64)>> {
        let p = self.skip(p);
        let mut q = p;
        while self.at(q).is_some_and(|c| c.is_ascii_digit()) {
            q += 1;
        }
        if q == p {
            return Ok(None);
        }
        if q - p > limits::MAX_NUMBER_DIGITS {
            return Err(Error::Abc2Xml {
                reason: format!(
                    "number with {} digits (at most {} accepted)",
                    q - p,
                    limits::MAX_NUMBER_DIGITS
                ),
            });
        }
        let text: String = self.s[p..q].iter().collect();
        let value = text.parse::<i64>().map_err(|e| Error::Abc2Xml {
            reason: format!("bad number {text}: {e}"),
        })?;
        Ok(Some((q, value)))
    }
    fn text(&self, a: usize, b: usize) -> String {
        self.s[a..b].iter().collect()
    }
}

const FIELD_IDS: &str = "KLMQPITCOAZNGHRBDFSErY";

fn is_userdef(c: char) -> bool {
    ('H'..='W').contains(&c) || ('h'..='w').contains(&c) || c == '~'
}

const ACCIDENTALS: [&str; 5] = ["^^", "__", "^", "_", "="];
const SLUR_BEGINS: [&str; 6] = ["(", "(,", "('", ".(", ".(,", ".('"];
const TRIADS: [&str; 12] = [
    "ma", "Maj", "maj", "M", "mi", "min", "m", "aug", "dim", "o", "+", "-",
];
const SEVENTHS: [&str; 15] = [
    "7", "ma7", "Maj7", "M7", "maj7", "mi7", "min7", "m7", "dim7", "o7", "-7", "aug7", "+7",
    "m7b5", "mi7b5",
];
const SIXTHS: [&str; 6] = ["6", "ma6", "M6", "mi6", "min6", "m6"];
const NINTHS: [&str; 8] = ["9", "ma9", "M9", "maj9", "Maj9", "mi9", "min9", "m9"];
const ELEVENTHS: [&str; 8] = [
    "11", "ma11", "M11", "maj11", "Maj11", "mi11", "min11", "m11",
];
const THIRTEENTHS: [&str; 8] = [
    "13", "ma13", "M13", "maj13", "Maj13", "mi13", "min13", "m13",
];
const SUSPENDED: [&str; 3] = ["sus", "sus2", "sus4"];
const DEGREES: [&str; 8] = ["2", "4", "5", "6", "7", "9", "11", "13"];
const NOTE_LETTERS: [&str; 15] = [
    "C", "D", "E", "F", "G", "A", "B", "c", "d", "e", "f", "g", "a", "b", "y",
];
const ROOT_LETTERS: [&str; 7] = ["C", "D", "E", "F", "G", "A", "B"];

/// `field_str`: everything up to `]`, whitespace-stripped.
fn field_str(src: &Src, p: usize) -> (usize, String) {
    let p = src.skip(p);
    let mut q = p;
    while src.at(q).is_some_and(|c| c != ']') {
        q += 1;
    }
    (q, py_strip(&src.text(p, q)).to_string())
}

/// `Word(alphanums + '_')`.
fn word_alnum(src: &Src, p: usize) -> Option<(usize, String)> {
    let p = src.skip(p);
    let mut q = p;
    while src
        .at(q)
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        q += 1;
    }
    (q > p).then(|| (q, src.text(p, q)))
}

/// `inf_fld`, `U_field`, `V_field`, `X_field` after the `[`: the field's tokens.
fn field_body(src: &Src, p: usize, allow_x: bool) -> Option<(usize, Vec<String>)> {
    let p0 = src.skip(p);
    let c = src.at(p0)?;
    if allow_x && c == 'X' {
        let q = src.lit(p0 + 1, ":")?;
        let (q, v) = field_str(src, q);
        return Some((q, vec!["X".into(), v]));
    }
    if FIELD_IDS.contains(c) {
        if let Some(q) = src.lit(p0 + 1, ":") {
            let (q, v) = field_str(src, q);
            return Some((q, vec![c.to_string(), v]));
        }
    }
    if c == 'U' {
        if let Some(q) = src.lit(p0 + 1, ":") {
            // b2: anything but a symbol letter or '=' (reported and dropped)
            let mut q = src.skip(q);
            while src.at(q).is_some_and(|c| !is_userdef(c) && c != '=') {
                q += 1;
            }
            let qs = src.skip(q);
            let (q, sym) = match src.at(qs) {
                Some(c) if is_userdef(c) => (qs + 1, c.to_string()),
                _ => (qs, "H".to_string()),
            };
            // b3: anything up to '='
            let mut q = src.skip(q);
            while src.at(q).is_some_and(|c| c != '=') {
                q += 1;
            }
            if let Some(q) = src.lit(q, "=") {
                let (q, v) = field_str(src, q);
                return Some((q, vec!["U".into(), sym, v]));
            }
        }
    }
    if c == 'V' {
        if let Some(q) = src.lit(p0 + 1, ":") {
            if let Some((q, id)) = word_alnum(src, q) {
                let (q, v) = field_str(src, q);
                return Some((q, vec!["V".into(), id, v]));
            }
        }
    }
    None
}

/// `abc_header`: `OneOrMore(ifield) + StringEnd()`.
pub(crate) fn parse_header(text: &str) -> Result<Vec<Field>> {
    let chars: Vec<char> = expand_tabs(text).chars().collect();
    let src = Src { s: &chars };
    let mut fields = Vec::new();
    let mut p = 0;
    let ifield = |p: usize| {
        let q = src.lit(p, "[")?;
        let (q, t) = field_body(&src, q, true)?;
        let q = src.lit(q, "]")?;
        Some((q, t))
    };
    while let Some((q, t)) = ifield(p) {
        fields.push(Field { t });
        p = q;
    }
    let end = src.skip(p);
    if fields.is_empty() || end < chars.len() {
        return Err(parse_fail("the tune header", &chars, end));
    }
    Ok(fields)
}

/// One part of `%%score`: a voice id or a group.
#[derive(Debug, Clone)]
pub(crate) enum ScorePart {
    Vid(String),
    /// `( ... )`: voices on one staff.
    VoiceGr(Vec<ScorePart>),
    /// `{ ... }` of simple parts, with its opening token `{` or `{*`.
    Grand(String, Vec<ScorePart>),
    BraceGr(Vec<ScorePart>),
    BracketGr(Vec<ScorePart>),
}

/// `abc_scoredef`: `score`/`staves` and its parts.
pub(crate) fn parse_score(text: &str) -> Result<Vec<ScorePart>> {
    let chars: Vec<char> = expand_tabs(text).chars().collect();
    let src = Src { s: &chars };
    let p = src.skip(0);
    let p = if src.starts(p, "staves") {
        p + 6
    } else if src.starts(p, "score") {
        p + 5
    } else {
        return Err(parse_fail("%%score", &chars, p));
    };
    let mut parts = Vec::new();
    let mut p = p;
    let mut any = false;
    while let Some((q, part)) = score_part(&src, p, 0)? {
        any = true;
        if let Some(part) = part {
            parts.push(part);
        }
        p = q;
    }
    if !any {
        return Err(parse_fail("%%score", &chars, src.skip(p)));
    }
    Ok(parts)
}

fn voice_id(src: &Src, p: usize) -> Option<(usize, String)> {
    let p = src.skip(p);
    let p = if src.at(p) == Some('*') { p + 1 } else { p };
    word_alnum(src, p)
}

/// `simple_part`: `voiceId | voice_gr | '|'` (`None` for a suppressed `|`).
fn simple_part(src: &Src, p: usize) -> Option<(usize, Option<ScorePart>)> {
    if let Some((q, id)) = voice_id(src, p) {
        return Some((q, Some(ScorePart::Vid(id))));
    }
    if let Some(mut q) = src.lit(p, "(") {
        let mut ids = Vec::new();
        loop {
            if let Some((r, id)) = voice_id(src, q) {
                ids.push(ScorePart::Vid(id));
                q = r;
            } else if let Some(r) = src.lit(q, "|") {
                q = r;
            } else {
                break;
            }
        }
        if !ids.is_empty() {
            if let Some(r) = src.lit(q, ")") {
                return Some((r, Some(ScorePart::VoiceGr(ids))));
            }
        }
    }
    src.lit(p, "|").map(|q| (q, None))
}

/// `part`: `simple_part | grand_staff | brace_gr | bracket_gr | '|'`.
fn score_part(src: &Src, p: usize, depth: usize) -> Result<Option<(usize, Option<ScorePart>)>> {
    if depth > limits::MAX_NESTING {
        return Err(Error::Abc2Xml {
            reason: format!("%%score groups nested deeper than {}", limits::MAX_NESTING),
        });
    }
    if let Some(r) = simple_part(src, p) {
        return Ok(Some(r));
    }
    // grand_staff: ('{*' | '{') + OneOrMore(simple_part) + '}'
    if let Some((q, open)) = src.one_of(p, &["{*", "{"]) {
        let mut q = q;
        let mut items = Vec::new();
        let mut any = false;
        while let Some((r, part)) = simple_part(src, q) {
            any = true;
            if let Some(part) = part {
                items.push(part);
            }
            q = r;
        }
        if any {
            if let Some(r) = src.lit(q, "}") {
                return Ok(Some((r, Some(ScorePart::Grand(open.to_string(), items)))));
            }
        }
    }
    for (open, close) in [("{", "}"), ("[", "]")] {
        if let Some(q) = src.lit(p, open) {
            let mut q = q;
            let mut items = Vec::new();
            let mut any = false;
            loop {
                if let Some((r, part)) = score_part(src, q, depth + 1)? {
                    any = true;
                    if let Some(part) = part {
                        items.push(part);
                    }
                    q = r;
                } else if let Some(r) = src.lit(q, "|") {
                    any = true;
                    q = r;
                } else {
                    break;
                }
            }
            if any {
                if let Some(r) = src.lit(q, close) {
                    let part = if open == "{" {
                        ScorePart::BraceGr(items)
                    } else {
                        ScorePart::BracketGr(items)
                    };
                    return Ok(Some((r, Some(part))));
                }
            }
        }
    }
    Ok(src.lit(p, "|").map(|q| (q, None)))
}

impl Grammar {
    pub(crate) fn new() -> Grammar {
        Grammar {
            prevloc: 0,
            depth: 0,
        }
    }

    /// `abc_voice.parseString(voice)`: the measures of one voice.
    pub(crate) fn parse_voice(&mut self, voice: &str) -> Result<Vec<Measure>> {
        let chars: Vec<char> = expand_tabs(voice).chars().collect();
        let src = Src { s: &chars };
        let mut measures = Vec::new();
        let mut p = 0;
        while let Some((q, m)) = self.measure(&src, p, true)? {
            if q == p {
                break;
            }
            measures.push(m);
            p = q;
        }
        if let Some((q, m)) = self.measure(&src, p, false)? {
            measures.push(m);
            p = q;
        } else if let Some((q, bar)) = self.bar_left(&src, p)? {
            measures.push(vec![bar]);
            p = q;
        }
        while let Some(q) = self.inline_field(&src, p).map(|(q, _)| q) {
            p = q;
        }
        let end = src.skip(p);
        if end < chars.len() {
            return Err(parse_fail("a voice", &chars, end));
        }
        Ok(measures)
    }

    /// `measure` (with a right bar line) or `noBarMeasure`, then `doMaat`.
    fn measure(&mut self, src: &Src, p: usize, with_bar: bool) -> Result<Option<(usize, Measure)>> {
        let mut t = Vec::new();
        let mut p = p;
        while let Some((q, e)) = self.inline_field(src, p) {
            t.push(e);
            p = q;
        }
        if let Some((q, e)) = self.bar_left(src, p)? {
            t.push(e);
            p = q;
        }
        let mut n_elems = 0;
        while let Some((q, es)) = self.element(src, p)? {
            t.extend(es);
            p = q;
            n_elems += 1;
        }
        if with_bar {
            let Some((q, bar)) = bar_right(src, p) else {
                return Ok(None);
            };
            t.push(Elem::Rbar(bar));
            p = q;
        } else if n_elems == 0 {
            return Ok(None);
        }
        if let Some((q, e)) = linebreak(src, p) {
            t.push(e);
            p = q;
        }
        if let Some((q, e)) = lyr_blk(src, p) {
            t.push(e);
            p = q;
        }
        convert_broken(&mut t);
        convert_chord(&mut t);
        Ok(Some((p, t)))
    }

    /// `inline_field`: `[K:..]`, `[U:..]`, `[V:..]`.
    fn inline_field(&self, src: &Src, p: usize) -> Option<(usize, Elem)> {
        let q = src.lit(p, "[")?;
        let (q, t) = field_body(src, q, false)?;
        let q = src.lit(q, "]")?;
        Some((q, Elem::Inline(t)))
    }

    /// `bar_left`.
    fn bar_left(&self, src: &Src, p: usize) -> Result<Option<(usize, Elem)>> {
        if let Some((q, bar)) = src.one_of(p, &["[|:", "|:", "[:", ":"]) {
            let mut t = vec![bar.to_string()];
            let mut q = q;
            if let Some((r, v)) = volta(src, q) {
                t.push(v);
                q = r;
            }
            return Ok(Some((q, Elem::Lbar(t))));
        }
        // Optional('|').suppress() + volta
        let q = src.lit(p, "|").unwrap_or_else(|| src.skip(p));
        if let Some((r, v)) = volta(src, q) {
            return Ok(Some((r, Elem::Lbar(vec![v]))));
        }
        Ok(src
            .one_of(p, &["|", "[|"])
            .map(|(q, bar)| (q, Elem::Lbar(vec![bar.to_string()]))))
    }

    /// `element`: one or more parse objects (a grace group gives several, a skipped symbol
    /// none).
    fn element(&mut self, src: &Src, p: usize) -> Result<Option<(usize, Vec<Elem>)>> {
        if let Some((q, e)) = self.inline_field(src, p) {
            return Ok(Some((q, vec![e])));
        }
        if let Some((q, e)) = lyr_blk(src, p) {
            return Ok(Some((q, vec![e])));
        }
        let ps = src.skip(p);
        if let Some(c @ ('<' | '>')) = src.at(ps) {
            let mut q = ps;
            while src.at(q) == Some(c) {
                q += 1;
            }
            return Ok(Some((q, vec![Elem::Broken(src.text(ps, q))])));
        }
        if let Some((q, d)) = decorations(src, p) {
            return Ok(Some((q, vec![Elem::Deco(d)])));
        }
        if let Some((q, e)) = self.stem(src, p)? {
            return Ok(Some((q, e.into_iter().collect())));
        }
        if let Some((q, e)) = chord_or_text(src, p) {
            return Ok(Some((q, vec![e])));
        }
        if let Some((q, es)) = self.grace_notes(src, p)? {
            return Ok(Some((q, es)));
        }
        if let Some((q, e)) = tuplet_start(src, p)? {
            return Ok(Some((q, vec![e])));
        }
        if let Some((q, e)) = linebreak(src, p) {
            return Ok(Some((q, vec![e])));
        }
        // errors: a symbol that is not a bar line, reported and skipped
        if bar_right(src, p).is_none() {
            let q = src.skip(p);
            if src.at(q).is_some_and(|c| !":&|".contains(c)) {
                return Ok(Some((q + 1, Vec::new())));
            }
        }
        Ok(None)
    }

    /// `detectBeamBreak`: a space between the previous note's start and this one's.
    fn beam_break(&mut self, src: &Src, loc: usize) -> bool {
        let a = self.prevloc.min(src.s.len());
        let b = (loc + 1).min(src.s.len());
        self.prevloc = loc;
        if a >= b {
            return false;
        }
        let xs = &src.s[a..b];
        let start = xs.iter().position(|&c| !is_py_space(c)).unwrap_or(xs.len());
        xs[start..].contains(&' ')
    }

    /// `pitch`: `Optional(accidental) + basenote + Optional(octave, 0)`.
    fn pitch(&self, src: &Src, p: usize) -> Option<(usize, Pitch)> {
        let (p, acc) = match src.one_of(p, &ACCIDENTALS) {
            Some((q, a)) => (q, a.to_string()),
            None => (src.skip(p), String::new()),
        };
        let (p, step) = src.one_of(p, &NOTE_LETTERS)?;
        let (p, oct) = octave(src, p);
        Some((
            p,
            Pitch {
                acc,
                step: step.to_string(),
                oct,
            },
        ))
    }

    /// `note_length`: `(num, (den << len(slashes)) >> 1)`.
    fn note_length(&self, src: &Src, p: usize) -> Result<(usize, (i128, i128))> {
        let (mut p, num) = match src.number(p)? {
            Some((q, n)) => (q, n),
            None => (src.skip(p), 1),
        };
        let mut slashes = 0u32;
        while let Some(q) = src.lit(p, "/") {
            slashes += 1;
            if slashes > limits::MAX_SLASHES {
                return Err(Error::Abc2Xml {
                    reason: format!("note length with more than {} slashes", limits::MAX_SLASHES),
                });
            }
            p = q;
        }
        let p = src.skip(p);
        let (p, den) = match src.number(p)? {
            Some((q, n)) => (q, n),
            None => (p, 2),
        };
        Ok((p, (num as i128, ((den as i128) << slashes) >> 1)))
    }

    /// `tie`, `slur_ends` after a note or chord.
    fn tie_slurs(&self, src: &Src, p: usize) -> (usize, Option<String>, Option<Vec<String>>) {
        let (p, tie) = match src.one_of(p, &[".-", "-"]) {
            Some((q, t)) => (q, Some(t.to_string())),
            None => (src.skip(p), None),
        };
        let mut slurs = Vec::new();
        let mut p = p;
        while let Some((q, s)) = src.one_of(p, &[")", ".)"]) {
            slurs.push(s.to_string());
            p = q;
        }
        let p = src.skip(p);
        (p, tie, (!slurs.is_empty()).then_some(slurs))
    }

    /// `note` or `dec_note` (with `decorated`), then `noteActn`; `None` inside is a spacer.
    fn note(
        &mut self,
        src: &Src,
        p: usize,
        decorated: bool,
    ) -> Result<Option<(usize, Option<Note>)>> {
        let loc = src.skip(p);
        let (q, deco) = match decorated.then(|| decorations(src, p)).flatten() {
            Some((q, d)) => (q, Some(d)),
            None => (loc, None),
        };
        let Some((q, pitch)) = self.pitch(src, q) else {
            return Ok(None);
        };
        let (q, dur) = self.note_length(src, q)?;
        let (q, tie, slurs) = self.tie_slurs(src, q);
        if deco.is_none() && pitch.step == "y" {
            return Ok(Some((q, None)));
        }
        let bbrk = self.beam_break(src, loc);
        Ok(Some((
            q,
            Some(Note {
                pitch: Some(pitch),
                deco,
                dur,
                tie,
                slurs,
                bbrk,
                ..Note::default()
            }),
        )))
    }

    /// `rest`: `Optional(accidental) + rest_sym + note_length`, then `restActn`.
    fn rest(&mut self, src: &Src, p: usize) -> Result<Option<(usize, Note)>> {
        let loc = src.skip(p);
        let q = match src.one_of(p, &ACCIDENTALS) {
            Some((q, _)) => q,
            None => loc,
        };
        let q = src.skip(q);
        let Some(sym @ ('x' | 'X' | 'z' | 'Z')) = src.at(q) else {
            return Ok(None);
        };
        let (q, dur) = self.note_length(src, q + 1)?;
        let bbrk = self.beam_break(src, loc);
        Ok(Some((
            q,
            Note {
                rest: true,
                rest_sym: sym,
                dur,
                bbrk,
                ..Note::default()
            },
        )))
    }

    /// `stem`: `note | chord | rest`.
    fn stem(&mut self, src: &Src, p: usize) -> Result<Option<(usize, Option<Elem>)>> {
        if let Some((q, n)) = self.note(src, p, false)? {
            return Ok(Some((q, n.map(Elem::Note))));
        }
        if let Some((q, c)) = self.chord(src, p)? {
            return Ok(Some((q, Some(c))));
        }
        Ok(self.rest(src, p)?.map(|(q, r)| (q, Some(Elem::Note(r)))))
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > limits::MAX_NESTING {
            return Err(Error::Abc2Xml {
                reason: format!(
                    "chords and grace notes nested deeper than {}",
                    limits::MAX_NESTING
                ),
            });
        }
        Ok(())
    }

    /// `chord`: `'[' + OneOrMore(chord_note | grace_notes) + ']' + note_length + tie + slurs`.
    fn chord(&mut self, src: &Src, p: usize) -> Result<Option<(usize, Elem)>> {
        let Some(mut q) = src.lit(p, "[") else {
            return Ok(None);
        };
        self.enter()?;
        let result = self.chord_body(src, &mut q);
        self.depth -= 1;
        let Some(objs) = result? else {
            return Ok(None);
        };
        let Some(q) = src.lit(q, "]") else {
            return Ok(None);
        };
        let (q, dur) = self.note_length(src, q)?;
        let (q, tie, slurs) = self.tie_slurs(src, q);
        Ok(Some((
            q,
            Elem::Chord(Chord {
                objs,
                dur,
                tie,
                slurs,
            }),
        )))
    }

    fn chord_body(&mut self, src: &Src, q: &mut usize) -> Result<Option<Vec<Elem>>> {
        let mut objs = Vec::new();
        let mut any = false;
        loop {
            if let Some((r, n)) = self.note(src, *q, true)? {
                objs.extend(n.map(Elem::Note));
                *q = r;
            } else if let Some((r, n)) = self.rest(src, *q)? {
                objs.push(Elem::Note(n));
                *q = r;
            } else if src
                .at(src.skip(*q))
                .is_some_and(|c| "-,'<>\u{2019}#".contains(c))
            {
                // b1: a misplaced symbol in a chord, reported and skipped
                *q = src.skip(*q) + 1;
            } else if let Some((r, es)) = self.grace_notes(src, *q)? {
                objs.extend(es);
                *q = r;
            } else {
                break;
            }
            any = true;
        }
        Ok(any.then_some(objs))
    }

    /// `grace_notes`, then `doGrace`: the flattened notes, all marked as grace notes.
    fn grace_notes(&mut self, src: &Src, p: usize) -> Result<Option<(usize, Vec<Elem>)>> {
        let Some(q) = src.lit(p, "{") else {
            return Ok(None);
        };
        self.enter()?;
        let result = self.grace_body(src, q);
        self.depth -= 1;
        let Some((q, mut t)) = result? else {
            return Ok(None);
        };
        let Some(q) = src.lit(q, "}") else {
            return Ok(None);
        };
        convert_chord(&mut t);
        for e in &mut t {
            if let Elem::Note(n) = e {
                if !n.rest {
                    n.grace = true;
                }
            }
        }
        Ok(Some((q, t)))
    }

    fn grace_body(&mut self, src: &Src, p: usize) -> Result<Option<(usize, Vec<Elem>)>> {
        let mut t = Vec::new();
        let mut q = p;
        if let Some(r) = src.lit(q, "/") {
            t.push(Elem::Accia);
            q = r;
        }
        let mut any = false;
        loop {
            // grace_stem: Optional(decorations) + stem
            let (r, deco) = match decorations(src, q) {
                Some((r, d)) => (r, Some(d)),
                None => (src.skip(q), None),
            };
            let Some((r, stem)) = self.stem(src, r)? else {
                break;
            };
            t.extend(deco.map(Elem::Deco));
            t.extend(stem);
            q = r;
            any = true;
        }
        Ok(any.then_some((q, t)))
    }
}

/// `octave`: `'`s (up) or `,`s (down), each skipping whitespace; 0 when absent.
fn octave(src: &Src, p: usize) -> (usize, i64) {
    for (mark, sign) in [('\'', 1), (',', -1)] {
        let mut n = 0;
        let mut q = p;
        loop {
            let r = src.skip(q);
            if src.at(r) == Some(mark) {
                n += 1;
                q = r + 1;
            } else {
                break;
            }
        }
        if n > 0 {
            return (q, sign * n);
        }
    }
    (src.skip(p), 0)
}

/// `decoration`: one slur start, staccato dot, user symbol, `!long!` decoration or `!+!`.
fn decoration(src: &Src, p: usize) -> Option<(usize, String)> {
    let p = src.skip(p);
    if let Some((q, s)) = src.one_of_raw(p, &SLUR_BEGINS) {
        // ~Word(nums): not a tuplet
        let r = src.skip(q);
        if !src.at(r).is_some_and(|c| c.is_ascii_digit()) {
            return Some((q, s.to_string()));
        }
        return None;
    }
    if src.at(p) == Some('.') {
        let r = src.skip(p + 1);
        if src.at(r) != Some('|') {
            return Some((p + 1, ".".into()));
        }
    }
    match src.at(p) {
        Some(c) if is_userdef(c) => return Some((p + 1, c.to_string())),
        Some('!' | '+') => {
            let mut q = p + 1;
            while src.at(q).is_some_and(|c| !"!+ \n".contains(c)) {
                q += 1;
            }
            if q > p + 1 && src.at(q).is_some_and(|c| c == '!' || c == '+') {
                return Some((q + 1, src.text(p, q + 1)));
            }
            if src.starts(p, "!+!") {
                return Some((p + 3, "!plus!".into()));
            }
        }
        _ => {}
    }
    None
}

/// `decorations`: `OneOrMore(decoration)`.
fn decorations(src: &Src, p: usize) -> Option<(usize, Vec<String>)> {
    let mut ds = Vec::new();
    let mut p = p;
    while let Some((q, d)) = decoration(src, p) {
        ds.push(d);
        p = q;
    }
    (!ds.is_empty()).then_some((p, ds))
}

/// `tuplet_start`: `(p`, `(p:q`, `(p:q:r`.
fn tuplet_start(src: &Src, p: usize) -> Result<Option<(usize, Elem)>> {
    let Some(q) = src.lit(p, "(") else {
        return Ok(None);
    };
    let Some((mut q, n)) = src.number(q)? else {
        return Ok(None);
    };
    let mut t = vec![n];
    if let Some(r) = src.lit(q, ":") {
        let (r, into) = match src.number(r)? {
            Some((r, v)) => (r, v),
            None => (src.skip(r), 0),
        };
        t.push(into);
        q = r;
        if let Some(r) = src.lit(q, ":") {
            let (r, nts) = match src.number(r)? {
                Some((r, v)) => (r, v),
                None => (src.skip(r), 0),
            };
            t.push(nts);
            q = r;
        }
    }
    Ok(Some((q, Elem::Tup(t))))
}

/// `linebreak`: `$`, or `!` that does not start a decoration.
fn linebreak(src: &Src, p: usize) -> Option<(usize, Elem)> {
    let q = src.skip(p);
    match src.at(q) {
        Some('$') => Some((q + 1, Elem::Linebrk)),
        Some('!') if decorations(src, p).is_none() => Some((q + 1, Elem::Linebrk)),
        _ => None,
    }
}

/// `volta`: `1`, `[1,2`, `1-3` or `["text"`.
fn volta(src: &Src, p: usize) -> Option<(usize, String)> {
    // volta_nums: Optional('[') + Combine(Word(nums) + ZeroOrMore(oneOf(', -') + Word(nums)))
    let q = src.lit(p, "[").unwrap_or_else(|| src.skip(p));
    let digits = |mut r: usize| {
        let start = r;
        while src.at(r).is_some_and(|c| c.is_ascii_digit()) {
            r += 1;
        }
        (r > start).then_some(r)
    };
    if let Some(mut r) = digits(q) {
        while let Some(',' | '-') = src.at(r) {
            match digits(r + 1) {
                Some(e) => r = e,
                None => break,
            }
        }
        return Some((r, src.text(q, r)));
    }
    // volta_text: '[' + Regex('"[^"]+"')
    let q = src.lit(p, "[")?;
    let q = src.skip(q);
    if src.at(q) == Some('"') {
        let mut r = q + 1;
        while src.at(r).is_some_and(|c| c != '"') {
            r += 1;
        }
        if r > q + 1 && src.at(r) == Some('"') {
            return Some((r + 1, src.text(q, r + 1)));
        }
    }
    None
}

/// `bar_right`: the bar line that ends a measure.
fn bar_right(src: &Src, p: usize) -> Option<(usize, String)> {
    let p = src.skip(p);
    if let Some((q, s)) = src.one_of_raw(p, &["[|]", "[]"]) {
        return Some((q, s.to_string()));
    }
    if src.at(p) == Some(':') && src.at(src.skip(p + 1)) == Some(':') {
        return Some((p + 1, ":".into()));
    }
    // Combine(ZeroOrMore(':') + ZeroOrMore('[') + OneOrMore(oneOf('| ]')))
    let mut q = p;
    while src.at(q) == Some(':') {
        q += 1;
    }
    while src.at(q) == Some('[') {
        q += 1;
    }
    let bars_start = q;
    while src.at(q).is_some_and(|c| c == '|' || c == ']') {
        q += 1;
    }
    if q > bars_start {
        return Some((q, src.text(p, q)));
    }
    if let Some((q, _)) = src.one_of_raw(p, &[":", ".|"]) {
        return Some((q, ".|".into()));
    }
    if src.at(p) == Some('&') {
        let mut q = p;
        while src.at(q) == Some('&') {
            q += 1;
        }
        return Some((q, src.text(p, q)));
    }
    // bare_volta: FollowedBy('[' + Word(nums))
    if src.at(p) == Some('[') && src.at(src.skip(p + 1)).is_some_and(|c| c.is_ascii_digit()) {
        return Some((p, "|".into()));
    }
    None
}

/// `chord_or_text`: a chord symbol or an annotation in double quotes.
fn chord_or_text(src: &Src, p: usize) -> Option<(usize, Elem)> {
    let q = src.lit(p, "\"")?;
    let chord = chord_sym(src, q);
    // text_expression: Optional(oneOf('^ _ < > @'), '^') + Optional(CharsNotIn('"'), '')
    let r = src.skip(q);
    let (r, pos) = match src.at(r) {
        Some(c @ ('^' | '_' | '<' | '>' | '@')) => (r + 1, c.to_string()),
        _ => (r, "^".to_string()),
    };
    let mut text_end = r;
    while src.at(text_end).is_some_and(|c| c != '"') {
        text_end += 1;
    }
    let (end, elem) = match chord {
        Some((cend, sym)) if cend >= text_end => (cend, Elem::ChordSym(sym)),
        _ => (text_end, Elem::Text(pos, src.text(r, text_end))),
    };
    let end = src.lit(end, "\"")?;
    Some((end, elem))
}

/// `chord_sym`: root, kind, added degrees, bass, and an ignored `(...)`.
fn chord_sym(src: &Src, p: usize) -> Option<(usize, ChordSym)> {
    let (q, root_step) = src.one_of(p, &ROOT_LETTERS)?;
    let mut root = vec![root_step.to_string()];
    let mut q = q;
    if let Some((r, a)) = src.one_of(q, &["#", "b", "="]) {
        root.push(a.to_string());
        q = r;
    } else {
        q = src.skip(q);
    }
    // chord_kind: Optional(seventh | sixth | ninth | elevn | thirt | triad) + Optional(suspended)
    let mut kind = Vec::new();
    let mut found = None;
    for set in [
        &SEVENTHS[..],
        &SIXTHS[..],
        &NINTHS[..],
        &ELEVENTHS[..],
        &THIRTEENTHS[..],
        &TRIADS[..],
    ] {
        if let Some(m) = src.one_of(q, set) {
            found = Some(m);
            break;
        }
    }
    q = match found {
        Some((r, k)) => {
            kind.push(k.to_string());
            r
        }
        None => src.skip(q),
    };
    q = match src.one_of(q, &SUSPENDED) {
        Some((r, k)) => {
            kind.push(k.to_string());
            r
        }
        None => src.skip(q),
    };
    // ZeroOrMore(chord_degree), adjacent
    let mut degrees = Vec::new();
    loop {
        let (r, acc) = match src.at(q) {
            Some(c @ ('#' | 'b' | '=')) => (q + 1, c.to_string()),
            _ => (q, String::new()),
        };
        match src.one_of_raw(r, &DEGREES) {
            Some((e, d)) => {
                degrees.push(format!("{acc}{d}"));
                q = e;
            }
            None => break,
        }
    }
    let mut bass = None;
    if let Some(r) = src.lit(q, "/") {
        if let Some((r, b)) = src.one_of(r, &ROOT_LETTERS) {
            let mut bt = vec![b.to_string()];
            let r = match src.one_of(r, &["#", "b", "="]) {
                Some((e, a)) => {
                    bt.push(a.to_string());
                    e
                }
                None => src.skip(r),
            };
            bass = Some(bt);
            q = r;
        }
    }
    if bass.is_none() {
        q = src.skip(q);
    }
    // Optional('(' + CharsNotIn(')') + ')')
    if let Some(r) = src.lit(q, "(") {
        let mut e = r;
        while src.at(e).is_some_and(|c| c != ')') {
            e += 1;
        }
        if e > r {
            if let Some(e) = src.lit(e, ")") {
                q = e;
            }
        }
    }
    let q = src.skip(q);
    Some((
        q,
        ChordSym {
            root,
            kind: kind.first().cloned(),
            degrees,
            bass,
        },
    ))
}

/// `lyr_blk`: one or more `[w:...]` lyric lines.
fn lyr_blk(src: &Src, p: usize) -> Option<(usize, Elem)> {
    let mut lines = Vec::new();
    let mut p = p;
    while let Some((q, line)) = lyr_fld(src, p) {
        lines.push(line);
        p = q;
    }
    (!lines.is_empty()).then_some((p, Elem::LyrBlk(lines)))
}

fn lyr_fld(src: &Src, p: usize) -> Option<(usize, Vec<Lyric>)> {
    let q = src.lit(p, "[")?;
    let q = src.lit(q, "w")?;
    let q = src.lit(q, ":")?;
    let white = |mut r: usize| {
        while src.at(r).is_some_and(|c| c == ' ' || c == '\t') {
            r += 1;
        }
        r
    };
    let mut q = white(q);
    let mut items = Vec::new();
    loop {
        // syllable: Combine(OneOrMore(CharsNotIn('*-_| \t\n\\]') | Regex(r'\\.'))) + Optional('-')
        let start = q;
        let mut text = String::new();
        loop {
            match src.at(q) {
                Some('\\') if src.at(q + 1).is_some_and(|c| c != '\n') => {
                    text.push('\\');
                    text.push(src.s[q + 1]);
                    q += 2;
                }
                Some(c) if !"*-_| \t\n\\]".contains(c) => {
                    text.push(c);
                    q += 1;
                }
                _ => break,
            }
        }
        if q > start {
            let dash = src.at(q) == Some('-');
            if dash {
                q += 1;
            }
            items.push(Lyric::Syl(text, dash));
        } else {
            match src.at(q) {
                Some('*' | '-') => items.push(Lyric::Skip),
                Some('_') => items.push(Lyric::Ext),
                Some('|') => items.push(Lyric::Sbar),
                _ => break,
            }
            q += 1;
        }
        q = white(q);
    }
    let q = src.lit(q, "]")?;
    Some((q, items))
}

/// `simplify`: divides by the greatest common divisor.
pub(crate) fn simplify(a: i128, b: i128) -> (i128, i128) {
    let (x, y) = (a, b);
    let (mut a, mut b) = (a, b);
    while b != 0 {
        let r = a.rem_euclid(b);
        let r = if b < 0 && r != 0 { r + b } else { r };
        a = b;
        b = r;
    }
    if a == 0 {
        return (x, y);
    }
    (x.div_euclid(a), y.div_euclid(a))
}

fn dur_of(e: &mut Elem) -> Option<&mut (i128, i128)> {
    match e {
        Elem::Note(n) => Some(&mut n.dur),
        Elem::Chord(c) => Some(&mut c.dur),
        _ => None,
    }
}

/// `convertBroken`: `>`, `<`, `>>`, `<<` become plain durations.
fn convert_broken(t: &mut Vec<Elem>) {
    let mut prev: Option<usize> = None;
    let mut brk = String::new();
    let mut remove = Vec::new();
    for i in 0..t.len() {
        match &t[i] {
            Elem::Note(_) | Elem::Chord(_) => {
                if !brk.is_empty() {
                    if let Some(pi) = prev {
                        let factors = match brk.as_str() {
                            ">" => Some(((3, 2), (1, 2))),
                            "<" => Some(((1, 2), (3, 2))),
                            ">>" => Some(((7, 4), (1, 4))),
                            "<<" => Some(((1, 4), (7, 4))),
                            _ => None,
                        };
                        if let Some(((a1, b1), (a2, b2))) = factors {
                            if let Some(d) = dur_of(&mut t[pi]) {
                                *d = simplify(a1 * d.0, b1 * d.1);
                            }
                            if let Some(d) = dur_of(&mut t[i]) {
                                *d = simplify(a2 * d.0, b2 * d.1);
                            }
                        }
                    }
                    brk.clear();
                } else {
                    prev = Some(i);
                }
            }
            Elem::Broken(b) => {
                brk = b.clone();
                remove.push(i);
            }
            _ => {}
        }
    }
    for i in remove.into_iter().rev() {
        t.remove(i);
    }
}

/// `convertChord`: a chord becomes its notes, MusicXML style (all but the first marked `chord`).
fn convert_chord(t: &mut Vec<Elem>) {
    if !t.iter().any(|e| matches!(e, Elem::Chord(_))) {
        return;
    }
    let old = std::mem::take(t);
    for e in old {
        let Elem::Chord(chord) = e else {
            t.push(e);
            continue;
        };
        let has_note = chord.objs.iter().any(Elem::is_note);
        if !has_note {
            if let Some(rest) = chord
                .objs
                .into_iter()
                .find(|e| matches!(e, Elem::Note(n) if n.rest))
            {
                t.push(rest);
            }
            continue;
        }
        let (num1, den1) = chord.dur;
        let pitches: Vec<(String, i64)> = chord
            .objs
            .iter()
            .filter_map(|e| match e {
                Elem::Note(n) if !n.rest => n.pitch.as_ref().map(|p| (p.step.clone(), p.oct)),
                _ => None,
            })
            .collect();
        let single = pitches.len() == 1;
        let mut j = 0;
        for e in chord.objs {
            match e {
                Elem::Note(mut n) if !n.rest => {
                    n.dur = simplify(num1 * n.dur.0, den1 * n.dur.1);
                    if chord.tie.is_some() {
                        n.tie = chord.tie.clone();
                    }
                    if j == 0 && chord.slurs.is_some() {
                        n.slurs = chord.slurs.clone();
                    }
                    if j > 0 {
                        n.chord = true;
                    } else {
                        n.pitches = Some(if single { Vec::new() } else { pitches.clone() });
                    }
                    j += 1;
                    t.push(Elem::Note(n));
                }
                Elem::Note(_) => {}
                other => t.push(other),
            }
        }
    }
}

/// The MIDI sound of an `I:percmap` line.
#[derive(Debug, Clone)]
pub(crate) enum PercMidi {
    /// `*`: the MIDI number of the ABC note itself.
    Star,
    Number(i64),
    /// A note whose MIDI number is the sound: accidental, step, octave.
    Pitch(String, String, i64),
    /// A General MIDI drum name (`bass-drum-1`).
    Name(String),
}

/// `I:percmap <abc note> [<display step>] [<midi>] [<note head>]`.
#[derive(Debug, Clone)]
pub(crate) struct PercMap {
    pub acc: String,
    pub step: String,
    pub oct: i64,
    /// The display step and octave; `None` for `*` (the ABC note).
    pub display: Option<(String, i64)>,
    pub midi: PercMidi,
    pub head: String,
}

/// `abc_percmap`: the whitespace-sensitive `percmap` grammar.
pub(crate) fn parse_percmap(x: &str) -> Result<PercMap> {
    let chars: Vec<char> = expand_tabs(x).chars().collect();
    let src = Src { s: &chars };
    let fail = |p: usize| parse_fail("I:percmap", &chars, p);
    let white = |p: usize| {
        let mut q = p;
        while src.at(q).is_some_and(|c| c == ' ' || c == '\t') {
            q += 1;
        }
        q
    };
    let white2 = |p: usize| {
        let q = white(p);
        if q > p {
            Some(q)
        } else {
            (p == chars.len()).then_some(p)
        }
    };
    let w3 = |p: usize| white2(p).unwrap_or(p);
    let octave_raw = |p: usize| {
        for (mark, sign) in [('\'', 1i64), (',', -1)] {
            let mut q = p;
            while src.at(q) == Some(mark) {
                q += 1;
            }
            if q > p {
                return (q, sign * (q - p) as i64);
            }
        }
        (p, 0)
    };
    let step = |p: usize| {
        let (q, s) = src.one_of_raw(p, &NOTE_LETTERS)?;
        let (q, o) = octave_raw(q);
        Some((q, s.to_string(), o))
    };
    let pitchg = |p: usize| {
        let (q, acc) = match src.one_of_raw(p, &ACCIDENTALS) {
            Some((q, a)) => (q, a.to_string()),
            None => (p, String::new()),
        };
        let (q, s, o) = step(q)?;
        white2(q)?;
        Some((q, acc, s, o))
    };
    let percid = |p: usize| {
        let mut q = p;
        while src
            .at(q)
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            q += 1;
        }
        (q > p).then(|| (q, src.text(p, q)))
    };
    if !src.starts(0, "percmap") {
        return Err(fail(0));
    }
    let p = w3(7);
    let Some((p, acc, astep, aoct)) = pitchg(p) else {
        return Err(fail(p));
    };
    let p = w3(p);
    let (p, display) = match step(p).filter(|(q, _, _)| white2(*q).is_some()) {
        Some((q, s, o)) => (q, Some((s, o))),
        None if src.at(p) == Some('*') => (p + 1, None),
        None => (p, None),
    };
    let p = w3(p);
    let (p, midi) = if src.at(p) == Some('*') {
        (p + 1, PercMidi::Star)
    } else if let Some((q, n)) = {
        let mut q = p;
        while src.at(q).is_some_and(|c| c.is_ascii_digit()) {
            q += 1;
        }
        (q > p).then(|| (q, src.text(p, q)))
    } {
        let n = n.parse().map_err(|_| fail(p))?;
        (q, PercMidi::Number(n))
    } else if let Some((q, a, s, o)) = pitchg(p) {
        (q, PercMidi::Pitch(a, s, o))
    } else if let Some((q, id)) = percid(p) {
        (q, PercMidi::Name(id))
    } else {
        (p, PercMidi::Star)
    };
    let p = w3(p);
    let head = match percid(p) {
        Some((q, id)) => {
            if src.at(q) == Some('+') {
                format!("{id}+")
            } else {
                id
            }
        }
        None => String::new(),
    };
    Ok(PercMap {
        acc,
        step: astep,
        oct: aoct,
        display,
        midi,
        head,
    })
}
