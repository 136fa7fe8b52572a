//! Fixture helpers shared by the training tests.
#![allow(dead_code)]

use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The golden set: `CLAMP3_TRAIN_GOLDEN` when set, else the copy in the repository.
pub fn golden_dir() -> PathBuf {
    match std::env::var_os("CLAMP3_TRAIN_GOLDEN") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden"),
    }
}

/// Reads `rel` (or `rel.gz`) under the golden folder as JSON.
pub fn json(rel: &str) -> serde_json::Value {
    let dir = golden_dir();
    let plain = dir.join(rel);
    let text = if plain.exists() {
        std::fs::read_to_string(&plain).expect("read json")
    } else {
        let gz = dir.join(format!("{rel}.gz"));
        let mut s = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&gz).expect("open json.gz"))
            .read_to_string(&mut s)
            .expect("gunzip");
        s
    };
    serde_json::from_str(&text).expect("parse json")
}

/// A `.npy` array as a tensor (int64 → u32, float32 stays), for the golden batches.
pub fn npy(rel: &str) -> Tensor {
    let bytes = std::fs::read(golden_dir().join(rel)).expect("read npy");
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).expect("header");
    let data = &bytes[10 + header_len..];
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("shape");
    let shape: Vec<usize> = shape_text
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().expect("dim"))
        .collect();
    assert!(header.contains("'fortran_order': False"));
    if header.contains("'<i8'") {
        let v: Vec<u32> = data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as u32)
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).expect("tensor")
    } else if header.contains("'<f4'") {
        let v: Vec<f32> = data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).expect("tensor")
    } else {
        panic!("unsupported npy header {header}")
    }
}

/// All tensors of a golden safetensors file.
pub fn safetensors(rel: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(golden_dir().join(rel), &Device::Cpu).expect("safetensors")
}

/// The `model` state dict of a golden `.pth`.
pub fn pth_model(rel: &str) -> HashMap<String, Tensor> {
    candle_core::pickle::read_all_with_key(golden_dir().join(rel), Some("model"))
        .expect("pth")
        .into_iter()
        .collect()
}

/// Flattened f32 values.
pub fn values(t: &Tensor) -> Vec<f32> {
    t.to_dtype(DType::F32)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .expect("values")
}

/// Max |a - b| over two same-shaped tensors.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    values(a)
        .iter()
        .zip(values(b))
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Relative difference of two scalars.
pub fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-12)
}
