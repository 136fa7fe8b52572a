//! Pillow's bicubic resize (`Image.resize(size, Image.BICUBIC)`), bit for bit.
//!
//! A port of Pillow 9.5's `libImaging/Resample.c` (`precompute_coeffs`, `normalize_coeffs_8bpc`,
//! `ImagingResampleHorizontal_8bpc`, `ImagingResampleVertical_8bpc`,
//! <https://github.com/python-pillow/Pillow/blob/9.5.0/src/libImaging/Resample.c>): a separable
//! convolution with Keys' cubic (a = -0.5), its support stretched by the scale when shrinking
//! (antialiasing), weights in 22-bit fixed point, the horizontal pass first and each pass
//! rounded and clipped to 8 bits. A pass whose dimension keeps its size is skipped, and an image
//! already at the target size is returned unchanged, as Pillow does.
//!
//! The intermediate rounding matters: bicubic overshoots at sharp edges, and Pillow clips that
//! overshoot before the vertical pass, so a float port that clips once at the end is off by up
//! to a fifth of the value range on 1-bit images.

use crate::decode::RgbImage;

/// Fractional bits of Pillow's fixed-point weights (`PRECISION_BITS = 32 - 8 - 2`).
const PRECISION_BITS: u32 = 22;
/// The bicubic kernel's support at scale 1.
const BICUBIC_SUPPORT: f64 = 2.0;

/// Keys' cubic convolution kernel with a = -0.5 (Pillow's `bicubic_filter`).
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// The taps of one output sample: the first input index and the fixed-point weights.
struct Taps {
    first: usize,
    weights: Vec<i32>,
}

/// Pillow's `precompute_coeffs` then `normalize_coeffs_8bpc` for `input → output` samples.
fn taps(input: usize, output: usize) -> Vec<Taps> {
    let scale = input as f64 / output as f64;
    let filter_scale = scale.max(1.0);
    let support = BICUBIC_SUPPORT * filter_scale;
    (0..output)
        .map(|i| {
            let center = (i as f64 + 0.5) * scale;
            // C's (int) casts truncate toward zero.
            let first = ((center - support + 0.5).trunc().max(0.0)) as usize;
            let end = ((center + support + 0.5).trunc() as usize).min(input);
            let raw: Vec<f64> = (first..end)
                .map(|j| bicubic((j as f64 - center + 0.5) / filter_scale))
                .collect();
            let total: f64 = raw.iter().sum();
            let one = f64::from(1u32 << PRECISION_BITS);
            let weights = raw
                .iter()
                .map(|&w| {
                    let w = if total != 0.0 { w / total } else { w };
                    if w < 0.0 {
                        (-0.5 + w * one) as i32
                    } else {
                        (0.5 + w * one) as i32
                    }
                })
                .collect();
            Taps { first, weights }
        })
        .collect()
}

/// Rounds a fixed-point sum to 8 bits as Pillow's `clip8` does (the sum starts at one half).
fn clip8(sum: i64) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

const HALF: i64 = 1 << (PRECISION_BITS - 1);

fn resample_horizontal(image: &RgbImage, width: usize) -> RgbImage {
    let taps = taps(image.width, width);
    let mut data = Vec::with_capacity(width * image.height * 3);
    for row in image.data.chunks_exact(image.width * 3) {
        for tap in &taps {
            for c in 0..3 {
                let sum = tap.weights.iter().enumerate().fold(HALF, |acc, (k, &w)| {
                    acc + i64::from(row[(tap.first + k) * 3 + c]) * i64::from(w)
                });
                data.push(clip8(sum));
            }
        }
    }
    RgbImage {
        width,
        height: image.height,
        data,
    }
}

fn resample_vertical(image: &RgbImage, height: usize) -> RgbImage {
    let taps = taps(image.height, height);
    let stride = image.width * 3;
    let mut data = Vec::with_capacity(stride * height);
    for tap in &taps {
        for x in 0..stride {
            let sum = tap.weights.iter().enumerate().fold(HALF, |acc, (k, &w)| {
                acc + i64::from(image.data[(tap.first + k) * stride + x]) * i64::from(w)
            });
            data.push(clip8(sum));
        }
    }
    RgbImage {
        width: image.width,
        height,
        data,
    }
}

/// Resizes to `width × height` with Pillow's `BICUBIC` (aspect ratio not kept, nothing cropped).
pub fn resize_bicubic(image: &RgbImage, width: usize, height: usize) -> RgbImage {
    let horizontal = if image.width != width {
        resample_horizontal(image, width)
    } else {
        image.clone()
    };
    if horizontal.height != height {
        resample_vertical(&horizontal, height)
    } else {
        horizontal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_is_keys_cubic() {
        assert_eq!(bicubic(0.0), 1.0);
        assert_eq!(bicubic(1.0), 0.0);
        assert_eq!(bicubic(2.0), 0.0);
        assert_eq!(bicubic(0.5), 0.5625);
        assert_eq!(bicubic(-1.5), -0.0625);
    }

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for (input, output) in [(7, 384), (1600, 384), (384, 383), (3, 384)] {
            for tap in taps(input, output) {
                let sum: i32 = tap.weights.iter().sum();
                assert!((sum - (1 << PRECISION_BITS)).abs() <= tap.weights.len() as i32);
                assert!(tap.first + tap.weights.len() <= input);
            }
        }
    }

    #[test]
    fn same_size_is_a_copy_and_flat_stays_flat() {
        let image = RgbImage::new(2, 2, (0..12).collect()).unwrap();
        assert_eq!(resize_bicubic(&image, 2, 2), image);
        let flat = RgbImage::new(5, 3, vec![77; 45]).unwrap();
        let big = resize_bicubic(&flat, 384, 384);
        assert!(big.data.iter().all(|&v| v == 77));
        assert_eq!((big.width, big.height), (384, 384));
    }
}
