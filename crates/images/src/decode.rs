//! Image bytes → 8-bit RGB, exactly as PIL's `Image.open(path).convert("RGB")` gives them
//! (Pillow 9.5, the reference's pin).
//!
//! What PIL does, and so what this does:
//! - the format is told by the content, not the name (a JPEG called `.png` is a JPEG);
//! - alpha is dropped, never composited (the colour under alpha 0 survives), and so is a palette's
//!   or a colour key's transparency (`tRNS`);
//! - grayscale and 1-bit images are replicated to three channels; 2- and 4-bit grayscale are
//!   scaled to 0..255 (PIL's `L;2`/`L;4` unpackers);
//! - 16-bit grayscale opens as a 32-bit integer image (mode `I`) whose conversion to RGB
//!   **clips** to 0..255; every other 16-bit image keeps the **high byte** of each sample;
//! - CMYK JPEGs are read with Adobe's inverted convention and converted with PIL's naive formula
//!   (no ICC profile);
//! - the EXIF orientation is **not** applied.
//!
//! JPEG decoding goes through libjpeg-turbo's code (the decoder of mozjpeg, which forks it),
//! with PIL's settings (ISLOW IDCT, fancy upsampling), so pixels equal Pillow's bit for bit.

use crate::{Error, Result};
use std::io::{BufRead, Read};

/// An 8-bit RGB image, row-major, three bytes a pixel (`H × W × 3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `height * width * 3` bytes.
    pub data: Vec<u8>,
}

impl RgbImage {
    /// An image from its bytes; `data` must hold `height * width * 3` of them.
    pub fn new(width: usize, height: usize, data: Vec<u8>) -> Result<Self> {
        if data.len() != width * height * 3 {
            return Err(Error::Unsupported(format!(
                "{} bytes do not make a {width}x{height} RGB image",
                data.len()
            )));
        }
        Ok(RgbImage {
            width,
            height,
            data,
        })
    }
}

/// The image formats this crate decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// PNG (any colour type and bit depth, interlaced or not).
    Png,
    /// JPEG (baseline or progressive; grayscale, YCbCr, RGB or CMYK).
    Jpeg,
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
/// PIL's JPEG test (`JpegImagePlugin._accept`): SOI followed by the start of a marker.
const JPEG_SIGNATURE: &[u8] = b"\xff\xd8\xff";

impl ImageFormat {
    /// The format of an image, from its first bytes.
    pub fn sniff(bytes: &[u8]) -> Result<Self> {
        if bytes.starts_with(PNG_SIGNATURE) {
            Ok(ImageFormat::Png)
        } else if bytes.starts_with(JPEG_SIGNATURE) {
            Ok(ImageFormat::Jpeg)
        } else if bytes.is_empty() {
            Err(Error::Unidentified("the file is empty"))
        } else if bytes.starts_with(b"GIF8") {
            Err(Error::Unidentified(
                "GIF images are not supported (PNG or JPEG only)",
            ))
        } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
            Err(Error::Unidentified(
                "WebP images are not supported (PNG or JPEG only)",
            ))
        } else {
            Err(Error::Unidentified("not a PNG or JPEG image"))
        }
    }
}

/// Decodes a PNG or JPEG file's bytes to RGB as `Image.open(…).convert("RGB")` does.
pub fn decode_rgb(bytes: &[u8]) -> Result<RgbImage> {
    match ImageFormat::sniff(bytes)? {
        ImageFormat::Png => decode_png(bytes),
        ImageFormat::Jpeg => decode_jpeg(bytes),
    }
}

/// Reads and decodes an image file; errors name the file.
pub fn open_rgb(path: &std::path::Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io(e).with_path(path))?;
    decode_rgb(&bytes).map_err(|e| e.with_path(path))
}

fn png_error(error: png::DecodingError) -> Error {
    match error {
        png::DecodingError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::Truncated("the PNG data ends early".into())
        }
        other => Error::Corrupt {
            format: "PNG",
            message: other.to_string(),
        },
    }
}

fn decode_png(bytes: &[u8]) -> Result<RgbImage> {
    use png::{BitDepth, ColorType};
    let mut decoder = png::Decoder::new(bytes);
    // EXPAND: palettes to RGB(A), low bit depths to 8 bits scaled as PIL scales them, colour keys
    // to an alpha channel (dropped below, as PIL drops them). 16-bit samples stay 16-bit: gray
    // and colour images reduce them differently.
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().map_err(png_error)?;
    let source_color = reader.info().color_type;
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).map_err(png_error)?;
    let (width, height) = (frame.width as usize, frame.height as usize);
    let samples = &buf[..frame.buffer_size()];
    let (color, depth) = reader.output_color_type();
    let channels = color.samples();
    let bytes_per_sample = if depth == BitDepth::Sixteen { 2 } else { 1 };
    let stride = frame.line_size;
    let mut rgb = Vec::with_capacity(width * height * 3);
    for row in samples.chunks_exact(stride).take(height) {
        for pixel in
            row[..width * channels * bytes_per_sample].chunks_exact(channels * bytes_per_sample)
        {
            let sample = |c: usize| -> u8 {
                if bytes_per_sample == 1 {
                    pixel[c]
                } else if source_color == ColorType::Grayscale {
                    // Mode I, clipped by convert("RGB").
                    u16::from_be_bytes([pixel[2 * c], pixel[2 * c + 1]]).min(255) as u8
                } else {
                    pixel[2 * c]
                }
            };
            match color {
                ColorType::Grayscale | ColorType::GrayscaleAlpha => {
                    let g = sample(0);
                    rgb.extend_from_slice(&[g, g, g]);
                }
                ColorType::Rgb | ColorType::Rgba => {
                    rgb.extend_from_slice(&[sample(0), sample(1), sample(2)]);
                }
                ColorType::Indexed => {
                    return Err(Error::Unsupported(
                        "the PNG palette was not expanded".into(),
                    ))
                }
            }
        }
    }
    RgbImage::new(width, height, rgb)
}

/// The JPEG bytes as libjpeg reads them, noting whether it asked for more than there is (a
/// truncated file: libjpeg then pads it with a fake end marker and warns, where PIL raises).
struct TrackedSource<'a> {
    bytes: &'a [u8],
    position: usize,
    ran_out: bool,
}

impl Read for TrackedSource<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for TrackedSource<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.position >= self.bytes.len() {
            self.ran_out = true;
        }
        Ok(&self.bytes[self.position.min(self.bytes.len())..])
    }

    fn consume(&mut self, amount: usize) {
        self.position += amount;
    }
}

fn decode_jpeg(bytes: &[u8]) -> Result<RgbImage> {
    // libjpeg reports fatal errors by unwinding out of the decoder with the message as payload
    // (the mozjpeg crate's error manager; no panic hook runs).
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_jpeg_unguarded(bytes)
    }))
    .unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "libjpeg failed".to_string());
        Err(Error::Corrupt {
            format: "JPEG",
            message: message
                .trim_start_matches("libjpeg fatal error: ")
                .to_string(),
        })
    })
}

fn jpeg_error(error: std::io::Error) -> Error {
    Error::Corrupt {
        format: "JPEG",
        message: error.to_string(),
    }
}

fn decode_jpeg_unguarded(bytes: &[u8]) -> Result<RgbImage> {
    use mozjpeg::ColorSpace;
    let source = TrackedSource {
        bytes,
        position: 0,
        ran_out: false,
    };
    let decompress = mozjpeg::Decompress::new_reader(source)
        .map_err(|_| Error::Truncated("the JPEG data ends before the first scan".into()))?;
    let (width, height) = decompress.size();
    // PIL's modes: one component is L, four are CMYK (YCCK converted to CMYK by libjpeg), the
    // rest is RGB. libjpeg's defaults are PIL's: ISLOW IDCT and fancy upsampling.
    let (out_space, channels) = match decompress.color_space() {
        ColorSpace::JCS_GRAYSCALE => (ColorSpace::JCS_GRAYSCALE, 1),
        ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK => (ColorSpace::JCS_CMYK, 4),
        _ => (ColorSpace::JCS_RGB, 3),
    };
    let mut started = decompress.to_colorspace(out_space).map_err(jpeg_error)?;
    let mut samples = vec![0u8; width * height * channels];
    started
        .read_scanlines_into(&mut samples)
        .map_err(|_| Error::Truncated("the JPEG data ends early".into()))?;
    let source = started.finish_into_inner().map_err(jpeg_error)?;
    if source.ran_out {
        return Err(Error::Truncated(format!(
            "libjpeg needed more than the file's {} bytes",
            bytes.len()
        )));
    }
    let rgb = match channels {
        1 => samples.iter().flat_map(|&g| [g, g, g]).collect(),
        4 => samples.chunks_exact(4).flat_map(cmyk_to_rgb).collect(),
        _ => samples,
    };
    RgbImage::new(width, height, rgb)
}

/// One Adobe-inverted CMYK pixel (PIL's `CMYK;I` raw mode) → RGB by Pillow's `cmyk2rgb`:
/// `R = (255 - K) - C (255 - K) / 255`, with Pillow's rounded division by 255.
fn cmyk_to_rgb(inverted: &[u8]) -> [u8; 3] {
    let [c, m, y, k] = [0, 1, 2, 3].map(|i| 255 - u32::from(inverted[i]));
    let not_k = 255 - k;
    let channel = |v: u32| (not_k - muldiv255(v, not_k)) as u8;
    [channel(c), channel(m), channel(y)]
}

/// Pillow's `MULDIV255`: `a * b / 255`, rounded, in integers.
fn muldiv255(a: u32, b: u32) -> u32 {
    let t = a * b + 128;
    ((t >> 8) + t) >> 8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_content() {
        assert_eq!(ImageFormat::sniff(PNG_SIGNATURE).unwrap(), ImageFormat::Png);
        assert_eq!(
            ImageFormat::sniff(b"\xff\xd8\xff\xe0").unwrap(),
            ImageFormat::Jpeg
        );
        for bad in [&b""[..], b"hello", b"GIF89a", b"RIFF\0\0\0\0WEBPVP8 "] {
            assert!(matches!(
                ImageFormat::sniff(bad),
                Err(Error::Unidentified(_))
            ));
        }
    }

    #[test]
    fn cmyk_uses_pillows_rounding() {
        // Stored inverted: 255 is no ink.
        assert_eq!(cmyk_to_rgb(&[255, 255, 255, 255]), [255, 255, 255]);
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 0]), [0, 0, 0]);
        // C = 100, K = 50: 205 - round(100 * 205 / 255) = 205 - 80.
        assert_eq!(cmyk_to_rgb(&[155, 255, 255, 205]), [125, 205, 205]);
    }
}
