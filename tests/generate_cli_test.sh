#!/usr/bin/env bash
# `nucleus generate` end to end: beam search JSON against Hugging Face
# transformers 4.40.2 (tests/data/hf_ref/stories260K.json), --trace, --stop,
# and one-line parameter errors that come before any model work.
# Usage: generate_cli_test.sh path/to/nucleus   (run from tests/)
set -euo pipefail
nucleus="$1"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# Beam search: HF's sequences and sequences_scores for prompt 0.
"$nucleus" generate --num-beams 4 --num-return-sequences 2 --json --tokens 1,403,407,261,378 \
  -n 16 --early-stopping true -t 1 >"$tmp/beam.json"
python3 - "$tmp/beam.json" data/hf_ref/stories260K.json <<'PY'
import json, sys
out = json.load(open(sys.argv[1]))
ref = json.load(open(sys.argv[2]))["runs"][0]
beam = ref["beam"]
plen = len(ref["prompt"])
seqs = out["sequences"]
assert len(seqs) == 2, len(seqs)
for i, s in enumerate(seqs):
    want = beam["sequences"][i][plen:]
    assert s["tokens"] == want, (i, s["tokens"], want)
    assert abs(s["score"] - beam["sequences_scores"][i]) < 1e-4, (i, s["score"])
assert out["tokens"] == seqs[0]["tokens"]
assert out["kv_peak_bytes"] > 0
PY

# --trace --json: one record per step with the processors that ran.
"$nucleus" generate --json --trace --tokens 1,403,407,261,378 -n 3 --do-sample --top-k 5 \
  --seed 1 -t 1 >"$tmp/trace.json"
python3 - "$tmp/trace.json" <<'PY'
import json, sys
out = json.load(open(sys.argv[1]))
trace = out["trace"]
assert len(trace) == 3, len(trace)
names = [r["processor"] for r in trace[0]["processors"]]
assert "top_k" in " ".join(names), names
assert all(len(r["top"]) <= 5 for r in trace[0]["processors"]), trace[0]
PY

# --stop: the greedy story continues "... little girl named Lily. She loved";
# stopping on "girl" ends the text right before it.
"$nucleus" generate --json --tokens 1,403,407,261,378 -n 32 --stop girl -t 1 >"$tmp/stop.json"
python3 - "$tmp/stop.json" <<'PY'
import json, sys
out = json.load(open(sys.argv[1]))
assert out["stop_reason"] == "stop", out["stop_reason"]
assert out["text"] == ", there was a little ", repr(out["text"])
PY
streamed="$("$nucleus" generate -p "Once upon a time" -n 32 --stop ". She" -t 1 2>/dev/null)"
[[ "$streamed" == "Once upon a time, there was a little girl named Lily" ]] \
  || fail "streamed --stop output is '$streamed'"

# Bad settings: one line naming the parameter, non-zero exit, before the
# model is read (the model path does not exist).
expect_error() {
  local pattern="$1"; shift
  local err rc=0
  err="$("$nucleus" generate -m "$tmp/no-such-model.gguf" "$@" 2>&1 >/dev/null)" || rc=$?
  [[ $rc -ne 0 ]] || fail "'$*' exited 0"
  [[ "$(wc -l <<<"$err")" -eq 1 ]] || fail "'$*' printed more than one line: $err"
  grep -qF -- "$pattern" <<<"$err" || fail "'$*' error '$err' lacks '$pattern'"
  if grep -qF "no-such-model" <<<"$err"; then fail "'$*' read the model first: $err"; fi
}
expect_error "top_p" --top-p 1.5
expect_error "top_k" --top-k -1
expect_error "temperature" --temperature -1
expect_error "num_return_sequences" --num-beams 2 --num-return-sequences 3
expect_error "num_beams" --num-beams 0
expect_error "repetition_penalty" --repetition-penalty 0
expect_error "sampler_order" --sampler-order bogus
expect_error "max-new-tokens" -n 0
expect_error "prompt" -p ""
expect_error "early_stopping" --early-stopping maybe
expect_error "--tokens" --tokens 1,-5
expect_error "--tokens" --tokens 1,x

# An id past the vocabulary needs the model's vocabulary size: still one line.
rc=0
err="$("$nucleus" generate --tokens 1,512 -n 2 2>&1 >/dev/null)" || rc=$?
[[ $rc -ne 0 ]] || fail "--tokens 1,512 exited 0"
[[ "$(wc -l <<<"$err")" -eq 1 ]] || fail "--tokens 1,512: $err"
grep -qF "512" <<<"$err" || fail "--tokens 1,512 error lacks the id: $err"
echo "generate_cli_test: ok"
