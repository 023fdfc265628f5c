#!/usr/bin/env bash
# `nucleus bench` end to end on the bundled stories260K: the JSON shape, positive
# rates, the table, and one-line errors for bad input.
# Usage: bench_cli_test.sh path/to/nucleus (working directory: tests/)
set -euo pipefail
nucleus="$1"
model=../models/stories260K.gguf
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# Keep the probe cache out of the user's home: the default peaks are used.
export XDG_CACHE_HOME="$tmp/cache"

fail() { echo "FAIL: $*" >&2; exit 1; }

json="$("$nucleus" bench -m "$model" -p 16 -n 8 -r 2 -t 1 --json)"
python3 - <<PY || fail "bad JSON: $json"
import json
rows = json.loads('''$json''')
assert isinstance(rows, list) and len(rows) == 2, rows
pp, tg = rows
assert pp["test"] == "pp16" and pp["n_prompt"] == 16 and pp["n_gen"] == 0, pp
assert tg["test"] == "tg8" and tg["n_prompt"] == 0 and tg["n_gen"] == 8, tg
for r in rows:
    for k in ("avg_ts", "flops_per_s", "bytes_per_s", "mfu", "mbu", "avg_ns"):
        assert r[k] > 0, (k, r[k])
    assert r["stddev_ts"] >= 0
    assert len(r["samples_ts"]) == 2 and r["repetitions"] == 2
    assert r["n_threads"] == 1 and r["type"] == "F32"
    assert r["peaks_source"].startswith("default"), r["peaks_source"]
    # stories260K: every tensor is F32, so the file's tensor bytes are 4 per parameter.
    assert r["model_size"] == 4 * r["model_n_params"], r
# Hand count of the decode FLOPs (dim 64, 5 layers, 8 heads of 8, 4 KV heads,
# ffn 172, vocab 512): per token, matrices 2·(64·64 + 2·64·32 + 64·64 + 3·64·172)
# = 2·(4096 + 4096 + 4096 + 33024) = 90624 per layer, ·5 = 453120, plus lm_head
# 2·64·512 = 65536 -> 518656; attention 4·8·ctx·8 heads = 256·ctx per layer.
# tg8 runs contexts 1..8: 8·518656 + 5·256·36 = 4149248 + 46080.
assert tg["flops"] == 8 * 518656 + 5 * 256 * 36, tg["flops"]
# pp16 computes logits only for the last row: 16·453120 + 65536 + 5·256·(1+..+16).
assert pp["flops"] == 16 * 453120 + 65536 + 5 * 256 * 136, pp["flops"]
PY

# Depth (llama-bench -d) and the KV cache type: tests start after the
# prefilled positions, so attention reads 5..12 positions for tg8 @ d4.
json="$("$nucleus" bench -m "$model" -p 4 -n 8 -d 4 -r 1 -t 1 --kv-type q8_0 --json)"
python3 - <<PY || fail "bad depth JSON: $json"
import json
pp, tg = json.loads('''$json''')
assert pp["test"] == "pp4 @ d4" and tg["test"] == "tg8 @ d4", (pp["test"], tg["test"])
assert tg["n_depth"] == 4 and tg["kv_type"] == "q8_0", tg
assert tg["flops"] == 8 * 518656 + 5 * 256 * (5 + 6 + 7 + 8 + 9 + 10 + 11 + 12), tg["flops"]
PY

table="$("$nucleus" bench -m "$model" -p 8 -n 4 -r 1)"
for needle in "| model | size | params | type | threads | test | t/s |" "| pp8 |" "| tg4 |" \
              "peaks: default"; do
  grep -qF -- "$needle" <<<"$table" || fail "table lacks '$needle': $table"
done

# Bad input: one line on stderr, non-zero exit.
expect_error() {
  local pattern="$1"; shift
  if err="$("$nucleus" "$@" 2>&1 >/dev/null)"; then fail "accepted: $*"; fi
  [[ "$(wc -l <<<"$err")" -eq 1 ]] || fail "not one line for $*: $err"
  grep -qF -- "$pattern" <<<"$err" || fail "error for $* lacks '$pattern': $err"
}
expect_error "-p (prompt tokens) must be at least 1, got 0" bench -m "$model" -p 0
expect_error "-n (generated tokens) must be at least 1, got -3" bench -m "$model" -n -3
expect_error "-r (repetitions) must be in [1, 1000], got 0" bench -m "$model" -r 0
expect_error "$tmp/missing.gguf" bench -m "$tmp/missing.gguf"
expect_error "exceeds the context length 2048" bench -m "$model" -p 5000
expect_error "exceeds the context length 2048" bench -m "$model" -d 2000 -n 100
expect_error "-d (depth) must be at least 0, got -1" bench -m "$model" -d -1
expect_error "kv type 'q4_0' is not one of f32, f16, q8_0" bench -m "$model" --kv-type q4_0
echo "bench_cli_test: ok"
