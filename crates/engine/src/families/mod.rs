//! The model families, one file each, behind [`Family`](crate::Family).

pub mod clamp1;
pub mod clamp2;
pub mod clamp3;

use crate::family::Family;
use crate::spec::{ModelId, ModelSpec, Precision};
use crate::{Error, Result};

/// The family that runs `spec.model`, configured by the spec; nothing is loaded yet.
pub fn open(spec: &ModelSpec) -> Result<Box<dyn Family>> {
    let clamp3 = matches!(spec.model, ModelId::Clamp3Saas | ModelId::Clamp3C2);
    if spec.precision != Precision::F32 && !clamp3 {
        return Err(Error::Spec(format!(
            "precision {} is implemented for CLaMP 3 only; {} runs in f32",
            spec.precision.name(),
            spec.model
        )));
    }
    Ok(match spec.model {
        ModelId::Clamp3Saas | ModelId::Clamp3C2 => Box::new(clamp3::Clamp3::new(spec)?),
        ModelId::Clamp2 => Box::new(clamp2::Clamp2::new(spec)?),
        ModelId::M3 => Box::new(clamp2::M3::new(spec)?),
        ModelId::Clamp1S512 | ModelId::Clamp1S1024 => Box::new(clamp1::Clamp1::new(spec)?),
    })
}
