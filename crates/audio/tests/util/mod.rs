//! Helpers shared by the golden tests: a minimal `.npy` reader and the fixture locations.

use std::path::{Path, PathBuf};

/// A little-endian float32 `.npy` array: its shape and its values in C order.
pub struct Npy {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Reads a version 1/2 `.npy` file of `<f4` values, returned in C order.
pub fn read_npy(path: &Path) -> Npy {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{}", path.display());
    let (header_len, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        )
    };
    let header = std::str::from_utf8(&bytes[start..start + header_len]).unwrap();
    assert!(header.contains("'descr': '<f4'"), "{header}");
    let fortran = header.contains("'fortran_order': True");
    let shape_src = header.split("'shape': (").nth(1).unwrap();
    let shape: Vec<usize> = shape_src[..shape_src.find(')').unwrap()]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let mut data: Vec<f32> = bytes[start + header_len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(
        data.len(),
        shape.iter().product::<usize>(),
        "{}",
        path.display()
    );
    if fortran && shape.len() == 2 {
        let (rows, cols) = (shape[0], shape[1]);
        data = (0..rows * cols)
            .map(|i| data[(i % cols) * rows + i / cols])
            .collect();
    } else {
        assert!(
            !fortran || shape.len() < 2,
            "{}: Fortran order",
            path.display()
        );
    }
    Npy { shape, data }
}

/// The fixtures copied into this crate.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The full golden set in `../shared/golden/models/cases/audio`, when this checkout has one.
pub fn shared_cases() -> Option<PathBuf> {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden/models/cases/audio");
    dir.is_dir().then_some(dir)
}

/// The largest absolute difference between two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
