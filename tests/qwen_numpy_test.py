#!/usr/bin/python3
"""Qwen2 / Qwen3 checkpoints and their GGUF conversion, checked with numpy.

No Qwen model or Hugging Face output is in shared/, so the reference here is
an independent forward pass written in numpy from the formulas of
transformers' modeling_qwen2.py / modeling_qwen3.py (float64):
  x = embed[ids]; per layer:
    h = RMSNorm(x) * input_layernorm
    q, k, v = h Wqᵀ (+bq), h Wkᵀ (+bk), h Wvᵀ (+bv)        (biases: Qwen2)
    q, k = RMSNorm(q_head) * q_norm, RMSNorm(k_head) * k_norm  (per head: Qwen3)
    q, k = q cos + rotate_half(q) sin (rotate_half(x) = [-x2, x1]), inv_freq
           = theta^(-2i/head_dim), cos/sin repeated over both halves
    attn = softmax(q kᵀ / sqrt(head_dim) + causal mask) v, KV head h // (H/KVH)
    x += attn Woᵀ; h = RMSNorm(x) * post_attention_layernorm
    x += (silu(h Wgᵀ) * h Wuᵀ) Wdᵀ
  logits = (RMSNorm(x) * norm) lm_headᵀ (lm_head = embed when tied).
The checkpoints are random and written here (safetensors + config.json), so
what this verifies independently of nucleus is: config.json / safetensors
reading, q/k biases, per-head q/k norms, head_dim != hidden/heads, rotate-half
RoPE, GQA and tied embeddings in nucleus's forward pass; and that
`nucleus convert` writes llama.cpp's GGUF form for these architectures
(general.architecture qwen2/qwen3, `<arch>.*` keys, blk.N.attn_q_norm /
attn_k_norm / attn_q.bias names and shapes, Q/K rows NOT permuted since
llama.cpp runs qwen2/qwen3 with NEOX rope, no output.weight when tied), read
by the small GGUF parser below, and gives the same logits (<= 1e-4). A
Llama checkpoint with attention_bias (o_proj bias too) checks the other
convention: its llama file holds Q/K rows permuted to interleaved pairs, as
llama.cpp's converter permutes them.

Usage: qwen_numpy_test.py path/to/nucleus   (run from tests/)
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        b = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_gguf(path):
    """Metadata and f32 tensors of a GGUF file (format: ggml docs/gguf.md)."""
    buf = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return vals[0] if len(vals) == 1 else vals

    def string():
        nonlocal pos
        n = take("Q")
        s = buf[pos:pos + n].decode("utf-8")
        pos += n
        return s

    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q",
              11: "q", 12: "d"}

    def value(t):
        if t in scalar:
            return take(scalar[t])
        if t == 8:
            return string()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        fail("gguf: unknown value type %d" % t)

    if buf[:4] != b"GGUF":
        fail(path + ": not a GGUF file")
    pos = 4
    _version, n_tensors, n_kv = take("I"), take("Q"), take("Q")
    meta = {}
    for _ in range(n_kv):
        key = string()
        meta[key] = value(take("I"))
    infos = []
    for _ in range(n_tensors):
        name = string()
        dims = [take("Q") for _ in range(take("I"))]
        infos.append((name, dims, take("I"), take("Q")))
    align = meta.get("general.alignment", 32)
    data = (pos + align - 1) // align * align
    tensors = {}
    for name, dims, ttype, off in infos:
        if ttype != 0:
            fail("%s: tensor %s is not f32 (type %d)" % (path, name, ttype))
        arr = np.frombuffer(buf, dtype="<f4", count=int(np.prod(dims)), offset=data + off)
        tensors[name] = (dims, arr.reshape(list(reversed(dims))))  # ne[0] is the fastest axis
    return meta, tensors


def make_checkpoint(rng, arch, L, hidden, H, KVH, hd, ffn, vocab, tied, bias, qk_norm, theta,
                    eps):
    def w(*shape, scale=0.2):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    t = {"model.embed_tokens.weight": w(vocab, hidden, scale=1.0),
         "model.norm.weight": (1.0 + w(hidden, scale=0.1))}
    if not tied:
        t["lm_head.weight"] = w(vocab, hidden)
    for l in range(L):
        p = "model.layers.%d." % l
        t[p + "input_layernorm.weight"] = 1.0 + w(hidden, scale=0.1)
        t[p + "post_attention_layernorm.weight"] = 1.0 + w(hidden, scale=0.1)
        t[p + "self_attn.q_proj.weight"] = w(H * hd, hidden)
        t[p + "self_attn.k_proj.weight"] = w(KVH * hd, hidden)
        t[p + "self_attn.v_proj.weight"] = w(KVH * hd, hidden)
        t[p + "self_attn.o_proj.weight"] = w(hidden, H * hd)
        if bias:
            t[p + "self_attn.q_proj.bias"] = w(H * hd, scale=0.5)
            t[p + "self_attn.k_proj.bias"] = w(KVH * hd, scale=0.5)
            t[p + "self_attn.v_proj.bias"] = w(KVH * hd, scale=0.5)
            if arch == "LlamaForCausalLM":  # attention_bias also biases o_proj
                t[p + "self_attn.o_proj.bias"] = w(hidden, scale=0.5)
        if qk_norm:
            t[p + "self_attn.q_norm.weight"] = 1.0 + w(hd, scale=0.3)
            t[p + "self_attn.k_norm.weight"] = 1.0 + w(hd, scale=0.3)
        t[p + "mlp.gate_proj.weight"] = w(ffn, hidden)
        t[p + "mlp.up_proj.weight"] = w(ffn, hidden)
        t[p + "mlp.down_proj.weight"] = w(hidden, ffn)
    cfg = {"architectures": [arch], "hidden_size": hidden, "intermediate_size": ffn,
           "num_hidden_layers": L, "num_attention_heads": H, "num_key_value_heads": KVH,
           "head_dim": hd, "vocab_size": vocab, "max_position_embeddings": 64,
           "rms_norm_eps": eps, "rope_theta": theta, "tie_word_embeddings": tied,
           "attention_bias": bias and arch == "LlamaForCausalLM", "use_sliding_window": False,
           "torch_dtype": "float32"}
    return cfg, t


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def hf_forward(cfg, t, ids):
    """transformers' Qwen2/Qwen3 forward (see the module docstring), float64."""
    g = lambda k: t[k].astype(np.float64)
    hidden, H, KVH = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd, eps, n = cfg["head_dim"], cfg["rms_norm_eps"], len(ids)
    inv_freq = 1.0 / cfg["rope_theta"] ** (np.arange(0, hd, 2, dtype=np.float64) / hd)
    ang = np.outer(np.arange(n, dtype=np.float64), inv_freq)
    cos = np.cos(np.concatenate([ang, ang], -1))[:, None, :]
    sin = np.sin(np.concatenate([ang, ang], -1))[:, None, :]

    def rope(x):  # x: [n, heads, hd]
        x1, x2 = x[..., :hd // 2], x[..., hd // 2:]
        return x * cos + np.concatenate([-x2, x1], -1) * sin

    x = g("model.embed_tokens.weight")[ids]
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for l in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % l
        h = rmsnorm(x, g(p + "input_layernorm.weight"), eps)
        q, k, v = (h @ g(p + "self_attn.%s_proj.weight" % s).T for s in "qkv")
        if p + "self_attn.q_proj.bias" in t:
            q, k, v = (a + g(p + "self_attn.%s_proj.bias" % s) for a, s in zip((q, k, v), "qkv"))
        q, k, v = q.reshape(n, H, hd), k.reshape(n, KVH, hd), v.reshape(n, KVH, hd)
        if p + "self_attn.q_norm.weight" in t:
            q = rmsnorm(q, g(p + "self_attn.q_norm.weight"), eps)
            k = rmsnorm(k, g(p + "self_attn.k_norm.weight"), eps)
        q, k = rope(q), rope(k)
        out = np.zeros((n, H, hd))
        for head in range(H):
            kv = head // (H // KVH)
            s = q[:, head, :] @ k[:, kv, :].T / np.sqrt(hd) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            out[:, head, :] = (s / s.sum(-1, keepdims=True)) @ v[:, kv, :]
        x = x + out.reshape(n, H * hd) @ g(p + "self_attn.o_proj.weight").T
        if p + "self_attn.o_proj.bias" in t:
            x = x + g(p + "self_attn.o_proj.bias")
        h = rmsnorm(x, g(p + "post_attention_layernorm.weight"), eps)
        gate = h @ g(p + "mlp.gate_proj.weight").T
        up = h @ g(p + "mlp.up_proj.weight").T
        x = x + (gate / (1.0 + np.exp(-gate)) * up) @ g(p + "mlp.down_proj.weight").T
    x = rmsnorm(x, g("model.norm.weight"), eps)
    head = t["lm_head.weight"] if "lm_head.weight" in t else t["model.embed_tokens.weight"]
    return x @ head.astype(np.float64).T


def run(cmd):
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        fail("%s failed: %s" % (" ".join(cmd), res.stderr.strip()))
    return res.stdout


def nucleus_logits(nucleus, model, ids):
    out = json.loads(run([nucleus, "logits", "-m", model, "-t", "1", "--all", "--tokens",
                          ",".join(map(str, ids))]))
    rows = out["logits"] if isinstance(out, dict) else out
    return np.array(rows, dtype=np.float64).reshape(len(ids), -1)


def close(what, got, want, tol=1e-4):
    if got.shape != want.shape:
        fail("%s: shape %s, want %s" % (what, got.shape, want.shape))
    err = float(np.max(np.abs(got - want)))
    if not err <= tol:
        fail("%s: max |diff| %g > %g" % (what, err, tol))
    print("%-44s max |diff| %.3g" % (what, err))


def check_gguf(path, arch, cfg, t):
    meta, ts = read_gguf(path)
    a = arch + "."
    want = {"general.architecture": arch, a + "block_count": cfg["num_hidden_layers"],
            a + "context_length": cfg["max_position_embeddings"],
            a + "embedding_length": cfg["hidden_size"],
            a + "feed_forward_length": cfg["intermediate_size"],
            a + "attention.head_count": cfg["num_attention_heads"],
            a + "attention.head_count_kv": cfg["num_key_value_heads"],
            a + "rope.dimension_count": cfg["head_dim"]}
    # llama.cpp derives the head size as embedding_length / head_count unless
    # attention.key_length says otherwise.
    if cfg["head_dim"] * cfg["num_attention_heads"] != cfg["hidden_size"]:
        want[a + "attention.key_length"] = cfg["head_dim"]
        want[a + "attention.value_length"] = cfg["head_dim"]
    for k, v in want.items():
        if meta.get(k) != v:
            fail("%s: metadata %s = %r, want %r" % (path, k, meta.get(k), v))
    for k, v in ((a + "attention.layer_norm_rms_epsilon", cfg["rms_norm_eps"]),
                 (a + "rope.freq_base", cfg["rope_theta"])):
        if k not in meta or abs(meta[k] - v) > 1e-6 * max(1.0, abs(v)):
            fail("%s: metadata %s = %r, want %r" % (path, k, meta.get(k), v))
    if arch != "llama" and any(k.startswith("llama.") for k in meta):
        fail("%s: llama.* keys in a %s file" % (path, arch))
    # Tensor names (gguf-py MODEL_TENSOR names) and exact, unpermuted values.
    names = {"model.embed_tokens.weight": "token_embd.weight",
             "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"}
    sub = {"input_layernorm.weight": "attn_norm.weight",
           "post_attention_layernorm.weight": "ffn_norm.weight",
           "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
           "self_attn.v_proj.weight": "attn_v.weight",
           "self_attn.o_proj.weight": "attn_output.weight",
           "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.bias": "attn_k.bias",
           "self_attn.v_proj.bias": "attn_v.bias", "self_attn.o_proj.bias": "attn_output.bias",
           "self_attn.q_norm.weight": "attn_q_norm.weight",
           "self_attn.k_norm.weight": "attn_k_norm.weight", "mlp.gate_proj.weight": "ffn_gate.weight",
           "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight"}
    def permute(arr, heads):
        # llama.cpp's convert_hf_to_gguf for llama: HF's rotate-half rows back
        # to interleaved pairs, reshape(heads, 2, hd/2, ...).swapaxes(1, 2).
        return arr.reshape(heads, 2, arr.shape[0] // heads // 2, *arr.shape[1:]).swapaxes(
            1, 2).reshape(arr.shape)

    expected = {}
    for hf_name, arr in t.items():
        if hf_name in names:
            expected[names[hf_name]] = arr
        else:
            parts = hf_name.split(".")
            rest = ".".join(parts[3:])
            if arch == "llama" and rest.startswith(("self_attn.q_proj", "self_attn.k_proj")):
                arr = permute(arr, cfg["num_attention_heads"] if "q_proj" in rest
                              else cfg["num_key_value_heads"])
            expected["blk.%s.%s" % (parts[2], sub[rest])] = arr
    if set(ts) != set(expected):
        fail("%s: tensors differ: missing %s, extra %s" % (
            path, sorted(set(expected) - set(ts)), sorted(set(ts) - set(expected))))
    for name, arr in expected.items():
        dims, got = ts[name]
        if dims != list(reversed(arr.shape)):
            fail("%s: %s has ne %s, want %s" % (path, name, dims, list(reversed(arr.shape))))
        if not np.array_equal(got, arr):
            fail("%s: %s differs from the checkpoint (rows permuted?)" % (path, name))


def main():
    nucleus = sys.argv[1]
    rng = np.random.default_rng(20260311)
    ids = [3, 17, 5, 60, 41, 9, 22]
    cases = [
        # Qwen3: head_dim 16 != 32 / 4, per-head q/k norms, no biases, tied.
        ("qwen3", "Qwen3ForCausalLM",
         dict(L=2, hidden=32, H=4, KVH=2, hd=16, ffn=48, vocab=64, tied=True, bias=False,
              qk_norm=True, theta=1000000.0, eps=1e-6)),
        # Qwen2: q/k/v biases, untied lm_head.
        ("qwen2", "Qwen2ForCausalLM",
         dict(L=2, hidden=32, H=4, KVH=2, hd=8, ffn=40, vocab=64, tied=False, bias=True,
              qk_norm=False, theta=10000.0, eps=1e-6)),
        # Llama with attention_bias (o_proj biased too): rows permuted to
        # interleaved pairs in the llama file.
        ("llama", "LlamaForCausalLM",
         dict(L=2, hidden=32, H=4, KVH=2, hd=8, ffn=40, vocab=64, tied=False, bias=True,
              qk_norm=False, theta=10000.0, eps=1e-5)),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for arch, hf_arch, shape in cases:
            cfg, t = make_checkpoint(rng, hf_arch, **shape)
            d = os.path.join(tmp, arch)
            os.makedirs(d)
            json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
            write_safetensors(os.path.join(d, "model.safetensors"), t)
            want = hf_forward(cfg, t, ids)
            got_hf = nucleus_logits(nucleus, d, ids)
            close(arch + ": HF directory vs numpy", got_hf, want)
            gguf = os.path.join(tmp, arch + ".gguf")
            run([nucleus, "convert", d, "-o", gguf, "--no-vocab", "-t", "1"])
            check_gguf(gguf, arch, cfg, t)
            got_gguf = nucleus_logits(nucleus, gguf, ids)
            close(arch + ": converted GGUF vs numpy", got_gguf, want)
            # Same weights; for llama only the order of each q.k sum differs.
            close(arch + ": converted GGUF vs HF directory", got_gguf, got_hf,
                  0.0 if arch != "llama" else 1e-4)
    print("ok")


if __name__ == "__main__":
    main()
