//! Images as the reference's BLIP captioner sees them: the front of the image → caption → music
//! path (images → models → features → engine).
//!
//! - [`decode_rgb`] / [`open_rgb`]: PNG and JPEG bytes → 8-bit RGB exactly as PIL's
//!   `Image.open(…).convert("RGB")` ([`RgbImage`]).
//! - [`resize_bicubic`]: Pillow's BICUBIC resize, bit for bit.
//! - [`ProcessorConfig`]: `BlipImageProcessor` (`preprocessor_config.json`): resize, rescale,
//!   normalise → [`PixelValues`].
//!
//! ```no_run
//! use clamp3_images::{open_rgb, ProcessorConfig};
//! # fn main() -> Result<(), clamp3_images::Error> {
//! let processor = ProcessorConfig::from_file("blip/preprocessor_config.json".as_ref())?;
//! let pixels = processor.pixel_values(&open_rgb("photo.jpg".as_ref())?)?; // [3, 384, 384]
//! # let _ = pixels; Ok(()) }
//! ```
#![deny(missing_docs)]

mod decode;
mod error;
mod processor;
mod resize;

pub use decode::{decode_rgb, open_rgb, ImageFormat, RgbImage};
pub use error::{Error, Result};
pub use processor::{PixelValues, ProcessorConfig, CLIP_MEAN, CLIP_STD};
pub use resize::resize_bicubic;
