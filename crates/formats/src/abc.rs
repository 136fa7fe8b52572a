//! Standard ABC → interleaved ABC, the text CLaMP 3's M3 encoder reads for sheet music.
//!
//! This ports the reference's `abc_pipeline` (`preprocessing/abc/batch_interleaved_abc.py` in
//! sanderwood/clamp3) together with the parts of abctoolkit 0.0.4 it calls (`utils.py`:
//! `remove_information_field`, `remove_bar_no_annotations`, `split_into_bars_and_barlines`,
//! `strip_empty_bars`, `find_valid_bar_index`; `check.py`: `check_alignment_unrotated`;
//! `duration.py`: `calculate_bartext_duration`; `rotate.py`: `rotate_abc`). The output is byte for
//! byte what the reference writes, quirks included:
//!
//! - the body starts at the *last* line that is exactly `V:1` after trimming, and every later line
//!   starting with `V:` opens a voice keyed by the whole trimmed line (a repeated key replaces the
//!   earlier voice's text but keeps its place);
//! - bars are split on the barlines `|:`, `::`, `:|`, `[|`, `||`, `|]`, `|`, `:[|` (leftmost match,
//!   first alternative), volta numbers and `:` after a barline are glued to it, and equal
//!   neighbouring pieces are merged, as `re.split` plus abctoolkit's clean-up do;
//! - the bars are re-parsed after the empty bars are stripped (abctoolkit writes them back as text
//!   first), so that step's side effects are kept.
//!
//! One documented improvement: standard ABC with no bare `V:1` line (most single-voice folk tunes)
//! makes the reference fail with `tunebody index not found`; here the body (the lines after the
//! first `K:` field) is read as voice 1, as if `V:1` had been written before it, which is what
//! xml2abc's own output looks like.
//!
//! ```
//! let abc = "X:1\nL:1/8\nM:2/4\nK:G\nV:1\n|: GA Bc | d2 d2 :|\n";
//! let out = clamp3_formats::abc::interleave(abc)?;
//! assert_eq!(out, "L:1/8\nM:2/4\nK:G\n[V:1]|:GA Bc|\n[V:1]d2 d2:|\n");
//! assert!(clamp3_formats::abc::is_interleaved(&out));
//! # Ok::<(), clamp3_formats::Error>(())
//! ```

use crate::{Error, Result};

/// The header fields and directives the reference drops before interleaving.
const DROPPED_FIELDS: [&str; 7] = ["X:", "T:", "C:", "W:", "w:", "Z:", "%%MIDI"];

/// abctoolkit's `Barlines`, in the order its regular expression tries them.
const BARLINES: [&str; 9] = ["|:", "::", ":|", "[|", "||", "|]", "|", "|]:", ":[|"];

/// Lines of wrapped bars abctoolkit writes after stripping empty bars are cut near this many
/// characters (`strip_empty_bars`); the cut only matters through its effect on re-parsing.
const STRIP_LINE_WIDTH: usize = 100;

/// Converts standard ABC (one `V:` section per voice, as xml2abc writes it) to interleaved ABC:
/// the header without `X:`, `T:`, `C:`, `W:`, `w:`, `Z:` and `%%MIDI` lines, then one line per
/// bar, `[V:1]<bar>[V:2]<bar>…`.
///
/// The text is what the reference reads with Python's universal newlines (`\r\n` and `\r` count
/// as `\n`). Errors name the reference step that fails.
pub fn interleave(abc: &str) -> Result<String> {
    let text = abc.replace("\r\n", "\n").replace('\r', "\n");
    let mut lines: Vec<String> = split_keep_newlines(&text)
        .into_iter()
        .filter(|l| !py_strip(l).is_empty())
        .filter(|l| !DROPPED_FIELDS.iter().any(|f| l.starts_with(f)))
        .map(str::to_owned)
        .collect();
    if !lines.iter().any(|l| py_strip(l) == "V:1") {
        insert_voice_one(&mut lines)?;
    }
    remove_bar_numbers(&mut lines)?;
    clean_quotes(&mut lines);

    let stripped = strip_empty_bars(&lines)?;
    check_alignment(&stripped)?;
    rotate(&stripped)
}

/// Whether `text` is already interleaved ABC: some line starts with `[V:` and no bare `V:n` body
/// marker follows it (standard ABC has a `V:n` line before each voice's music).
pub fn is_interleaved(text: &str) -> bool {
    let mut has_inline = false;
    for line in text.lines() {
        if line.starts_with("[V:") {
            has_inline = true;
        } else if has_inline && line.starts_with("V:") && !py_strip(line).contains(' ') {
            return false;
        }
    }
    has_inline
}

fn err(step: &'static str, reason: impl Into<String>) -> Error {
    Error::Interleave {
        step,
        reason: reason.into(),
    }
}

/// Python's `str.isspace` for one character.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()`.
fn py_strip(s: &str) -> &str {
    s.trim_matches(py_space)
}

/// Python's `str.splitlines(keepends=True)` restricted to `\n` (what `readlines` gives after
/// universal-newline translation).
fn split_keep_newlines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// `V:1` goes before the body: after the first `K:` line, else before the first line that is not
/// a field (`X:`) or a comment/directive.
fn insert_voice_one(lines: &mut Vec<String>) -> Result<()> {
    let is_field = |l: &str| {
        let b = l.as_bytes();
        (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':') || l.starts_with('%')
    };
    let start = match lines.iter().position(|l| l.starts_with("K:")) {
        Some(k) => k + 1,
        None => lines
            .iter()
            .position(|l| !is_field(l))
            .unwrap_or(lines.len()),
    };
    if start >= lines.len() {
        return Err(err(
            "find tune body",
            "no `V:1` line and no music after the header",
        ));
    }
    if let Some(prev) = start.checked_sub(1).and_then(|i| lines.get_mut(i)) {
        if !prev.ends_with('\n') {
            prev.push('\n');
        }
    }
    lines.insert(start, "V:1\n".to_owned());
    Ok(())
}

/// Index of the last line that is exactly `V:1` once trimmed (`extract_metadata_and_tunebody`).
fn body_start(lines: &[String]) -> Result<usize> {
    lines
        .iter()
        .rposition(|l| py_strip(l) == "V:1")
        .ok_or_else(|| err("find tune body", "tunebody index not found (no `V:1` line)"))
}

/// `re.sub(r'%\d+$', '', line)` over the body lines (`remove_bar_no_annotations`).
fn remove_bar_numbers(lines: &mut [String]) -> Result<()> {
    let start = body_start(lines)?;
    for line in &mut lines[start..] {
        let (core, nl) = match line.strip_suffix('\n') {
            Some(c) => (c, "\n"),
            None => (line.as_str(), ""),
        };
        let digits = core.len() - core.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 && core[..core.len() - digits].ends_with('%') {
            *line = format!("{}{nl}", &core[..core.len() - digits - 1]);
        }
    }
    Ok(())
}

/// Removes `\"` and quoted strings that contain a barline, exactly as `abc_pipeline` does: when a
/// quoted string with a barline is found the line keeps its `\"`.
fn clean_quotes(lines: &mut [String]) {
    for line in lines.iter_mut() {
        let b = line.as_bytes();
        let field = b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':';
        if field || line.starts_with('%') {
            continue;
        }
        let original = line.clone();
        let mut result = original.replace("\\\"", "");
        let mut edited = original.clone();
        let mut hit = false;
        for quote in find_quotes(&original) {
            if BARLINES.iter().any(|bl| quote.contains(bl)) {
                edited = edited.replace(quote, "");
                hit = true;
            }
        }
        if hit {
            result = edited;
        }
        *line = result;
    }
}

/// Non-overlapping matches of `"[^"]*"`.
fn find_quotes(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = 0;
    while let Some(open) = text[rest..].find('"') {
        let open = rest + open;
        match text[open + 1..].find('"') {
            Some(close) => {
                let end = open + 1 + close + 1;
                out.push(&text[open..end]);
                rest = end;
            }
            None => break,
        }
    }
    out
}

/// Non-overlapping matches of `<open>[^<close>]+<close>` (abctoolkit's `Exclaim_re`,
/// `SquareBracket_re`, `Brace_re`).
fn find_wrapped(text: &str, open: char, close: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(found) = text[pos..].find(open) {
        let start = pos + found;
        let inner = start + open.len_utf8();
        match text[inner..].find(close) {
            Some(0) => pos = inner,
            Some(len) => {
                let end = inner + len + close.len_utf8();
                out.push(&text[start..end]);
                pos = end;
            }
            None => break,
        }
    }
    out
}

/// `re.sub(<wrapped>, '', text)`.
fn remove_wrapped(text: &str, open: char, close: char) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for m in find_wrapped(text, open, close) {
        let start = m.as_ptr() as usize - text.as_ptr() as usize;
        out.push_str(&text[last..start]);
        last = start + m.len();
    }
    out.push_str(&text[last..]);
    out
}

/// abctoolkit's `remove_square_bracket_information_field`: drops `[X:…]` fields.
fn remove_bracket_fields(text: &str) -> String {
    let mut out = text.to_owned();
    for m in find_wrapped(text, '[', ']') {
        let mut chars = m.chars().skip(1);
        let (first, second) = (chars.next(), chars.next());
        if first.is_some_and(char::is_alphabetic) && second == Some(':') {
            out = out.replace(m, "");
        }
    }
    out
}

/// abctoolkit's `remove_quote_text_annotations`: drops `"^…"`, `"_…"`, `"<…"`, `">…"`, `"@…"`.
fn remove_quote_annotations(text: &str) -> String {
    let mut out = text.to_owned();
    for m in find_quotes(text) {
        if matches!(m.chars().nth(1), Some('^' | '_' | '<' | '>' | '@')) {
            out = out.replace(m, "");
        }
    }
    out
}

/// `re.split(Barline_regexPattern, text)`: alternating text and barline pieces, starting and
/// ending with text (possibly empty).
fn split_barlines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut last = 0;
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        let matched = BARLINES
            .iter()
            .find(|bl| text[i..].starts_with(*bl))
            .map(|bl| bl.len());
        match matched {
            Some(len) => {
                out.push(&text[last..i]);
                out.push(&text[i..i + len]);
                i += len;
                last = i;
            }
            None => i += text[i..].chars().next().map_or(1, char::len_utf8),
        }
    }
    out.push(&text[last..]);
    out
}

/// One voice cut into bars: abctoolkit's `split_into_bars_and_barlines`.
#[derive(Debug, Clone, Default)]
struct Voice {
    prefix: String,
    left: Vec<String>,
    bars: Vec<String>,
    right: Vec<String>,
}

const VOLTA_CHARS: [char; 14] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ',', '.', '-', ':',
];

fn split_voice(text: &str) -> Result<Voice> {
    let fail = |what: &str| {
        err(
            "strip empty bars",
            format!("list index out of range ({what})"),
        )
    };
    let pieces: Vec<&str> = split_barlines(py_strip(text))
        .into_iter()
        .filter(|p| !py_strip(p).is_empty())
        .collect();
    let Some(&first) = pieces.first() else {
        return Err(fail("a voice has no music"));
    };
    let mut bars: Vec<String> = vec![first.to_owned()];
    bars.extend(
        pieces
            .windows(2)
            .filter(|w| w[1] != w[0])
            .map(|w| w[1].to_owned()),
    );

    let is_barline = |s: &str| BARLINES.contains(&s);
    let mut prefix = String::new();
    let start = if is_barline(&bars[0]) {
        1
    } else if py_strip(&remove_bracket_fields(&bars[0])).is_empty() {
        prefix = py_strip(&bars[0]).to_owned();
        2
    } else {
        0
    };

    let mut j = start;
    while j < bars.len() {
        bars[j] = py_strip(&bars[j]).replace('\n', "");
        let b = &bars[j];
        let lead_digit = b.chars().next().is_some_and(|c| c.is_ascii_digit());
        let Some(c0) = b.chars().next() else {
            return Err(fail("an empty bar"));
        };
        if lead_digit || c0 == ':' {
            let chars: Vec<char> = b.chars().collect();
            // Python's `for k in range(len)` leaves k at len - 1 when nothing breaks.
            let k = chars
                .iter()
                .position(|c| !VOLTA_CHARS.contains(c))
                .unwrap_or(chars.len() - 1);
            let affix: String = chars[..k].iter().collect();
            let rest: String = chars[k..].iter().collect();
            bars[j] = py_strip(&rest).to_owned();
            let prev = if j == 0 { bars.len() - 1 } else { j - 1 };
            bars[prev].push_str(&affix);
        }
        j += 2;
    }

    let n = bars.len();
    let half = n / 2;
    let get = |i: usize| bars.get(i).cloned().ok_or_else(|| fail("unpaired barline"));
    let mut voice = Voice {
        prefix: prefix.clone(),
        ..Voice::default()
    };
    if is_barline(&bars[0]) {
        for i in 0..half {
            voice.left.push(get(2 * i)?);
            voice.bars.push(get(2 * i + 1)?);
            voice.right.push(get(2 * i + 2)?);
        }
    } else if prefix.is_empty() {
        voice.left.push(String::new());
        for i in 0..half.saturating_sub(1) {
            voice.left.push(get(2 * i + 1)?);
        }
        for i in 0..half {
            voice.bars.push(get(2 * i)?);
            voice.right.push(get(2 * i + 1)?);
        }
        if half == 0 {
            // Python: [''] + [] against [] and [] → "Unequal bar elements".
            return Err(err("strip empty bars", "Unequal bar elements"));
        }
    } else {
        for i in 0..half.saturating_sub(1) {
            voice.left.push(get(2 * i + 1)?);
            voice.bars.push(get(2 * i + 2)?);
            voice.right.push(get(2 * i + 3)?);
        }
    }
    Ok(voice)
}

/// The header lines and the voices, keyed by their trimmed `V:` line, in first-seen order
/// (`extract_barline_and_bartext_dict`).
struct Parsed {
    metadata: Vec<String>,
    voices: Vec<(String, Voice)>,
}

impl Parsed {
    fn voice(&self, key: &str) -> Option<&Voice> {
        self.voices.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

fn parse(lines: &[String], step: &'static str) -> Result<Parsed> {
    let start = body_start(lines)?;
    let metadata = lines[..start].to_vec();
    let body = &lines[start..];
    let mut parts: Vec<(String, String)> = Vec::new();
    let mut put = |key: String, text: String| {
        if let Some(slot) = parts.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = text;
        } else {
            parts.push((key, text));
        }
    };
    let mut key = py_strip(&body[0]).to_owned();
    let mut text = String::new();
    for line in &body[1..] {
        if line.starts_with("V:") {
            put(std::mem::take(&mut key), std::mem::take(&mut text));
            key = py_strip(line).to_owned();
        } else {
            text.push_str(line);
        }
    }
    put(key, text);
    let voices = parts
        .into_iter()
        .map(|(k, t)| {
            split_voice(&t).map(|v| (k, v)).map_err(|e| match e {
                Error::Interleave { reason, .. } => err(step, reason),
                other => other,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Parsed { metadata, voices })
}

/// abctoolkit's `find_valid_bar_index`: the first bar with a note (or any letter but rests and
/// spacers) and one past the last bar with a note name.
fn valid_bar_range(bars: &[String]) -> (usize, usize) {
    let left = bars
        .iter()
        .position(|bar| {
            let t = remove_quote_annotations(&remove_wrapped(bar, '!', '!'));
            t.chars()
                .any(|c| c.is_alphabetic() && !matches!(c, 'Z' | 'z' | 'X' | 'x'))
        })
        .unwrap_or(bars.len());
    let right = bars
        .iter()
        .rposition(|bar| {
            let t = remove_wrapped(bar, '!', '!');
            let t = remove_quote_annotations(&remove_bracket_fields(&t));
            t.chars().any(|c| matches!(c, 'A'..='G' | 'a'..='g'))
        })
        .map_or(0, |r| r + 1);
    (left, right)
}

/// abctoolkit's `strip_empty_bars`: drops bars empty in every voice at both ends, keeping the
/// first left and the last right barline, and writes the voices back as ABC lines.
fn strip_empty_bars(lines: &[String]) -> Result<Vec<String>> {
    const STEP: &str = "strip empty bars";
    let parsed = parse(lines, STEP)?;
    let v1 = parsed
        .voice("V:1")
        .ok_or_else(|| err(STEP, "no voice V:1"))?;
    if parsed
        .voices
        .iter()
        .any(|(_, v)| v.bars.len() != v1.bars.len())
    {
        return Err(err(STEP, "Unequal bar numbers (failed to strip)"));
    }
    let mut left_all = v1.bars.len();
    let mut right_all = 0usize;
    for (_, v) in &parsed.voices {
        let (l, r) = valid_bar_range(&v.bars);
        left_all = left_all.min(l);
        right_all = right_all.max(r);
    }
    if left_all >= right_all {
        return Err(err(STEP, "Empty piece (failed to strip)"));
    }

    let mut out = parsed.metadata.clone();
    for (key, v) in &parsed.voices {
        let first_left = v.left.first().ok_or_else(|| err(STEP, "no left barline"))?;
        let last_right = v
            .right
            .last()
            .ok_or_else(|| err(STEP, "no right barline"))?;
        let lefts: Vec<&String> = std::iter::once(first_left)
            .chain(v.left[(left_all + 1).min(right_all)..right_all].iter())
            .collect();
        let rights: Vec<&String> = v.right[left_all..right_all - 1]
            .iter()
            .chain(std::iter::once(last_right))
            .collect();
        let texts = &v.bars[left_all..right_all];

        out.push(format!("{key}\n"));
        let mut line = format!("{}{} ", v.prefix, lefts[0]);
        let mut line_len = 0usize;
        let mut i = 0;
        while i < texts.len() {
            let bar = format!("{} {} ", texts[i], rights[i]);
            let bar_len = bar.chars().count();
            if line_len == 0 || line_len + bar_len <= STRIP_LINE_WIDTH {
                line.push_str(&bar);
                line_len += bar_len;
                i += 1;
            } else {
                line.push('\n');
                out.push(std::mem::replace(&mut line, " ".to_owned()));
                line_len = 0;
            }
        }
        if !py_strip(&line).is_empty() {
            line.push('\n');
            out.push(line);
        }
    }
    Ok(out)
}

/// abctoolkit's `check_alignment_unrotated`: its warnings are not kept, but it raises (and the
/// reference writes nothing) on a chord holding a symbol it does not know, or when a voice has
/// fewer bars than `V:1`.
fn check_alignment(lines: &[String]) -> Result<()> {
    const STEP: &str = "check alignment";
    let parsed = parse(lines, STEP)?;
    let v1 = parsed
        .voice("V:1")
        .ok_or_else(|| err(STEP, "no voice V:1"))?;
    for (i, bar) in v1.bars.iter().enumerate() {
        if bar_duration(bar)?.is_none() {
            break;
        }
        for (key, v) in &parsed.voices {
            if key == "V:1" {
                continue;
            }
            let other = v.bars.get(i).ok_or_else(|| {
                err(
                    STEP,
                    format!("list index out of range ({key} has fewer bars)"),
                )
            })?;
            bar_duration(other)?;
        }
    }
    Ok(())
}

/// abctoolkit's `rotate_abc`: one line per bar, each voice's bar after its `[V:n]` marker.
fn rotate(lines: &[String]) -> Result<String> {
    const STEP: &str = "rotate";
    let parsed = parse(lines, STEP)?;
    let mut out = String::new();
    for line in &parsed.metadata {
        out.push_str(line);
        if !line.ends_with('\n') {
            out.push('\n');
        }
    }
    let range_err = || err(STEP, "list index out of range");
    for (key, v) in &parsed.voices {
        out.push('[');
        out.push_str(key);
        out.push(']');
        out.push_str(&v.prefix);
        out.push_str(v.left.first().ok_or_else(range_err)?);
        out.push_str(v.bars.first().ok_or_else(range_err)?);
        out.push_str(v.right.first().ok_or_else(range_err)?);
    }
    out.push('\n');
    let n = parsed.voice("V:1").map_or(0, |v| v.bars.len());
    for i in 1..n {
        for (key, v) in &parsed.voices {
            out.push('[');
            out.push_str(key);
            out.push(']');
            out.push_str(v.bars.get(i).ok_or_else(range_err)?);
            out.push_str(v.right.get(i).ok_or_else(range_err)?);
        }
        out.push('\n');
    }
    Ok(out)
}

/// An exact fraction, enough of Python's `Fraction` for bar durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Frac {
    num: i128,
    den: i128,
}

impl Frac {
    fn new(num: i128, den: i128) -> Option<Frac> {
        if den == 0 {
            return None;
        }
        let g = gcd(num.unsigned_abs(), den.unsigned_abs()).max(1) as i128;
        let sign = if den < 0 { -1 } else { 1 };
        Some(Frac {
            num: sign * num / g,
            den: sign * den / g,
        })
    }
    fn int(n: i128) -> Frac {
        Frac { num: n, den: 1 }
    }
    fn add(self, o: Frac) -> Option<Frac> {
        let num = self
            .num
            .checked_mul(o.den)?
            .checked_add(o.num.checked_mul(self.den)?)?;
        Frac::new(num, self.den.checked_mul(o.den)?)
    }
    fn mul(self, o: Frac) -> Option<Frac> {
        Frac::new(self.num.checked_mul(o.num)?, self.den.checked_mul(o.den)?)
    }
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Python's `Fraction(str)` for the strings a note's length can leave (digits, `/`, sign and
/// surrounding whitespace).
fn parse_fraction(s: &str) -> Option<Frac> {
    let s = py_strip(s);
    let (neg, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let int = |t: &str| -> Option<i128> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (n, d) = match s.split_once('/') {
        Some((n, d)) => (int(n)?, int(d)?),
        None => (int(s)?, 1),
    };
    Frac::new(if neg { -n } else { n }, d)
}

const NOTE_CHARS: &[char] = &[
    'A', 'a', 'B', 'b', 'C', 'c', 'D', 'd', 'E', 'e', 'F', 'f', 'G', 'g', 'X', 'x', 'Z', 'z',
];
const PITCH_CHARS: &[char] = &['_', '=', '^', '\'', ','];
const USELESS_CHARS: &[char] = &[
    'P', 'S', 'O', 's', 'o', 'u', 'v', 'U', 'V', 'T', 'M', '.', '-', ')',
];

/// abctoolkit's `calculate_bartext_duration`. `Err` where it raises (an unknown symbol inside
/// `[…]`), `Ok(None)` where it gives up, else the duration in units of `L:`.
fn bar_duration(bar: &str) -> Result<Option<Frac>> {
    let mut t = remove_quoted(bar);
    t = remove_wrapped(&t, '!', '!');
    t = remove_wrapped(&t, '{', '}');
    t = remove_bracket_fields(&t);
    let chords: Vec<String> = find_wrapped(&t, '[', ']')
        .into_iter()
        .map(str::to_owned)
        .collect();
    for chord in &chords {
        if let Some(bad) = chord.chars().find(|c| {
            !(NOTE_CHARS.contains(c) || PITCH_CHARS.contains(c) || matches!(c, '[' | ']' | '-'))
        }) {
            return Err(err(
                "check alignment",
                format!("Illegal symbol {bad:?} in [] {chord}"),
            ));
        }
        t = t.replace(chord.as_str(), "C");
    }
    let t = t.replace(['x', 'X'], "z");
    Ok(bar_duration_core(&t))
}

/// `re.sub(Quote_re, '', text)`.
fn remove_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for m in find_quotes(text) {
        let start = m.as_ptr() as usize - text.as_ptr() as usize;
        out.push_str(&text[last..start]);
        last = start + m.len();
    }
    out.push_str(&text[last..]);
    out
}

/// The part of `calculate_bartext_duration` inside its `try`: `None` where Python raises.
fn bar_duration_core(text: &str) -> Option<Frac> {
    let t: Vec<char> = text
        .chars()
        .filter(|c| !USELESS_CHARS.contains(c) && !PITCH_CHARS.contains(c))
        .collect();
    // Drop '(' not followed by a number.
    let t: Vec<char> = t
        .iter()
        .enumerate()
        .filter(|&(i, &c)| c != '(' || t.get(i + 1).is_some_and(|n| n.is_numeric()))
        .map(|(_, &c)| c)
        .collect();

    let mut elements: Vec<String> = Vec::new();
    let mut index = 0;
    for (i, &c) in t.iter().enumerate() {
        if i < index {
            continue;
        }
        if NOTE_CHARS.contains(&c) {
            index = i + 1;
            while index < t.len() && !(NOTE_CHARS.contains(&t[index]) || "(<>".contains(t[index])) {
                index += 1;
            }
        } else if c == '(' {
            index = i + 1;
            while t.get(index)?.is_numeric() || t[index] == ':' {
                index += 1;
            }
        } else if c == '<' || c == '>' {
            index = i + 1;
            while matches!(t.get(index)?, '<' | '>') {
                index += 1;
            }
        } else {
            continue;
        }
        let e: String = t[i..index].iter().collect();
        elements.push(py_strip(&e).to_owned());
    }

    let unknown = Frac::int(-1);
    let mut durs: Vec<Frac> = vec![unknown; elements.len()];
    for (i, e) in elements.iter().enumerate() {
        if e.chars().next().is_some_and(char::is_alphabetic) {
            durs[i] = note_duration(e)?;
        }
    }
    let n = elements.len();
    for (i, e) in elements.iter().enumerate() {
        if e.starts_with(['<', '>']) {
            let prev = if i == 0 { n - 1 } else { i - 1 };
            let next = *durs.get(i + 1)?;
            durs[i] = durs[prev].add(next)?;
            durs[prev] = Frac::int(0);
            durs[i + 1] = Frac::int(0);
        }
    }

    let mut uncertain = durs.contains(&unknown);
    while uncertain {
        uncertain = false;
        for i in 0..n {
            let e = &elements[i];
            if durs[i] == unknown && e.starts_with('(') {
                uncertain = true;
                let (p, q, r) = if e == "(3" {
                    (3, 2, 3)
                } else {
                    let mut f = e.trim_start_matches('(').split(':');
                    let mut next = || -> Option<u128> {
                        let s = f.next()?;
                        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                            return None;
                        }
                        Some(s.parse().unwrap_or(u128::MAX))
                    };
                    (next()?, next()?, next()?)
                };
                if p == 0 || q == 0 || r == 0 {
                    return None;
                }
                let left = i + 1;
                let mut index = i + 1;
                let mut count = 0u128;
                let mut local_uncertain = false;
                while count < r {
                    let el = elements.get(index)?;
                    if el.chars().next().is_some_and(char::is_alphabetic) {
                        count += 1;
                    } else if durs[index] == unknown {
                        local_uncertain = true;
                        break;
                    }
                    index += 1;
                }
                if local_uncertain {
                    continue;
                }
                let mut sum = Frac::int(0);
                for d in &durs[left..index] {
                    sum = sum.add(*d)?;
                }
                let ratio = Frac::new(i128::try_from(q).ok()?, i128::try_from(p).ok()?)?;
                durs[i] = round_fraction(sum.mul(ratio)?);
                for d in &mut durs[left..index] {
                    *d = Frac::int(0);
                }
            } else if durs[i] == unknown {
                return None;
            }
        }
    }
    durs.iter().try_fold(Frac::int(0), |acc, d| acc.add(*d))
}

/// abctoolkit's `round_fraction`: snaps to the nearest integer within 1/64.
fn round_fraction(f: Frac) -> Frac {
    let value = f.num as f64 / f.den as f64;
    let nearest = value.round_ties_even() as i128;
    let diff = f.add(Frac::int(-nearest));
    match diff {
        Some(d) if d.num.abs() * 64 <= d.den => Frac::int(nearest),
        _ => f,
    }
}

/// abctoolkit's `calculate_single_note_duration`.
fn note_duration(note: &str) -> Option<Frac> {
    let d: String = py_strip(note)
        .chars()
        .filter(|c| !c.is_ascii_alphabetic())
        .collect();
    if d.is_empty() {
        Some(Frac::int(1))
    } else if d == "/" {
        Frac::new(1, 2)
    } else if d.starts_with('/') {
        parse_fraction(&format!("1{d}"))
    } else {
        parse_fraction(&d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_follows_regex_alternation_order() {
        assert_eq!(
            split_barlines("a|:b::c:[|d|]:e"),
            vec!["a", "|:", "b", "::", "c", ":[|", "d", "|]", ":e"]
        );
        assert_eq!(split_barlines(""), vec![""]);
    }

    #[test]
    fn wrapped_needs_content() {
        assert_eq!(find_wrapped("!!a!b", '!', '!'), vec!["!a!"]);
        assert_eq!(remove_bracket_fields("[K:C]ab[CE]"), "ab[CE]");
        assert_eq!(find_quotes(r#"a"b"c""d"#), vec!["\"b\"", "\"\""]);
    }

    #[test]
    fn durations() {
        assert_eq!(bar_duration("CDEF").ok().flatten(), Frac::new(4, 1));
        assert_eq!(bar_duration("(3CDE F2").ok().flatten(), Frac::new(4, 1));
        assert_eq!(bar_duration("C>D E/F/").ok().flatten(), Frac::new(3, 1));
        assert_eq!(bar_duration("C2/").ok().flatten(), None);
        assert!(bar_duration("[C2E2]").is_err());
    }

    #[test]
    fn volta_numbers_stick_to_barlines() {
        let v = split_voice(" abc |1 def :|2 gab |]").expect("split");
        assert_eq!(v.bars, vec!["abc", "def", "gab"]);
        assert_eq!(v.right, vec!["|1", ":|2", "|]"]);
        assert_eq!(v.left, vec!["", "|1", ":|2"]);
    }

    #[test]
    fn missing_voice_one_is_voice_one() {
        let out = interleave("X:1\nT:t\nM:3/4\nK:D\nABc|def|]\n").expect("interleave");
        assert_eq!(out, "M:3/4\nK:D\n[V:1]ABc|\n[V:1]def|]\n");
    }

    #[test]
    fn detects_interleaved() {
        assert!(is_interleaved("L:1/8\nK:C\n[V:1]abc|\n"));
        assert!(!is_interleaved("L:1/8\nK:C\nV:1\nabc|\n"));
    }
}
