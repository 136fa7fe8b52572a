//! ASCII transliteration exactly as Python's `unidecode` (1.4) does it, which the reference
//! patchilizer applies to every score before cutting it into patches.

mod overrides {
    include!("translit_overrides.rs");
}

/// Transliterates `text` to ASCII: ASCII passes through, other characters become their
/// `unidecode` spelling (possibly several characters, possibly none).
pub fn to_ascii(text: &str) -> String {
    if text.is_ascii() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
            continue;
        }
        let cp = u32::from(c);
        match overrides::OVERRIDES.binary_search_by_key(&cp, |&(k, _)| k) {
            Ok(i) => out.push_str(overrides::OVERRIDES[i].1),
            Err(_) => {
                let t = unidecode::unidecode_char(c);
                // The crate marks characters it cannot spell as "[?]"; Python drops them.
                if !t.starts_with("[?]") {
                    out.push_str(t);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_ascii;

    #[test]
    fn matches_python_unidecode_on_golden_examples() {
        // From ../shared/golden/models/README.md (s04_abc_non_ascii).
        assert_eq!(to_ascii("Köln"), "Koln");
        assert_eq!(to_ascii("«"), "<<");
        assert_eq!(to_ascii("春の歌"), "Chun noGe ");
        assert_eq!(to_ascii("½"), " 1/2");
        assert_eq!(to_ascii("♪"), "");
    }

    #[test]
    fn overrides_are_sorted_and_ascii() {
        let table = super::overrides::OVERRIDES;
        assert!(table.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(table.iter().all(|(_, s)| s.is_ascii()));
    }
}
