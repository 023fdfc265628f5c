#!/usr/bin/python3
"""`nucleus generate` reports measured performance beside the machine's peaks:
per phase time, tok/s, FLOP/s, bytes/s, MFU and MBU (text summary and --json
timings), and where the peaks came from.

The FLOP counts are checked against a hand calculation for stories260K (dim 64,
5 layers, 8 heads x 8, 4 KV heads, ffn 172, vocab 512). Usage:
generate_perf_test.py path/to/nucleus   (run from tests/)
"""
import json
import os
import subprocess
import sys
import tempfile


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    nucleus = sys.argv[1]
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        env["XDG_CACHE_HOME"] = tmp  # no cached peaks: the built-in default
        base = [nucleus, "generate", "--tokens", "1,403,407", "-n", "4", "--min-new-tokens", "4",
                "-t", "1"]
        res = subprocess.run(base + ["--json"], capture_output=True, text=True, env=env)
        if res.returncode != 0:
            fail("generate --json: " + res.stderr)
        t = json.loads(res.stdout)["timings"]
        for phase in ("prefill", "decode"):
            p = t[phase]
            for key in ("seconds", "tokens_per_second", "flops", "bytes", "flops_per_second",
                        "bytes_per_second", "mfu", "mbu"):
                if key not in p:
                    fail("timings.%s lacks %s" % (phase, key))
            if p["seconds"] > 0:
                rate = p["flops"] / p["seconds"]
                if abs(p["flops_per_second"] - rate) > 1e-6 * rate:
                    fail(phase + ": flops_per_second is not flops / seconds")
                peak = t["peaks"]["flops_per_second"]
                if abs(p["mfu"] - p["flops_per_second"] / peak) > 1e-9:
                    fail(phase + ": mfu is not FLOP/s over the peak")
                bw = t["peaks"]["bytes_per_second"]
                if abs(p["mbu"] - p["bytes_per_second"] / bw) > 1e-9:
                    fail(phase + ": mbu is not bytes/s over the peak bandwidth")
        if not t["peaks"]["source"].startswith("default"):
            fail("peaks source: " + t["peaks"]["source"])
        # Prefill of 3 tokens, by hand, per layer:
        #   projections 2*3*64*(64 + 32 + 32 + 64) = 73728
        #   MLP         2*3*64*172*3               = 198144
        #   attention   8 heads * 4*8 * (1+2+3)    = 1536
        # x 5 layers = 1367040, plus the lm_head for the last row 2*64*512 = 65536.
        if t["prefill"]["flops"] != 1432576:
            fail("prefill flops %s, want 1432576" % t["prefill"]["flops"])
        # Decode: 3 steps at contexts 4, 5, 6: one row each, per layer
        # 2*64*192 + 2*64*172*3 = 90624 plus 256 per attended position.
        want = sum(5 * (90624 + 256 * c) + 65536 for c in (4, 5, 6))
        if t["decode"]["flops"] != want:
            fail("decode flops %s, want %d" % (t["decode"]["flops"], want))

        res = subprocess.run(base, capture_output=True, text=True, env=env)
        if res.returncode != 0:
            fail("generate: " + res.stderr)
        lines = res.stderr.splitlines()
        for start in ("prefill ", "decode ", "peaks for MFU/MBU: "):
            line = next((l for l in lines if l.startswith(start)), None)
            if line is None:
                fail("summary lacks a '%s' line:\n%s" % (start, res.stderr))
            if start != "peaks for MFU/MBU: ":
                for needle in ("tok/s", "GFLOP/s", "GB/s", "MFU", "MBU"):
                    if needle not in line:
                        fail("'%s' lacks %s" % (line, needle))
            elif "source: default" not in line:
                fail("peaks line does not name its source: " + line)
    print("generate_perf_test: ok")


if __name__ == "__main__":
    main()
