//! Text → XLM-R token ids, as the reference's `extract_clamp3.py` prepares a `.txt` file.

use crate::tokenizer::TextTokenizer;
use crate::Result;
use std::path::Path;

/// XLM-R's separator, placed between the lines of a text file.
const SEPARATOR: &str = "</s>";

/// Reads `tokenizer.json` (Hugging Face format) with truncation and padding turned off: segmenting
/// is ours to do.
pub fn load_tokenizer(path: &Path) -> Result<TextTokenizer> {
    TextTokenizer::from_file(path)
}

/// Normalises newlines as Python's universal-newline text mode does (`\r\n` and `\r` → `\n`).
pub fn universal_newlines(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n").into()
    } else {
        text.into()
    }
}

/// The string the reference tokenizes for a text file: lines de-duplicated keeping the first
/// occurrence (upstream's `set()` order is random; the goldens fix it to file order), empty lines
/// dropped, the rest joined with `</s>`.
pub fn joined_lines(text: &str) -> String {
    let text = universal_newlines(text);
    let mut seen = std::collections::HashSet::new();
    let lines: Vec<&str> = text
        .split('\n')
        .filter(|line| !line.is_empty() && seen.insert(*line))
        .collect();
    lines.join(SEPARATOR)
}

/// Token ids of a text file's contents, `<s> … </s>` included.
pub fn token_ids(tokenizer: &TextTokenizer, text: &str) -> Result<Vec<u32>> {
    tokenizer.encode_ids(&joined_lines(text), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupes_in_file_order_and_drops_empty_lines() {
        assert_eq!(joined_lines("b\na\r\nb\n\n a\r"), "b</s>a</s> a");
        assert_eq!(joined_lines(""), "");
        assert_eq!(joined_lines(" \n \n\t"), " </s>\t");
    }
}
