#!/usr/bin/env bash
# Bad input at the command line: every case must exit non-zero with exactly
# one line on stderr that starts with "error:" and names the problem — never
# a crash, a hang or output on stdout. Usage: cli_bad_input_test.sh path/to/nucleus
set -uo pipefail
nucleus="$1"
model=../models/stories260K.gguf
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failures=0

# expect_error PATTERN ARGS...: one-line error mentioning PATTERN, non-zero exit.
expect_error() {
  local pattern="$1"; shift
  local out err rc
  out="$(timeout 60 "$nucleus" "$@" 2>"$tmp/err")"; rc=$?
  err="$(cat "$tmp/err")"
  if [[ $rc -eq 0 || $rc -ge 124 ]]; then
    echo "FAIL (exit $rc): $*"; failures=$((failures + 1)); return
  fi
  if [[ "$(printf '%s\n' "$err" | wc -l)" -ne 1 || "$err" != error:* ]]; then
    echo "FAIL (not one 'error:' line): $* -> $err"; failures=$((failures + 1)); return
  fi
  if ! grep -qiF -- "$pattern" <<<"$err"; then
    echo "FAIL (message lacks '$pattern'): $* -> $err"; failures=$((failures + 1)); return
  fi
}

size=$(stat -c %s "$model")
# Truncated copies: inside the header, the metadata, the tensor infos, the data.
for cut in 3 10 100 1000 20000 600000 $((size - 1)); do
  head -c "$cut" "$model" >"$tmp/trunc_$cut.gguf"
  expect_error "trunc_$cut.gguf" generate -m "$tmp/trunc_$cut.gguf" -n 4
done
# Wrong magic.
{ printf 'GGUX'; tail -c +5 "$model"; } >"$tmp/magic.gguf"
expect_error "magic" info -m "$tmp/magic.gguf"
# Unsupported versions (the u32 after the magic).
for v in '\x01' '\x04'; do
  { printf 'GGUF'; printf "$v"'\x00\x00\x00'; tail -c +9 "$model"; } >"$tmp/version.gguf"
  expect_error "version" info -m "$tmp/version.gguf"
done
# A llama2.c header with impossible dimensions.
printf '\x40\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00\x08\x00\x00\x00\x04\x00\x00\x00\x00\x02\x00\x00\x00\x02\x00\x00' >"$tmp/bad.bin"
expect_error "bad.bin" info -m "$tmp/bad.bin"
# Missing files and directories without a checkpoint.
expect_error "no such file" info -m "$tmp/missing.gguf"
mkdir -p "$tmp/emptydir"
expect_error "config.json" info -m "$tmp/emptydir"
# Ids and prompts.
expect_error "out of range" generate -m "$model" --tokens 1,512 -n 4
expect_error "out of range" generate -m "$model" --tokens 1,-3 -n 4
expect_error "out of range" logits -m "$model" --tokens 1,99999
expect_error "out of range" detokenize -m "$model" 1,700
expect_error "token id" logits -m "$model" --tokens 1,abc
expect_error "empty prompt" generate -m "$model" -p "" -n 4
expect_error "empty prompt" logits -m "$model" --tokens ,
# N <= 0.
expect_error "max-new-tokens" generate -m "$model" -n 0
expect_error "max-new-tokens" generate -m "$model" -n -5
# A prompt longer than the context.
expect_error "context" generate -m "$model" --tokens "$(python3 -c 'print(",".join(["1"] * 2100))')" -n 4

if [[ $failures -ne 0 ]]; then
  echo "$failures case(s) failed"
  exit 1
fi
echo "all bad-input cases give one-line errors"
