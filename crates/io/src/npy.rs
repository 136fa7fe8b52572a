//! `.npy` files: MERT feature arrays and vectors in, embeddings out.
//!
//! Reading is done here rather than with candle's reader because feature files come from users:
//! the header's shape is checked against the file size before anything is allocated, so a
//! corrupt or hostile header gives an error instead of a multi-gigabyte allocation.

/// Why a `.npy` file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad .npy file: {0}")]
pub struct Error(pub String);

/// Result alias for `.npy` parsing.
pub type Result<T> = std::result::Result<T, Error>;

const MAGIC: &[u8] = b"\x93NUMPY";

/// A float array read from a `.npy` file, converted to f32.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// The shape as stored.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// Parses a `.npy` file holding little-endian float32 or float64 values in C order.
pub fn parse(bytes: &[u8]) -> Result<NpyArray> {
    let bad = |m: &str| Error(m.to_string());
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad("missing the \\x93NUMPY magic"));
    }
    let (header_len, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(Error(format!("unsupported format version {v}"))),
    };
    let header = bytes
        .get(start..start + header_len)
        .ok_or_else(|| bad("truncated header"))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not text"))?;
    let descr = dict_value(header, "descr").ok_or_else(|| bad("header has no 'descr'"))?;
    let fortran =
        dict_value(header, "fortran_order").ok_or_else(|| bad("header has no 'fortran_order'"))?;
    if fortran.starts_with("True") {
        return Err(bad("Fortran-ordered arrays are not supported"));
    }
    let shape = parse_shape(header)?;
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad("shape overflows"))?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .ok_or_else(|| bad("'descr' is not a quoted string"))?;
    let width = match descr {
        "<f4" => 4,
        "<f8" => 8,
        other => {
            return Err(Error(format!(
                "dtype {other} is not float32/float64 (little-endian)"
            )))
        }
    };
    let body = &bytes[start + header_len..];
    let needed = count
        .checked_mul(width)
        .ok_or_else(|| bad("shape overflows"))?;
    if body.len() < needed {
        return Err(Error(format!(
            "shape {shape:?} needs {needed} bytes of data, the file has {}",
            body.len()
        )));
    }
    let data = if width == 4 {
        body[..needed]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    } else {
        body[..needed]
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect()
    };
    Ok(NpyArray { shape, data })
}

/// The raw text after `'key':` in a header dict, up to the next top-level comma.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'"))?;
    let rest = header[at + key.len() + 2..]
        .trim_start()
        .strip_prefix(':')?;
    Some(rest.trim_start())
}

fn parse_shape(header: &str) -> Result<Vec<usize>> {
    let value = dict_value(header, "shape").ok_or_else(|| Error("header has no 'shape'".into()))?;
    let inner = value
        .strip_prefix('(')
        .and_then(|v| v.split(')').next())
        .ok_or_else(|| Error(format!("cannot read shape {value:?}")))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| Error(format!("bad dimension {s:?}")))
        })
        .collect()
}

/// Encodes a little-endian float32 `.npy` file (format version 1.0) of the given shape, as
/// `numpy.save` writes it.
pub fn encode_f32(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let dims = if dims.len() == 1 {
        format!("{},", dims[0])
    } else {
        dims.join(", ")
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}");
    // Magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str, body: &[u8]) -> Vec<u8> {
        let mut h = header.to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut out = MAGIC.to_vec();
        out.extend([1, 0]);
        out.extend((h.len() as u16).to_le_bytes());
        out.extend(h.as_bytes());
        out.extend(body);
        out
    }

    #[test]
    fn reads_f32_and_f64() {
        let body: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let a = parse(&npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }",
            &body,
        ))
        .unwrap();
        assert_eq!(a.shape, [1, 2]);
        assert_eq!(a.data, [1.5, -2.0]);
        let body: Vec<u8> = [0.25f64].iter().flat_map(|v| v.to_le_bytes()).collect();
        let a = parse(&npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }",
            &body,
        ))
        .unwrap();
        assert_eq!(a.data, [0.25]);
    }

    #[test]
    fn rejects_lying_shapes_and_junk() {
        let e = parse(&npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000, 768), }",
            &[0; 8],
        ));
        assert!(e.unwrap_err().to_string().contains("needs"));
        assert!(parse(b"not an npy file").is_err());
        let e = parse(&npy(
            "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }",
            &[0; 8],
        ));
        assert!(e.unwrap_err().to_string().contains("<i8"));
    }
}
