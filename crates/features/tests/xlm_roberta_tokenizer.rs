//! The real XLM-R vocabulary (`FacebookAI/xlm-roberta-base` `tokenizer.json`, gzipped in
//! `fixtures/xlmr/`) gives the ids the reference pipeline produced for each file text in
//! `shared/golden/tokenizer/cases.jsonl` (lines de-duplicated keeping the first occurrence,
//! empty lines dropped, joined with `</s>`, `<s> … </s>` added).

#![allow(clippy::unwrap_used, reason = "test helpers panic on broken fixtures")]

use clamp3_features::text;
use std::io::Read;
use std::path::Path;

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/xlmr")
}

/// The real XLM-R `tokenizer.json`, unpacked into a temporary folder.
fn xlmr_file() -> (tempfile::TempDir, std::path::PathBuf) {
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(fixtures().join("tokenizer.json.gz")).unwrap(),
    )
    .read_to_end(&mut json)
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, json).unwrap();
    (dir, path)
}

#[test]
fn every_case_matches_reference_ids() {
    let (_dir, path) = xlmr_file();
    let tokenizer = text::load_tokenizer(&path).unwrap();
    assert!(
        format!("{tokenizer:?}").contains("Unigram"),
        "the fast path"
    );
    let fixtures = fixtures();

    let cases = std::fs::read_to_string(fixtures.join("cases.jsonl")).unwrap();
    let mut checked = 0;
    for line in cases.lines() {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        let want: Vec<u32> = case["input_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let ours = text::token_ids(&tokenizer, case["file_text"].as_str().unwrap()).unwrap();
        assert_eq!(ours, want, "case {}", case["case"]);
        checked += 1;
    }
    assert_eq!(checked, 20);
}

/// Pieces of text from many scripts, with what the normaliser rewrites (full-width forms,
/// ligatures, combining marks, runs of spaces), characters outside the vocabulary (fused into
/// one `<unk>`), the special tokens written out, and ABC notation.
const FRAGMENTS: &[&str] = &[
    "a",
    "the ",
    "piano ",
    "Fuge",
    "über ",
    "café ",
    "naïve ",
    "œuvre",
    "ﬁne",
    "ß",
    "İ",
    "ǅ",
    "音楽",
    "ピアノ曲",
    "ｶﾀｶﾅ",
    "ＡＢＣ１２３",
    "조용한 피아노",
    "музыка ",
    "μουσική ",
    "موسيقى",
    "מוזיקה",
    "संगीत",
    "ดนตรี",
    "ሙዚቃ",
    "ꦒꦩꦼꦭꦤ꧀",
    "𝄞𝄢",
    "🎹🎻",
    "👩‍🎤",
    "\u{e000}",
    "\u{10fffd}",
    "e\u{301}",
    "\u{301}",
    "  ",
    "\t",
    "\n",
    "\u{a0}",
    "\u{3000}",
    "\u{200b}",
    "\u{feff}",
    "</s>",
    "<s>",
    "<mask>",
    "<unk>",
    "<pad>",
    "X:1\nT:Tune\nK:G\n",
    "|:GABc d2 e2:|",
    "[V:1]c'2",
    "^f_B=c",
    "1/2",
    "3.14",
    "-",
    "...",
    "!!",
    "«»",
    "“quoted”",
    "(",
    ")",
    "ℌ",
    "™",
    "½",
    "Ⅻ",
];

#[test]
fn ids_are_the_tokenizers_crates_on_many_scripts() {
    let (_dir, path) = xlmr_file();
    let ours = text::load_tokenizer(&path).unwrap();
    assert!(format!("{ours:?}").contains("Unigram"), "the fast path");
    let crate_tokenizer = tokenizers::Tokenizer::from_file(&path).unwrap();
    let mut state = 0x853c_49e6_748f_ea9bu64;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let mut unknowns = 0;
    for case in 0..3000 {
        let parts = 1 + next(12);
        let text: String = (0..parts)
            .map(|_| FRAGMENTS[next(FRAGMENTS.len())])
            .collect();
        for special in [true, false] {
            let want = crate_tokenizer.encode(text.as_str(), special).unwrap();
            let got = ours.encode_ids(&text, special).unwrap();
            assert_eq!(got, want.get_ids(), "case {case}: {text:?}");
        }
        unknowns += usize::from(ours.encode_ids(&text, false).unwrap().contains(&3));
    }
    assert!(
        unknowns > 100,
        "unknown characters were met {unknowns} times"
    );
    for token in ["<s>", "</s>", "<unk>", "<mask>", "▁piano", "音楽"] {
        assert_eq!(
            ours.token_to_id(token),
            crate_tokenizer.token_to_id(token),
            "{token}"
        );
    }
}

#[test]
fn other_models_load_through_the_crate() {
    let bpe = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../engine/tests/fixtures/clamp1/distilroberta-tiny/tokenizer.json");
    let ours = text::load_tokenizer(&bpe).unwrap();
    assert!(format!("{ours:?}").contains("other"), "{ours:?}");
    let crate_tokenizer = tokenizers::Tokenizer::from_file(&bpe).unwrap();
    let text = "A calm hymn in F major, for organ.";
    let want = crate_tokenizer.encode(text, true).unwrap();
    assert_eq!(ours.encode_ids(text, true).unwrap(), want.get_ids());

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("tokenizer.json");
    std::fs::write(&broken, "{\"model\": 3}").unwrap();
    let error = text::load_tokenizer(&broken).unwrap_err().to_string();
    assert!(error.contains(&broken.display().to_string()), "{error}");
}
