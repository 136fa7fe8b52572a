//! The model families, one file each, behind [`Family`](crate::Family).

pub mod clamp3;

use crate::family::Family;
use crate::spec::{ModelId, ModelSpec};
use crate::Result;

/// The family that runs `spec.model`, configured by the spec; nothing is loaded yet.
pub fn open(spec: &ModelSpec) -> Result<Box<dyn Family>> {
    Ok(match spec.model {
        ModelId::Clamp3Saas | ModelId::Clamp3C2 => Box::new(clamp3::Clamp3::new(spec)?),
    })
}
