//! BLIP against the reference (golden/blip, the tiny random model): the image encoder's output
//! and every generation step's logits within 1e-4, caption ids exact, for every image case.
//!
//! Inputs are the images themselves through `clamp3-images`, whose `pixel_values` equal the
//! reference's bit for bit (its own golden tests), so these are the reference's inputs.

use candle_core::{Device, Tensor};
use clamp3_images::{open_rgb, ProcessorConfig};
use clamp3_models::blip::{Blip, Config};
use std::io::Read;
use std::path::{Path, PathBuf};

const TOLERANCE: f32 = 1e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/blip")
}

fn images() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/tests/fixtures/blip/images")
}

struct Case {
    id: String,
    input: String,
    caption_ids: Vec<u32>,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(fixtures().join("cases.json")).expect("cases.json");
    let value: serde_json::Value = serde_json::from_str(&text).expect("cases.json parses");
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|c| Case {
            id: c["id"].as_str().expect("id").to_string(),
            input: c["input"].as_str().expect("input").to_string(),
            caption_ids: c["caption_ids"]
                .as_array()
                .expect("ids")
                .iter()
                .map(|v| v.as_u64().expect("id") as u32)
                .collect(),
        })
        .collect()
}

fn npy(name: &str) -> clamp3_io::npy::NpyArray {
    let path = fixtures().join("cases").join(name);
    let mut bytes = Vec::new();
    if name.ends_with(".gz") {
        flate2::read::GzDecoder::new(std::fs::File::open(&path).expect("npy.gz"))
            .read_to_end(&mut bytes)
            .expect("gunzip");
    } else {
        bytes = std::fs::read(&path).expect("npy");
    }
    clamp3_io::npy::parse(&bytes).expect("npy parses")
}

fn pixel_values(input: &str) -> Tensor {
    let image = open_rgb(&images().join(input)).expect("image decodes");
    let pixels = ProcessorConfig::default()
        .pixel_values(&image)
        .expect("image processes");
    Tensor::from_vec(
        pixels.data,
        (1, 3, pixels.height, pixels.width),
        &Device::Cpu,
    )
    .expect("tensor")
}

fn blip(weights: &str) -> Blip {
    let dir = fixtures().join("model");
    let config = Config::from_file(&dir.join("config.json")).expect("config");
    Blip::from_file(&dir.join(weights), &config, &Device::Cpu).expect("BLIP loads")
}

fn max_abs_diff(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

#[test]
fn vision_output_matches() {
    let model = blip("model.safetensors");
    for id in [
        "p01_astronaut",
        "p05_rocket",
        "s05_jpeg_cmyk",
        "s12_tiny_7x5",
        "q01_height3_9x3",
    ] {
        let case = cases().into_iter().find(|c| c.id == id).expect("case");
        let want = npy(&format!("{id}.vision_last_hidden.npy.gz"));
        let got = model.vision(&pixel_values(&case.input)).expect("vision");
        assert_eq!(got.dims(), want.shape.as_slice(), "{id}");
        let got = got
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .expect("values");
        let diff = max_abs_diff(&got, &want.data);
        assert!(diff <= TOLERANCE, "{id}: vision max abs diff {diff}");
    }
}

#[test]
fn every_step_and_caption_matches() {
    let model = blip("model.safetensors");
    for case in cases() {
        let id = &case.id;
        let mut steps: Vec<Vec<f32>> = Vec::new();
        let ids = model
            .generate_with(&pixel_values(&case.input), |logits| {
                steps.push(logits.to_vec1::<f32>()?);
                Ok(())
            })
            .expect("generates");
        assert_eq!(ids, case.caption_ids, "{id}: caption ids");
        let first = npy(&format!("{id}.first_logits.npy"));
        let diff = max_abs_diff(&steps[0], &first.data);
        assert!(
            diff <= TOLERANCE,
            "{id}: first-step logits max abs diff {diff}"
        );
        let all = npy(&format!("{id}.step_logits.npy"));
        assert_eq!(all.shape, vec![steps.len(), steps[0].len()], "{id}");
        let diff = max_abs_diff(&steps.concat(), &all.data);
        assert!(diff <= TOLERANCE, "{id}: step logits max abs diff {diff}");
    }
}

#[test]
fn the_pytorch_checkpoint_gives_the_same_captions() {
    // pytorch_model.bin also stores the aliased `cls.predictions.decoder.bias`; it is ignored.
    let model = blip("pytorch_model.bin");
    for case in cases().into_iter().take(3) {
        let ids = model
            .generate(&pixel_values(&case.input))
            .expect("generates");
        assert_eq!(ids, case.caption_ids, "{}", case.id);
    }
}

#[test]
fn a_folder_without_weights_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        fixtures().join("model/config.json"),
        dir.path().join("config.json"),
    )
    .expect("copy");
    let err = Blip::from_folder(dir.path(), &Device::Cpu).expect_err("no weights");
    assert!(err.to_string().contains("model.safetensors"), "{err}");
}
