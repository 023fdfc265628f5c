#!/usr/bin/env bash
# `nucleus cost` end to end: the table, JSON and SVG outputs, and one-line
# errors for bad input. Usage: cost_cli_test.sh path/to/nucleus
set -euo pipefail
nucleus="$1"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# Keep the probe cache out of the user's home.
export XDG_CACHE_HOME="$tmp/cache"

fail() { echo "FAIL: $*" >&2; exit 1; }

out="$("$nucleus" cost --shape tinyllama-1.1b -p 512 -n 128 --svg "$tmp/chart.svg")"
for needle in "Prefill: 512 tokens" "Decode step at context 639" "Whole run: 512 + 128 tokens" \
              "QKᵀ scores" "KV memory, peak" "source: default"; do
  grep -qF "$needle" <<<"$out" || fail "table lacks '$needle'"
done
# KV cache after the run: 2 · 22 layers · 639 positions · 256 · 4 bytes = 27.5 MiB.
grep -qE "KV memory, peak +27\.5 MiB" <<<"$out" || fail "KV memory is not 27.5 MiB"
grep -qF "cumulative FLOPs (TFLOP)" "$tmp/chart.svg" || fail "chart lacks its FLOP axis"
grep -qF "</svg>" "$tmp/chart.svg" || fail "chart not closed"

"$nucleus" cost --shape llama3-8b -p 100 -n 10 -b 4 --type q8_0 --json >"$tmp/cost.json"
python3 - "$tmp/cost.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["weight_dtype"] == "q8_0" and j["batch"] == 4, j["weight_dtype"]
# Q projection of the prefill: 32 layers · 2 · (4·100 rows) · 4096 · 4096.
assert j["prefill"]["exact"]["flops"]["attn_q"] == 32 * 2 * 400 * 4096 * 4096
assert len(j["run"]["no_kv_cache"]["series"]["cumulative_flops"]) == 10
PY

# Capture first: `cmd | grep -q` under pipefail fails when grep exits early (SIGPIPE).
nocache="$("$nucleus" cost --shape stories260k -p 16 -n 4 --no-kv-cache)"
grep -qF "No-cache step: full pass over 19" <<<"$nocache" \
  || fail "--no-kv-cache does not describe a full pass"

# Bad input: one line on stderr, non-zero exit.
expect_error() {
  local pattern="$1"; shift
  if err="$("$nucleus" "$@" 2>&1 >/dev/null)"; then fail "accepted: $*"; fi
  [[ "$(wc -l <<<"$err")" -eq 1 ]] || fail "not one line for $*: $err"
  grep -qF "$pattern" <<<"$err" || fail "error for $* lacks '$pattern': $err"
}
expect_error "unknown shape 'gpt2'" cost --shape gpt2
expect_error "exceeds the model's context length 2048" cost --shape tinyllama-1.1b -p 2000 -n 100
expect_error "unknown tensor type 'q9_k'" cost --shape llama-7b --type q9_k
echo "cost_cli_test: ok"
