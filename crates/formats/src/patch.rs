//! The M3 patchilizer: interleaved ABC or MTF text → fixed-width patches.
//!
//! Port of `M3Patchilizer.encode(item, add_special_patches=True)` in the reference
//! (<https://github.com/sanderwood/clamp3/blob/9016d2b/code/utils.py>, class `M3Patchilizer`).
//! A patch is a bar of ABC (header lines whole), or a run of MTF messages of one type, spelled as
//! `[BOS] + bytes + [EOS]`, truncated to [`PATCH_SIZE`] and zero-padded; the whole sequence is
//! wrapped in an all-BOS and an all-EOS patch.

use crate::translit::to_ascii;

/// Characters per patch in every published CLaMP 3 / M3 model (`PATCH_SIZE` upstream).
pub const PATCH_SIZE: usize = 64;
/// Padding id inside a patch.
pub const PAD: u8 = 0;
/// Begin-of-patch id; a patch of only BOS opens a sequence.
pub const BOS: u8 = 1;
/// End-of-patch id; a patch of only EOS closes a sequence.
pub const EOS: u8 = 2;

/// One patch: `PATCH_SIZE` byte ids below 128.
pub type Patch = [u8; PATCH_SIZE];

/// Barlines that end a bar, in the reference's alternation order (the leftmost match wins, then
/// the first alternative that matches there).
const BARLINES: [&str; 7] = ["|:", "::", ":|", "[|", "||", "|]", "|"];

/// How the scripts around the shared `M3Patchilizer` differ (CLaMP 3, CLaMP 2, M3 features).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchRules {
    /// Remove every `L:1/8\n` before patchilizing (CLaMP 3's `extract_clamp3.py` and
    /// `extract_m3.py` do; CLaMP 2's `extract_clamp2.py` keeps it as a field patch).
    pub remove_unit_length: bool,
    /// Fail on a line that is a lone barline without `\n` (e.g. a file ending in `\n|`), where the
    /// reference raises `IndexError` and writes no features; otherwise such a line yields no bar.
    pub strict: bool,
}

impl PatchRules {
    /// `extract_clamp3.py`: `L:1/8` removed, lone barlines yield nothing.
    pub const CLAMP3: PatchRules = PatchRules {
        remove_unit_length: true,
        strict: false,
    };
    /// `extract_clamp2.py`: `L:1/8` kept, lone barlines fail.
    pub const CLAMP2: PatchRules = PatchRules {
        remove_unit_length: false,
        strict: true,
    };
    /// `extract_m3.py`: `L:1/8` removed (outside MTF, which never holds it), lone barlines fail.
    pub const M3: PatchRules = PatchRules {
        remove_unit_length: true,
        strict: true,
    };
}

/// A line the reference's `split_bars` fails on (`IndexError`): a lone barline without `\n`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} is a lone barline {text:?} without a newline, which the reference patchilizer cannot split")]
pub struct LoneBarline {
    /// 1-based line number in the (transliterated) text.
    pub line: usize,
    /// The line.
    pub text: String,
}

/// Cuts `text` into patches as the reference does before embedding, with BOS/EOS patches.
///
/// MTF is recognised by its first line starting with `ticks_per_beat`; anything else is treated as
/// ABC. An empty text gives just the BOS and EOS patches (the reference raises `IndexError`).
pub fn patchilize(text: &str) -> Vec<Patch> {
    // Not strict: nothing can fail.
    patchilize_with(text, PatchRules::CLAMP3).unwrap_or_default()
}

/// [`patchilize`] under the rules of one of the reference scripts.
pub fn patchilize_with(text: &str, rules: PatchRules) -> Result<Vec<Patch>, LoneBarline> {
    let text = if rules.remove_unit_length {
        to_ascii(&text.replace("L:1/8\n", ""))
    } else {
        to_ascii(text)
    };
    let lines = split_lines_keep_newline(&text);
    let mut pieces: Vec<String> = Vec::new();
    if let Some(first) = lines.first() {
        if first_word(first) == "ticks_per_beat" {
            merge_mtf_lines(&lines, &mut pieces);
        } else {
            split_abc_lines(&lines, &mut pieces, rules.strict)?;
        }
    }
    let mut patches = Vec::with_capacity(pieces.len() + 2);
    patches.push([BOS; PATCH_SIZE]);
    patches.extend(pieces.iter().map(|p| bar_to_patch(p)));
    // The reference builds the EOS patch from 64 EOS characters and then wraps it like any bar, so
    // it reads BOS followed by 63 EOS.
    let mut eos = [EOS; PATCH_SIZE];
    eos[0] = BOS;
    patches.push(eos);
    Ok(patches)
}

/// `re.findall(r'.*?\n|.*$', text)` without the empty matches: lines keeping their `\n`, and a
/// last line without one.
fn split_lines_keep_newline(text: &str) -> Vec<&str> {
    text.split_inclusive('\n')
        .filter(|l| !l.is_empty())
        .collect()
}

/// `line.split(" ")[0]`.
fn first_word(line: &str) -> &str {
    line.split(' ').next().unwrap_or("")
}

/// Consecutive MTF lines whose first word the current patch starts with are merged with a tab
/// while the patch stays within `PATCH_SIZE - 2` characters.
fn merge_mtf_lines(lines: &[&str], pieces: &mut Vec<String>) {
    let mut patch = String::new();
    for line in lines {
        let (word, rest) = match line.split_once(' ') {
            Some((word, rest)) => (word, rest),
            None => (*line, ""),
        };
        if patch.starts_with(word) && patch.len() + rest.len() <= PATCH_SIZE - 2 {
            patch.pop();
            patch.push('\t');
            patch.push_str(rest);
        } else {
            if !patch.is_empty() {
                pieces.push(std::mem::take(&mut patch));
            }
            patch = line.to_string();
        }
    }
    if !patch.is_empty() {
        pieces.push(patch);
    }
}

/// ABC: field lines (`X:`-style, or `%%`) are one patch; other lines are cut into bars.
fn split_abc_lines(
    lines: &[&str],
    pieces: &mut Vec<String>,
    strict: bool,
) -> Result<(), LoneBarline> {
    for (number, line) in lines.iter().enumerate() {
        let b = line.as_bytes();
        let is_field =
            b.len() > 1 && ((b[0].is_ascii_alphabetic() && b[1] == b':') || line.starts_with("%%"));
        if is_field {
            pieces.push(line.to_string());
        } else {
            if strict && barline_at(line, 0).is_some_and(|d| d.len() == line.len()) {
                return Err(LoneBarline {
                    line: number + 1,
                    text: line.to_string(),
                });
            }
            let mut bars = split_bars(line);
            if let Some(last) = bars.last_mut() {
                last.push('\n');
            }
            pieces.extend(bars);
        }
    }
    Ok(())
}

/// The barline that starts at byte `i` of `s`, if any.
fn barline_at(s: &str, i: usize) -> Option<&'static str> {
    BARLINES.iter().copied().find(|d| s[i..].starts_with(d))
}

/// `M3Patchilizer.split_bars`: `re.split` on barlines keeping them, empty strings dropped, a
/// leading barline glued to the next piece, then pieces paired as bar + closing barline; an
/// unpaired trailing piece (text after the last barline) is dropped.
fn split_bars(line: &str) -> Vec<String> {
    // A lone barline: the reference fails here (IndexError); it yields no bar.
    split_bars_checked(line).unwrap_or_default()
}

/// [`split_bars`], with `None` where the reference raises `IndexError` (a text that is one lone
/// barline). CLaMP 1's bar patchilizer splits whole tune bodies the same way.
pub(crate) fn split_bars_checked(line: &str) -> Option<Vec<String>> {
    let mut parts: Vec<(&str, bool)> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < line.len() {
        if let Some(d) = barline_at(line, i) {
            if start < i {
                parts.push((&line[start..i], false));
            }
            parts.push((d, true));
            i += d.len();
            start = i;
        } else {
            // Barlines are ASCII, so stepping a whole character keeps `i` on a boundary.
            i += line[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    if start < line.len() {
        parts.push((&line[start..], false));
    }
    let mut parts: Vec<String> = {
        let mut iter = parts.into_iter().peekable();
        let mut out = Vec::new();
        if let Some((first, true)) = iter.peek().copied() {
            iter.next();
            match iter.next() {
                Some((second, _)) => out.push(format!("{first}{second}")),
                None => return None,
            }
        }
        out.extend(iter.map(|(s, _)| s.to_string()));
        out
    };
    let pairs = parts.len() / 2;
    parts.truncate(pairs * 2);
    Some(
        parts
            .chunks(2)
            .map(|pair| format!("{}{}", pair[0], pair[1]))
            .collect(),
    )
}

/// `bar2patch`: `[BOS] + bytes + [EOS]`, truncated to `PATCH_SIZE`, zero-padded.
fn bar_to_patch(bar: &str) -> Patch {
    let mut patch = [PAD; PATCH_SIZE];
    patch[0] = BOS;
    let mut n = 1;
    for &byte in bar.as_bytes().iter().take(PATCH_SIZE - 1) {
        patch[n] = byte;
        n += 1;
    }
    if n < PATCH_SIZE {
        patch[n] = EOS;
    }
    patch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(p: &Patch) -> String {
        p.iter().filter(|&&b| b > 3).map(|&b| b as char).collect()
    }

    #[test]
    fn abc_bars_and_fields() {
        let patches = patchilize("X:1\nL:1/8\nK:G\n|:ab|c2::d|]e\n");
        let texts: Vec<String> = patches[1..patches.len() - 1].iter().map(text_of).collect();
        assert_eq!(texts, ["X:1\n", "K:G\n", "|:ab|", "c2::", "d|]\n"]);
        assert_eq!(patches[0], [BOS; PATCH_SIZE]);
        assert_eq!(patches.last().unwrap()[0], BOS);
        assert!(patches.last().unwrap()[1..].iter().all(|&b| b == EOS));
    }

    #[test]
    fn mtf_lines_merge_by_type() {
        let text =
            "ticks_per_beat 480\nnote_on 0 0 60 80\nnote_on 0 0 64 80\ncontrol_change 0 0 7 100";
        let patches = patchilize(text);
        let texts: Vec<String> = patches[1..patches.len() - 1].iter().map(text_of).collect();
        assert_eq!(
            texts,
            [
                "ticks_per_beat 480\n",
                "note_on 0 0 60 80\t0 0 64 80\n",
                "control_change 0 0 7 100"
            ]
        );
    }

    #[test]
    fn long_bar_is_truncated_without_eos() {
        let bar = format!("{}|\n", "a".repeat(100));
        let p = &patchilize(&bar)[1];
        assert_eq!(p[0], BOS);
        assert!(p[1..].iter().all(|&b| b == b'a'));
    }

    #[test]
    fn clamp2_keeps_unit_length_and_fails_on_a_lone_barline() {
        let text = "X:1\nL:1/8\nK:G\nab|\n|";
        let clamp2 = patchilize_with(text, PatchRules::CLAMP2);
        let err = clamp2.unwrap_err();
        assert_eq!(err.line, 5);
        let kept = patchilize_with("X:1\nL:1/8\nK:G\nab|\n", PatchRules::CLAMP2).unwrap();
        let texts: Vec<String> = kept[1..kept.len() - 1].iter().map(text_of).collect();
        assert_eq!(texts, ["X:1\n", "L:1/8\n", "K:G\n", "ab|\n"]);
        assert_eq!(patchilize(text).len(), 5);
        assert!(patchilize_with(text, PatchRules::M3).is_err());
        // With its newline the lone barline is glued to it and dropped, as upstream.
        assert!(patchilize_with("X:1\n|\n", PatchRules::CLAMP2).is_ok());
    }

    #[test]
    fn lone_barline_and_empty_text_do_not_panic() {
        assert_eq!(patchilize("|").len(), 2);
        assert_eq!(patchilize("").len(), 2);
    }
}
