//! The trainable state of a model: every parameter as a candle [`Var`], in PyTorch's
//! `model.parameters()` order, with the freeze switch of the reference's `set_trainable`.
//!
//! The order and shapes are derived from the configuration (they are fixed by the module tree of
//! `CLaMP3Model` / `M3Model` in the reference's `code/utils.py`), so a checkpoint of either format
//! is loaded by name and checked strictly: a missing, extra or mis-shaped tensor is an error. The
//! optimizer's state indices refer to this order, as `optimizer.state_dict()` does upstream.

use crate::arch::ParamSpec;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};
use std::collections::HashMap;
use std::path::Path;

/// One parameter tensor.
#[derive(Debug)]
pub struct Param {
    /// Its state-dict name (`text_model.encoder.layer.0.attention.self.query.weight`).
    pub name: String,
    /// Its value; the optimizer updates it in place.
    pub var: Var,
    /// Whether it is in the optimizer (not frozen).
    pub trainable: bool,
}

/// The parameters of a model in `model.parameters()` order, plus the tied names that share one.
#[derive(Debug)]
pub struct ParamStore {
    params: Vec<Param>,
    /// State-dict names that are another parameter (GPT-2's `lm_head.weight` is `wte.weight`).
    aliases: Vec<(String, usize)>,
    index: HashMap<String, usize>,
    device: Device,
}

impl ParamStore {
    /// Builds the store for `spec` from the tensors of `source` (a state dict by name).
    /// `source` must hold exactly the spec's names (aliases may be present or not).
    pub fn from_state_dict(
        spec: &ParamSpec,
        source: &HashMap<String, Tensor>,
        origin: &Path,
        device: &Device,
    ) -> Result<Self> {
        let bad = |reason: String| Error::Checkpoint {
            path: origin.to_path_buf(),
            reason,
        };
        let mut params = Vec::with_capacity(spec.params.len());
        let mut index = HashMap::new();
        for (name, shape) in &spec.params {
            let tensor = source
                .get(name)
                .ok_or_else(|| bad(format!("missing tensor {name}")))?;
            if tensor.dims() != shape.as_slice() {
                return Err(bad(format!(
                    "tensor {name} has shape {:?}, the configuration needs {shape:?}",
                    tensor.dims()
                )));
            }
            let value = tensor.to_dtype(DType::F32)?.to_device(device)?;
            index.insert(name.clone(), params.len());
            params.push(Param {
                name: name.clone(),
                var: Var::from_tensor(&value)?,
                trainable: true,
            });
        }
        let mut aliases = Vec::new();
        for (alias, target) in &spec.aliases {
            let &i = index
                .get(target)
                .ok_or_else(|| bad(format!("alias {alias} of unknown {target}")))?;
            aliases.push((alias.clone(), i));
            index.insert(alias.clone(), i);
        }
        if let Some(extra) = source.keys().find(|k| !index.contains_key(*k)) {
            return Err(bad(format!(
                "unexpected tensor {extra} (not part of this model configuration)"
            )));
        }
        Ok(Self {
            params,
            aliases,
            index,
            device: device.clone(),
        })
    }

    /// Fresh weights for `spec`: N(0, `std`) for matrices and embeddings (the Hugging Face
    /// `_init_weights` and CLaMP 3's projections use 0.02), LayerNorm weights 1, biases 0.
    pub fn random(spec: &ParamSpec, std: f64, seed: u64, device: &Device) -> Result<Self> {
        let mut rng = crate::rng::Rng::stream(seed, &[]);
        let mut source = HashMap::new();
        for (name, shape) in &spec.params {
            let n: usize = shape.iter().product();
            let is_norm = name.contains("LayerNorm") || name.contains(".ln_");
            let values: Vec<f32> = if name.ends_with(".bias") {
                vec![0.0; n]
            } else if is_norm {
                vec![1.0; n]
            } else {
                (0..n).map(|_| (rng.normal() * std) as f32).collect()
            };
            source.insert(
                name.clone(),
                Tensor::from_vec(values, shape.as_slice(), device)?,
            );
        }
        Self::from_state_dict(spec, &source, Path::new("(random initialisation)"), device)
    }

    /// The parameters, in order.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The device the parameters live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The parameters in the optimizer (trainable), in order, with their index in [`params`].
    ///
    /// [`params`]: Self::params
    pub fn trainable(&self) -> impl Iterator<Item = (usize, &Param)> {
        self.params.iter().enumerate().filter(|(_, p)| p.trainable)
    }

    /// `set_trainable`: parameters under any of `frozen_prefixes` (module names such as
    /// `audio_model`) are frozen, every other one is trainable.
    pub fn set_frozen(&mut self, frozen_prefixes: &[&str]) {
        for p in &mut self.params {
            p.trainable = !frozen_prefixes
                .iter()
                .any(|prefix| p.name == *prefix || p.name.starts_with(&format!("{prefix}.")));
        }
    }

    /// The tensor a forward pass uses for `name`: tracked for gradients when trainable, detached
    /// (a constant) when frozen, so frozen towers cost no backward work.
    pub fn get(&self, name: &str) -> candle_core::Result<Tensor> {
        let &i = self
            .index
            .get(name)
            .ok_or_else(|| candle_core::Error::Msg(format!("no parameter {name}")))?;
        let p = &self.params[i];
        Ok(if p.trainable {
            p.var.as_tensor().clone()
        } else {
            p.var.as_detached_tensor()
        })
    }

    /// Overwrites the values of the parameters present in `source` (by name), checking shapes.
    pub fn assign(&self, source: &HashMap<String, Tensor>, origin: &Path) -> Result<()> {
        for (name, tensor) in source {
            let Some(&i) = self.index.get(name) else {
                return Err(Error::Checkpoint {
                    path: origin.to_path_buf(),
                    reason: format!("unexpected tensor {name}"),
                });
            };
            let var = &self.params[i].var;
            if var.dims() != tensor.dims() {
                return Err(Error::Checkpoint {
                    path: origin.to_path_buf(),
                    reason: format!(
                        "tensor {name} has shape {:?}, expected {:?}",
                        tensor.dims(),
                        var.dims()
                    ),
                });
            }
            var.set(&tensor.to_dtype(DType::F32)?.to_device(&self.device)?)?;
        }
        Ok(())
    }

    /// The state dict: every name (aliases included, right after their parameter's block as
    /// PyTorch lists them: at the end) with its current value.
    pub fn state_dict(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = self
            .params
            .iter()
            .map(|p| (p.name.clone(), p.var.as_detached_tensor()))
            .collect();
        for (alias, i) in &self.aliases {
            out.push((alias.clone(), self.params[*i].var.as_detached_tensor()));
        }
        out
    }

    /// Which state-dict names share storage: `(alias, parameter name)`.
    pub fn aliases(&self) -> impl Iterator<Item = (&str, &str)> {
        self.aliases
            .iter()
            .map(|(a, i)| (a.as_str(), self.params[*i].name.as_str()))
    }
}
