//! The few Python string behaviours MTF depends on: the `unicode_escape` codec both ways,
//! `str.splitlines`, and how `int()` and `float()` read numbers.

use std::fmt::Write as _;

/// `text.encode('unicode_escape')` for a Latin-1 string given as its bytes (one byte per
/// character), appended to `out`: `\\`, `\t`, `\n`, `\r` escaped, other characters below 0x20 or
/// from 0x7F on as `\xNN`.
pub(crate) fn unicode_escape_latin1(text: &[u8], out: &mut String) {
    for &b in text {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            0x20..=0x7E => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
}

/// `text.encode('utf-8').decode('unicode_escape')` followed by `.encode('latin1')`, which is what
/// the text of a meta message goes through between MTF and a saved MIDI file.
///
/// Bytes that are not part of an escape stand for themselves (the codec reads them as Latin-1),
/// so UTF-8 text comes back as its UTF-8 bytes. An escape that yields a character above U+00FF
/// cannot be saved by mido (Latin-1), nor can a `\N{...}` escape here, which needs Unicode's name
/// table. The error says which escape failed.
pub(crate) fn unicode_unescape_latin1(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let Some(&e) = bytes.get(i + 1) else {
            return Err("text ends with a lone backslash (`\\ at end of string`)".into());
        };
        i += 2;
        match e {
            b'\n' => {}
            b'\\' => out.push(b'\\'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0C),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0B),
            b'0'..=b'7' => {
                let mut value = u32::from(e - b'0');
                for _ in 0..2 {
                    match bytes.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(latin1(value)?);
            }
            b'x' | b'u' | b'U' => {
                let digits = match e {
                    b'x' => 2,
                    b'u' => 4,
                    _ => 8,
                };
                let hex = bytes
                    .get(i..i + digits)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .ok_or_else(|| {
                        format!(
                            "truncated \\{}{} escape: expected {digits} hex digits",
                            char::from(e),
                            "X".repeat(digits)
                        )
                    })?;
                i += digits;
                let value = hex.iter().fold(0u32, |acc, &h| {
                    acc * 16 + char::from(h).to_digit(16).unwrap_or(0)
                });
                out.push(latin1(value)?);
            }
            b'N' => {
                return Err(
                    "\\N{...} escapes (characters by Unicode name) are not supported".into(),
                )
            }
            other => {
                // Python keeps unknown escapes as they are.
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Ok(out)
}

fn latin1(code_point: u32) -> Result<u8, String> {
    u8::try_from(code_point).map_err(|_| {
        format!(
            "escaped character U+{code_point:04X} cannot be written to a MIDI file \
             (text is Latin-1, up to U+00FF)"
        )
    })
}

/// Python's `str.splitlines()`: splits at `\n`, `\r`, `\r\n`, `\v`, `\f`, `\x1c`, `\x1d`,
/// `\x1e`, `\x85`, U+2028 and U+2029; a final line break does not start an empty line.
pub(crate) fn splitlines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\u{0B}'
                | '\u{0C}'
                | '\u{1C}'
                | '\u{1D}'
                | '\u{1E}'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if !is_break {
            continue;
        }
        lines.push(&text[start..i]);
        let mut end = i + c.len_utf8();
        if c == '\r' {
            if let Some(&(_, '\n')) = chars.peek() {
                chars.next();
                end += 1;
            }
        }
        start = end;
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// Characters Python's `int()` and `float()` strip from both ends (`str.isspace`).
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{1C}'..='\u{1F}')
}

/// Removes the underscores Python allows in numbers (single ones between two digits); `None`
/// when one is misplaced.
fn strip_underscores(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.char_indices() {
        if c == '_' {
            let before = i.checked_sub(1).and_then(|j| b.get(j));
            let after = b.get(i + 1);
            if !(before.is_some_and(u8::is_ascii_digit) && after.is_some_and(u8::is_ascii_digit)) {
                return None;
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// Python's `int(s)` for base 10, limited to `i128` (`None` when Python would raise, or the value
/// does not fit). Only ASCII digits are accepted.
pub(crate) fn python_int(s: &str) -> Option<i128> {
    let s = strip_underscores(s.trim_matches(is_python_space))?;
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, &s[..]),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut value: i128 = 0;
    for b in digits.bytes() {
        value = value.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    Some(if negative { -value } else { value })
}

/// Python's `float(s)`: surrounding whitespace, underscores between digits, `inf`, `infinity`
/// and `nan` in any case, with an optional sign. Only ASCII digits are accepted.
pub(crate) fn python_float(s: &str) -> Option<f64> {
    let s = strip_underscores(s.trim_matches(is_python_space))?;
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(&s);
    let lower = unsigned.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        let negative = s.starts_with('-');
        let v = if lower == "nan" {
            f64::NAN
        } else {
            f64::INFINITY
        };
        return Some(if negative { -v } else { v });
    }
    // Rust's grammar is Python's for finite numbers ("1.", ".5", "1e5", signs) once the
    // special words are handled; both round correctly.
    if !unsigned
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    s.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_latin1() {
        let mut s = String::new();
        unicode_escape_latin1(b"caf\xe9 a\\b\tc\nd\re\x00\x7f\x1b\"'", &mut s);
        assert_eq!(s, r#"caf\xe9 a\\b\tc\nd\re\x00\x7f\x1b"'"#);
    }

    #[test]
    fn unescape_round_trip_and_escapes() {
        let raw: Vec<u8> = (0u8..=255).collect();
        let mut escaped = String::new();
        unicode_escape_latin1(&raw, &mut escaped);
        assert_eq!(unicode_unescape_latin1(&escaped).unwrap(), raw);
        assert_eq!(unicode_unescape_latin1("é").unwrap(), "é".as_bytes());
        assert_eq!(
            unicode_unescape_latin1(r"\101\u00e9\q").unwrap(),
            b"A\xe9\\q"
        );
        assert!(unicode_unescape_latin1(r"\x4").is_err());
        assert!(unicode_unescape_latin1("a\\").is_err());
        assert!(unicode_unescape_latin1(r"\u20ac").is_err());
        assert!(unicode_unescape_latin1(r"\777").is_err());
    }

    #[test]
    fn splitlines_like_python() {
        assert_eq!(splitlines(""), Vec::<&str>::new());
        assert_eq!(splitlines("\n"), vec![""]);
        assert_eq!(splitlines("a\r\nb\rc\n"), vec!["a", "b", "c"]);
        assert_eq!(splitlines("a\n\nb\u{2028}c\u{0B}"), vec!["a", "", "b", "c"]);
    }

    #[test]
    fn numbers_like_python() {
        assert_eq!(python_int(" 1_000 "), Some(1000));
        assert_eq!(python_int("-5"), Some(-5));
        assert_eq!(python_int("+007"), Some(7));
        assert_eq!(python_int(""), None);
        assert_eq!(python_int("1__0"), None);
        assert_eq!(python_int("5,"), None);
        assert_eq!(python_float("29.97"), Some(29.97));
        assert_eq!(python_float("1e3"), Some(1000.0));
        assert_eq!(python_float(" -Infinity"), Some(f64::NEG_INFINITY));
        assert!(python_float("nan").is_some_and(f64::is_nan));
        assert_eq!(python_float("1_0.5"), Some(10.5));
        assert_eq!(python_float("0x10"), None);
        assert_eq!(python_float(""), None);
        assert_eq!(python_float("."), None);
    }
}
