//! Interleaved (or standard) ABC → MusicXML, byte for byte as the reference's
//! `batch_abc2xml.py` writes it.
//!
//! This ports `preprocessing/abc/utils/abc2xml.py` (W.G. Vree's abc2xml, version 245, with its
//! vendored pyparsing 2.0.1, as sanderwood/clamp3 ships it) run the way `batch_abc2xml.py`
//! runs it: no options (`-m 0 1`: only the first tune of a file; the XML as printed on
//! stdout). The stages follow the script:
//!
//! 1. [`text`]: decode (UTF-8, else Latin-1), cut lines as `str.splitlines`, take the first
//!    tune, split header fields from voices (`splitHeaderVoices`);
//! 2. [`parser`]: the pyparsing grammar, hand-written, with the parse actions that resolve
//!    broken rhythms and chords and decide beam breaks;
//! 3. [`builder`]: the `MusicXml` class that makes the elements, merges voices into staves and
//!    parts (`%%score`), and the division reduction of `getXmlDocs`;
//! 4. [`tree`]: ElementTree's data model and serialization.
//!
//! Where the script writes nothing (a syntax error pyparsing cannot skip, an exception, an
//! unparsable `%%score`, an empty file), [`convert`] fails with the reason. Tablature staves
//! (`clef=tab`) and `I:percmap` are not ported and fail with an explicit "unsupported" error.

mod builder;
mod parser;
mod text;
mod tree;

use std::path::Path;

use crate::{Error, Result};

/// Limits that refuse hostile input (the reference would take minutes or all memory).
pub(crate) mod limits {
    /// Longest number token (durations, tuplets).
    pub const MAX_NUMBER_DIGITS: usize = 9;
    /// Most `/` in one note length (`A////`).
    pub const MAX_SLASHES: u32 = 16;
    /// Deepest nesting of chords, grace groups and `%%score` groups.
    pub const MAX_NESTING: usize = 64;
    /// Most measures of one multi-measure rest (`Z16`).
    pub const MAX_MEASURE_REST: usize = 10_000;
    /// Longest line, in characters.
    pub const MAX_LINE_CHARS: usize = 1 << 20;
    /// Largest input, in bytes.
    pub const MAX_INPUT_BYTES: usize = 64 << 20;
}

/// What [`convert`] needs besides the ABC text.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `<encoding-date>` text, `YYYY-MM-DD` (the reference writes today's date).
    pub date: String,
}

/// A converted tune.
#[derive(Debug, Clone)]
pub struct Conversion {
    /// The MusicXML file, exactly as the reference writes it.
    pub xml: String,
    /// The diagnostics abc2xml prints on stderr (decoding, skipped symbols, ...).
    pub warnings: Vec<String>,
}

/// The reference's output file name for an input: only the last extension is replaced
/// (`x.interleaved.abc` → `x.interleaved.xml`).
pub fn output_name(input: &Path) -> String {
    let name = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // os.path.splitext: a leading dot does not start an extension
    let stem = match name.rfind('.') {
        Some(i) if name[..i].chars().any(|c| c != '.') => &name[..i],
        _ => name.as_str(),
    };
    format!("{stem}.xml")
}

/// Whether the reference refuses an input file for its name: abc2xml passes its argument
/// through `glob()`, so a name with `[`...`]` (or other glob syntax) that does not match itself
/// finds no file (`abc2xml.py: error: none of the input files exist`).
pub fn glob_refuses(file_name: &str) -> bool {
    !fnmatch(
        &file_name.chars().collect::<Vec<_>>(),
        &file_name.chars().collect::<Vec<_>>(),
    )
}

/// Python's `fnmatch` (`*`, `?`, `[...]`, `[!...]`) of `name` against `pat`.
fn fnmatch(pat: &[char], name: &[char]) -> bool {
    match pat.first() {
        None => name.is_empty(),
        Some('*') => (0..=name.len()).any(|i| fnmatch(&pat[1..], &name[i..])),
        Some('?') => !name.is_empty() && fnmatch(&pat[1..], &name[1..]),
        Some('[') => {
            let mut j = 1;
            let negate = matches!(pat.get(j), Some('!'));
            if negate {
                j += 1;
            }
            if pat.get(j) == Some(&']') {
                j += 1;
            }
            while j < pat.len() && pat[j] != ']' {
                j += 1;
            }
            if j >= pat.len() {
                // no closing bracket: a literal '['
                return name.first() == Some(&'[') && fnmatch(&pat[1..], &name[1..]);
            }
            let Some(&c) = name.first() else { return false };
            let class = &pat[1 + usize::from(negate)..j];
            let mut hit = false;
            let mut k = 0;
            while k < class.len() {
                if k + 2 < class.len() && class[k + 1] == '-' {
                    hit |= class[k] <= c && c <= class[k + 2];
                    k += 3;
                } else {
                    hit |= class[k] == c;
                    k += 1;
                }
            }
            hit != negate && fnmatch(&pat[j + 1..], &name[1..])
        }
        Some(&p) => name.first() == Some(&p) && fnmatch(&pat[1..], &name[1..]),
    }
}

/// Whether `date` is a `YYYY-MM-DD` date.
pub fn is_valid_date(date: &str) -> bool {
    let b = date.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// The UTC calendar date of a Unix time in seconds, `YYYY-MM-DD`.
pub fn date_from_unix(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    // civil_from_days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}")
}

/// Converts the bytes of an `.abc` file to MusicXML, as `batch_abc2xml.py` does.
///
/// ```
/// use clamp3_formats::abc2xml::{convert, Options};
/// let abc = "X:1\nT:Scale\nM:4/4\nL:1/4\nK:C\nCDEF|\n";
/// let out = convert(abc.as_bytes(), &Options { date: "2000-01-01".into() })?;
/// assert!(out.xml.contains("<work-title>Scale</work-title>"));
/// assert!(out.xml.ends_with("</score-partwise>\n"));
/// # Ok::<(), clamp3_formats::Error>(())
/// ```
pub fn convert(bytes: &[u8], options: &Options) -> Result<Conversion> {
    if bytes.len() > limits::MAX_INPUT_BYTES {
        return Err(Error::Abc2Xml {
            reason: format!(
                "input of {} bytes (at most {} accepted)",
                bytes.len(),
                limits::MAX_INPUT_BYTES
            ),
        });
    }
    let (decoded, encoding) = text::decode(bytes);
    let mut warnings = vec![format!("decoded from {encoding}")];
    // %%abc-include paths are relative to the reference's working directory, which holds no
    // ABC files: the includes are dropped, as the reference drops a file it cannot read.
    let Some(tune) = text::first_tune(&decoded, &|_| None) else {
        return Err(Error::Abc2Xml {
            reason: "no tune: the file is empty".into(),
        });
    };
    let tune = tune.replace("[I:staff ", "[I:staff");
    let split = text::split_header_voices(&tune)?;
    let header = parser::parse_header(&split.header)?;
    let mut grammar = parser::Grammar::new();
    let mut ps = Vec::new();
    for (id, voice) in &split.voices {
        let mut vce = grammar.parse_voice(voice)?;
        align_lyrics(&mut vce);
        if vce.is_empty() {
            vce = vec![vec![parser::Elem::Inline(vec![
                "I".into(),
                "empty voice".into(),
            ])]];
        }
        if matches!(
            vce.last().and_then(|m| m.last()),
            Some(parser::Elem::Lbar(_))
        ) && vce.len() > 1
        {
            vce.pop();
        }
        let voicedef = match vce[0].first() {
            Some(parser::Elem::Inline(t)) if t[0] == "V" => {
                let t = t.clone();
                vce[0].remove(0);
                Some(t)
            }
            Some(_) => None,
            None => {
                return Err(Error::Abc2Xml {
                    reason: format!("voice {id}: list index out of range (an empty first measure)"),
                })
            }
        };
        ps.push((id.clone(), voicedef, vce));
    }
    let mut b = builder::Builder::new();
    if let Some(w) = split.w_lyrics {
        builder::fm_set(&mut b.metadata, "W", w);
    }
    let score = b.build(&header, ps, &options.date)?;
    // getXmlDocs: divide all durations and the divisions by their gcd with 21
    let ds = b.tree.iter_tag(score, "duration");
    let values: Vec<i128> = ds
        .iter()
        .map(|&d| b.tree.text(d).and_then(|t| t.parse().ok()).unwrap_or(0))
        .collect();
    let deler = values.iter().fold(21i128, |a, &v| gcd(a, v));
    let deler = if deler == 0 { 1 } else { deler };
    for (&d, &v) in ds.iter().zip(&values) {
        b.tree.set_text(d, (v / deler).to_string());
    }
    for d in b.tree.iter_tag(score, "divisions") {
        let v: i128 = b.tree.text(d).and_then(|t| t.parse().ok()).unwrap_or(0);
        b.tree.set_text(d, (v / deler).to_string());
    }
    let body = b.tree.serialize(score);
    let xml = format!(
        "<?xml version='1.0' encoding='utf-8'?>\n<!DOCTYPE score-partwise PUBLIC \"-//Recordare//DTD MusicXML 3.0 Partwise//EN\" \"http://www.musicxml.org/dtds/partwise.dtd\">\n{body}\n"
    );
    warnings.append(&mut b.warnings);
    Ok(Conversion { xml, warnings })
}

fn gcd(a: i128, b: i128) -> i128 {
    if b == 0 {
        a
    } else {
        gcd(b, a.rem_euclid(b))
    }
}

/// `alignLyr` as `parse` applies it: each lyric block goes to the notes since the previous one.
fn align_lyrics(vce: &mut [parser::Measure]) {
    use parser::{Elem, Lyric};
    let mut pending: Vec<(usize, usize)> = Vec::new();
    for mi in 0..vce.len() {
        for ei in 0..vce[mi].len() {
            let Elem::LyrBlk(lines) = &vce[mi][ei] else {
                pending.push((mi, ei));
                continue;
            };
            let lines = lines.clone();
            for lyr in &lines {
                let mut i = 0;
                for &(m, e) in &pending {
                    match &mut vce[m][e] {
                        Elem::Note(n) if !n.rest && !n.chord && !n.grace => {
                            let lr = lyr.get(i).cloned().unwrap_or(Lyric::Empty);
                            let is_bar = matches!(lr, Lyric::Sbar);
                            n.lyrics.push(lr);
                            if !is_bar {
                                i += 1;
                            }
                        }
                        Elem::Rbar(_) if matches!(lyr.get(i), Some(Lyric::Sbar)) => i += 1,
                        _ => {}
                    }
                }
            }
            pending.clear();
        }
    }
}
