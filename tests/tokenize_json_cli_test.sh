#!/usr/bin/env bash
# `nucleus tokenize` / `detokenize` on a bare tokenizer.json or a directory
# holding one (no weights), and `convert --random dim=N` with every other
# field defaulted. Expected ids are llama.cpp's test vectors
# (data/bpe/ggml-vocab-{llama-spm,qwen2}.gguf.out, encoded without BOS; see
# data/bpe/README.md).
# Usage: tokenize_json_cli_test.sh path/to/nucleus (run from tests/)
set -euo pipefail
nucleus="$1"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
same() { [[ "$1" == "$2" ]] || fail "$3: got '$1', want '$2'"; }

# llama-spm vectors 17 and 25; with BOS by default (the post-processor adds <s>).
same "$("$nucleus" tokenize -m data/bpe/llama2/tokenizer.json --no-bos ' Hello, world!')" \
  "[29871,15043,29892,3186,29991]" "llama2 tokenizer.json"
same "$("$nucleus" tokenize -m data/bpe/llama2 --no-bos '  Hello')" "[259,15043]" "llama2 directory"
same "$("$nucleus" tokenize -m data/bpe/llama2 'Hello world')" "[1,15043,3186]" "llama2 with BOS"
# A byte-level vocabulary (qwen2 vectors 11 and 30).
same "$("$nucleus" tokenize -m data/bpe/qwen3/tokenizer.json --no-bos 'Hello world')" "[9707,1879]" "qwen3"
same "$("$nucleus" tokenize -m data/bpe/qwen3 --no-bos $'\n =')" "[198,284]" "qwen3 directory"
# mistral-tokenizer-js cases ("ax\n####\nboo", " grabbed").
same "$("$nucleus" detokenize -m data/bpe/mistral-v0.1 1,6056,13,2000,13,1798,28709)" $'ax\n####\nboo' \
  "mistral detokenize"
same "$("$nucleus" tokenize -m data/bpe/mistral-v0.1 ' grabbed')" "[1,28705,13300]" "mistral tokenize"
same "$("$nucleus" detokenize -m data/bpe/qwen3/tokenizer.json 9707,1879)" "Hello world" "qwen3 detokenize"

expect_error() {
  local pattern="$1"; shift
  local err
  if err="$("$@" 2>&1 >/dev/null)"; then fail "succeeded: $*"; fi
  [[ "$(wc -l <<<"$err")" -eq 1 ]] || fail "error is not one line: $err"
  grep -qF "$pattern" <<<"$err" || fail "error '$err' lacks '$pattern'"
}
echo '{"model": {"type": "WordPiece"}}' >"$tmp/bad.json"
expect_error "bad.json" "$nucleus" tokenize -m "$tmp/bad.json" hi
expect_error "no such file" "$nucleus" tokenize -m "$tmp/none.json" hi

# convert --random with only dim: 64-wide heads, Meta's FFN rule, 2 layers,
# Llama 2's 32000 tokens, context 2048; the model runs.
"$nucleus" convert --random dim=256 -o "$tmp/r.gguf" 2>/dev/null
info="$("$nucleus" info -m "$tmp/r.gguf")"
for want in "embedding size:  256" "layers:          2" "heads:           4 (KV heads 4, head size 64)" \
  "FFN size:        768" "vocab size:      32000" "context length:  2048"; do
  grep -qF "$want" <<<"$info" || fail "convert --random dim=256: info lacks '$want':"$'\n'"$info"
done
"$nucleus" convert --random dim=48,kv_heads=1,ctx=32 -o "$tmp/s.gguf" 2>/dev/null
info="$("$nucleus" info -m "$tmp/s.gguf")"
grep -qF "heads:           1 (KV heads 1, head size 48)" <<<"$info" || fail "dim=48: $info"
grep -qF "context length:  32" <<<"$info" || fail "dim=48 ctx: $info"
"$nucleus" generate -m "$tmp/s.gguf" --tokens 1 -n 3 -t 1 --json >/dev/null 2>&1 || fail "dim=48 model does not run"
expect_error "dim is required" "$nucleus" convert --random layers=2 -o "$tmp/x.gguf"
echo "ok"
