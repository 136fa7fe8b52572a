"""Makes crates/features/tests/fixtures/other_config/: a CLaMP 3 configuration unlike the goldens
(other hidden sizes, head counts, layer counts, segment lengths), random safetensors weights, and
the expected global/local features computed by an independent NumPy transcription of the
reference: Hugging Face BERT / XLM-R semantics and `extract_clamp3.py` run literally (every segment
right-padded to L with an attention mask, the last segment replaced by the last L items).

Run from the repository root: python3 tools/golden/make_other_config.py
Needs numpy, safetensors and unidecode; reads token ids and patches computed by `clamp3 inspect`
with the golden tokenizer (so this checks the model and segmentation, not the tokenizer).
"""
import json
import math
import os
import subprocess

import numpy as np
from safetensors.numpy import save_file

OUT = "crates/features/tests/fixtures/other_config"
GOLD = "crates/features/tests/fixtures/golden"
rng = np.random.default_rng(7)

config = {
    "hidden_size": 20, "max_text_length": 10, "patch_size": 64, "patch_length": 7, "max_audio_length": 5,
    "text_model": {"model_type": "xlm-roberta", "vocab_size": 1502, "hidden_size": 48, "num_hidden_layers": 3,
                   "num_attention_heads": 6, "intermediate_size": 40, "max_position_embeddings": 12,
                   "type_vocab_size": 1, "layer_norm_eps": 1e-5, "pad_token_id": 1, "hidden_act": "gelu"},
    "symbolic_model": {"hidden_size": 40, "num_hidden_layers": 1, "num_attention_heads": 5, "intermediate_size": 72,
                       "max_position_embeddings": 7, "layer_norm_eps": 1e-12, "hidden_act": "gelu"},
    "audio_model": {"hidden_size": 36, "num_hidden_layers": 3, "num_attention_heads": 2, "intermediate_size": 50,
                    "max_position_embeddings": 5, "layer_norm_eps": 1e-12, "hidden_act": "gelu"},
}

W = {}


def param(name, *shape, scale=0.2, base=0.0):
    W[name] = (base + scale * rng.standard_normal(shape)).astype(np.float32)
    return W[name]


def linear_params(prefix, n_in, n_out):
    param(prefix + ".weight", n_out, n_in, scale=1 / math.sqrt(n_in))
    param(prefix + ".bias", n_out, scale=0.1)


def ln_params(prefix, h):
    param(prefix + ".weight", h, scale=0.1, base=1.0)
    param(prefix + ".bias", h, scale=0.1)


def encoder_params(prefix, c):
    h, i = c["hidden_size"], c["intermediate_size"]
    for l in range(c["num_hidden_layers"]):
        p = f"{prefix}.encoder.layer.{l}"
        for n in ("query", "key", "value"):
            linear_params(f"{p}.attention.self.{n}", h, h)
        linear_params(f"{p}.attention.output.dense", h, h)
        ln_params(f"{p}.attention.output.LayerNorm", h)
        linear_params(f"{p}.intermediate.dense", h, i)
        linear_params(f"{p}.output.dense", i, h)
        ln_params(f"{p}.output.LayerNorm", h)


t, s, a, D = config["text_model"], config["symbolic_model"], config["audio_model"], config["hidden_size"]
param("text_model.embeddings.word_embeddings.weight", t["vocab_size"], t["hidden_size"], scale=0.5)
param("text_model.embeddings.position_embeddings.weight", t["max_position_embeddings"], t["hidden_size"], scale=0.5)
param("text_model.embeddings.token_type_embeddings.weight", 1, t["hidden_size"], scale=0.5)
ln_params("text_model.embeddings.LayerNorm", t["hidden_size"])
encoder_params("text_model", t)
linear_params("text_proj", t["hidden_size"], D)
linear_params("symbolic_model.patch_embedding", 64 * 128, s["hidden_size"])
W["symbolic_model.patch_embedding.weight"] *= 8  # one-hot inputs: keep activations lively
for prefix, c in (("symbolic_model.base", s), ("audio_model", a)):
    param(prefix + ".embeddings.word_embeddings.weight", 1, c["hidden_size"])
    param(prefix + ".embeddings.position_embeddings.weight", c["max_position_embeddings"], c["hidden_size"], scale=0.5)
    param(prefix + ".embeddings.token_type_embeddings.weight", 2, c["hidden_size"], scale=0.5)
    ln_params(prefix + ".embeddings.LayerNorm", c["hidden_size"])
    encoder_params(prefix, c)
linear_params("symbolic_proj", s["hidden_size"], D)
linear_params("audio_proj", a["hidden_size"], D)


def gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def layer_norm(x, prefix, eps):
    x = x.astype(np.float64)
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * W[prefix + ".weight"] + W[prefix + ".bias"]


def lin(x, prefix):
    return x @ W[prefix + ".weight"].T.astype(np.float64) + W[prefix + ".bias"]


def encoder(x, mask, prefix, c):
    nh = c["num_attention_heads"]
    hd = c["hidden_size"] // nh
    bias = (1.0 - mask) * np.finfo(np.float32).min
    for l in range(c["num_hidden_layers"]):
        p = f"{prefix}.encoder.layer.{l}"
        T = x.shape[0]
        q, k, v = (lin(x, f"{p}.attention.self.{n}").reshape(T, nh, hd).transpose(1, 0, 2) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(hd) + bias
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probs = scores / scores.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(1, 0, 2).reshape(T, nh * hd)
        x = layer_norm(lin(ctx, f"{p}.attention.output.dense") + x, f"{p}.attention.output.LayerNorm", c["layer_norm_eps"])
        inner = gelu(lin(x, f"{p}.intermediate.dense"))
        x = layer_norm(lin(inner, f"{p}.output.dense") + x, f"{p}.output.LayerNorm", c["layer_norm_eps"])
    return x


def text_forward(ids, mask):
    pad = t["pad_token_id"]
    not_pad = (ids != pad).astype(np.int64)
    pos = np.cumsum(not_pad) * not_pad + pad
    e = "text_model.embeddings"
    x = W[e + ".word_embeddings.weight"][ids] + W[e + ".position_embeddings.weight"][pos] + W[e + ".token_type_embeddings.weight"][0]
    return encoder(layer_norm(x, e + ".LayerNorm", t["layer_norm_eps"]), mask, "text_model", t)


def bert_forward(embeds, mask, prefix, c):
    e = prefix + ".embeddings"
    T = embeds.shape[0]
    x = embeds + W[e + ".position_embeddings.weight"][:T] + W[e + ".token_type_embeddings.weight"][0]
    return encoder(layer_norm(x, e + ".LayerNorm", c["layer_norm_eps"]), mask, prefix, c)


def symbolic_forward(patches, mask):
    onehot = np.zeros((patches.shape[0], 64 * 128))
    for i, p in enumerate(patches):
        onehot[i, np.arange(64) * 128 + p] = 1
    return bert_forward(lin(onehot, "symbolic_model.patch_embedding"), mask, "symbolic_model.base", s)


def extract(data, L, pad_item, forward, proj):
    """extract_clamp3.extract_feature, literally: pad every segment to L and mask."""
    n = len(data)
    segments = [data[i:i + L] for i in range(0, n, L)]
    segments[-1] = data[-L:]
    outs_global, outs_local = [], []
    for seg in segments:
        mask = np.array([1.0] * len(seg) + [0.0] * (L - len(seg)))
        padded = np.concatenate([seg, np.repeat(pad_item[None], L - len(seg), 0)]) if len(seg) < L else seg
        hidden = forward(padded, mask)
        outs_local.append(hidden[: len(seg)])
        pooled = (hidden * mask[:, None]).sum(0) / mask.sum()
        outs_global.append(lin(pooled, proj))
    outs_local[-1] = outs_local[-1][-(n % L):]
    local = np.concatenate(outs_local)[None]
    weights = [L] * (n // L) + ([n % L] if n % L else [])
    glob = (np.stack(outs_global) * np.array(weights)[:, None]).sum(0) / sum(weights)
    return glob[None].astype(np.float32), local.astype(np.float32)


def inspect(kind, path, *extra):
    out = subprocess.run(["target/debug/clamp3", "inspect", kind, path, *extra], check=True, capture_output=True)
    return np.array(json.loads(out.stdout))


os.makedirs(OUT, exist_ok=True)
save_file(W, f"{OUT}/weights.safetensors")
json.dump(config, open(f"{OUT}/config.json", "w"), indent=2)
expected = {}
for stem in ("t02_long_wikimt", "t16_dup_crlf_multilingual", "t05_exact_max"):
    ids = inspect("tokens", f"{GOLD}/cases/text/{stem}.txt", "--tokenizer", f"{GOLD}/tokenizer.json")
    expected[f"text/{stem}.txt"] = extract(ids, config["max_text_length"], np.array(1), text_forward, "text_proj")
for stem, ext in (("s02_abc_long", "abc"), ("s07_mtf_short", "mtf"), ("s01_abc_short", "abc")):
    patches = inspect("patches", f"{GOLD}/cases/symbolic/{stem}.{ext}")
    expected[f"symbolic/{stem}.{ext}"] = extract(patches, config["patch_length"], np.zeros(64, np.int64), symbolic_forward, "symbolic_proj")
os.makedirs(f"{OUT}/inputs", exist_ok=True)
for name, rows in (("rows9", 9), ("rows3", 3), ("rows8", 8)):
    feats = rng.standard_normal((1, rows, a["hidden_size"])).astype(np.float32)
    np.save(f"{OUT}/inputs/{name}.npy", feats)
    x = feats.reshape(-1, a["hidden_size"]).astype(np.float64)
    x = np.concatenate([np.zeros((1, x.shape[1])), x, np.zeros((1, x.shape[1]))])
    expected[f"inputs/{name}.npy"] = extract(x, config["max_audio_length"], np.zeros(a["hidden_size"]),
                                             lambda e, m: bert_forward(e, m, "audio_model", a), "audio_proj")
os.makedirs(f"{OUT}/expected", exist_ok=True)
manifest = []
for rel, (g, l) in expected.items():
    stem = os.path.basename(rel).rsplit(".", 1)[0]
    np.save(f"{OUT}/expected/{stem}.global.npy", g)
    np.save(f"{OUT}/expected/{stem}.local.npy", l)
    manifest.append({"input": rel, "stem": stem})
json.dump(manifest, open(f"{OUT}/manifest.json", "w"), indent=1)
print("wrote", len(manifest), "cases")
