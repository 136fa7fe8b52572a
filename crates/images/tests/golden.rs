//! The reference's BLIP preprocessing, case by case (golden/blip: every image case and every
//! `bad/` case).
//!
//! `expected.json` holds, per case, the manifest's `rgb_sha256` (the bytes of PIL's
//! `Image.open(p).convert("RGB")`) and the sha256 of the resized 8-bit image recovered from the
//! reference's `pixel_values` (`round((p * std + mean) * 255)`, exact on every case). Three cases
//! also keep the reference's `pixel_values` themselves, compared bit for bit.

use clamp3_images::{decode_rgb, open_rgb, Error, ProcessorConfig};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/blip")
}

fn expected() -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("expected.json parses")
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn decoding_equals_pil_convert_rgb() {
    let expected = expected();
    for case in expected["cases"].as_array().expect("cases") {
        let id = case["id"].as_str().expect("id");
        let image = open_rgb(&fixtures().join(case["input"].as_str().expect("input")))
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        let size = [image.width as u64, image.height as u64];
        assert_eq!(
            case["rgb_size"],
            serde_json::json!(size),
            "{id}: decoded size"
        );
        assert_eq!(
            sha256_hex(&image.data),
            case["rgb_sha256"].as_str().expect("sha"),
            "{id}: decoded RGB differs from PIL's"
        );
    }
}

#[test]
fn resized_pixels_equal_pillows_bicubic() {
    let expected = expected();
    let processor = ProcessorConfig::default();
    for case in expected["cases"].as_array().expect("cases") {
        let id = case["id"].as_str().expect("id");
        let image =
            open_rgb(&fixtures().join(case["input"].as_str().expect("input"))).expect("decodes");
        let resized = processor.resized(&image).expect("resizes");
        assert_eq!((resized.width, resized.height), (384, 384), "{id}");
        assert_eq!(
            sha256_hex(&resized.data),
            case["resized_sha256"].as_str().expect("sha"),
            "{id}: resized pixels differ from the reference's"
        );
    }
}

fn read_npy_f32(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("npy.gz"))
        .read_to_end(&mut bytes)
        .expect("gunzip");
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).expect("header");
    assert!(header.contains("'<f4'"), "{header}");
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("shape");
    let shape = shape_text
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().expect("dim"))
        .collect();
    let data = bytes[10 + header_len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    (shape, data)
}

#[test]
fn pixel_values_equal_the_reference_bit_for_bit() {
    let processor = ProcessorConfig::default();
    for (id, input) in [
        ("s10_png_16bit_gray", "s10_png_16bit_gray.png"),
        ("s14_exact_384", "s14_exact_384.png"),
        ("s16_png_1bit", "s16_png_1bit.png"),
    ] {
        let (shape, want) =
            read_npy_f32(&fixtures().join(format!("pixel_values/{id}.pixel_values.npy.gz")));
        assert_eq!(shape, vec![1, 3, 384, 384]);
        let image = open_rgb(&fixtures().join("images").join(input)).expect("decodes");
        let got = processor.pixel_values(&image).expect("processes");
        assert_eq!((got.height, got.width), (384, 384));
        let differing = got.data.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert_eq!(differing, 0, "{id}: {differing} values differ");
    }
}

#[test]
fn bad_files_give_clear_errors_naming_the_file() {
    let processor = ProcessorConfig::default();
    let expected = expected();
    for case in expected["bad"].as_array().expect("bad") {
        let id = case["id"].as_str().expect("id");
        let path = fixtures().join(case["input"].as_str().expect("input"));
        let error = open_rgb(&path)
            .and_then(|image| processor.pixel_values(&image))
            .expect_err(id);
        let message = error.to_string();
        assert!(
            message.contains(&path.display().to_string()) || id == "b05_height1_png",
            "{id}: {message}"
        );
        let reference = case["message"].as_str().expect("message");
        let kind_ok = match id {
            "b01_truncated_jpg" | "b04_truncated_png" => matches!(
                error,
                Error::WithPath { ref error, .. } if matches!(**error, Error::Truncated(_))
            ),
            "b02_text_named_png" | "b03_empty_png" => matches!(
                error,
                Error::WithPath { ref error, .. } if matches!(**error, Error::Unidentified(_))
            ),
            "b05_height1_png" => matches!(error, Error::Unsupported(_)),
            other => panic!("unknown bad case {other}"),
        };
        assert!(kind_ok, "{id}: {message} (reference: {reference})");
    }
}

#[test]
fn corrupt_jpeg_data_is_an_error_not_a_crash() {
    let mut bytes = std::fs::read(fixtures().join("images/s01_jpeg_baseline.jpg")).expect("jpeg");
    // Destroy the frame header's marker length and the first scan.
    for b in bytes.iter_mut().skip(20).take(400) {
        *b = 0xff;
    }
    assert!(decode_rgb(&bytes).is_err());
}
