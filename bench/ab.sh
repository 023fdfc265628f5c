#!/usr/bin/env bash
# Interleaved A/B of decode (or prefill) speed: each round runs every
# configuration once, in turn, so all of them see the same machine load, and
# the best rate per configuration over the rounds is printed. On shared VMs
# whose bandwidth moves with the neighbours (this project's machines: the
# 2-thread read probe has read 38 and 68 GB/s on one day), only such
# side-by-side ratios mean anything.
#
# Usage: bench/ab.sh [-t THREADS] [-r ROUNDS] [-p 1] [-n 64] [--test tg|pp] CONFIG...
#   CONFIG = "BINARY|MODEL.gguf|EXTRA ARGS" (extra args go to `nucleus bench`,
#            e.g. "--bf16-dot off"; an environment assignment may lead:
#            "NUCLEUS_NO_AVX512=1 build/nucleus|m.gguf|")
set -euo pipefail
t="$(nproc 2>/dev/null || echo 1)" rounds=3 p=1 n=64 test=tg
while [[ $# -gt 0 ]]; do
  case "$1" in
    -t) t="$2"; shift 2 ;;
    -r) rounds="$2"; shift 2 ;;
    -p) p="$2"; shift 2 ;;
    -n) n="$2"; shift 2 ;;
    --test) test="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed -e '/^set -e/d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
    *) break ;;
  esac
done
[[ $# -ge 1 ]] || { echo "ab.sh: give at least one CONFIG" >&2; exit 2; }
declare -A best
for ((k = 0; k < rounds; ++k)); do
  for cfg in "$@"; do
    IFS='|' read -r bin model extra <<<"$cfg"
    # shellcheck disable=SC2086  # the binary part may carry VAR=value words, extra its flags
    rate=$(env $bin bench -m "$model" -p "$p" -n "$n" -r 1 -t "$t" --json $extra |
      python3 -c "import json, sys; print([o['avg_ts'] for o in json.load(sys.stdin) if o['test'].startswith('$test')][0])")
    best[$cfg]=$(python3 -c "print(max(${best[$cfg]:-0}, $rate))")
  done
done
for cfg in "$@"; do printf '%10.2f t/s  %s\n' "${best[$cfg]}" "$cfg"; done
