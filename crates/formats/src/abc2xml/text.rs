//! Text handling before the grammar: decoding, line splitting, finding the tune, and
//! abc2xml's `splitHeaderVoices` (header fields apart, the body cut into voices) and
//! `fixSlurs`.

use std::sync::LazyLock;

use regex::Regex;

use super::limits;
use super::parser::py_strip;
use crate::{Error, Result};

/// The decoded text and the encoding it was read as (`utf-8` or `latin-1`).
pub(crate) fn decode(bytes: &[u8]) -> (String, &'static str) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), "utf-8"),
        Err(_) => (bytes.iter().map(|&b| b as char).collect(), "latin-1"),
    }
}

/// Python's `str.splitlines()`.
pub(crate) fn splitlines(s: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\x0b'
                | '\x0c'
                | '\x1c'
                | '\x1d'
                | '\x1e'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if is_break {
            lines.push(&s[start..i]);
            let mut end = i + c.len_utf8();
            if c == '\r' {
                if let Some(&(j, '\n')) = it.peek() {
                    it.next();
                    end = j + 1;
                }
            }
            start = end;
        }
    }
    if start < s.len() {
        lines.push(&s[start..]);
    }
    lines
}

static TUNE_START: LazyLock<Regex> = LazyLock::new(|| re(r"(?m)^\s*X:"));

fn re(pattern: &str) -> Regex {
    // The patterns are constants of this file; a typo fails every test at once.
    Regex::new(pattern).unwrap_or_else(|e| panic!("bad built-in pattern {pattern}: {e}"))
}

/// `getXmlDocs` with `-m 0 1`: the text of the first tune (preamble + `X:` + tune), or `None`
/// when the text holds none. `include` resolves `%%abc-include` lines (`None`: drop them, as
/// the reference does for a file it cannot read).
pub(crate) fn first_tune(text: &str, include: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let mut ys: Vec<String> = Vec::new();
    for x in splitlines(text) {
        if x.starts_with("%%abc-include") || x.starts_with("I:abc-include") {
            let name = py_strip(x.get(13..).unwrap_or(""));
            if let Some(included) = include(name) {
                ys.push(included);
            }
        } else {
            ys.push(x.to_string());
        }
    }
    let abctext = ys.join("\n");
    let mut matches = TUNE_START.find_iter(&abctext);
    match matches.next() {
        Some(first) => {
            let preamble = &abctext[..first.start()];
            let end = matches.next().map_or(abctext.len(), |m| m.start());
            Some(format!("{preamble}X:{}", &abctext[first.end()..end]))
        }
        None if !abctext.is_empty() => Some(format!("X:1\n{abctext}")),
        None => None,
    }
}

/// The header fields and the voices `(id, abc text)` of a tune, plus the `W:` lyrics.
pub(crate) struct Split {
    pub header: String,
    pub voices: Vec<(String, String)>,
    pub w_lyrics: Option<String>,
}

fn esc_field(x: &str) -> String {
    format!("[{}]", x.replace(']', "%5d"))
}

static FIELD_LINE: LazyLock<Regex> = LazyLock::new(|| re(r"^(?:([A-Zw]:.*$)|\[[A-Zw]:[^\]]*\]$)"));
static CONT_FIELD: LazyLock<Regex> = LazyLock::new(|| re(r"^.:(.*?)\\*$"));
static HEADER_K: LazyLock<Regex> = LazyLock::new(|| re(r"\[K:[^\]]*\]"));
static INLINE_UPPER: LazyLock<Regex> = LazyLock::new(|| re(r"\[[A-Z]:[^\]]*\]"));
static V_FIELD: LazyLock<Regex> = LazyLock::new(|| re(r"\[V:[^\]]*\]"));
static P_MARK: LazyLock<Regex> = LazyLock::new(|| re(r"\[P:.\]"));
static VOICE_ID: LazyLock<Regex> = LazyLock::new(|| re(r"\[V:\s*(\S*)[ \]]"));

/// `re.split` with one capturing group around the whole pattern.
fn split_keep<'a>(pattern: &Regex, s: &'a str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut last = 0;
    for m in pattern.find_iter(s) {
        out.push(&s[last..m.start()]);
        out.push(m.as_str());
        last = m.end();
    }
    out.push(&s[last..]);
    out
}

/// `splitHeaderVoices`.
pub(crate) fn split_header_voices(abctext: &str) -> Result<Split> {
    let mut xs: Vec<String> = Vec::new();
    let (mut nx, mut mcont, mut fcont) = (false, false, false);
    let mut mln = String::new();
    let mut fln = String::new();
    let mut w_lyrics: Option<String> = None;
    for line in splitlines(abctext) {
        if line.chars().count() > limits::MAX_LINE_CHARS {
            return Err(Error::Abc2Xml {
                reason: format!(
                    "a line of {} characters (at most {} accepted)",
                    line.chars().count(),
                    limits::MAX_LINE_CHARS
                ),
            });
        }
        let x = py_strip(line);
        if x.is_empty() && nx {
            break;
        }
        if x.starts_with("X:") {
            if nx {
                break;
            }
            nx = true;
        }
        let x = match x.strip_prefix("%%") {
            Some(rest) if rest.chars().next().is_some_and(|c| c != '%') => format!("I:{rest}"),
            _ => x.to_string(),
        };
        let mut x2: &str = x.find('%').map_or(&x, |i| &x[..i]);
        while x2.ends_with('*')
            && !(x2.starts_with("w:") || x2.starts_with("+:") || x2.contains("percmap"))
        {
            x2 = &x2[..x2.len() - 1];
        }
        if x2.is_empty() {
            continue;
        }
        if let Some(rest) = x2.strip_prefix("W:") {
            let field = py_strip(rest);
            w_lyrics = Some(match w_lyrics {
                Some(c) if !c.is_empty() => format!("{c}\n{field}"),
                _ => field.to_string(),
            });
            continue;
        }
        if let Some(rest) = x2.strip_prefix("+:") {
            fln.push_str(rest);
            continue;
        }
        if FIELD_LINE.is_match(x2) {
            if fcont {
                fcont = x2.ends_with('\\');
                fln.push_str(&CONT_FIELD.replace(x2, "$1"));
                continue;
            }
            if !fln.is_empty() {
                mln.push_str(&esc_field(&fln));
            }
            let x3 = if x2.starts_with('[') {
                x2.trim_matches(|c| c == '[' || c == ']')
            } else {
                x2
            };
            fcont = x3.ends_with('\\');
            fln = x3.trim_end_matches('\\').to_string();
            continue;
        }
        if nx {
            fcont = false;
            if !fln.is_empty() {
                mln.push_str(&esc_field(&fln));
                fln.clear();
            }
            if mcont {
                mcont = x2.ends_with('\\');
                mln.push_str(x2.trim_end_matches('\\'));
            } else {
                if !mln.is_empty() {
                    xs.push(std::mem::take(&mut mln));
                }
                mcont = x2.ends_with('\\');
                mln = x2.trim_end_matches('\\').to_string();
            }
            if !mcont {
                xs.push(std::mem::take(&mut mln));
            }
        }
    }
    if !fln.is_empty() {
        mln.push_str(&esc_field(&fln));
    }
    if !mln.is_empty() {
        xs.push(mln);
    }
    let Some(first) = xs.first().cloned() else {
        return Err(Error::Abc2Xml {
            reason: "the tune has no header fields and no music".into(),
        });
    };
    let hs = split_keep(&HEADER_K, &first);
    let header = if hs.len() == 1 {
        xs[0].clear();
        hs[0].to_string()
    } else {
        xs[0] = hs[2..].concat();
        format!("{}{}", hs[0], hs[1])
    };
    let abctext = xs.join("\n");
    let inner = header.get(1..header.len().saturating_sub(1)).unwrap_or("");
    let (mut hfs, mut vfs) = (Vec::new(), Vec::new());
    for x in inner.split("][") {
        if x.is_empty() {
            return Err(Error::Abc2Xml {
                reason: "an empty header (string index out of range)".into(),
            });
        }
        if x.starts_with('V') || x.starts_with("I:MIDI") || x.starts_with("I:percmap") {
            vfs.push(x);
        } else {
            hfs.push(x);
        }
    }
    let mut header = format!("[{}]", hfs.join("]["));
    let mut abctext = if vfs.is_empty() {
        abctext
    } else {
        format!("[{}]{abctext}", vfs.join("]["))
    };
    let parts: Vec<&str> = abctext.split("[V:").collect();
    if parts.len() == 1 || !py_strip(&INLINE_UPPER.replace_all(parts[0], "")).is_empty() {
        abctext = format!("[V:1]{abctext}");
    }
    let mut xs: Vec<String> = split_keep(&V_FIELD, &abctext)
        .into_iter()
        .map(str::to_string)
        .collect();
    if xs.len() == 1 {
        return Err(Error::Abc2Xml {
            reason: "bugs ... (an unclosed [V: field)".into(),
        });
    }
    let pm: Vec<&str> = P_MARK.find_iter(&xs[0]).map(|m| m.as_str()).collect();
    if !pm.is_empty() {
        xs[2] = format!("{}{}", pm.concat(), xs[2]);
    }
    header.push_str(&P_MARK.replace_all(&xs[0], ""));
    // {voice id -> [V field, abc, V field, abc, ...]} in order of first appearance
    let mut vmap: Vec<(String, Vec<String>)> = Vec::new();
    let mut i = 1;
    while i < xs.len() {
        let (mut vce, abc) = (xs[i].clone(), xs.get(i + 1).cloned().unwrap_or_default());
        let mut id = VOICE_ID
            .captures(&vce)
            .and_then(|c| c.get(1))
            .map(|m| m.as_str().to_string())
            .unwrap_or_default();
        if id.is_empty() {
            id = "1".into();
            vce = "[V:1]".into();
        }
        match vmap.iter_mut().find(|(v, _)| *v == id) {
            Some((_, texts)) => texts.extend([vce, abc]),
            None => vmap.push((id, vec![vce, abc])),
        }
        i += 2;
    }
    let voices = vmap
        .into_iter()
        .map(|(id, texts)| Ok((id, fix_slurs(&texts.concat())?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Split {
        header,
        voices,
        w_lyrics,
    })
}

static MM_REST: LazyLock<Regex> = LazyLock::new(|| re(r"([XZ])(\d+)"));
static BAR_SPACE: LazyLock<Regex> = LazyLock::new(|| re(r"([:|][ |\[\]]+[:|])"));

/// `fixSlurs`: multi-measure rests become single-measure ones, spaces inside bar lines go, and
/// a slur end after `}`, `>` or `<` moves before it.
pub(crate) fn fix_slurs(x: &str) -> Result<String> {
    let mut err = None;
    let x = MM_REST.replace_all(x, |c: &regex::Captures| {
        let n: usize = match c[2].parse() {
            Ok(n) if n <= limits::MAX_MEASURE_REST => n,
            _ => {
                err = Some(c[0].to_string());
                0
            }
        };
        let one = format!("{}|", &c[1]);
        let mut s = one.repeat(n);
        s.pop();
        s
    });
    if let Some(rest) = err {
        return Err(Error::Abc2Xml {
            reason: format!(
                "multi-measure rest {rest} (at most {} measures accepted)",
                limits::MAX_MEASURE_REST
            ),
        });
    }
    let x = BAR_SPACE.replace_all(&x, |c: &regex::Captures| c[1].replace(' ', ""));
    Ok(move_slurs(&x))
}

/// `slur_move.sub(r'\2\1', x)` with `slur_move = (?<![!+])([}><][<>]?)(\)+)`.
fn move_slurs(x: &str) -> String {
    let s: Vec<char> = x.chars().collect();
    let mut out = String::with_capacity(x.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        let ok_before = i == 0 || !matches!(s[i - 1], '!' | '+');
        if ok_before && matches!(c, '}' | '>' | '<') {
            // ([}><][<>]?) greedy, then \)+
            let try_at = |g1_end: usize| {
                let mut k = g1_end;
                while s.get(k) == Some(&')') {
                    k += 1;
                }
                (k > g1_end).then_some(k)
            };
            let with_second = matches!(s.get(i + 1), Some('<' | '>'))
                .then(|| try_at(i + 2).map(|k| (i + 2, k)))
                .flatten();
            if let Some((g1_end, k)) = with_second.or_else(|| try_at(i + 1).map(|k| (i + 1, k))) {
                out.extend(&s[g1_end..k]);
                out.extend(&s[i..g1_end]);
                i = k;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}
