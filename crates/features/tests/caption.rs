//! Images → captions against the reference (golden/blip's tiny BLIP): the caption text of every
//! image case exactly, and the reference's decode of every id sequence of `decode_cases.jsonl`.

use candle_core::Device;
use clamp3_features::caption::decode_caption;
use clamp3_features::Captioner;
use std::path::{Path, PathBuf};

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The tiny BLIP folder (kept once, with the model's own tests).
fn blip_dir() -> PathBuf {
    crate_dir().join("../models/tests/fixtures/blip/model")
}

#[test]
fn every_image_gets_the_reference_caption() {
    let captioner = Captioner::from_folder(&blip_dir(), &Device::Cpu).expect("BLIP loads");
    let cases_path = crate_dir().join("../models/tests/fixtures/blip/cases.json");
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cases_path).expect("cases")).expect("json");
    let images = crate_dir().join("../images/tests/fixtures/blip/images");
    for case in cases.as_array().expect("cases") {
        let input = case["input"].as_str().expect("input");
        let bytes = std::fs::read(images.join(input)).expect("image");
        let caption = captioner.caption(&bytes).expect("captions");
        assert_eq!(
            caption.text,
            case["caption"].as_str().expect("caption"),
            "{input}"
        );
        let ids: Vec<u32> = case["caption_ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|v| v.as_u64().expect("id") as u32)
            .collect();
        assert_eq!(caption.ids, ids, "{input}");
    }
}

#[test]
fn decoding_equals_processor_decode() {
    let tokenizer =
        tokenizers::Tokenizer::from_file(blip_dir().join("tokenizer.json")).expect("tokenizer");
    let text = std::fs::read_to_string(crate_dir().join("tests/fixtures/blip/decode_cases.jsonl"))
        .expect("decode cases");
    let mut checked = 0;
    for line in text.lines() {
        let case: serde_json::Value = serde_json::from_str(line).expect("json line");
        let ids: Vec<u32> = case["ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|v| v.as_u64().expect("id") as u32)
            .collect();
        let decoded = decode_caption(&tokenizer, &ids).expect("decodes");
        assert_eq!(decoded, case["text"].as_str().expect("text"), "{ids:?}");
        checked += 1;
    }
    assert_eq!(checked, 25);
}

#[test]
fn a_broken_image_is_a_clear_error() {
    let captioner = Captioner::from_folder(&blip_dir(), &Device::Cpu).expect("BLIP loads");
    let err = captioner.caption(b"not an image").expect_err("refused");
    assert!(
        err.to_string().contains("cannot identify image file"),
        "{err}"
    );
}
