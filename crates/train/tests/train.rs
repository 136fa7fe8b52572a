//! Data preparation, checkpoints and the training loop, checked against the training goldens'
//! data-prep files (`shared/golden/train/data_prep`, made by the reference's own functions) and
//! by running small trainings end to end.

mod util;

use candle_core::{Device, Tensor};
use clamp3_train::arch::{Clamp3Arch, Dropout, M3Arch};
use clamp3_train::checkpoint;
use clamp3_train::data::{self, Mode, MusicKind};
use clamp3_train::optim::AdamWConfig;
use clamp3_train::params::ParamStore;
use clamp3_train::rng::Rng;
use clamp3_train::trainer::{self, Clamp3Task, LrChoice, M3Task, TrainConfig, Trainer};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use util::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn gunzip(path: &Path) -> String {
    let mut s = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("open"))
        .read_to_string(&mut s)
        .expect("gunzip");
    s
}

fn tokenizer() -> clamp3_features::TextTokenizer {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, gunzip(&fixtures().join("tokenizer.json.gz"))).expect("write");
    clamp3_features::text::load_tokenizer(&path).expect("tokenizer")
}

fn tiny_arch() -> Clamp3Arch {
    Clamp3Arch::from_json(&json("config.json")["clamp3"].to_string()).expect("config")
}

#[test]
fn candidate_lines_match_the_reference() {
    let text = gunzip(&golden_dir().join("data_prep/text_candidates.jsonl.gz"));
    let mut checked = 0;
    for line in text.lines() {
        let expected: serde_json::Value = serde_json::from_str(line).expect("json");
        let source = golden_dir()
            .join("data")
            .join(expected["source"].as_str().expect("source"));
        let jsonl = std::fs::read_to_string(&source).expect("jsonl");
        let id = expected["id"].as_str().expect("id");
        let (n, raw) = jsonl
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains(&format!("\"id\": \"{id}\"")))
            .expect("item line");
        let item = data::parse_item(raw, &source, n + 1).expect("item");
        for (branch, fields) in [
            ("translations_branch", &item.translations),
            ("original_branch", &item.original),
        ] {
            let want = &expected[branch]["lines_sorted"];
            if want.is_null() {
                continue;
            }
            let mut distinct: Vec<&str> = Vec::new();
            for f in fields {
                if !distinct.contains(&f.as_str()) {
                    distinct.push(f);
                }
            }
            let joined = distinct.join("\n");
            let mut lines: Vec<&str> = joined.split('\n').collect();
            lines.sort_unstable();
            let want: Vec<&str> = want
                .as_array()
                .expect("lines")
                .iter()
                .map(|v| v.as_str().expect("line"))
                .collect();
            if branch == "translations_branch" && fields.is_empty() {
                // No usable translation: the reference falls back to the original branch.
                continue;
            }
            assert_eq!(lines, want, "{id} {branch}");
            checked += 1;
        }
    }
    assert!(checked >= 16, "only {checked} branches checked");
}

#[test]
fn train_text_keeps_whole_lines_of_one_branch() {
    let source = golden_dir().join("data/train.jsonl");
    let loaded = data::load_jsonl(&source, true).expect("load");
    assert_eq!(loaded.items.len(), 8);
    let mut rng = Rng::stream(3, &[]);
    for item in &loaded.items {
        let all: Vec<String> = item
            .translations
            .iter()
            .chain(&item.original)
            .flat_map(|f| f.split('\n').map(str::to_string))
            .collect();
        for _ in 0..20 {
            let text = data::train_text(item, &mut rng);
            for part in text.split("</s>").filter(|p| !p.is_empty()) {
                assert!(
                    all.iter().any(|l| l == part),
                    "{}: {part:?} is not a line",
                    item.id
                );
            }
        }
    }
}

#[test]
fn remove_instrument_info_matches_the_reference() {
    let dir = golden_dir().join("data/music");
    let clean = golden_dir().join("data_prep/remove_instrument_info");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("music") {
        let path = entry.expect("entry").path();
        let stem = path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .to_string();
        let ext = path.extension().expect("ext").to_string_lossy().to_string();
        let want =
            std::fs::read_to_string(clean.join(format!("{stem}.clean.{ext}"))).expect("clean");
        let text = std::fs::read_to_string(&path)
            .expect("music")
            .replace("\r\n", "\n");
        assert_eq!(
            data::remove_instrument_info(&text),
            want,
            "{}",
            path.display()
        );
        n += 1;
    }
    assert_eq!(n, 13);
}

#[test]
fn bad_lines_are_reported_by_file_and_line() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("a.abc"), "X:1\nK:C\nCDEF|\n").expect("abc");
    let jsonl = dir.path().join("train.jsonl");
    std::fs::write(
        &jsonl,
        "{\"filepaths\": [\"a.abc\"], \"analysis\": \"ok\"}\nnot json\n\n{\"analysis\": \"no files\"}\n{\"filepaths\": [\"missing.abc\"]}\n",
    )
    .expect("jsonl");
    let loaded = data::load_jsonl(&jsonl, false).expect("load");
    assert_eq!(loaded.items.len(), 1);
    let messages: Vec<String> = loaded.skipped.iter().map(|e| e.to_string()).collect();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(messages[0].contains("train.jsonl:2:"), "{}", messages[0]);
    assert!(messages[1].contains(":4:") && messages[1].contains("filepaths"));
    assert!(messages[2].contains(":5:") && messages[2].contains("missing.abc"));
    assert!(
        data::load_jsonl(&jsonl, true).is_err(),
        "--strict fails on the first bad line"
    );
}

#[test]
fn m3_masking_selects_ceil_ratio_and_keeps_targets() {
    let path = golden_dir().join("data/music/bwv66.6.abc");
    for seed in 0..20 {
        let mut rng = Rng::stream(seed, &[]);
        let item = data::m3_item(&path, 24, 0.45, Mode::Train, &mut rng).expect("item");
        let n = item.target.len();
        assert_eq!(
            item.selected.iter().filter(|&&s| s).count(),
            (0.45 * n as f64).ceil() as usize
        );
        for ((input, target), &s) in item.input.iter().zip(&item.target).zip(&item.selected) {
            if !s {
                assert_eq!(input, target);
            } else if input != target && input != &[data::MASK_ID; 64] {
                let (mut a, mut b) = (input.to_vec(), target.to_vec());
                a.sort_unstable();
                b.sort_unstable();
                assert_eq!(a, b, "a shuffled patch keeps its characters");
                assert_eq!(input[0], target[0]);
            }
        }
    }
    let mut rng = Rng::stream(0, &[]);
    let eval = data::m3_item(&path, 24, 0.45, Mode::Eval, &mut rng).expect("eval");
    assert_eq!(eval.input, eval.target, "eval mode does not mask");
}

#[test]
fn pth_reader_reads_the_reference_m3_checkpoint_and_roundtrips_our_writer() {
    let ckpt = checkpoint::read(&golden_dir().join("m3_after3.pth")).expect("read");
    assert_eq!(ckpt.epoch, 1);
    assert_eq!(ckpt.model.len(), 70);
    let result = json("cases/m3/result.json");
    let order: Vec<&str> = result["optimizer_param_order"]
        .as_array()
        .expect("order")
        .iter()
        .map(|v| v.as_str().expect("name"))
        .collect();
    assert_eq!(ckpt.n_params, order.len());
    let opt = safetensors("cases/m3/optimizer_state.safetensors");
    for (key, want) in &opt {
        let (param, field) = key.rsplit_once('.').expect("key");
        let slot = order.iter().position(|n| *n == param).expect("slot");
        let state = ckpt.state[slot].as_ref().expect("state");
        match field {
            "exp_avg" => assert_eq!(max_abs_diff(&state.exp_avg, want), 0.0),
            "exp_avg_sq" => assert_eq!(max_abs_diff(&state.exp_avg_sq, want), 0.0),
            _ => assert_eq!(state.step, values(want)[0]),
        }
    }
    // Our writer, read back by our reader and by candle's (what `clamp3 embed` uses).
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("m3.pth");
    checkpoint::write_pth(&out, &ckpt).expect("write");
    let back = checkpoint::read(&out).expect("read back");
    assert_eq!(back.epoch, ckpt.epoch);
    assert_eq!(back.min_eval_loss, ckpt.min_eval_loss);
    assert_eq!(back.lr_sched, ckpt.lr_sched);
    assert_eq!(back.n_params, ckpt.n_params);
    let names =
        |c: &checkpoint::Checkpoint| c.model.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&ckpt), names(&back), "state-dict order");
    for ((a, b), (c, d)) in ckpt.model.iter().zip(&back.model) {
        assert_eq!(a, c);
        assert_eq!(max_abs_diff(b, d), 0.0);
    }
    for (a, b) in ckpt.state.iter().zip(&back.state) {
        match (a, b) {
            (Some(a), Some(b)) => {
                assert_eq!(a.step, b.step);
                assert_eq!(max_abs_diff(&a.exp_avg_sq, &b.exp_avg_sq), 0.0);
            }
            (None, None) => {}
            _ => panic!("optimizer state presence differs"),
        }
    }
    let candle: HashMap<String, Tensor> =
        candle_core::pickle::read_all_with_key(&out, Some("model"))
            .expect("candle reads it")
            .into_iter()
            .collect();
    assert_eq!(candle.len(), 70);
    let st = dir.path().join("m3.safetensors");
    checkpoint::write_safetensors(&st, &ckpt).expect("safetensors");
    let back = checkpoint::read(&st).expect("read safetensors");
    assert_eq!(back.model.len(), 70);
    assert_eq!(
        back.state.iter().flatten().count(),
        ckpt.state.iter().flatten().count()
    );
}

/// A tiny CLaMP 3 run directory from the first WikiMT pieces: `n` items, text = the description.
fn wikimt_jsonl(dir: &Path, n: usize) -> PathBuf {
    let pieces: serde_json::Value =
        serde_json::from_str(&gunzip(&fixtures().join("wikimt64.json.gz"))).expect("wikimt");
    let mut lines = String::new();
    for (i, piece) in pieces.as_array().expect("list").iter().take(n).enumerate() {
        let name = format!("{i:04}.abc");
        std::fs::write(dir.join(&name), piece["music"].as_str().expect("music")).expect("abc");
        let item = serde_json::json!({
            "id": i.to_string(),
            "filepaths": [name],
            "title": piece["title"],
            "analysis": piece["text"],
        });
        lines.push_str(&item.to_string());
        lines.push('\n');
    }
    let path = dir.join("train.jsonl");
    std::fs::write(&path, lines).expect("jsonl");
    path
}

fn small_config(out: &Path, epochs: usize) -> TrainConfig {
    TrainConfig {
        lr: 3e-3,
        batch_size: 8,
        micro_batch: None,
        epochs,
        warmup_steps: 0,
        lr_choice: LrChoice::Warmup,
        save_every: 0,
        seed: 7,
        dropout: false,
        reset_optimizer_on_resume: false,
        adam: AdamWConfig::default(),
        out_dir: out.to_path_buf(),
    }
}

fn wikimt_trainer(dir: &Path, out: &Path, epochs: usize, n: usize) -> Trainer<Clamp3Task> {
    let arch = Clamp3Arch::with_dropout(tiny_arch().config, Dropout::NONE);
    let jsonl = wikimt_jsonl(dir, n);
    let loaded = data::load_jsonl(&jsonl, true).expect("load");
    let (train, eval) = trainer::split_eval(loaded.items, None, 0.125, 7);
    let mut store = ParamStore::random(&arch.param_spec(), 0.02, 1, &Device::Cpu).expect("random");
    store.set_frozen(&clamp3_train::arch::clamp3_frozen_modules(false, false));
    let task = Clamp3Task {
        arch,
        kind: MusicKind::Symbolic,
        tokenizer: tokenizer(),
        logit_scale: 1.0,
        text_dropout: false,
    };
    Trainer::new(task, store, small_config(out, epochs), train, eval)
}

#[test]
fn wikimt_fine_tune_lowers_eval_loss_and_beats_chance() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("run");
    let mut t = wikimt_trainer(dir.path(), &out, 6, 64);
    assert_eq!((t.train.len(), t.eval.len()), (56, 8));
    let (before, _) = t.evaluate().expect("eval");
    let mut logs = Vec::new();
    t.run(&mut |_| {}, &mut |log| logs.push(log.clone()))
        .expect("train");
    // A tiny model on 56 pieces overfits after a few epochs; the best epoch is what is kept.
    let best = logs
        .iter()
        .min_by(|a, b| a.eval_loss.partial_cmp(&b.eval_loss).expect("finite"))
        .expect("log");
    let (before, after) = (
        before.expect("eval loss"),
        best.eval_loss.expect("eval loss"),
    );
    assert!(after < before - 0.03, "eval loss {before} -> {after}");
    // Chance MRR over 8 candidates: (1/8) Σ 1/k ≈ 0.34.
    let chance: f64 = (1..=8).map(|k| 1.0 / k as f64).sum::<f64>() / 8.0;
    let mrr = best.eval_mrr.expect("mrr");
    assert!(mrr > chance + 0.05, "eval MRR {mrr} (chance {chance})");
    assert_eq!(t.best_epoch, best.epoch);
    let log = std::fs::read_to_string(out.join("log.jsonl")).expect("log file");
    assert_eq!(log.lines().count(), 6);
    assert!(out.join("best.pth").exists() && out.join("best.safetensors").exists());
}

#[test]
fn resume_continues_bit_for_bit() {
    let dir = tempfile::tempdir().expect("tmp");
    let straight_out = dir.path().join("straight");
    let mut straight = wikimt_trainer(dir.path(), &straight_out, 2, 16);
    straight.cfg.dropout = true;
    straight.task.text_dropout = true;
    straight.task.arch = Clamp3Arch::with_dropout(tiny_arch().config, Dropout::default());
    straight.run(&mut |_| {}, &mut |_| {}).expect("straight");

    let split_out = dir.path().join("split");
    let mut first = wikimt_trainer(dir.path(), &split_out, 1, 16);
    first.cfg.dropout = true;
    first.task.text_dropout = true;
    first.task.arch = Clamp3Arch::with_dropout(tiny_arch().config, Dropout::default());
    first.run(&mut |_| {}, &mut |_| {}).expect("first epoch");
    let mut second = wikimt_trainer(dir.path(), &split_out, 2, 16);
    second.cfg.dropout = true;
    second.task.text_dropout = true;
    second.task.arch = Clamp3Arch::with_dropout(tiny_arch().config, Dropout::default());
    second
        .resume(&split_out.join("last.safetensors"))
        .expect("resume");
    assert_eq!(second.epoch, 1);
    second.run(&mut |_| {}, &mut |_| {}).expect("second epoch");

    for (a, b) in straight
        .store
        .state_dict()
        .iter()
        .zip(second.store.state_dict())
    {
        assert_eq!(
            max_abs_diff(&a.1, &b.1),
            0.0,
            "{} differs after resume",
            a.0
        );
    }
    assert_eq!(straight.global_step, second.global_step);
}

#[test]
fn gradient_caching_gives_the_full_batch_gradient() {
    let arch = tiny_arch();
    let init = pth_model("clamp3_init.pth");
    let mut store =
        ParamStore::from_state_dict(&arch.param_spec(), &init, Path::new("init"), &Device::Cpu)
            .expect("store");
    store.set_frozen(&clamp3_train::arch::clamp3_frozen_modules(false, false));
    let batch = clamp3_train::arch::Clamp3Batch {
        text_ids: npy("batches/clamp3_symbolic/text_inputs.npy"),
        text_masks: npy("batches/clamp3_symbolic/text_masks.npy"),
        music: clamp3_train::arch::MusicInput::Patches(npy(
            "batches/clamp3_symbolic/music_inputs.npy",
        )),
        music_masks: npy("batches/clamp3_symbolic/music_masks.npy"),
    };
    let task = Clamp3Task {
        arch,
        kind: MusicKind::Symbolic,
        tokenizer: tokenizer(),
        logit_scale: 1.0,
        text_dropout: true,
    };
    let (full_loss, full) = task
        .loss_and_grads(&store, &batch, None, None)
        .expect("full");
    let (cached_loss, cached) = task
        .loss_and_grads(&store, &batch, Some(1), None)
        .expect("cached");
    assert!(rel(cached_loss, full_loss) < 1e-6);
    let mut compared = 0;
    for (a, b) in full.iter().zip(&cached) {
        match (a, b) {
            (Some(a), Some(b)) => {
                let max = values(a).iter().fold(0f32, |m, x| m.max(x.abs()));
                assert!(max_abs_diff(a, b) <= 1e-6_f32.max(1e-4 * max));
                compared += 1;
            }
            (None, None) => {}
            _ => panic!("gradient presence differs"),
        }
    }
    assert!(compared > 50);
}

#[test]
fn checkpoint_loads_in_the_inference_model_with_the_same_vectors() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("run");
    let mut t = wikimt_trainer(dir.path(), &out, 1, 16);
    t.run(&mut |_| {}, &mut |_| {}).expect("train");
    let items: Vec<&clamp3_train::data::Clamp3Item> = t.eval.iter().collect();
    let outcome = clamp3_train::trainer::Task::eval_batch(&t.task, &t.store, &items).expect("eval");
    let (text, music) = outcome.features.expect("features");
    let cfg = t.task.arch.config.clone();
    // The items again, prepared the same way, through the inference model.
    let shapes = t.task.shapes();
    let mut prepared = Vec::new();
    for item in &items {
        let mut rng = Rng::stream(0, &[]);
        prepared.push(
            data::prepare_item(
                item,
                MusicKind::Symbolic,
                Mode::Eval,
                false,
                &t.task.tokenizer,
                &shapes,
                &mut rng,
            )
            .expect("item"),
        );
    }
    let batch = data::collate(&prepared, &shapes, &Device::Cpu).expect("batch");
    for file in ["best.pth", "best.safetensors"] {
        let model = clamp3_models::Clamp3Model::from_file(&out.join(file), &cfg, &Device::Cpu)
            .expect("inference model loads");
        let h = model
            .encode(
                clamp3_models::EncoderInput::TokenIds(&batch.text_ids),
                Some(&batch.text_masks),
            )
            .expect("text");
        let v = model
            .project(
                clamp3_models::Modality::Text,
                &clamp3_models::masked_mean(&h, Some(&batch.text_masks)).expect("mean"),
            )
            .expect("proj");
        assert!(
            max_abs_diff(&v, &text) < 1e-5,
            "{file}: text vectors differ"
        );
        let clamp3_train::arch::MusicInput::Patches(p) = &batch.music else {
            panic!("patches")
        };
        let h = model
            .encode(
                clamp3_models::EncoderInput::Patches(p),
                Some(&batch.music_masks),
            )
            .expect("music");
        let v = model
            .project(
                clamp3_models::Modality::Symbolic,
                &clamp3_models::masked_mean(&h, Some(&batch.music_masks)).expect("mean"),
            )
            .expect("proj");
        assert!(
            max_abs_diff(&v, &music) < 1e-5,
            "{file}: music vectors differ"
        );
    }
}

#[test]
fn m3_training_lowers_the_loss() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = json("config.json");
    let mut arch = M3Arch::official();
    arch.encoder =
        serde_json::from_value(cfg["clamp3"]["symbolic_model"].clone()).expect("encoder");
    arch.decoder = serde_json::from_value(cfg["m3"]["decoder"].clone()).expect("decoder");
    arch.patch_length = 24;
    arch.encoder_dropout = Dropout::NONE;
    let files = data::list_m3_files(&[golden_dir().join("data/music")]).expect("files");
    assert_eq!(files.len(), 13);
    let store = ParamStore::random(&arch.param_spec(), 0.02, 3, &Device::Cpu).expect("random");
    let mut conf = small_config(&dir.path().join("m3"), 8);
    conf.batch_size = 4;
    let task = M3Task {
        arch,
        mask_ratio: 0.45,
    };
    let mut t = Trainer::new(task, store, conf, files.clone(), files[..4].to_vec());
    let mut logs = Vec::new();
    t.run(&mut |_| {}, &mut |l| logs.push(l.clone()))
        .expect("m3 training");
    let first = logs[0].eval_loss.expect("loss");
    let last = logs.last().expect("log").eval_loss.expect("loss");
    assert!(last < first, "M3 eval loss {first} -> {last}");
    let ckpt = checkpoint::read(&dir.path().join("m3/best.pth")).expect("checkpoint");
    assert!(
        ckpt.model
            .iter()
            .any(|(n, _)| n == "decoder.base.lm_head.weight"),
        "tied name saved"
    );
    assert_eq!(ckpt.modality, None);
}
