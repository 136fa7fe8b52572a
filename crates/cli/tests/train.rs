//! `clamp3 train` end to end: a run on the training goldens' tiny model writes checkpoints that
//! `clamp3 embed --weights` loads, and the vectors it writes are the trainer's own forward pass.

use candle_core::{Device, Tensor};
use clamp3_train::arch::{Clamp3Arch, Clamp3Forward};
use clamp3_train::data::MusicKind;
use clamp3_train::layers::Ctx;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../train/tests/fixtures/golden")
}

/// The tiny model's config and tokenizer as files.
fn model_files(dir: &Path) -> (PathBuf, PathBuf) {
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(golden().join("config.json")).expect("config"),
    )
    .expect("json");
    let config_path = dir.join("config.json");
    std::fs::write(&config_path, config["clamp3"].to_string()).expect("write config");
    let mut tokenizer = String::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(golden().join("../tokenizer.json.gz")).expect("tokenizer"),
    )
    .read_to_string(&mut tokenizer)
    .expect("gunzip");
    let tokenizer_path = dir.join("tokenizer.json");
    std::fs::write(&tokenizer_path, tokenizer).expect("write tokenizer");
    (config_path, tokenizer_path)
}

fn clamp3(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_clamp3"))
        .args(args)
        .output()
        .expect("run clamp3")
}

#[test]
fn trained_checkpoint_embeds_like_the_trainer() {
    let dir = tempfile::tempdir().expect("tmp");
    let (config, tokenizer) = model_files(dir.path());
    let out = dir.path().join("run");
    let s = |p: &Path| p.to_string_lossy().to_string();
    let run = clamp3(&[
        "train",
        "clamp3",
        "--modality",
        "symbolic",
        "--data",
        &s(&golden().join("data/train.jsonl")),
        "--eval",
        &s(&golden().join("data/train.jsonl")),
        "--init",
        &s(&golden().join("clamp3_init.pth")),
        "--config",
        &s(&config),
        "--tokenizer",
        &s(&tokenizer),
        "--out",
        &s(&out),
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--lr",
        "1e-3",
        "--warmup-steps",
        "0",
        "--device",
        "cpu",
    ]);
    assert!(
        run.status.success(),
        "train failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let log = std::fs::read_to_string(out.join("log.jsonl")).expect("log");
    assert_eq!(log.lines().count(), 2);

    let text = "A calm hymn in F major.";
    std::fs::write(dir.path().join("q.txt"), text).expect("query");
    let arch =
        Clamp3Arch::from_json(&std::fs::read_to_string(&config).expect("config")).expect("arch");
    let tok = clamp3_features::text::load_tokenizer(&tokenizer).expect("tokenizer");
    let ids = clamp3_features::text::token_ids(&tok, text).expect("ids");
    assert!(ids.len() <= arch.config.max_text_length, "one segment");
    let n = ids.len();
    let ids = Tensor::from_vec(ids, (1, n), &Device::Cpu).expect("ids");
    let mask = Tensor::ones((1, n), candle_core::DType::F32, &Device::Cpu).expect("mask");
    for weights in ["best.pth", "best.safetensors"] {
        let emb = dir.path().join(format!("emb_{weights}"));
        let embed = clamp3(&[
            "embed",
            &s(&dir.path().join("q.txt")),
            &s(&emb),
            "--weights",
            &s(&out.join(weights)),
            "--config",
            &s(&config),
            "--tokenizer",
            &s(&tokenizer),
            "--device",
            "cpu",
        ]);
        assert!(
            embed.status.success(),
            "embed failed: {}",
            String::from_utf8_lossy(&embed.stderr)
        );
        let bytes = std::fs::read(emb.join("q.npy")).expect("vector");
        let vector = clamp3_io::npy::parse(&bytes).expect("npy");

        let store = clamp3_train::trainer::clamp3_store(
            &arch,
            &out.join(weights),
            None,
            MusicKind::Symbolic,
            false,
            &Device::Cpu,
        )
        .expect("store");
        let forward = Clamp3Forward { arch: &arch };
        let own = forward
            .text_features(&Ctx::eval(&store), &ids, &mask)
            .expect("forward")
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .expect("values");
        assert_eq!(vector.data.len(), own.len());
        let diff = vector
            .data
            .iter()
            .zip(&own)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-5, "{weights}: embed and trainer differ by {diff}");
    }
}
