#!/usr/bin/env bash
# `nucleus convert` / `nucleus quantize` end to end: the converted
# stories260K-hf generates exactly what the original stories260K.gguf does,
# requantized files still run, and bad input gives one-line errors.
# Usage: convert_cli_test.sh path/to/nucleus (run from tests/)
set -euo pipefail
nucleus="$1"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

help="$("$nucleus" --help 2>&1 || true)"
if ! grep -qE "^  convert " <<<"$help"; then
  echo "SKIP: this nucleus has no convert subcommand wired in"
  exit 0
fi

tokens() { "$nucleus" generate -m "$1" --tokens 1 -n 40 -t 1 --json 2>/dev/null |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens"])'; }

"$nucleus" convert data/hf/stories260K-hf -o "$tmp/s.gguf" --type f32 2>/dev/null
want="$(tokens ../models/stories260K.gguf)"
[[ "$(tokens "$tmp/s.gguf")" == "$want" ]] || fail "converted F32 model generates differently"
# The checkpoint directory itself runs the same greedy continuation.
[[ "$(tokens data/hf/stories260K-hf)" == "$want" ]] || fail "HF directory generates differently"

"$nucleus" quantize "$tmp/s.gguf" "$tmp/q8.gguf" q8_0 2>/dev/null
"$nucleus" convert data/hf/stories260K-hf -o "$tmp/d8.gguf" --type q8_0 2>/dev/null
[[ "$(tokens "$tmp/q8.gguf")" == "$(tokens "$tmp/d8.gguf")" ]] || fail "quantize and convert --type q8_0 differ"

"$nucleus" convert --random "dim=64,layers=2,heads=4,kv_heads=2,ffn=128,vocab=300,ctx=64" \
  --seed 5 -o "$tmp/r.gguf" --type q4_0 2>/dev/null
"$nucleus" generate -m "$tmp/r.gguf" --tokens 1 -n 4 -t 1 --json >/dev/null 2>&1 || fail "random model does not run"

expect_error() {
  local pattern="$1"; shift
  local err
  if err="$("$@" 2>&1 >/dev/null)"; then fail "succeeded: $*"; fi
  [[ "$(wc -l <<<"$err")" -eq 1 ]] || fail "error is not one line: $err"
  grep -qF "$pattern" <<<"$err" || fail "error '$err' lacks '$pattern'"
}
expect_error "not a directory" "$nucleus" convert "$tmp/nope" -o "$tmp/x.gguf"
expect_error "unknown tensor type 'q9'" "$nucleus" quantize "$tmp/s.gguf" "$tmp/x.gguf" q9
expect_error "gpt-5" "$nucleus" convert --random gpt-5 -o "$tmp/x.gguf"
expect_error "no tokenizer.json" "$nucleus" convert data/hf/stas-tiny-random-llama-2 -o "$tmp/x.gguf"
[[ ! -e "$tmp/x.gguf" && ! -e "$tmp/x.gguf.part" ]] || fail "a failed run left a file behind"
echo "convert_cli_test: ok"
