//! CLaMP 1's music text and bar patches: `abc_filter` of `clamp/clamp.py` and
//! `MusicPatchilizer.encode(music, music_length, add_eos_patch=True)` of `clamp/utils.py`
//! (<https://github.com/microsoft/muzic>).
//!
//! CLaMP 1 reads standard ABC (xml2abc's output, not interleaved): metadata lines are dropped,
//! every remaining header line is one patch, and the music lines between two header lines are
//! glued together and cut at barlines. A patch holds printable ASCII shifted down by 31 (1..=95),
//! 0 for padding and for any other character, and [`BAR_EOS`] after the bar; there is no BOS
//! patch, an all-EOS patch closes the piece, and everything beyond `max_length` patches is cut.

use crate::patch::{split_bars_checked, Patch, PATCH_SIZE};
use crate::translit::to_ascii;

/// End id inside a bar patch and the id of every slot of the closing patch (`eos_id`).
pub const BAR_EOS: u8 = 97;

/// Two-character line starts that `abc_filter` drops. The reference's list also holds a bare
/// `'G'` (a missing colon), which only matches a line that is exactly `G`: `G:` lines are kept.
const DROPPED_FIELDS: [&str; 17] = [
    "A:", "B:", "C:", "D:", "F:", "G", "H:", "N:", "O:", "R:", "r:", "S:", "T:", "W:", "w:", "X:",
    "Z:",
];

/// The reference could not cut a tune body (`IndexError` in `split_bars`: the body is one lone
/// barline).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the music {body:?} is a lone barline, which the reference patchilizer cannot split")]
pub struct LoneBarBody {
    /// The body.
    pub body: String,
}

/// `load_music` after xml2abc: the output transliterated to ASCII (`unidecode`), `\r` removed,
/// split into lines and filtered by [`abc_filter`].
pub fn music_text(xml2abc_output: &str) -> String {
    let text = to_ascii(&xml2abc_output.replace('\r', ""));
    let lines: Vec<&str> = text.split('\n').collect();
    abc_filter(&lines)
}

/// `abc_filter`: drops metadata fields (see [`DROPPED_FIELDS`]) and `%` lines other than
/// `%%score`; cuts a kept line at its last `%` and then one character more (meant for the space
/// before xml2abc's ` %12` bar numbers); ends every kept line with `\n`.
pub fn abc_filter(lines: &[&str]) -> String {
    let mut music = String::new();
    for &line in lines {
        let head: String = line.chars().take(2).collect();
        let score = line.starts_with("%%score");
        if DROPPED_FIELDS.contains(&head.as_str()) || (line.starts_with('%') && !score) {
            continue;
        }
        match line.rfind('%') {
            Some(cut) if !score => {
                let mut kept = line[..cut].to_string();
                kept.pop();
                music.push_str(&kept);
            }
            _ => music.push_str(line),
        }
        music.push('\n');
    }
    music
}

/// `MusicPatchilizer.encode(music, max_length, add_eos_patch=True)`.
pub fn bar_patches(music: &str, max_length: usize) -> Result<Vec<Patch>, LoneBarBody> {
    let music = to_ascii(music);
    let mut lines: Vec<&str> = music.split('\n').collect();
    // `list.remove('')`: only the first empty line goes.
    if let Some(first_empty) = lines.iter().position(|l| l.is_empty()) {
        lines.remove(first_empty);
    }
    let mut patches = Vec::new();
    let mut body = String::new();
    for line in lines {
        let b = line.as_bytes();
        let header = b.len() > 1
            && ((b[0].is_ascii_alphabetic() && b[1] == b':') || line.starts_with("%%score"));
        if header {
            flush(&mut body, &mut patches)?;
            patches.push(bar_to_patch(line));
        } else {
            body.push_str(line);
        }
    }
    flush(&mut body, &mut patches)?;
    patches.push([BAR_EOS; PATCH_SIZE]);
    patches.truncate(max_length);
    Ok(patches)
}

/// Cuts the music lines gathered since the last header line into bar patches.
fn flush(body: &mut String, patches: &mut Vec<Patch>) -> Result<(), LoneBarBody> {
    if body.is_empty() {
        return Ok(());
    }
    let bars = split_bars_checked(body).ok_or_else(|| LoneBarBody { body: body.clone() })?;
    patches.extend(bars.iter().map(|bar| bar_to_patch(bar)));
    body.clear();
    Ok(())
}

/// `bar2patch`: printable ASCII shifted down by 31, other characters 0, [`BAR_EOS`] after the
/// bar when it is shorter than a patch.
fn bar_to_patch(bar: &str) -> Patch {
    let mut patch = [0; PATCH_SIZE];
    let bytes = bar.as_bytes();
    for (slot, &c) in patch.iter_mut().zip(bytes) {
        if (32..127).contains(&c) {
            *slot = c - 31;
        }
    }
    if bytes.len() < PATCH_SIZE {
        patch[bytes.len()] = BAR_EOS;
    }
    patch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(p: &Patch) -> String {
        p.iter()
            .take_while(|&&b| b != BAR_EOS)
            .map(|&b| char::from(b + 31))
            .collect()
    }

    #[test]
    fn filter_keeps_music_and_cuts_bar_numbers() {
        let lines = [
            "X:1",
            "T:Title",
            "G",
            "G:tune",
            "L:1/4",
            "%%MIDI program 0",
            "%%score (1 2)",
            "",
            "V:1",
            " abc | d2 | %2",
            "\"50%\"c |",
        ];
        assert_eq!(
            abc_filter(&lines),
            "G:tune\nL:1/4\n%%score (1 2)\n\nV:1\n abc | d2 |\n\"5\n"
        );
    }

    #[test]
    fn bodies_are_glued_and_trailing_text_dropped() {
        let patches = bar_patches("L:1/4\n\nV:1\n ab | c\nd | e\n", 100).unwrap();
        let texts: Vec<String> = patches.iter().map(text_of).collect();
        assert_eq!(texts, ["L:1/4", "V:1", " ab |", " cd |", ""]);
        assert!(patches.last().unwrap().iter().all(|&b| b == BAR_EOS));
        assert_eq!(bar_patches("L:1/4\nV:1\na|b|c|\n", 3).unwrap().len(), 3);
        assert!(bar_patches("V:1\n|\n", 10).is_err());
    }

    #[test]
    fn tabs_become_padding_and_long_bars_lose_their_end() {
        let p = bar_to_patch("a\tb|");
        assert_eq!(&p[..5], &[b'a' - 31, 0, b'b' - 31, b'|' - 31, BAR_EOS]);
        let long = bar_to_patch(&"a".repeat(64));
        assert!(long.iter().all(|&b| b == b'a' - 31));
    }
}
