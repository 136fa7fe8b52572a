//! BLIP's image processor (transformers 4.40 `BlipImageProcessor`): RGB → the model's
//! `pixel_values`.
//!
//! `preprocess` (<https://github.com/huggingface/transformers/blob/v4.40.0/src/transformers/models/blip/image_processing_blip.py>)
//! turns the image into a `uint8` array, resizes it through PIL (`resize`, BICUBIC, no crop),
//! rescales it in float64 (`u8 * (1/255)`) and casts to float32, then normalises in float32
//! (`(x - mean) / std`) and stores it channels-first.
//!
//! One quirk of the reference is kept: `infer_channel_dimension_format` checks the first axis of
//! the `H × W × 3` array for 1 or 3 channels before the last one, so an image 3 pixels tall is
//! taken for a channels-first array (3 channels of `W × 3`) and captioned scrambled, and an image
//! 1 pixel tall fails. Captions then equal the reference's for every image it accepts.

use crate::decode::RgbImage;
use crate::resize::resize_bicubic;
use crate::{Error, Result};
use serde::Deserialize;
use std::path::Path;

/// PIL's resampling filter numbers (`PIL.Image.Resampling`); only BICUBIC is implemented.
const PIL_BICUBIC: u32 = 3;

/// `OPENAI_CLIP_MEAN`, BLIP's default `image_mean`.
#[allow(
    clippy::excessive_precision,
    reason = "spelled as transformers writes them; they round to the same f32"
)]
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// `OPENAI_CLIP_STD`, BLIP's default `image_std`.
#[allow(
    clippy::excessive_precision,
    reason = "spelled as transformers writes them; they round to the same f32"
)]
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// A `preprocessor_config.json`, defaults as `BlipImageProcessor`'s. `size` is an integer
/// (square, as the official 4.26-era file writes it) or `{"height": h, "width": w}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessorConfig {
    /// Output height after resizing.
    pub height: usize,
    /// Output width after resizing.
    pub width: usize,
    /// Whether to resize at all.
    pub do_resize: bool,
    /// Whether to multiply by `rescale_factor`.
    pub do_rescale: bool,
    /// The rescale factor (1/255).
    pub rescale_factor: f64,
    /// Whether to normalise with `image_mean` / `image_std`.
    pub do_normalize: bool,
    /// Per-channel mean.
    pub image_mean: [f32; 3],
    /// Per-channel standard deviation.
    pub image_std: [f32; 3],
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig {
            height: 384,
            width: 384,
            do_resize: true,
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: CLIP_MEAN,
            image_std: CLIP_STD,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SizeField {
    Square(usize),
    Rect { height: usize, width: usize },
}

#[derive(Deserialize)]
struct RawConfig {
    size: Option<SizeField>,
    do_resize: Option<bool>,
    resample: Option<u32>,
    do_rescale: Option<bool>,
    rescale_factor: Option<f64>,
    do_normalize: Option<bool>,
    image_mean: Option<MeanField>,
    image_std: Option<MeanField>,
    do_convert_rgb: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum MeanField {
    One(f32),
    Three([f32; 3]),
}

impl MeanField {
    fn channels(self) -> [f32; 3] {
        match self {
            MeanField::One(v) => [v; 3],
            MeanField::Three(v) => v,
        }
    }
}

impl ProcessorConfig {
    /// Reads a `preprocessor_config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io(e).with_path(path))?;
        Self::from_json(&text).map_err(|message| Error::Config {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses the JSON text of a `preprocessor_config.json`.
    pub fn from_json(text: &str) -> std::result::Result<Self, String> {
        let raw: RawConfig = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let defaults = ProcessorConfig::default();
        let (height, width) = match raw.size {
            None => (defaults.height, defaults.width),
            Some(SizeField::Square(s)) => (s, s),
            Some(SizeField::Rect { height, width }) => (height, width),
        };
        if height == 0 || width == 0 {
            return Err(format!("size {height}x{width} is empty"));
        }
        if let Some(resample) = raw.resample.filter(|&r| r != PIL_BICUBIC) {
            return Err(format!(
                "resample {resample} is not supported (only PIL BICUBIC, {PIL_BICUBIC})"
            ));
        }
        if raw.do_convert_rgb == Some(false) {
            return Err("do_convert_rgb = false is not supported (images are read as RGB)".into());
        }
        Ok(ProcessorConfig {
            height,
            width,
            do_resize: raw.do_resize.unwrap_or(defaults.do_resize),
            do_rescale: raw.do_rescale.unwrap_or(defaults.do_rescale),
            rescale_factor: raw.rescale_factor.unwrap_or(defaults.rescale_factor),
            do_normalize: raw.do_normalize.unwrap_or(defaults.do_normalize),
            image_mean: raw
                .image_mean
                .map_or(defaults.image_mean, MeanField::channels),
            image_std: raw
                .image_std
                .map_or(defaults.image_std, MeanField::channels),
        })
    }

    /// The image the processor resizes: the decoded one, or its channels-first misreading
    /// (see the module notes). Fails where the reference fails.
    pub fn as_reference_reads(&self, image: &RgbImage) -> Result<RgbImage> {
        match image.height {
            1 => Err(Error::Unsupported(format!(
                "a {}x1 image is 1 pixel tall: the reference's BLIP processor takes it for a \
                 one-channel channels-first array and fails (\"mean must have 1 elements if it \
                 is an iterable, got 3\")",
                image.width
            ))),
            3 => {
                // The (3, W, 3) array read as (C, H', W') = (3, W, 3), then moved to channels
                // last for PIL: pixel (y = i, x = j) channel c is original (row c, column i)
                // channel j.
                let (w, stride) = (image.width, image.width * 3);
                let mut data = Vec::with_capacity(image.data.len());
                for i in 0..w {
                    for j in 0..3 {
                        for c in 0..3 {
                            data.push(image.data[c * stride + i * 3 + j]);
                        }
                    }
                }
                RgbImage::new(3, w, data)
            }
            _ => Ok(image.clone()),
        }
    }

    /// The 8-bit image after the reference's reading and resize, before rescaling.
    pub fn resized(&self, image: &RgbImage) -> Result<RgbImage> {
        let image = self.as_reference_reads(image)?;
        Ok(if self.do_resize {
            resize_bicubic(&image, self.width, self.height)
        } else {
            image
        })
    }

    /// `pixel_values` of one image: `[3, H, W]` float32, channels-first.
    pub fn pixel_values(&self, image: &RgbImage) -> Result<PixelValues> {
        let resized = self.resized(image)?;
        Ok(self.normalize(&resized))
    }

    /// Rescales and normalises an 8-bit image exactly as the reference: the rescale in float64
    /// cast to float32, then `(x - mean) / std` in float32.
    pub fn normalize(&self, image: &RgbImage) -> PixelValues {
        let plane = image.width * image.height;
        let mut data = vec![0f32; 3 * plane];
        for (p, pixel) in image.data.chunks_exact(3).enumerate() {
            for c in 0..3 {
                let mut x = if self.do_rescale {
                    (f64::from(pixel[c]) * self.rescale_factor) as f32
                } else {
                    f32::from(pixel[c])
                };
                if self.do_normalize {
                    x = (x - self.image_mean[c]) / self.image_std[c];
                }
                data[c * plane + p] = x;
            }
        }
        PixelValues {
            height: image.height,
            width: image.width,
            data,
        }
    }
}

/// A processed image: `[3, height, width]` float32, channels-first.
#[derive(Debug, Clone, PartialEq)]
pub struct PixelValues {
    /// Height.
    pub height: usize,
    /// Width.
    pub width: usize,
    /// `3 * height * width` values.
    pub data: Vec<f32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_size_forms_are_read() {
        let short = ProcessorConfig::from_json(
            r#"{"size": 384, "image_mean": [0.48145466, 0.4578275, 0.40821073],
                "image_std": [0.26862954, 0.26130258, 0.27577711], "do_resize": true,
                "do_normalize": true, "processor_class": "BlipProcessor"}"#,
        )
        .unwrap();
        assert_eq!(short, ProcessorConfig::default());
        let long =
            ProcessorConfig::from_json(r#"{"size": {"height": 200, "width": 100}, "resample": 3}"#)
                .unwrap();
        assert_eq!((long.height, long.width), (200, 100));
        assert!(ProcessorConfig::from_json(r#"{"resample": 2}"#).is_err());
        assert!(ProcessorConfig::from_json(r#"{"size": {"shortest_edge": 3}}"#).is_err());
    }

    #[test]
    fn three_pixel_tall_images_are_read_channels_first() {
        // 2 wide, 3 tall: value = 100 * row + 10 * column + channel.
        let data: Vec<u8> = (0..3)
            .flat_map(|r| (0..2).flat_map(move |x| (0..3).map(move |c| 100 * r + 10 * x + c)))
            .collect();
        let image = RgbImage::new(2, 3, data).unwrap();
        let read = ProcessorConfig::default()
            .as_reference_reads(&image)
            .unwrap();
        assert_eq!((read.width, read.height), (3, 2));
        // Pixel (y = 1, x = 2), channel 0 is original (row 0, column 1), channel 2.
        assert_eq!(read.data[(3 + 2) * 3], 12);
        let tall1 = RgbImage::new(4, 1, vec![0; 12]).unwrap();
        assert!(ProcessorConfig::default()
            .as_reference_reads(&tall1)
            .is_err());
    }
}
