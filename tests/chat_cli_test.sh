#!/usr/bin/env bash
# `nucleus chat` end to end on a Hugging Face checkpoint directory whose
# tokenizer_config.json carries a chat template: stories260K-hf (weights and
# tokenizer.json) with TinyLlama-Chat's tokenizer_config.json (Zephyr template).
# Usage: chat_cli_test.sh path/to/nucleus
set -euo pipefail
nucleus="$1"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# The rendered prompt that --show-prompt wrote to stderr (file $1).
shown_prompt() {
  python3 -c '
import sys
t = open(sys.argv[1]).read()
a = t.index("--- prompt ---\n") + len("--- prompt ---\n")
b = t.index("\n--- end ---")
sys.stdout.write(t[a:b])' "$1"
}

for f in config.json model.safetensors tokenizer.json generation_config.json; do
  ln -s "$PWD/data/hf/stories260K-hf/$f" "$tmp/$f"
done
cp data/chat/llama2.tokenizer_config.json "$tmp/tokenizer_config.json"

"$nucleus" chat -m "$tmp" --system "Be brief" --message "Hi" -n 12 --show-prompt \
  >"$tmp/out.txt" 2>"$tmp/err.txt"
# Rendered by reading the template by hand (transformers renders with
# trim_blocks and lstrip_blocks): each turn is "<|role|>\n" + content + eos,
# followed by the newline after the expression; then "<|assistant|>\n".
expected=$'<|system|>\nBe brief</s>\n<|user|>\nHi</s>\n<|assistant|>\n'
prompt="$(shown_prompt "$tmp/err.txt")"
[[ "$prompt" == "${expected%$'\n'}" ]] || fail "rendered prompt differs: $(printf '%q' "$prompt")"
[[ -s "$tmp/out.txt" ]] || fail "no reply"

# Interactive mode: two turns from stdin, then EOF.
printf 'Hello\nTell me a story\n' | "$nucleus" chat -m "$tmp" -n 6 >"$tmp/out2.txt" 2>/dev/null
[[ "$(wc -l <"$tmp/out2.txt")" -ge 2 ]] || fail "interactive chat did not answer two turns"

# A directory without a chat template is a clear one-line error.
mkdir "$tmp/plain"
for f in config.json model.safetensors tokenizer.json; do ln -s "$PWD/data/hf/stories260K-hf/$f" "$tmp/plain/$f"; done
cp data/hf/stories260K-hf/tokenizer_config.json "$tmp/plain/"
if err="$("$nucleus" chat -m "$tmp/plain" --message hi 2>&1 >/dev/null)"; then fail "accepted a config without chat_template"; fi
[[ "$(wc -l <<<"$err")" -eq 1 && "$err" == error:* ]] || fail "not a one-line error: $err"
# The template travels into GGUF (tokenizer.chat_template) and is used from
# there when no tokenizer_config.json lies beside the file; BOS/EOS texts come
# from the GGUF vocabulary, so the rendering is the same as above.
mkdir "$tmp/gguf"
"$nucleus" convert "$tmp" -o "$tmp/gguf/m.gguf" --type f32 2>/dev/null
"$nucleus" chat -m "$tmp/gguf/m.gguf" --system "Be brief" --message "Hi" -n 4 --show-prompt \
  >"$tmp/out3.txt" 2>"$tmp/err3.txt"
prompt3="$(shown_prompt "$tmp/err3.txt")"
[[ "$prompt3" == "${expected%$'\n'}" ]] || fail "GGUF template renders differently: $(printf '%q' "$prompt3")"

# `info` reports the template, also for a vocabulary-only GGUF (llama.cpp's
# ggml-vocab-phi-3.gguf carries one and no weights).
info="$("$nucleus" info -m "$tmp/gguf/m.gguf")"
grep -q "^chat template:   yes" <<<"$info" || fail "info does not show the GGUF chat template"
info="$("$nucleus" info -m data/tokenizer/ggml-vocab-phi-3.gguf)"
grep -q "^tokenizer:       llama, 32064 tokens" <<<"$info" || fail "info on a vocabulary-only GGUF: $info"
grep -q "^chat template:   yes" <<<"$info" || fail "info misses the vocabulary-only GGUF's template"

# A GGUF without a template and without a config beside it: one-line error.
mkdir "$tmp/bare"
ln -s "$PWD/../models/stories260K.gguf" "$tmp/bare/m.gguf"
if err="$("$nucleus" chat -m "$tmp/bare/m.gguf" --message hi 2>&1 >/dev/null)"; then fail "chat without any template"; fi
[[ "$(wc -l <<<"$err")" -eq 1 && "$err" == *"no chat template"* ]] || fail "not a one-line error: $err"
echo "chat ok"
