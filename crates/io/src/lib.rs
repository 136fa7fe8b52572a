//! File plumbing shared by every stage of clamp3, with no ML dependencies:
//!
//! - [`npy`]: `.npy` arrays read safely (the header's shape is checked against the file size
//!   before anything is allocated) and written as `numpy.save` writes them.
//! - [`write_atomic`]: every output file goes through a temporary sibling renamed into place, so
//!   an interrupted run never leaves a half-written file.
//!
//! ```
//! let bytes = clamp3_io::npy::encode_f32(&[1, 2], &[0.5, -1.0]);
//! let array = clamp3_io::npy::parse(&bytes).unwrap();
//! assert_eq!((array.shape, array.data), (vec![1, 2], vec![0.5, -1.0]));
//! ```
#![deny(missing_docs)]

mod atomic;
pub mod npy;

pub use atomic::write_atomic;
