//! The linear probe of the reference's `classification/train_cls.py` and `inference_cls.py`: one
//! linear layer and a softmax over CLaMP 3 vectors, trained one example at a time with AdamW,
//! scored by accuracy and macro-F1 on held-out examples, keeping the epoch with the best
//! accuracy.
//!
//! As the reference, the model's output is already a softmax and the loss is cross-entropy on
//! that output (a second softmax inside the loss); the gradient here follows that exactly.
//! Labels come from file names: the part before the first `_` (`jazz_0001.npy` → `jazz`).
//! Not reproduced: PyTorch's random numbers (initialisation and shuffling use a seeded
//! SplitMix64), mixed precision, and the reference's warm-up schedule (a constant rate here).

use crate::{Error, Result};
use std::path::Path;

/// `torch.optim.AdamW` defaults.
const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const ADAM_EPS: f64 = 1e-8;
const WEIGHT_DECAY: f64 = 0.01;

/// The label of a file: its name up to the first `_`.
pub fn label_of(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.split('_').next().unwrap_or_default().to_string()
}

/// A trained probe.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// Class names, by index.
    pub labels: Vec<String>,
    /// Input width D.
    pub input_size: usize,
    /// `[classes, D]`, row-major.
    pub weight: Vec<f32>,
    /// `[classes]`.
    pub bias: Vec<f32>,
}

fn softmax(z: &[f64]) -> Vec<f64> {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.iter().map(|e| e / sum).collect()
}

impl Probe {
    fn logits(&self, x: &[f32]) -> Vec<f64> {
        (0..self.labels.len())
            .map(|c| {
                let row = &self.weight[c * self.input_size..(c + 1) * self.input_size];
                f64::from(self.bias[c])
                    + row
                        .iter()
                        .zip(x)
                        .map(|(w, v)| f64::from(*w) * f64::from(*v))
                        .sum::<f64>()
            })
            .collect()
    }

    /// Class probabilities for a vector.
    pub fn probabilities(&self, x: &[f32]) -> Vec<f64> {
        softmax(&self.logits(x))
    }

    /// The most probable class (the first, among equals).
    pub fn predict(&self, x: &[f32]) -> usize {
        argmax(&self.probabilities(x))
    }

    /// The loss of one example and its gradient with respect to the logits: cross-entropy on the
    /// softmax output, as the reference.
    fn loss_and_grad(&self, x: &[f32], label: usize) -> (f64, Vec<f64>) {
        let p = softmax(&self.logits(x));
        let q = softmax(&p);
        let loss = -q[label].ln();
        // dL/dp = q - onehot; dL/dz_j = p_j (g_j - sum_k g_k p_k).
        let g: Vec<f64> = q
            .iter()
            .enumerate()
            .map(|(k, v)| v - f64::from(u8::from(k == label)))
            .collect();
        let gp: f64 = g.iter().zip(&p).map(|(a, b)| a * b).sum();
        (
            loss,
            p.iter().zip(&g).map(|(pj, gj)| pj * (gj - gp)).collect(),
        )
    }

    /// Saves as safetensors: `weight` `[classes, D]` and `bias` `[classes]` in float32, labels in
    /// the metadata (`labels`, a JSON array).
    pub fn to_safetensors(&self) -> Vec<u8> {
        let classes = self.labels.len();
        let w_bytes = self.weight.len() * 4;
        let header = serde_json::json!({
            "__metadata__": {
                "labels": serde_json::to_string(&self.labels).unwrap_or_default(),
                "input_size": self.input_size.to_string(),
            },
            "bias": {"dtype": "F32", "shape": [classes], "data_offsets": [0, classes * 4]},
            "weight": {"dtype": "F32", "shape": [classes, self.input_size],
                       "data_offsets": [classes * 4, classes * 4 + w_bytes]},
        })
        .to_string();
        let mut header = header.into_bytes();
        while !header.len().is_multiple_of(8) {
            header.push(b' ');
        }
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&header);
        for v in self.bias.iter().chain(&self.weight) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Reads what [`Probe::to_safetensors`] writes.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self> {
        let bad = |m: &str| Error::Probe(m.to_string());
        let len = bytes
            .get(..8)
            .ok_or_else(|| bad("shorter than a safetensors header"))?;
        let len = usize::try_from(u64::from_le_bytes(
            len.try_into().map_err(|_| bad("header"))?,
        ))
        .map_err(|_| bad("header too long"))?;
        let header = bytes
            .get(8..8usize.saturating_add(len))
            .ok_or_else(|| bad("truncated header"))?;
        let header: serde_json::Value =
            serde_json::from_slice(header).map_err(|e| bad(&e.to_string()))?;
        let data = &bytes[8 + len..];
        let labels: Vec<String> = header["__metadata__"]["labels"]
            .as_str()
            .and_then(|s| serde_json::from_str(s).ok())
            .ok_or_else(|| bad("no labels in the metadata"))?;
        let tensor = |name: &str| -> Result<(Vec<usize>, Vec<f32>)> {
            let t = &header[name];
            if t["dtype"] != "F32" {
                return Err(bad(&format!("{name} is not F32")));
            }
            let shape: Vec<usize> = t["shape"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_u64())
                        .map(|v| v as usize)
                        .collect()
                })
                .ok_or_else(|| bad(&format!("no tensor {name}")))?;
            let offsets: Vec<usize> = t["data_offsets"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_u64())
                        .map(|v| v as usize)
                        .collect()
                })
                .unwrap_or_default();
            let [start, end] = offsets[..] else {
                return Err(bad(&format!("{name} has no data offsets")));
            };
            let raw = data
                .get(start..end)
                .ok_or_else(|| bad(&format!("{name} is truncated")))?;
            if raw.len() != shape.iter().product::<usize>() * 4 {
                return Err(bad(&format!("{name}'s size does not match its shape")));
            }
            Ok((
                shape,
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ))
        };
        let (w_shape, weight) = tensor("weight")?;
        let (b_shape, bias) = tensor("bias")?;
        if w_shape.len() != 2 || w_shape[0] != labels.len() || b_shape != [labels.len()] {
            return Err(bad("weight, bias and labels disagree in size"));
        }
        Ok(Probe {
            input_size: w_shape[1],
            labels,
            weight,
            bias,
        })
    }
}

fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// Macro-averaged F1 over the classes present in the labels or the predictions (as
/// scikit-learn's `f1_score(average='macro')`).
pub fn macro_f1(labels: &[usize], predictions: &[usize]) -> f64 {
    let mut classes: Vec<usize> = labels.iter().chain(predictions).copied().collect();
    classes.sort_unstable();
    classes.dedup();
    if classes.is_empty() {
        return 0.0;
    }
    let f1 = |c: usize| {
        let pairs = labels.iter().zip(predictions);
        let tp = pairs.clone().filter(|(l, p)| **l == c && **p == c).count() as f64;
        let fp = pairs.clone().filter(|(l, p)| **l != c && **p == c).count() as f64;
        let fn_ = pairs.filter(|(l, p)| **l == c && **p != c).count() as f64;
        if tp == 0.0 {
            0.0
        } else {
            2.0 * tp / (2.0 * tp + fp + fn_)
        }
    };
    classes.iter().map(|&c| f1(c)).sum::<f64>() / classes.len() as f64
}

/// A small seeded generator (SplitMix64) for initialisation, splits and shuffles.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// Training options (the reference's defaults: 1000 epochs, learning rate 1e-5).
#[derive(Debug, Clone, Copy)]
pub struct TrainOptions {
    /// Passes over the training set.
    pub epochs: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// Each epoch, sample as many examples of every class as the rarest has.
    pub balanced: bool,
    /// Seed for initialisation and shuffling.
    pub seed: u64,
}

/// What one epoch gave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochReport {
    /// 1-based epoch.
    pub epoch: usize,
    /// Training examples seen this epoch.
    pub examples: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Training accuracy (during the epoch, as the reference reports it).
    pub train_accuracy: f64,
    /// Held-out accuracy after the epoch.
    pub eval_accuracy: f64,
    /// Held-out macro-F1 after the epoch.
    pub eval_f1: f64,
    /// Whether this epoch is the best so far (kept).
    pub best: bool,
}

/// A labelled vector.
pub type Example = (Vec<f32>, usize);

/// Accuracy and macro-F1 of a probe on examples.
pub fn evaluate(probe: &Probe, examples: &[Example]) -> (f64, f64) {
    if examples.is_empty() {
        return (0.0, 0.0);
    }
    let predictions: Vec<usize> = examples.iter().map(|(x, _)| probe.predict(x)).collect();
    let labels: Vec<usize> = examples.iter().map(|(_, y)| *y).collect();
    let correct = predictions
        .iter()
        .zip(&labels)
        .filter(|(p, l)| p == l)
        .count();
    (
        correct as f64 / examples.len() as f64,
        macro_f1(&labels, &predictions),
    )
}

/// Trains a probe with batch size 1 and AdamW, calling `on_epoch` after each epoch, and returns
/// the probe of the epoch with the best held-out accuracy (the first, among equals).
pub fn train(
    labels: Vec<String>,
    train_set: &[Example],
    eval_set: &[Example],
    options: TrainOptions,
    mut on_epoch: impl FnMut(&EpochReport),
) -> Result<Probe> {
    let first = train_set
        .first()
        .ok_or(Error::Empty("no training examples"))?;
    let d = first.0.len();
    let classes = labels.len();
    if classes < 2 {
        return Err(Error::Empty("a probe needs at least two labels"));
    }
    for (x, y) in train_set.iter().chain(eval_set) {
        if x.len() != d {
            return Err(Error::Width {
                expected: d,
                found: x.len(),
            });
        }
        if *y >= classes {
            return Err(Error::Probe(format!("label index {y} out of range")));
        }
    }
    let mut rng = Rng::new(options.seed);
    // nn.Linear's initialisation: uniform in ±1/sqrt(fan_in).
    let bound = 1.0 / (d as f64).sqrt();
    let mut init = |n: usize| {
        (0..n)
            .map(|_| ((rng.unit() * 2.0 - 1.0) * bound) as f32)
            .collect::<Vec<_>>()
    };
    let mut probe = Probe {
        labels,
        input_size: d,
        weight: init(classes * d),
        bias: init(classes),
    };
    let n_params = classes * d + classes;
    let (mut m, mut v) = (vec![0f64; n_params], vec![0f64; n_params]);
    let mut step = 0i32;
    let mut best: Option<(f64, Probe)> = None;
    for epoch in 1..=options.epochs {
        let mut order: Vec<usize> = if options.balanced {
            let mut by_class = vec![Vec::new(); classes];
            for (i, (_, y)) in train_set.iter().enumerate() {
                by_class[*y].push(i);
            }
            let present: Vec<_> = by_class.into_iter().filter(|c| !c.is_empty()).collect();
            let min = present.iter().map(Vec::len).min().unwrap_or(0);
            let mut order = Vec::new();
            for mut c in present {
                rng.shuffle(&mut c);
                order.extend_from_slice(&c[..min]);
            }
            order
        } else {
            (0..train_set.len()).collect()
        };
        rng.shuffle(&mut order);
        let (mut loss_sum, mut correct) = (0.0, 0usize);
        for &i in &order {
            let (x, y) = &train_set[i];
            if probe.predict(x) == *y {
                correct += 1;
            }
            let (loss, dz) = probe.loss_and_grad(x, *y);
            loss_sum += loss;
            step += 1;
            let (c1, c2) = (1.0 - BETA1.powi(step), 1.0 - BETA2.powi(step));
            let lr = options.learning_rate;
            let mut update = |param: &mut f32, k: usize, grad: f64| {
                let mut p = f64::from(*param) * (1.0 - lr * WEIGHT_DECAY);
                m[k] = BETA1 * m[k] + (1.0 - BETA1) * grad;
                v[k] = BETA2 * v[k] + (1.0 - BETA2) * grad * grad;
                p -= lr * (m[k] / c1) / ((v[k] / c2).sqrt() + ADAM_EPS);
                *param = p as f32;
            };
            for (c, &dz_c) in dz.iter().enumerate() {
                let row = &mut probe.weight[c * d..(c + 1) * d];
                for (j, (w, &x_j)) in row.iter_mut().zip(x).enumerate() {
                    update(w, c * d + j, dz_c * f64::from(x_j));
                }
                update(&mut probe.bias[c], classes * d + c, dz_c);
            }
        }
        let seen = order.len().max(1) as f64;
        let (eval_accuracy, eval_f1) = evaluate(&probe, eval_set);
        let is_best = best.as_ref().is_none_or(|(acc, _)| eval_accuracy > *acc);
        if is_best {
            best = Some((eval_accuracy, probe.clone()));
        }
        on_epoch(&EpochReport {
            epoch,
            examples: order.len(),
            train_loss: loss_sum / seen,
            train_accuracy: correct as f64 / seen,
            eval_accuracy,
            eval_f1,
            best: is_best,
        });
    }
    Ok(best.map(|(_, p)| p).unwrap_or(probe))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_before_the_first_underscore() {
        assert_eq!(label_of(Path::new("x/jazz_01_b.npy")), "jazz");
        assert_eq!(label_of(Path::new("rock.npy")), "rock.npy");
    }

    #[test]
    fn macro_f1_matches_hand_computed_values() {
        // Class 0: tp 1, fp 1, fn 1 → 0.5; class 1: tp 1, fp 1, fn 1 → 0.5; class 2: tp 1 → 1.
        let labels = [0, 0, 1, 1, 2];
        let preds = [0, 1, 1, 0, 2];
        assert!((macro_f1(&labels, &preds) - (0.5 + 0.5 + 1.0) / 3.0).abs() < 1e-12);
        // A class only predicted counts with F1 0.
        assert!((macro_f1(&[0, 0], &[0, 1]) - (2.0 / 3.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let probe = Probe {
            labels: vec!["a".into(), "b".into(), "c".into()],
            input_size: 2,
            weight: vec![0.3, -0.2, 0.1, 0.4, -0.5, 0.2],
            bias: vec![0.1, 0.0, -0.1],
        };
        let x = [0.7f32, -1.3];
        let (_, dz) = probe.loss_and_grad(&x, 1);
        for (c, &dz_c) in dz.iter().enumerate() {
            let h = 1e-3f32;
            let (mut up, mut down) = (probe.clone(), probe.clone());
            up.bias[c] += h;
            down.bias[c] -= h;
            let numeric =
                (up.loss_and_grad(&x, 1).0 - down.loss_and_grad(&x, 1).0) / (2.0 * f64::from(h));
            assert!(
                (numeric - dz_c).abs() < 1e-5,
                "class {c}: {numeric} vs {dz_c}"
            );
        }
    }

    fn toy() -> (Vec<Example>, Vec<Example>) {
        let mut rng = Rng::new(7);
        let mut make = |n: usize| {
            (0..n)
                .map(|i| {
                    let y = i % 3;
                    let mut x: Vec<f32> = (0..4).map(|_| (rng.unit() as f32 - 0.5) * 0.2).collect();
                    x[y] += 1.0;
                    (x, y)
                })
                .collect::<Vec<_>>()
        };
        (make(60), make(30))
    }

    #[test]
    fn training_separates_separable_classes_and_keeps_the_best_epoch() {
        let (train_set, eval_set) = toy();
        let labels = vec!["a".into(), "b".into(), "c".into()];
        let options = TrainOptions {
            epochs: 30,
            learning_rate: 0.05,
            balanced: false,
            seed: 1,
        };
        let mut reports = Vec::new();
        let probe = train(labels, &train_set, &eval_set, options, |r| reports.push(*r)).unwrap();
        assert_eq!(reports.len(), 30);
        let best = reports.iter().map(|r| r.eval_accuracy).fold(0.0, f64::max);
        assert_eq!(best, 1.0);
        assert_eq!(evaluate(&probe, &eval_set).0, best);
        assert!(reports.last().unwrap().train_loss < reports[0].train_loss);
    }

    #[test]
    fn balanced_epochs_take_the_rarest_class_count_of_each() {
        let (mut train_set, eval_set) = toy();
        train_set.retain(|(_, y)| *y != 2);
        train_set.push((vec![0.0, 0.0, 1.0, 0.0], 2));
        let labels = vec!["a".into(), "b".into(), "c".into()];
        let options = TrainOptions {
            epochs: 2,
            learning_rate: 0.01,
            balanced: true,
            seed: 1,
        };
        let mut examples = Vec::new();
        train(labels.clone(), &train_set, &eval_set, options, |r| {
            examples.push(r.examples)
        })
        .unwrap();
        assert_eq!(examples, vec![3, 3]);
        let options = TrainOptions {
            balanced: false,
            ..options
        };
        let mut examples = Vec::new();
        train(labels, &train_set, &eval_set, options, |r| {
            examples.push(r.examples)
        })
        .unwrap();
        assert_eq!(examples, vec![41, 41]);
    }

    #[test]
    fn safetensors_round_trip() {
        let probe = Probe {
            labels: vec!["jazz".into(), "R&B".into()],
            input_size: 3,
            weight: vec![1.0, 2.0, 3.0, -1.0, -2.0, -3.5],
            bias: vec![0.5, -0.25],
        };
        let bytes = probe.to_safetensors();
        assert_eq!(Probe::from_safetensors(&bytes).unwrap(), probe);
        assert!(Probe::from_safetensors(&bytes[..20]).is_err());
    }
}
