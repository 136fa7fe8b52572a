//! `nn.Linear` (`weight` `[out, in]`, optional `bias` `[out]`) with a faster CPU path for few rows.
//!
//! Up to [`FEW_ROWS`] input rows in f32 on the CPU, the product runs in
//! [`crate::cpu::matmul_transposed`], which reads the weights once where `gemm` packs them first.
//! Everything else — more rows, other dtypes and devices, and tensors that take part in training
//! (their gradient must be recorded) — goes through candle's matmul, as `candle_nn::Linear` does.

use candle_core::{DType, Device, Module, Result, Storage, Tensor};
use candle_nn::VarBuilder;

/// The most rows [`Linear`] sends to its own kernel. Measured with `cargo bench -p clamp3-models
/// --bench linear`: on AVX-512 and AVX2 machines the kernel is ahead of `gemm` up to about this
/// many rows on 768- and 3072-wide layers, and behind it from twice as many.
pub(crate) const FEW_ROWS: usize = 64;

/// A dense layer whose checkpoint keys are `weight` and `bias`: `candle_nn::Linear`, plus the
/// few-rows kernel.
#[derive(Debug, Clone)]
pub struct Linear {
    inner: candle_nn::Linear,
}

impl Linear {
    /// A layer from its tensors: `weight` `[out, in]`, `bias` `[out]`.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self {
            inner: candle_nn::Linear::new(weight, bias),
        }
    }

    /// The `[out, in]` weight.
    pub fn weight(&self) -> &Tensor {
        self.inner.weight()
    }

    /// The `[out]` bias, if the layer has one.
    pub fn bias(&self) -> Option<&Tensor> {
        self.inner.bias()
    }

    /// The product through clamp3's kernel whatever the number of rows (to compare it with
    /// `gemm`), or through candle where the input or layer does not qualify.
    pub fn forward_kernel(&self, x: &Tensor) -> Result<Tensor> {
        match self.forward_few_rows(x, usize::MAX)? {
            Some(y) => Ok(y),
            None => self.forward_candle(x),
        }
    }

    /// The product through the kernel, or `None` when this input (more than `max_rows` rows) or
    /// layer does not qualify.
    fn forward_few_rows(&self, x: &Tensor, max_rows: usize) -> Result<Option<Tensor>> {
        let (weight, bias) = (self.weight(), self.bias());
        let dims = x.dims();
        let Some((&k, leading)) = dims.split_last() else {
            return Ok(None);
        };
        let m: usize = leading.iter().product();
        let qualifies = m <= max_rows
            && matches!(x.device(), Device::Cpu)
            && x.dtype() == DType::F32
            && matches!(weight.dtype(), DType::F32 | DType::BF16)
            && weight.is_contiguous()
            && !x.track_op()
            && !weight.track_op()
            && bias.is_none_or(|b| !b.track_op() && b.dtype() == DType::F32);
        if !qualifies {
            return Ok(None);
        }
        let (n, weight_k) = weight.dims2()?;
        if weight_k != k {
            return Ok(None); // candle's matmul reports the mismatch
        }
        let x = x.contiguous()?;
        let bias = bias.map(Tensor::contiguous).transpose()?;
        let (x_storage, x_layout) = x.storage_and_layout();
        let (w_storage, w_layout) = weight.storage_and_layout();
        let (Storage::Cpu(x_cpu), Storage::Cpu(w_cpu)) = (&*x_storage, &*w_storage) else {
            return Ok(None);
        };
        let xs = &x_cpu.as_slice::<f32>()?[x_layout.start_offset()..][..m * k];
        let b_guard = bias.as_ref().map(Tensor::storage_and_layout);
        let bs = match &b_guard {
            Some((b_storage, b_layout)) => {
                let Storage::Cpu(b_cpu) = &**b_storage else {
                    return Ok(None);
                };
                Some(&b_cpu.as_slice::<f32>()?[b_layout.start_offset()..][..n])
            }
            None => None,
        };
        let start = w_layout.start_offset();
        let y = match weight.dtype() {
            DType::BF16 => {
                let ws = &w_cpu.as_slice::<half::bf16>()?[start..][..n * k];
                crate::cpu::matmul_transposed(xs, m, k, ws, n, bs)
            }
            _ => {
                let ws = &w_cpu.as_slice::<f32>()?[start..][..n * k];
                crate::cpu::matmul_transposed(xs, m, k, ws, n, bs)
            }
        };
        let mut shape = leading.to_vec();
        shape.push(n);
        Ok(Some(Tensor::from_vec(y, shape, &Device::Cpu)?))
    }
}

impl Linear {
    /// The layer with its weight stored as `dtype` (the bias stays as it is). With bf16 weights
    /// and f32 inputs, few rows run in the kernel (widening each weight as it is read) and more
    /// rows multiply a widened copy, so activations and sums stay f32 either way.
    pub fn with_weight_dtype(&self, dtype: DType) -> Result<Self> {
        Ok(Self::new(
            self.weight().to_dtype(dtype)?,
            self.bias().cloned(),
        ))
    }

    /// candle's product; weights stored narrower than the input are widened for it.
    fn forward_candle(&self, x: &Tensor) -> Result<Tensor> {
        if self.weight().dtype() == x.dtype() {
            return self.inner.forward(x);
        }
        candle_nn::Linear::new(self.weight().to_dtype(x.dtype())?, self.bias().cloned()).forward(x)
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // bf16 weights always take the kernel: candle would need a widened copy of the weights
        // on every call (measured: a 512-patch segment took 2.3x as long that way).
        let max_rows = match self.weight().dtype() {
            DType::BF16 => usize::MAX,
            _ => FEW_ROWS,
        };
        match self.forward_few_rows(x, max_rows)? {
            Some(y) => Ok(y),
            None => self.forward_candle(x),
        }
    }
}

/// `nn.Linear(in, out)` with a bias, from `vb` (`weight`, `bias`), initialised as candle does when
/// `vb` creates variables.
pub fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    Ok(Linear {
        inner: candle_nn::linear(in_dim, out_dim, vb)?,
    })
}

/// `nn.Linear(in, out, bias=False)`, from `vb` (`weight`).
pub fn linear_no_bias(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    Ok(Linear {
        inner: candle_nn::linear_no_bias(in_dim, out_dim, vb)?,
    })
}
