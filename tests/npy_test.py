#!/usr/bin/python3
"""`nucleus logits --activations --dump DIR` checked from outside with numpy.

Every dumped .npy must load with numpy and have the model's shapes. The values
are recomputed here from the weights, read from the GGUF file by the small
parser below (independent of nucleus's reader), for every op but attention
itself: embedding rows, RMSNorms, the V/O/MLP matmuls, SwiGLU, the residual
adds, the final norm and the tied lm_head. Attention (and so q, k, attn_out)
is covered end to end: logits.npy for the prompt [1, 403, 407, 261, 378] must
match Hugging Face transformers' logits (tests/data/hf_ref/stories260K.json,
see tests/data/README.md) within 1e-3.

Usage: npy_test.py path/to/nucleus   (run from tests/)
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

MODEL = "../models/stories260K.gguf"
LAYERS, DIM, Q_DIM, KV_DIM, FFN, VOCAB, EPS = 5, 64, 64, 32, 172, 512, 1e-5
PER_LAYER = ["attn_norm", "q", "k", "v", "attn_out", "attn_proj", "resid_attn",
             "ffn_norm", "ffn_gate", "ffn_up", "ffn_act", "ffn_down", "resid_ffn"]
WIDTH = {"attn_norm": DIM, "q": Q_DIM, "k": KV_DIM, "v": KV_DIM, "attn_out": Q_DIM,
         "attn_proj": DIM, "resid_attn": DIM, "ffn_norm": DIM, "ffn_gate": FFN,
         "ffn_up": FFN, "ffn_act": FFN, "ffn_down": DIM, "resid_ffn": DIM}


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def read_gguf_f32(path):
    """The f32 tensors of a GGUF file (spec: github.com/ggerganov/ggml docs/gguf.md)."""
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
        s = buf[pos:pos + n].decode("utf-8", "replace")
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

    assert buf[:4] == b"GGUF", "not a GGUF file"
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
        if ttype != 0:  # only f32 is needed (stories260K is all f32)
            continue
        count = int(np.prod(dims))
        arr = np.frombuffer(buf, dtype="<f4", count=count, offset=data + off)
        tensors[name] = arr.reshape(list(reversed(dims)))  # ne[0] is the fastest axis
    return tensors


def rmsnorm(x, w):
    x64 = x.astype(np.float64)
    return x64 / np.sqrt(np.mean(x64 * x64, axis=-1, keepdims=True) + EPS) * w


def silu(x):
    return x / (1.0 + np.exp(-x))


def dump(nucleus, tokens, out_dir):
    res = subprocess.run([nucleus, "logits", "--tokens", tokens, "--activations", "--dump",
                          out_dir], capture_output=True, text=True)
    if res.returncode != 0:
        fail("nucleus logits --activations failed: " + res.stderr)
    return res.stdout


def close(name, got, want, tol=1e-4):
    err = float(np.max(np.abs(got - want)))
    scale = max(1.0, float(np.max(np.abs(want))))
    if not err <= tol * scale:
        fail("%s differs from the numpy recomputation by %g" % (name, err))


def main():
    nucleus = sys.argv[1]
    w = read_gguf_f32(MODEL)
    with tempfile.TemporaryDirectory() as tmp:
        ids = [1, 403, 407]
        text = dump(nucleus, ",".join(map(str, ids)), tmp)
        n = len(ids)

        # Files: every layer's 13 outputs plus embedding, output_norm, logits.
        expected = {"embedding", "output_norm", "logits"}
        expected |= {"layer%02d.%s" % (l, k) for l in range(LAYERS) for k in PER_LAYER}
        got = {f[:-4] for f in os.listdir(tmp) if f.endswith(".npy")}
        if got != expected:
            fail("dumped files differ: missing %s, extra %s"
                 % (sorted(expected - got), sorted(got - expected)))
        a = {}
        for name in expected:
            path = os.path.join(tmp, name + ".npy")
            with open(path, "rb") as f:
                head = f.read(10)
                hlen = struct.unpack("<H", head[8:10])[0]
                header = f.read(hlen)
            if head[:8] != b"\x93NUMPY\x01\x00" or (10 + hlen) % 64 or header[-1:] != b"\n":
                fail(name + ".npy: not an NPY 1.0 header padded to 64 bytes")
            arr = np.load(path)
            if arr.dtype != np.dtype("<f4"):
                fail(name + ".npy: dtype " + str(arr.dtype))
            a[name] = arr.astype(np.float64)
        for l in range(LAYERS):
            for k in PER_LAYER:
                shape = a["layer%02d.%s" % (l, k)].shape
                if shape != (n, WIDTH[k]):
                    fail("layer%02d.%s shape %s, want %s" % (l, k, shape, (n, WIDTH[k])))
        for name, width in (("embedding", DIM), ("output_norm", DIM), ("logits", VOCAB)):
            if a[name].shape != (n, width):
                fail("%s shape %s" % (name, a[name].shape))
        # The printed table names every output with its shape.
        if "layer00.q" not in text or "(3, 64)" not in text or "layer04.k" not in text:
            fail("activation table lacks layer00.q / (3, 64) / layer04.k:\n" + text)

        # Recompute what does not involve attention from the GGUF weights.
        emb = w["token_embd.weight"]
        close("embedding", a["embedding"], emb[ids])
        x = a["embedding"]
        for l in range(LAYERS):
            p = lambda k: a["layer%02d.%s" % (l, k)]
            t = lambda k: w["blk.%d.%s.weight" % (l, k)]
            close("layer%d attn_norm" % l, p("attn_norm"), rmsnorm(x, t("attn_norm")))
            close("layer%d v" % l, p("v"), p("attn_norm") @ t("attn_v").T)
            close("layer%d attn_proj" % l, p("attn_proj"), p("attn_out") @ t("attn_output").T)
            close("layer%d resid_attn" % l, p("resid_attn"), x + p("attn_proj"))
            close("layer%d ffn_norm" % l, p("ffn_norm"), rmsnorm(p("resid_attn"), t("ffn_norm")))
            close("layer%d ffn_gate" % l, p("ffn_gate"), p("ffn_norm") @ t("ffn_gate").T)
            close("layer%d ffn_up" % l, p("ffn_up"), p("ffn_norm") @ t("ffn_up").T)
            close("layer%d ffn_act" % l, p("ffn_act"), silu(p("ffn_gate")) * p("ffn_up"))
            close("layer%d ffn_down" % l, p("ffn_down"), p("ffn_act") @ t("ffn_down").T)
            close("layer%d resid_ffn" % l, p("resid_ffn"), p("resid_attn") + p("ffn_down"))
            # RoPE rotates pairs, so it keeps each head's norm: |k| after RoPE
            # equals |attn_norm @ Wk| before it (whatever the pair layout).
            k_pre = (p("attn_norm") @ t("attn_k").T).reshape(n, -1, 8)
            close("layer%d |k| per head" % l, np.linalg.norm(p("k").reshape(n, -1, 8), axis=-1),
                  np.linalg.norm(k_pre, axis=-1))
            x = p("resid_ffn")
        close("output_norm", a["output_norm"], rmsnorm(x, w["output_norm.weight"]))
        head = w.get("output.weight", emb)
        close("logits", a["logits"], a["output_norm"] @ head.T)

    # Against Hugging Face: all-position logits of the 5-token prompt.
    ref = json.load(open("data/hf_ref/stories260K.json"))
    run = next(r for r in ref["runs"] if r["prompt"] == [1, 403, 407, 261, 378])
    with tempfile.TemporaryDirectory() as tmp:
        dump(nucleus, "1,403,407,261,378", tmp)
        logits = np.load(os.path.join(tmp, "logits.npy"))
        hf = np.array(run["prompt_logits_all"], dtype=np.float64)
        if logits.shape != hf.shape:
            fail("logits.npy shape %s, HF %s" % (logits.shape, hf.shape))
        err = float(np.max(np.abs(logits - hf)))
        if err >= 1e-3:
            fail("logits.npy differs from transformers by %g" % err)

    # Bad input: one line, non-zero exit.
    for args, needle in ((["--activations", "--layer", "5"], "--layer 5 is out of range"),
                         (["--layer", "0"], "need --activations")):
        res = subprocess.run([nucleus, "logits", "--tokens", "1"] + args, capture_output=True,
                             text=True)
        if res.returncode == 0 or needle not in res.stderr or res.stderr.count("\n") != 1:
            fail("bad input %s: rc %d, stderr %r" % (args, res.returncode, res.stderr))
    print("npy_test: ok")


if __name__ == "__main__":
    main()
