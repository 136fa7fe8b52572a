//! Captioning speed with full-size BLIP (random weights of the official
//! `Salesforce/blip-image-captioning-base` shapes: ViT-B/16 at 384 × 384, a 12-layer BERT decoder
//! with cross-attention, vocabulary 30524), f32.
//!
//! Prints:
//! - the caption time of one 384 × 384 image, cold (the first caption after loading) and warm
//!   (the median of the next ones), split into preprocessing, vision and generation;
//! - the images per second of a folder (the golden photos, captioned one after another as the
//!   engine's workers run them).
//!
//! Random weights rarely predict `[SEP]`, so captions run to `max_length` (20 ids): the slowest
//! case for the decoder. The tokenizer is the tiny test one (decoding is not what is timed).
//!
//! `cargo bench -p clamp3-features --bench caption`. Timings are printed, never asserted.
#![allow(clippy::print_stdout, reason = "a benchmark reports by printing")]

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use clamp3_features::Captioner;
use clamp3_images::{decode_rgb, ProcessorConfig};
use clamp3_models::blip::{Blip, Config};
use std::path::Path;
use std::time::Instant;

fn random_blip(device: &Device) -> candle_core::Result<Blip> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let blip = Blip::load(vb, &Config::default())?;
    for var in varmap.all_vars() {
        let shape = var.shape().clone();
        let is_norm_gain = shape.rank() == 1 && var.as_tensor().to_vec1::<f32>()?[0] == 1.0;
        let value = if is_norm_gain {
            (Tensor::randn(0f32, 0.05, shape, device)? + 1.0)?
        } else {
            Tensor::randn(0f32, 0.02, shape, device)?
        };
        var.set(&value)?;
    }
    Ok(blip)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::cuda_if_available(0)?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let built = Instant::now();
    let blip = random_blip(&device)?;
    println!(
        "BLIP base shapes, random weights, {device:?}, f32, {} threads; built in {:.1} s",
        candle_core::utils::get_num_threads(),
        built.elapsed().as_secs_f64()
    );
    let processor = ProcessorConfig::default();
    let images = root.join("images/tests/fixtures/blip/images");
    // 384 × 384 already: the processor copies it, no resampling.
    let square = std::fs::read(images.join("s14_exact_384.png"))?;

    let time_one = |bytes: &[u8]| -> Result<(f64, f64, f64, usize), Box<dyn std::error::Error>> {
        let start = Instant::now();
        let pixels = processor.pixel_values(&decode_rgb(bytes)?)?;
        let pixel_values = Tensor::from_vec(pixels.data, (1, 3, 384, 384), &device)?;
        let prepared = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let embeds = blip.vision(&pixel_values)?;
        embeds.to_device(&Device::Cpu)?;
        let vision = start.elapsed().as_secs_f64();
        // A caption is preprocessing and generate() (which runs the vision model itself).
        let start = Instant::now();
        let ids = blip.generate(&pixel_values)?;
        let generate = start.elapsed().as_secs_f64();
        Ok((prepared, vision, generate, ids.len()))
    };
    let (p, v, g, n) = time_one(&square)?;
    println!(
        "cold caption (384x384): {:.2} s = preprocess {:.3} s + generate {:.2} s \
         (vision alone {:.2} s; {} decoder steps)",
        p + g,
        p,
        g,
        v,
        n - 1
    );
    let mut warm: Vec<f64> = (0..3)
        .map(|_| time_one(&square).map(|(p, _, g, _)| p + g))
        .collect::<Result<_, _>>()?;
    warm.sort_by(f64::total_cmp);
    println!("warm caption (384x384): {:.2} s (median of 3)", warm[1]);

    let tokenizer = tokenizers::Tokenizer::from_file(
        root.join("models/tests/fixtures/blip/model/tokenizer.json"),
    )
    .map_err(|e| e.to_string())?;
    let captioner = Captioner::new(blip, processor.clone(), tokenizer);
    let folder: Vec<Vec<u8>> = [
        "p01_astronaut.png",
        "p05_rocket.jpg",
        "p06_grace_hopper.jpg",
        "p08_hubble.jpg",
    ]
    .iter()
    .map(|name| std::fs::read(images.join(name)))
    .collect::<Result<_, _>>()?;
    let start = Instant::now();
    for image in &folder {
        captioner.caption(image)?;
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "folder of {} photos (320x320 to 640x427, resized to 384x384): {:.2} images/s ({:.1} s)",
        folder.len(),
        folder.len() as f64 / seconds,
        seconds
    );
    Ok(())
}
