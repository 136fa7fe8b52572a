//! Checkpoints in the reference's layout, as a PyTorch `.pth` and as safetensors.
//!
//! `.pth`: what `torch.save` writes (a zip archive `archive/data.pkl` + `archive/data/<n>` raw
//! little-endian storages + `archive/version`, entries 64-byte aligned), holding the dict the
//! reference saves: `model` (an `OrderedDict` state dict), `optimizer` (`state` by parameter index
//! with `step`/`exp_avg`/`exp_avg_sq`, one `param_groups` entry), `lr_sched` (`LambdaLR` state),
//! `epoch`, `best_epoch`, `min_eval_loss` (and `modality` for CLaMP 3). The pickle uses only the
//! globals `torch.load(weights_only=True)` accepts. A `trainer` entry adds what an exact resume
//! needs (the optimizer step count and the seed); the reference ignores unknown keys.
//!
//! safetensors: the model tensors under their own names (so `clamp3 embed --weights` loads the
//! file), the optimizer moments as `optimizer.<index>.exp_avg` / `.exp_avg_sq`, and everything
//! else as JSON in the metadata. Both files are written atomically.

use crate::optim::{AdamState, AdamWConfig};
use crate::{Error, Result};
use candle_core::pickle::{Object, Stack};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;

/// The `lr_sched` entry (`LambdaLR.state_dict()` of `get_constant_schedule_with_warmup`).
#[derive(Debug, Clone, PartialEq)]
pub struct LrSchedState {
    /// `base_lrs[0]`.
    pub base_lr: f64,
    /// `last_epoch`: scheduler steps taken.
    pub last_epoch: usize,
    /// `_step_count`.
    pub step_count: usize,
    /// `_last_lr[0]`.
    pub last_lr: f64,
}

/// What a checkpoint holds.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The state dict, in order.
    pub model: Vec<(String, Tensor)>,
    /// `param_groups[0]` settings and learning rate.
    pub adam: AdamWConfig,
    /// The group's `lr`.
    pub lr: f64,
    /// Number of optimizer parameters (`param_groups[0].params` is `0..n`).
    pub n_params: usize,
    /// `optimizer.state`: per optimizer parameter, its moments when it had a gradient.
    pub state: Vec<Option<AdamState>>,
    /// `lr_sched`.
    pub lr_sched: LrSchedState,
    /// The epoch just finished.
    pub epoch: usize,
    /// The epoch with the lowest eval loss.
    pub best_epoch: usize,
    /// That loss.
    pub min_eval_loss: f64,
    /// `"symbolic"` / `"audio"` for CLaMP 3, none for M3.
    pub modality: Option<String>,
    /// Optimizer steps taken in the run (for an exact resume).
    pub global_step: usize,
    /// The run's seed.
    pub seed: u64,
}

// ---------------------------------------------------------------------------------------------
// Pickle writing (protocol 2, the subset torch.save emits).

mod op {
    pub const PROTO: u8 = 0x80;
    pub const STOP: u8 = b'.';
    pub const MARK: u8 = b'(';
    pub const EMPTY_DICT: u8 = b'}';
    pub const SETITEMS: u8 = b'u';
    pub const EMPTY_LIST: u8 = b']';
    pub const APPENDS: u8 = b'e';
    pub const EMPTY_TUPLE: u8 = b')';
    pub const TUPLE: u8 = b't';
    pub const NONE: u8 = b'N';
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
    pub const BININT: u8 = b'J';
    pub const LONG1: u8 = 0x8a;
    pub const BINFLOAT: u8 = b'G';
    pub const BINUNICODE: u8 = b'X';
    pub const GLOBAL: u8 = b'c';
    pub const REDUCE: u8 = b'R';
    pub const BINPERSID: u8 = b'Q';
}

/// A Python value to pickle.
enum Py {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Py>),
    Tuple(Vec<Py>),
    Dict(Vec<(Py, Py)>),
    OrderedDict(Vec<(Py, Py)>),
    /// A float32 tensor: storage index, shape.
    Tensor(usize, Vec<usize>),
}

struct Pickler {
    out: Vec<u8>,
}

impl Pickler {
    fn global(&mut self, module: &str, name: &str) {
        self.out.push(op::GLOBAL);
        self.out
            .extend_from_slice(format!("{module}\n{name}\n").as_bytes());
    }

    fn str(&mut self, s: &str) {
        self.out.push(op::BINUNICODE);
        self.out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
    }

    fn int(&mut self, v: i64) {
        if let Ok(small) = i32::try_from(v) {
            self.out.push(op::BININT);
            self.out.extend_from_slice(&small.to_le_bytes());
        } else {
            self.out.push(op::LONG1);
            self.out.push(8);
            self.out.extend_from_slice(&v.to_le_bytes());
        }
    }

    fn items(&mut self, items: &[(Py, Py)]) {
        // Batches of 1000 pairs, as Python's pickler writes them.
        for batch in items.chunks(1000) {
            self.out.push(op::MARK);
            for (k, v) in batch {
                self.value(k);
                self.value(v);
            }
            self.out.push(op::SETITEMS);
        }
    }

    fn tuple(&mut self, items: &[Py]) {
        if items.is_empty() {
            self.out.push(op::EMPTY_TUPLE);
            return;
        }
        self.out.push(op::MARK);
        for v in items {
            self.value(v);
        }
        self.out.push(op::TUPLE);
    }

    fn value(&mut self, v: &Py) {
        match v {
            Py::None => self.out.push(op::NONE),
            Py::Bool(b) => self.out.push(if *b { op::NEWTRUE } else { op::NEWFALSE }),
            Py::Int(i) => self.int(*i),
            Py::Float(f) => {
                self.out.push(op::BINFLOAT);
                self.out.extend_from_slice(&f.to_be_bytes());
            }
            Py::Str(s) => self.str(s),
            Py::List(items) => {
                self.out.push(op::EMPTY_LIST);
                if !items.is_empty() {
                    self.out.push(op::MARK);
                    for item in items {
                        self.value(item);
                    }
                    self.out.push(op::APPENDS);
                }
            }
            Py::Tuple(items) => self.tuple(items),
            Py::Dict(items) => {
                self.out.push(op::EMPTY_DICT);
                self.items(items);
            }
            Py::OrderedDict(items) => {
                self.global("collections", "OrderedDict");
                self.out.push(op::EMPTY_TUPLE);
                self.out.push(op::REDUCE);
                self.items(items);
            }
            Py::Tensor(key, shape) => {
                // torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
                // backward_hooks), the storage as persistent id
                // ('storage', torch.FloatStorage, key, 'cpu', numel).
                self.global("torch._utils", "_rebuild_tensor_v2");
                self.out.push(op::MARK);
                self.out.push(op::MARK);
                self.str("storage");
                self.global("torch", "FloatStorage");
                self.str(&key.to_string());
                self.str("cpu");
                self.int(shape.iter().product::<usize>() as i64);
                self.out.push(op::TUPLE);
                self.out.push(op::BINPERSID);
                self.int(0);
                let size: Vec<Py> = shape.iter().map(|&d| Py::Int(d as i64)).collect();
                self.tuple(&size);
                let mut strides = vec![1usize; shape.len()];
                for i in (0..shape.len().saturating_sub(1)).rev() {
                    strides[i] = strides[i + 1] * shape[i + 1];
                }
                let strides: Vec<Py> = strides.iter().map(|&d| Py::Int(d as i64)).collect();
                self.tuple(&strides);
                self.out.push(op::NEWFALSE);
                self.global("collections", "OrderedDict");
                self.out.push(op::EMPTY_TUPLE);
                self.out.push(op::REDUCE);
                self.out.push(op::TUPLE);
                self.out.push(op::REDUCE);
            }
        }
    }
}

fn s(x: &str) -> Py {
    Py::Str(x.to_string())
}

fn f32_bytes(t: &Tensor) -> Result<Vec<u8>> {
    let v = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    Ok(v.iter().flat_map(|x| x.to_le_bytes()).collect())
}

/// Serialises `ckpt` as a `torch.save` zip archive.
pub fn to_pth_bytes(ckpt: &Checkpoint) -> Result<Vec<u8>> {
    let mut storages: Vec<Vec<u8>> = Vec::new();
    let tensor = |t: &Tensor, storages: &mut Vec<Vec<u8>>| -> Result<Py> {
        storages.push(f32_bytes(t)?);
        Ok(Py::Tensor(storages.len() - 1, t.dims().to_vec()))
    };
    let mut model = Vec::new();
    for (name, t) in &ckpt.model {
        model.push((s(name), tensor(t, &mut storages)?));
    }
    let mut state = Vec::new();
    for (i, st) in ckpt.state.iter().enumerate() {
        if let Some(st) = st {
            let step = Tensor::new(st.step, &Device::Cpu)?;
            state.push((
                Py::Int(i as i64),
                Py::Dict(vec![
                    (s("step"), tensor(&step, &mut storages)?),
                    (s("exp_avg"), tensor(&st.exp_avg, &mut storages)?),
                    (s("exp_avg_sq"), tensor(&st.exp_avg_sq, &mut storages)?),
                ]),
            ));
        }
    }
    let a = ckpt.adam;
    let group = Py::Dict(vec![
        (s("lr"), Py::Float(ckpt.lr)),
        (
            s("betas"),
            Py::Tuple(vec![Py::Float(a.betas.0), Py::Float(a.betas.1)]),
        ),
        (s("eps"), Py::Float(a.eps)),
        (s("weight_decay"), Py::Float(a.weight_decay)),
        (s("amsgrad"), Py::Bool(false)),
        (s("foreach"), Py::None),
        (s("maximize"), Py::Bool(false)),
        (s("capturable"), Py::Bool(false)),
        (s("differentiable"), Py::Bool(false)),
        (s("fused"), Py::None),
        (
            s("params"),
            Py::List((0..ckpt.n_params).map(|i| Py::Int(i as i64)).collect()),
        ),
    ]);
    let l = &ckpt.lr_sched;
    let lr_sched = Py::Dict(vec![
        (s("base_lrs"), Py::List(vec![Py::Float(l.base_lr)])),
        (s("last_epoch"), Py::Int(l.last_epoch as i64)),
        (s("verbose"), Py::Bool(false)),
        (s("_step_count"), Py::Int(l.step_count as i64)),
        (s("_get_lr_called_within_step"), Py::Bool(false)),
        (s("_last_lr"), Py::List(vec![Py::Float(l.last_lr)])),
        (s("lr_lambdas"), Py::List(vec![Py::Dict(vec![])])),
    ]);
    let mut top = vec![
        (s("model"), Py::OrderedDict(model)),
        (
            s("optimizer"),
            Py::Dict(vec![
                (s("state"), Py::Dict(state)),
                (s("param_groups"), Py::List(vec![group])),
            ]),
        ),
        (s("lr_sched"), lr_sched),
        (s("epoch"), Py::Int(ckpt.epoch as i64)),
        (s("best_epoch"), Py::Int(ckpt.best_epoch as i64)),
        (s("min_eval_loss"), Py::Float(ckpt.min_eval_loss)),
    ];
    if let Some(m) = &ckpt.modality {
        top.push((s("modality"), s(m)));
    }
    top.push((
        s("trainer"),
        Py::Dict(vec![
            (s("global_step"), Py::Int(ckpt.global_step as i64)),
            (s("seed"), Py::Int(ckpt.seed as i64)),
        ]),
    ));
    let mut p = Pickler {
        out: vec![op::PROTO, 2],
    };
    p.value(&Py::Dict(top));
    p.out.push(op::STOP);

    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .with_alignment(64);
    let zip_err = |e: zip::result::ZipError| Error::Setup(format!("writing a checkpoint: {e}"));
    let io_err = |e: std::io::Error| Error::Setup(format!("writing a checkpoint: {e}"));
    let entry = |zip: &mut zip::ZipWriter<std::io::Cursor<Vec<u8>>>, name: &str, bytes: &[u8]| {
        zip.start_file(format!("archive/{name}"), options)
            .map_err(zip_err)?;
        zip.write_all(bytes).map_err(io_err)
    };
    entry(&mut zip, "data.pkl", &p.out)?;
    entry(&mut zip, "byteorder", b"little")?;
    for (i, bytes) in storages.iter().enumerate() {
        entry(&mut zip, &format!("data/{i}"), bytes)?;
    }
    entry(&mut zip, "version", b"3\n")?;
    Ok(zip.finish().map_err(zip_err)?.into_inner())
}

/// Writes `ckpt` as `.pth`, atomically.
pub fn write_pth(path: &Path, ckpt: &Checkpoint) -> Result<()> {
    clamp3_io::write_atomic(path, &to_pth_bytes(ckpt)?).map_err(crate::error::io_error(path))
}

// ---------------------------------------------------------------------------------------------
// safetensors.

const OPTIMIZER_PREFIX: &str = "optimizer.";

/// Writes `ckpt` as safetensors, atomically.
pub fn write_safetensors(path: &Path, ckpt: &Checkpoint) -> Result<()> {
    let mut tensors: Vec<(String, Tensor)> = ckpt.model.clone();
    let mut steps = serde_json::Map::new();
    for (i, st) in ckpt.state.iter().enumerate() {
        if let Some(st) = st {
            tensors.push((format!("{OPTIMIZER_PREFIX}{i}.exp_avg"), st.exp_avg.clone()));
            tensors.push((
                format!("{OPTIMIZER_PREFIX}{i}.exp_avg_sq"),
                st.exp_avg_sq.clone(),
            ));
            steps.insert(i.to_string(), serde_json::json!(st.step));
        }
    }
    let meta = serde_json::json!({
        "format": "clamp3-train checkpoint 1",
        "order": ckpt.model.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        "lr": ckpt.lr,
        "betas": [ckpt.adam.betas.0, ckpt.adam.betas.1],
        "eps": ckpt.adam.eps,
        "weight_decay": ckpt.adam.weight_decay,
        "n_params": ckpt.n_params,
        "steps": steps,
        "lr_sched": {
            "base_lr": ckpt.lr_sched.base_lr,
            "last_epoch": ckpt.lr_sched.last_epoch,
            "step_count": ckpt.lr_sched.step_count,
            "last_lr": ckpt.lr_sched.last_lr,
        },
        "epoch": ckpt.epoch,
        "best_epoch": ckpt.best_epoch,
        // JSON has no infinity: a string keeps it.
        "min_eval_loss": ckpt.min_eval_loss.to_string(),
        "modality": ckpt.modality,
        "global_step": ckpt.global_step,
        "seed": ckpt.seed.to_string(),
    });
    let metadata = HashMap::from([("clamp3_train".to_string(), meta.to_string())]);
    let cpu: Vec<(String, Tensor)> = tensors
        .into_iter()
        .map(|(n, t)| Ok((n, t.to_dtype(DType::F32)?.to_device(&Device::Cpu)?)))
        .collect::<Result<_>>()?;
    let bytes =
        safetensors::tensor::serialize(cpu.iter().map(|(n, t)| (n.as_str(), t)), Some(metadata))
            .map_err(|e| Error::Setup(format!("writing {}: {e}", path.display())))?;
    clamp3_io::write_atomic(path, &bytes).map_err(crate::error::io_error(path))
}

// ---------------------------------------------------------------------------------------------
// Reading.

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads a checkpoint written by [`write_pth`], [`write_safetensors`] or the reference
/// (`torch.save`; a bare state dict or `{'model': …}` too, then without optimizer state).
pub fn read(path: &Path) -> Result<Checkpoint> {
    let mut magic = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map_err(crate::error::io_error(path))?;
    if &magic == b"PK" {
        read_pth(path)
    } else {
        read_safetensors(path)
    }
}

fn read_safetensors(path: &Path) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(crate::error::io_error(path))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(path, format!("not a safetensors file: {e}")))?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)?;
    let meta: Option<serde_json::Value> = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get("clamp3_train"))
        .and_then(|m| serde_json::from_str(m).ok());
    let Some(meta) = meta else {
        // A plain weight file: the model only.
        let mut model: Vec<(String, Tensor)> = tensors.into_iter().collect();
        model.sort_by(|a, b| a.0.cmp(&b.0));
        return Ok(weights_only(model));
    };
    let num = |k: &str| {
        meta[k]
            .as_f64()
            .ok_or_else(|| bad(path, format!("metadata lacks {k}")))
    };
    let order: Vec<String> = serde_json::from_value(meta["order"].clone())
        .map_err(|e| bad(path, format!("metadata order: {e}")))?;
    let model = order
        .iter()
        .map(|n| {
            tensors
                .get(n)
                .cloned()
                .map(|t| (n.clone(), t))
                .ok_or_else(|| bad(path, format!("missing tensor {n}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let n_params = num("n_params")? as usize;
    let mut state = vec![None; n_params];
    if let Some(steps) = meta["steps"].as_object() {
        for (i, step) in steps {
            let i: usize = i.parse().map_err(|_| bad(path, "bad optimizer index"))?;
            let get = |f: &str| {
                tensors
                    .get(&format!("{OPTIMIZER_PREFIX}{i}.{f}"))
                    .cloned()
                    .ok_or_else(|| bad(path, format!("missing optimizer {i}.{f}")))
            };
            if i >= n_params {
                return Err(bad(path, format!("optimizer index {i} out of range")));
            }
            state[i] = Some(AdamState {
                step: step.as_f64().unwrap_or(0.0) as f32,
                exp_avg: get("exp_avg")?,
                exp_avg_sq: get("exp_avg_sq")?,
            });
        }
    }
    let l = &meta["lr_sched"];
    Ok(Checkpoint {
        model,
        adam: AdamWConfig {
            betas: (
                meta["betas"][0].as_f64().unwrap_or(0.9),
                meta["betas"][1].as_f64().unwrap_or(0.999),
            ),
            eps: num("eps")?,
            weight_decay: num("weight_decay")?,
        },
        lr: num("lr")?,
        n_params,
        state,
        lr_sched: LrSchedState {
            base_lr: l["base_lr"].as_f64().unwrap_or(0.0),
            last_epoch: l["last_epoch"].as_u64().unwrap_or(0) as usize,
            step_count: l["step_count"].as_u64().unwrap_or(0) as usize,
            last_lr: l["last_lr"].as_f64().unwrap_or(0.0),
        },
        epoch: num("epoch")? as usize,
        best_epoch: num("best_epoch")? as usize,
        min_eval_loss: meta["min_eval_loss"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(f64::INFINITY),
        modality: meta["modality"].as_str().map(str::to_string),
        global_step: num("global_step")? as usize,
        seed: meta["seed"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
    })
}

fn weights_only(model: Vec<(String, Tensor)>) -> Checkpoint {
    Checkpoint {
        model,
        adam: AdamWConfig::default(),
        lr: 0.0,
        n_params: 0,
        state: Vec::new(),
        lr_sched: LrSchedState {
            base_lr: 0.0,
            last_epoch: 0,
            step_count: 0,
            last_lr: 0.0,
        },
        epoch: 0,
        best_epoch: 0,
        min_eval_loss: f64::INFINITY,
        modality: None,
        global_step: 0,
        seed: 0,
    }
}

/// A `.pth` archive's pickle and storages.
struct PthReader<'a> {
    path: &'a Path,
    zip: zip::ZipArchive<std::io::BufReader<std::fs::File>>,
    prefix: String,
}

impl PthReader<'_> {
    fn tensor(&mut self, obj: Object) -> Result<Tensor> {
        let path = self.path;
        let not_tensor = || bad(path, "expected a tensor");
        let (callable, args) = obj.reduce().map_err(|_| not_tensor())?;
        match callable {
            Object::Class {
                module_name,
                class_name,
            } if module_name == "torch._utils" && class_name == "_rebuild_tensor_v2" => {}
            _ => return Err(not_tensor()),
        }
        let mut args = args.tuple().map_err(|_| not_tensor())?.into_iter();
        let storage = args.next().ok_or_else(not_tensor)?;
        let offset = args
            .next()
            .ok_or_else(not_tensor)?
            .int_or_long()
            .map_err(|_| not_tensor())?;
        let size: Vec<usize> = args
            .next()
            .ok_or_else(not_tensor)?
            .tuple()
            .map_err(|_| not_tensor())?
            .into_iter()
            .map(|d| d.int_or_long().map(|d| d as usize))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| not_tensor())?;
        let pid = storage
            .persistent_load()
            .and_then(|p| p.tuple())
            .map_err(|_| not_tensor())?;
        let key = pid
            .get(2)
            .cloned()
            .and_then(|k| k.unicode().ok())
            .ok_or_else(not_tensor)?;
        let is_float = matches!(pid.get(1), Some(Object::Class { class_name, .. }) if class_name == "FloatStorage");
        if !is_float {
            return Err(bad(path, "only float32 tensors are supported"));
        }
        let name = format!("{}data/{key}", self.prefix);
        let mut entry = self
            .zip
            .by_name(&name)
            .map_err(|e| bad(path, format!("{name}: {e}")))?;
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(crate::error::io_error(path))?;
        let numel: usize = size.iter().product();
        let start = offset as usize * 4;
        if bytes.len() < start + numel * 4 {
            return Err(bad(path, format!("storage {key} is too short")));
        }
        let values: Vec<f32> = bytes[start..start + numel * 4]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Tensor::from_vec(values, size, &Device::Cpu)?)
    }
}

fn dict(obj: Object) -> Option<Vec<(Object, Object)>> {
    match obj {
        // candle's SETITEMS pops each batch's pairs off the stack, reversing them; pickle batches
        // hold up to 1000 pairs, and no state dict of these models has more.
        Object::Dict(mut items) => {
            items.reverse();
            Some(items)
        }
        // OrderedDict() followed by SETITEMS: candle keeps it as a Reduce with the items in a
        // Build, or as a plain dict depending on the opcodes; accept both.
        Object::Build { args, .. } => dict(*args),
        Object::Reduce { .. } => Some(Vec::new()),
        _ => None,
    }
}

fn as_f64(obj: &Object) -> Option<f64> {
    match obj {
        Object::Float(f) => Some(*f),
        Object::Int(i) => Some(f64::from(*i)),
        Object::Long(l) => Some(*l as f64),
        _ => None,
    }
}

fn read_pth(path: &Path) -> Result<Checkpoint> {
    let file = std::fs::File::open(path).map_err(crate::error::io_error(path))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| bad(path, format!("not a zip checkpoint: {e}")))?;
    let pkl = zip
        .file_names()
        .find(|n| n.ends_with("data.pkl"))
        .map(str::to_string)
        .ok_or_else(|| bad(path, "no data.pkl"))?;
    let prefix = pkl.trim_end_matches("data.pkl").to_string();
    let mut stack = Stack::empty();
    {
        let entry = zip.by_name(&pkl).map_err(|e| bad(path, e.to_string()))?;
        stack.read_loop(&mut std::io::BufReader::new(entry))?;
    }
    let top = stack.finalize()?;
    let mut reader = PthReader { path, zip, prefix };
    let top = dict(top).ok_or_else(|| bad(path, "the pickle is not a dict"))?;
    let mut fields: HashMap<String, Object> = HashMap::new();
    let mut bare_state = Vec::new();
    for (k, v) in top {
        if let Ok(k) = k.unicode() {
            fields.insert(k.clone(), v.clone());
            bare_state.push((k, v));
        }
    }
    let model_obj = match fields.remove("model") {
        Some(m) => m,
        // A bare state dict.
        None => Object::Dict(
            bare_state
                .into_iter()
                .map(|(k, v)| (Object::Unicode(k), v))
                .collect(),
        ),
    };
    let mut model = Vec::new();
    for (k, v) in dict(model_obj).ok_or_else(|| bad(path, "model is not a dict"))? {
        let name = k
            .unicode()
            .map_err(|_| bad(path, "a non-string state-dict key"))?;
        // `state_dict()._metadata` (module versions), pickled as the OrderedDict's state.
        if name == "_metadata" {
            continue;
        }
        model.push((name, reader.tensor(v)?));
    }
    let mut ckpt = weights_only(model);
    let num = |fields: &HashMap<String, Object>, k: &str| fields.get(k).and_then(as_f64);
    ckpt.epoch = num(&fields, "epoch").unwrap_or(0.0) as usize;
    ckpt.best_epoch = num(&fields, "best_epoch").unwrap_or(0.0) as usize;
    ckpt.min_eval_loss = num(&fields, "min_eval_loss").unwrap_or(f64::INFINITY);
    ckpt.modality = fields
        .get("modality")
        .cloned()
        .and_then(|m| m.unicode().ok());
    if let Some(trainer) = fields.remove("trainer").and_then(dict) {
        for (k, v) in trainer {
            match (k.unicode().ok().as_deref(), as_f64(&v)) {
                (Some("global_step"), Some(x)) => ckpt.global_step = x as usize,
                (Some("seed"), Some(x)) => ckpt.seed = x as u64,
                _ => {}
            }
        }
    }
    if let Some(optimizer) = fields.remove("optimizer").and_then(dict) {
        let mut state_obj = None;
        for (k, v) in optimizer {
            match k.unicode().ok().as_deref() {
                Some("state") => state_obj = dict(v),
                Some("param_groups") => {
                    if let Object::List(groups) = v {
                        if let Some(group) = groups.into_iter().next().and_then(dict) {
                            for (gk, gv) in group {
                                match gk.unicode().ok().as_deref() {
                                    Some("lr") => ckpt.lr = as_f64(&gv).unwrap_or(0.0),
                                    Some("eps") => ckpt.adam.eps = as_f64(&gv).unwrap_or(1e-8),
                                    Some("weight_decay") => {
                                        ckpt.adam.weight_decay = as_f64(&gv).unwrap_or(0.01)
                                    }
                                    Some("betas") => {
                                        if let Ok(b) = gv.tuple() {
                                            if let (Some(b1), Some(b2)) = (
                                                b.first().and_then(as_f64),
                                                b.get(1).and_then(as_f64),
                                            ) {
                                                ckpt.adam.betas = (b1, b2);
                                            }
                                        }
                                    }
                                    Some("params") => {
                                        if let Object::List(p) = gv {
                                            ckpt.n_params = p.len();
                                        }
                                    }
                                    _ => {}
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        ckpt.state = vec![None; ckpt.n_params];
        for (k, v) in state_obj.unwrap_or_default() {
            let i = as_f64(&k).ok_or_else(|| bad(path, "a non-integer optimizer index"))? as usize;
            if i >= ckpt.n_params {
                return Err(bad(path, format!("optimizer index {i} out of range")));
            }
            let mut step = 0f32;
            let (mut m, mut v2) = (None, None);
            for (f, t) in dict(v).ok_or_else(|| bad(path, "optimizer state is not a dict"))? {
                match f.unicode().ok().as_deref() {
                    Some("step") => {
                        step = match as_f64(&t) {
                            Some(x) => x as f32,
                            None => reader.tensor(t)?.flatten_all()?.to_vec1::<f32>()?[0],
                        }
                    }
                    Some("exp_avg") => m = Some(reader.tensor(t)?),
                    Some("exp_avg_sq") => v2 = Some(reader.tensor(t)?),
                    _ => {}
                }
            }
            if let (Some(exp_avg), Some(exp_avg_sq)) = (m, v2) {
                ckpt.state[i] = Some(AdamState {
                    step,
                    exp_avg,
                    exp_avg_sq,
                });
            }
        }
    }
    if let Some(l) = fields.remove("lr_sched").and_then(dict) {
        for (k, v) in l {
            let first = |v: &Object| match v {
                Object::List(items) => items.first().and_then(as_f64),
                _ => None,
            };
            match k.unicode().ok().as_deref() {
                Some("base_lrs") => ckpt.lr_sched.base_lr = first(&v).unwrap_or(0.0),
                Some("_last_lr") => ckpt.lr_sched.last_lr = first(&v).unwrap_or(0.0),
                Some("last_epoch") => ckpt.lr_sched.last_epoch = as_f64(&v).unwrap_or(0.0) as usize,
                Some("_step_count") => {
                    ckpt.lr_sched.step_count = as_f64(&v).unwrap_or(0.0) as usize
                }
                _ => {}
            }
        }
    }
    Ok(ckpt)
}

/// The model tensors of a checkpoint as a map (for [`crate::params::ParamStore`]).
pub fn model_map(ckpt: &Checkpoint) -> HashMap<String, Tensor> {
    ckpt.model
        .iter()
        .filter(|(n, _)| !n.starts_with(OPTIMIZER_PREFIX))
        .cloned()
        .collect()
}
