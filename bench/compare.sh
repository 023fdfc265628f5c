#!/usr/bin/env bash
# Side-by-side speed of nucleus and llama.cpp on the same GGUF files.
#
# Usage: bench/compare.sh [-p 512] [-n 128] [-t THREADS] [-r 3] [--rounds 1]
#                         [--nucleus PATH] [--types "f16 q8_0 q4_0 q4_k_m q5_k_m q6_k"]
#                         LLAMA_BENCH_BINARY [MODEL.gguf ...]
#
# For each model it runs llama-bench and `nucleus bench` one after the other
# (alternating, so both see the same machine load), with the same prompt
# length, generation length, threads and repetitions, and prints one row per
# test (ppN, tgN) with both rates and the ratio nucleus / llama.cpp.
# With --rounds R each model is measured R times in alternation and the rates
# are averaged.
#
# Without models it makes TinyLlama-1.1B-shaped random models with
# `nucleus convert --random tinyllama-1.1b --type TYPE` (once; the llama.cpp
# mixes q4_k_s/q4_k_m/q5_k_s/q5_k_m via an F16 model and `nucleus quantize`) in
# ${NUCLEUS_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nucleus/bench-models}.
#
# llama.cpp is never built or shipped by this project: bring your own
# llama-bench (CPU build).
set -euo pipefail

usage() { sed -n '2,/^set -e/p' "$0" | sed -e '/^set -e/d' -e 's/^# \{0,1\}//' >&2; exit 2; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
nucleus="${NUCLEUS:-$here/../build/nucleus}"
p=512 n=128 r=3 rounds=1
t="$(nproc 2>/dev/null || echo 1)"
types="f16 q8_0 q4_0"
while [[ $# -gt 0 ]]; do
  case "$1" in
    -p) p="$2"; shift 2 ;;
    -n) n="$2"; shift 2 ;;
    -t) t="$2"; shift 2 ;;
    -r) r="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --nucleus) nucleus="$2"; shift 2 ;;
    --types) types="$2"; shift 2 ;;
    -h|--help) usage ;;
    --) shift; break ;;
    -*) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[[ $# -ge 1 ]] || usage
llama_bench="$1"; shift
for v in "$p" "$n" "$t" "$r" "$rounds"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: -p/-n/-t/-r/--rounds need positive integers, got '$v'" >&2; exit 2; }
done
[[ -x "$llama_bench" ]] || { echo "compare.sh: llama-bench binary '$llama_bench' is not executable" >&2; exit 2; }
[[ -x "$nucleus" ]] || { echo "compare.sh: nucleus binary '$nucleus' not found (build it, or pass --nucleus PATH)" >&2; exit 2; }

models=("$@")
if [[ ${#models[@]} -eq 0 ]]; then
  cache="${NUCLEUS_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nucleus/bench-models}"
  mkdir -p "$cache"
  for ty in $types; do
    f="$cache/tinyllama-1.1b-random-$ty.gguf"
    if [[ ! -s "$f" ]]; then
      echo "compare.sh: writing $f" >&2
      case "$ty" in
        q4_k_s|q4_k_m|q5_k_s|q5_k_m)
          # llama.cpp's mixes: quantize an F16 random model with the recipe.
          "$nucleus" convert --random tinyllama-1.1b --type f16 --seed 1 -o "$f.f16.tmp" -t "$t" >&2
          "$nucleus" quantize "$f.f16.tmp" "$f.tmp" "$ty" -t "$t" >&2
          rm -f "$f.f16.tmp" ;;
        *) "$nucleus" convert --random tinyllama-1.1b --type "$ty" --seed 1 -o "$f.tmp" -t "$t" >&2 ;;
      esac
      mv "$f.tmp" "$f"
    fi
    models+=("$f")
  done
fi
for m in "${models[@]}"; do
  [[ -f "$m" ]] || { echo "compare.sh: model '$m' not found" >&2; exit 2; }
done

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "compare.sh: -p $p -n $n -t $t -r $r, rounds $rounds; load average at start: $load_start" >&2
i=0
for m in "${models[@]}"; do
  for ((round = 1; round <= rounds; ++round)); do
    echo "compare.sh: [$round/$rounds] llama-bench $m" >&2
    "$llama_bench" -m "$m" -p "$p" -n "$n" -t "$t" -r "$r" -o json >"$out/llama.$i.$round.json" 2>"$out/llama.$i.$round.err" \
      || { cat "$out/llama.$i.$round.err" >&2; echo "compare.sh: llama-bench failed on $m" >&2; exit 1; }
    echo "compare.sh: [$round/$rounds] nucleus bench $m" >&2
    "$nucleus" bench -m "$m" -p "$p" -n "$n" -t "$t" -r "$r" --json >"$out/nucleus.$i.$round.json" \
      || { echo "compare.sh: nucleus bench failed on $m" >&2; exit 1; }
  done
  echo "$m" >"$out/model.$i"
  i=$((i + 1))
done
load_end="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "compare.sh: load average at end: $load_end" >&2

python3 - "$out" "$i" "$rounds" "$p" "$n" "$t" "$load_start" "$load_end" <<'PY'
import json, os, statistics, sys
out, count, rounds, p, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
threads, load_start, load_end = sys.argv[6], sys.argv[7], sys.argv[8]

def llama_rows(path):
    # llama-bench -o json: an array with one object per test; pp has n_gen 0, tg has n_prompt 0.
    rows = {}
    for o in json.load(open(path)):
        if o.get("n_prompt", 0) > 0 and o.get("n_gen", 0) == 0:
            rows["pp%d" % o["n_prompt"]] = o
        elif o.get("n_gen", 0) > 0 and o.get("n_prompt", 0) == 0:
            rows["tg%d" % o["n_gen"]] = o
    return rows

def nucleus_rows(path):
    return {o["test"]: o for o in json.load(open(path))}

header = ["model", "type", "test", "llama.cpp t/s", "nucleus t/s", "ratio", "nucleus GFLOP/s", "GB/s", "MFU", "MBU"]
table = []
for i in range(count):
    model = open(os.path.join(out, "model.%d" % i)).read().strip()
    for test in ("pp%d" % p, "tg%d" % n):
        l_ts, n_ts, l_sd, n_sd, nuc = [], [], [], [], None
        fl, by, mf, mb = [], [], [], []
        for rd in range(1, rounds + 1):
            lr = llama_rows(os.path.join(out, "llama.%d.%d.json" % (i, rd))).get(test)
            nr = nucleus_rows(os.path.join(out, "nucleus.%d.%d.json" % (i, rd))).get(test)
            if lr is None or nr is None:
                sys.exit("compare.sh: %s lacks test %s" % (model, test))
            l_ts.append(lr["avg_ts"]); l_sd.append(lr["stddev_ts"])
            n_ts.append(nr["avg_ts"]); n_sd.append(nr["stddev_ts"])
            nuc = nr
            fl.append(nr["flops_per_s"]); by.append(nr["bytes_per_s"])
            mf.append(nr["mfu"]); mb.append(nr["mbu"])
        la, na = statistics.mean(l_ts), statistics.mean(n_ts)
        table.append([os.path.basename(model), nuc["type"], test,
                      "%.2f ± %.2f" % (la, statistics.mean(l_sd)),
                      "%.2f ± %.2f" % (na, statistics.mean(n_sd)),
                      "%.2f" % (na / la if la > 0 else float("nan")),
                      "%.1f" % (statistics.mean(fl) / 1e9), "%.2f" % (statistics.mean(by) / 1e9),
                      "%.1f%%" % (100 * statistics.mean(mf)), "%.1f%%" % (100 * statistics.mean(mb))])
print("| " + " | ".join(header) + " |")
print("| " + " | ".join("---" if k < 3 else "---:" for k in range(len(header))) + " |")
for row in table:
    print("| " + " | ".join(row) + " |")
src = nucleus_rows(os.path.join(out, "nucleus.0.1.json"))
print("\nratio = nucleus / llama.cpp tokens per second (%d round(s), %s threads); "
      "MFU/MBU of nucleus against peaks: %s" % (rounds, threads, next(iter(src.values()))["peaks_source"]))
print("load average (1, 5, 15 min): %s at start, %s at end" % (load_start, load_end))
PY
