//! The reference's training, step by step: every case of the training goldens
//! (`shared/golden/train`, made by `tools/golden/make_train.py` running the unmodified
//! `train_clamp3_symbolic.py`, `train_clamp3_audio.py` and `train_m3.py` on CPU in float32).
//! The folder is `CLAMP3_TRAIN_GOLDEN` when set, else `tests/fixtures/golden`.
//!
//! Recipe (the goldens' README, "Training cases"): start weights, freeze list, AdamW in
//! `optimizer_param_order`, the same batch for K steps; compare losses, step-0 gradients, the
//! global gradient norm, the weights and Adam moments after K steps, the decay-only elements and
//! the eval loss after.

mod util;

use candle_core::{Device, Tensor};
use clamp3_models::config::BertConfig;
use clamp3_train::arch::{
    clamp3_frozen_modules, clip_loss, m3_loss, Clamp3Arch, Clamp3Batch, Clamp3Forward, Dropout,
    Gpt2Config, M3Arch, M3Batch, MusicInput,
};
use clamp3_train::layers::Ctx;
use clamp3_train::optim::{collect_grads, global_norm, AdamW, AdamWConfig, Grads, LrSchedule};
use clamp3_train::params::ParamStore;
use std::collections::HashMap;
use util::*;

/// Loss per step and eval loss: relative (README §3).
const LOSS_REL: f64 = 1e-5;
/// Step-0 gradients: absolute, or relative to the tensor's max |g|.
const GRAD_ABS: f32 = 1e-6;
const GRAD_REL_TO_MAX: f32 = 1e-3;
/// Weights and Adam moments after K steps.
const PARAM_ABS: f32 = 1e-5;
/// `final_stats.json` sums.
const STATS_REL: f64 = 1e-5;

enum Kind {
    M3,
    Symbolic,
    Audio,
}

struct Case {
    name: &'static str,
    kind: Kind,
    freeze_text: bool,
    from_m3: bool,
    warmup: bool,
}

fn clamp3_arch() -> Clamp3Arch {
    let cfg = json("config.json");
    Clamp3Arch::from_json(&cfg["clamp3"].to_string()).expect("clamp3 config")
}

fn m3_arch() -> M3Arch {
    let cfg = json("config.json");
    let encoder: BertConfig =
        serde_json::from_value(cfg["clamp3"]["symbolic_model"].clone()).expect("encoder");
    let decoder: Gpt2Config = serde_json::from_value(cfg["m3"]["decoder"].clone()).expect("gpt2");
    M3Arch {
        encoder,
        encoder_dropout: Dropout::from_json(&cfg["clamp3"]["symbolic_model"]),
        decoder,
        patch_size: cfg["m3"]["patch_size"].as_u64().expect("patch size") as usize,
        patch_length: cfg["m3"]["patch_length"].as_u64().expect("patch length") as usize,
    }
}

fn clamp3_batch(modality: &str) -> Clamp3Batch {
    let dir = format!("batches/clamp3_{modality}");
    let music = npy(&format!("{dir}/music_inputs.npy"));
    Clamp3Batch {
        text_ids: npy(&format!("{dir}/text_inputs.npy")),
        text_masks: npy(&format!("{dir}/text_masks.npy")),
        music: if modality == "audio" {
            MusicInput::Features(music)
        } else {
            MusicInput::Patches(music)
        },
        music_masks: npy(&format!("{dir}/music_masks.npy")),
    }
}

fn m3_batch(patch_size: usize) -> M3Batch {
    let input = npy("batches/m3/input_patches.npy");
    let (b, flat) = input.dims2().expect("2d");
    let n = flat / patch_size;
    let masks = npy("batches/m3/input_masks.npy")
        .to_dtype(candle_core::DType::F32)
        .expect("f32");
    let selected = npy("batches/m3/selected_indices.npy")
        .to_vec2::<f32>()
        .expect("selected")
        .into_iter()
        .map(|row| row.into_iter().map(|x| x > 0.5).collect())
        .collect();
    let targets = npy("batches/m3/target_patches.npy")
        .reshape((b, n, patch_size))
        .expect("reshape")
        .to_vec3::<u32>()
        .expect("targets");
    M3Batch {
        input_patches: input.reshape((b, n, patch_size)).expect("reshape"),
        input_masks: masks,
        selected,
        target_patches: targets,
    }
}

fn run(case: &Case) {
    let result = json(&format!("cases/{}/result.json", case.name));
    let training = json("config.json")["training"].clone();
    let device = Device::Cpu;
    let origin = golden_dir().join("clamp3_init.pth");
    let (clamp3, m3) = (clamp3_arch(), m3_arch());
    let (mut store, lr) = match case.kind {
        Kind::M3 => {
            let init = pth_model("m3_init.pth");
            let store = ParamStore::from_state_dict(&m3.param_spec(), &init, &origin, &device)
                .expect("m3 store");
            (store, training["m3_learning_rate"].as_f64().expect("lr"))
        }
        _ => {
            let mut init = pth_model("clamp3_init.pth");
            if case.from_m3 {
                for (name, t) in pth_model("m3_after3.pth") {
                    if let Some(rest) = name.strip_prefix("encoder.") {
                        init.insert(format!("symbolic_model.{rest}"), t);
                    }
                }
            }
            let store = ParamStore::from_state_dict(&clamp3.param_spec(), &init, &origin, &device)
                .expect("clamp3 store");
            (
                store,
                training["clamp3_learning_rate"].as_f64().expect("lr"),
            )
        }
    };
    match case.kind {
        Kind::M3 => {}
        Kind::Symbolic => store.set_frozen(&clamp3_frozen_modules(false, case.freeze_text)),
        Kind::Audio => store.set_frozen(&clamp3_frozen_modules(true, case.freeze_text)),
    }
    let order: Vec<&str> = store.trainable().map(|(_, p)| p.name.as_str()).collect();
    let expected_order: Vec<&str> = result["optimizer_param_order"]
        .as_array()
        .expect("order")
        .iter()
        .map(|v| v.as_str().expect("name"))
        .collect();
    assert_eq!(order, expected_order, "optimizer parameter order");
    // A deep copy: the optimizer updates the variables' storage in place.
    let initial: HashMap<String, Tensor> = store
        .state_dict()
        .into_iter()
        .map(|(n, t)| (n, t.copy().expect("copy")))
        .collect();

    let schedule = if case.warmup {
        LrSchedule::Warmup {
            lr,
            warmup_steps: training["warmup_case_warmup_steps"]
                .as_u64()
                .expect("warm-up steps") as usize,
        }
    } else {
        LrSchedule::Constant { lr }
    };
    let mut adam = AdamW::new(AdamWConfig::default(), order.len());
    let losses = result["losses"].as_array().expect("losses");
    let steps = losses.len();
    let forward_loss = |store: &ParamStore, train: bool| -> Tensor {
        let ctx = if train {
            Ctx::train(store, 0, &[])
        } else {
            Ctx::eval(store)
        };
        match case.kind {
            Kind::M3 => m3_loss(&ctx, &m3, &m3_batch(m3.patch_size)).expect("m3 loss"),
            Kind::Symbolic | Kind::Audio => {
                let modality = if matches!(case.kind, Kind::Audio) {
                    "audio"
                } else {
                    "symbolic"
                };
                let batch = clamp3_batch(modality);
                let f = Clamp3Forward { arch: &clamp3 };
                let t = f
                    .text_features(&ctx, &batch.text_ids, &batch.text_masks)
                    .expect("text");
                let m = f
                    .music_features(&ctx, &batch.music, &batch.music_masks)
                    .expect("music");
                clip_loss(&t, &m, 1.0).expect("loss")
            }
        }
    };
    // Per trainable parameter: whether each element's gradient was exactly 0 at every step.
    let mut zero_grad_everywhere: Vec<Option<Vec<bool>>> = vec![None; order.len()];
    let mut used_lrs = Vec::new();
    for (k, expected) in losses.iter().enumerate() {
        let loss = forward_loss(&store, true);
        let got = f64::from(loss.to_scalar::<f32>().expect("scalar"));
        let want = expected.as_f64().expect("loss");
        assert!(
            rel(got, want) <= LOSS_REL,
            "{} step {k}: loss {got} vs {want}",
            case.name
        );
        let grads: Grads = collect_grads(&store, &loss.backward().expect("backward"));
        let norm = global_norm(&grads).expect("norm");
        let want_norm = result["global_grad_norm"][k].as_f64().expect("norm");
        assert!(
            rel(norm, want_norm) <= LOSS_REL,
            "{} step {k}: grad norm {norm} vs {want_norm}",
            case.name
        );
        if k == 0 {
            check_step0_grads(case, &store, &grads, &result);
        }
        for (slot, g) in grads.iter().enumerate() {
            if let Some(g) = g {
                let zeros: Vec<bool> = values(g).iter().map(|&x| x == 0.0).collect();
                let merged = match zero_grad_everywhere[slot].take() {
                    None if k == 0 => zeros,
                    None => vec![false; zeros.len()],
                    Some(prev) => prev.iter().zip(&zeros).map(|(a, b)| *a && *b).collect(),
                };
                zero_grad_everywhere[slot] = Some(merged);
            }
        }
        let step_lr = schedule.lr(k);
        used_lrs.push(step_lr);
        let want_lr = result["lrs"][k].as_f64().expect("lr");
        assert!(
            (step_lr - want_lr).abs() <= 1e-12 * want_lr.max(1.0),
            "lr step {k}"
        );
        adam.step(&store, &grads, step_lr).expect("adam step");
    }

    let noise: HashMap<String, String> = result["noise_dominated"]
        .as_object()
        .expect("noise")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("all").to_string()))
        .collect();
    let noise_tolerance = steps as f32 * lr as f32 * 1.01;
    let now: HashMap<String, Tensor> = store.state_dict().into_iter().collect();
    let finals = match case.kind {
        Kind::M3 => pth_model("m3_after3.pth"),
        _ => {
            let full = golden_dir().join(format!("cases/{}/final_params.safetensors", case.name));
            if full.exists() {
                safetensors(&format!("cases/{}/final_params.safetensors", case.name))
            } else {
                safetensors(&format!(
                    "cases/{}/final_params_subset.safetensors",
                    case.name
                ))
            }
        }
    };
    assert!(!finals.is_empty());
    for (name, want) in &finals {
        let got = &now[name];
        check_params(name, got, want, noise.get(name), noise_tolerance, case.name);
    }

    // Adam moments and step counts.
    let opt = safetensors(&format!("cases/{}/optimizer_state.safetensors", case.name));
    for (key, want) in &opt {
        let (param, field) = key.rsplit_once('.').expect("key");
        let slot = order
            .iter()
            .position(|n| *n == param)
            .expect("param in optimizer");
        let state = adam.state[slot].as_ref().expect("state");
        let got = match field {
            "exp_avg" => state.exp_avg.clone(),
            "exp_avg_sq" => state.exp_avg_sq.clone(),
            "step" => Tensor::new(&[state.step], &device).expect("step"),
            other => panic!("unknown optimizer field {other}"),
        };
        let tol = if field == "exp_avg_sq" {
            1e-9
        } else {
            PARAM_ABS
        };
        let diff = max_abs_diff(&got, want);
        assert!(diff <= tol, "{}: {key} differs by {diff}", case.name);
    }
    // Parameters without a gradient have no state.
    for name in result["params_without_grad"].as_array().expect("list") {
        let name = name.as_str().expect("name");
        if let Some(slot) = order.iter().position(|n| *n == name) {
            assert!(
                adam.state[slot].is_none(),
                "{name} must have no optimizer state"
            );
        }
    }

    // Statistics of every tensor of the state dict; frozen ones are unchanged.
    let stats = json(&format!("cases/{}/final_stats.json", case.name));
    let frozen: Vec<&str> = result["frozen"]
        .as_array()
        .expect("frozen")
        .iter()
        .map(|v| v.as_str().expect("name"))
        .collect();
    for (name, want) in stats.as_object().expect("stats") {
        let got = &now[name];
        let v = values(got);
        let sum: f64 = v.iter().map(|&x| f64::from(x)).sum();
        let sumsq: f64 = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        let want_sum = want["sum"].as_f64().expect("sum");
        let want_sumsq = want["sumsq"].as_f64().expect("sumsq");
        let scale = want_sumsq.sqrt().max(1.0) * (v.len() as f64).sqrt();
        assert!(
            (sum - want_sum).abs() <= STATS_REL * scale,
            "{}: {name} sum {sum} vs {want_sum}",
            case.name
        );
        assert!(
            rel(sumsq, want_sumsq) <= STATS_REL,
            "{}: {name} sumsq",
            case.name
        );
        if frozen.contains(&name.as_str()) {
            assert_eq!(
                max_abs_diff(got, &initial[name]),
                0.0,
                "frozen {name} changed"
            );
        }
    }

    // Elements whose gradient was exactly 0 at every step end at init * Π(1 - lr_k * wd).
    let decay_only = result["decay_only_elements"].as_object().expect("decay");
    for (slot, name) in order.iter().enumerate() {
        let count = zero_grad_everywhere[slot]
            .as_ref()
            .map_or(0, |z| z.iter().filter(|&&b| b).count());
        let want = decay_only.get(*name).and_then(|v| v.as_u64()).unwrap_or(0) as usize;
        assert_eq!(count, want, "{}: decay-only elements of {name}", case.name);
        if let Some(zero) = &zero_grad_everywhere[slot] {
            let start = values(&initial[*name]);
            let end = values(&now[*name]);
            for (i, _) in zero.iter().enumerate().filter(|(_, &z)| z) {
                let mut x = start[i];
                for &step_lr in &used_lrs {
                    x *= (1.0 - step_lr * 0.01) as f32;
                }
                assert_eq!(end[i], x, "{}: decay-only element {i} of {name}", case.name);
            }
        }
    }

    let eval = f64::from(
        forward_loss(&store, false)
            .to_scalar::<f32>()
            .expect("scalar"),
    );
    let want_eval = result["eval_loss_after"].as_f64().expect("eval loss");
    assert!(
        rel(eval, want_eval) <= LOSS_REL,
        "{}: eval loss {eval} vs {want_eval}",
        case.name
    );
}

fn check_step0_grads(case: &Case, store: &ParamStore, grads: &Grads, result: &serde_json::Value) {
    let golden = safetensors(&format!("cases/{}/grads_step0.safetensors", case.name));
    assert!(!golden.is_empty());
    let slots: HashMap<&str, usize> = store
        .trainable()
        .enumerate()
        .map(|(slot, (_, p))| (p.name.as_str(), slot))
        .collect();
    for (name, want) in &golden {
        let got = grads[slots[name.as_str()]].as_ref().expect("gradient");
        let max = values(want).iter().fold(0f32, |m, x| m.max(x.abs()));
        let diff = max_abs_diff(got, want);
        assert!(
            diff <= GRAD_ABS || diff <= GRAD_REL_TO_MAX * max,
            "{}: step-0 gradient of {name} differs by {diff} (max {max})",
            case.name
        );
    }
    // Parameters upstream leaves without a gradient get none here either.
    let per_tensor = result["grad_norm_per_tensor_step0"]
        .as_object()
        .expect("norms");
    for (name, stats) in per_tensor {
        let got = grads[slots[name.as_str()]].as_ref();
        assert_eq!(
            got.is_none(),
            stats.is_null(),
            "{}: gradient presence of {name}",
            case.name
        );
    }
}

fn check_params(
    name: &str,
    got: &Tensor,
    want: &Tensor,
    noise: Option<&String>,
    noise_tolerance: f32,
    case: &str,
) {
    let (g, w) = (values(got), values(want));
    assert_eq!(got.dims(), want.dims(), "{case}: shape of {name}");
    let h = g.len() / 3;
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let noisy = match noise.map(String::as_str) {
            Some("all") => true,
            Some(slice) if slice.starts_with("middle third") => i >= h && i < 2 * h,
            _ => false,
        };
        let tol = if noisy { noise_tolerance } else { PARAM_ABS };
        assert!((a - b).abs() <= tol, "{case}: {name}[{i}] {a} vs {b}");
    }
}

macro_rules! case {
    ($test:ident, $name:literal, $kind:expr, $freeze:expr, $m3:expr, $warmup:expr) => {
        #[test]
        fn $test() {
            run(&Case {
                name: $name,
                kind: $kind,
                freeze_text: $freeze,
                from_m3: $m3,
                warmup: $warmup,
            });
        }
    };
}

case!(m3, "m3", Kind::M3, false, false, false);
case!(
    clamp3_symbolic,
    "clamp3_symbolic",
    Kind::Symbolic,
    false,
    false,
    false
);
case!(
    clamp3_symbolic_from_m3,
    "clamp3_symbolic_from_m3",
    Kind::Symbolic,
    false,
    true,
    false
);
case!(
    clamp3_symbolic_freeze_text,
    "clamp3_symbolic_freeze_text",
    Kind::Symbolic,
    true,
    false,
    false
);
case!(
    clamp3_audio,
    "clamp3_audio",
    Kind::Audio,
    false,
    false,
    false
);
case!(
    clamp3_audio_freeze_text,
    "clamp3_audio_freeze_text",
    Kind::Audio,
    true,
    false,
    false
);
case!(
    clamp3_audio_warmup,
    "clamp3_audio_warmup",
    Kind::Audio,
    false,
    false,
    true
);
