//! The real XLM-R vocabulary (`FacebookAI/xlm-roberta-base` `tokenizer.json`, gzipped in
//! `fixtures/xlmr/`) gives the ids the reference pipeline produced for each file text in
//! `shared/golden/tokenizer/cases.jsonl` (lines de-duplicated keeping the first occurrence,
//! empty lines dropped, joined with `</s>`, `<s> … </s>` added).

#![allow(clippy::unwrap_used, reason = "test helpers panic on broken fixtures")]

use clamp3_features::text;
use std::io::Read;
use std::path::Path;

#[test]
fn every_case_matches_reference_ids() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/xlmr");
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(fixtures.join("tokenizer.json.gz")).unwrap())
        .read_to_end(&mut json)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, json).unwrap();
    let tokenizer = text::load_tokenizer(&path).unwrap();

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
