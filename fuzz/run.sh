#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each on its corpus:
#   fuzz/run.sh BUILD_DIR SECONDS [target ...]
# Corpus directories, first one written to: BUILD_DIR/fuzz-corpus/<t> (what
# this machine found), then the seeds (BUILD_DIR/fuzz-seeds/<t>, from
# `make fuzz`) and the regression inputs (tests/data/fuzz/<t>). A crash,
# timeout, leak or out-of-memory input lands in BUILD_DIR/fuzz-artifacts/ and
# makes the script fail. Extra libFuzzer flags: FUZZ_FLAGS="-jobs=2 ...".
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: fuzz/run.sh BUILD_DIR SECONDS [target ...]}
seconds=${2:?usage: fuzz/run.sh BUILD_DIR SECONDS [target ...]}
shift 2
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(gguf safetensors hf_checkpoint llama2c tokenizer_json encode
                                     detokenize jinja generation_config gguf_chat_template openai_request)
declare -A dict=([gguf]=gguf [gguf_chat_template]=gguf [safetensors]=json [hf_checkpoint]=json
                 [tokenizer_json]=json [generation_config]=json [jinja]=jinja [llama2c]=
                 [encode]= [detokenize]= [openai_request]=json)
mkdir -p "$build/fuzz-artifacts"
failed=()
for t in "${targets[@]}"; do
  mkdir -p "$build/fuzz-corpus/$t"
  dirs=("$build/fuzz-corpus/$t")
  for d in "$build/fuzz-seeds/$t" "tests/data/fuzz/$t"; do [ -d "$d" ] && dirs+=("$d"); done
  # -timeout: the slowest legitimate input (printing a hostile Jinja value up
  # to its 16 MiB bound, tests/data/fuzz/jinja/shared_list_print_blowup) takes
  # ~5 s under the coverage instrumentation; 30 s leaves a loaded CI machine room.
  flags=(-max_total_time="$seconds" -print_final_stats=1 -timeout=30 -rss_limit_mb=2048
         -artifact_prefix="$build/fuzz-artifacts/$t-")
  [ -n "${dict[$t]:-}" ] && flags+=(-dict="fuzz/dict/${dict[$t]}.dict")
  echo "== fuzz_$t for ${seconds}s"
  # shellcheck disable=SC2086
  if ! "$build/fuzz_$t" "${flags[@]}" ${FUZZ_FLAGS:-} "${dirs[@]}" > "$build/fuzz-artifacts/$t.log" 2>&1; then
    failed+=("$t")
    tail -n 60 "$build/fuzz-artifacts/$t.log"
  fi
  grep -E "^(#[0-9]+ *DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)" \
    "$build/fuzz-artifacts/$t.log" | tr '\n' ' ' || true
  echo
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz targets that failed: ${failed[*]} (inputs in $build/fuzz-artifacts/)"
  exit 1
fi
