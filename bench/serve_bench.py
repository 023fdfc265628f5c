#!/usr/bin/env python3
"""serve_bench: drives `nucleus serve` over HTTP with N concurrent streams and
reports what vLLM's `bench serve` reports: aggregate generated tok/s, time to
first token (TTFT) and inter-token latency (ITL) p50/p99.

Every stream gets a prompt of --prompt-tokens ids and generates exactly
--max-tokens tokens (EOS banned with logit_bias, greedy), each token its own
SSE chunk (return_token_ids), timed on arrival. --long-prompt L adds, halfway
through each run, one request with an L-token prompt (max_tokens 1) and
reports the other streams' ITL while it is prefilled (chunked prefill keeps
it from stalling them).

  bench/serve_bench.py --nucleus build/nucleus -m /tmp/tl-q4_0.gguf -t 2 --streams 1,4,16
  bench/serve_bench.py --url http://127.0.0.1:8080 --streams 4      (a running server)
Standard library only.
"""
import argparse
import http.client
import json
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


class Stream:
    def __init__(self, host, port, body):
        self.host, self.port, self.body = host, port, body
        self.t0 = self.first = self.end = None
        self.arrivals = []
        self.error = None

    def run(self):
        try:
            c = http.client.HTTPConnection(self.host, self.port, timeout=600)
            self.t0 = time.perf_counter()
            c.request("POST", "/v1/completions", body=json.dumps(self.body).encode(),
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            if r.status != 200:
                self.error = f"status {r.status}: {r.read()[:200]!r}"
                return
            while True:
                line = r.readline()
                if not line:
                    break
                line = line.strip()
                if not line.startswith(b"data: "):
                    continue
                if line == b"data: [DONE]":
                    break
                now = time.perf_counter()
                ev = json.loads(line[6:])
                for ch in ev.get("choices", []):
                    for _ in ch.get("token_ids") or []:
                        self.arrivals.append(now)
            self.end = time.perf_counter()
            if self.arrivals:
                self.first = self.arrivals[0]
            c.close()
        except Exception as e:  # reported, not raised: one bad stream must not hide the others
            self.error = repr(e)


RUNS = [0]  # every run's prompts differ, so no run hits the prefix cache of an earlier one


def run_level(host, port, n, args, long_prompt=0):
    RUNS[0] += 1
    salt = RUNS[0] * 7919
    streams = []
    for i in range(n):
        prompt = [1] + [(salt + 37 * i + 11 * k) % (args.vocab - 3) + 3 for k in range(args.prompt_tokens - 1)]
        body = {"prompt": prompt, "max_tokens": args.max_tokens, "temperature": 0, "stream": True,
                "return_token_ids": True, "logit_bias": {str(args.eos): -100}}
        streams.append(Stream(host, port, body))
    threads = [threading.Thread(target=s.run) for s in streams]
    for t in threads:
        t.start()
    long_window = None
    if long_prompt:
        # Wait until every stream is decoding, then send the long prompt.
        deadline = time.perf_counter() + 120
        while time.perf_counter() < deadline and any(len(s.arrivals) < args.max_tokens // 4 for s in streams):
            time.sleep(0.005)
        lp = [1] + [(salt + 13 * k) % (args.vocab - 3) + 3 for k in range(long_prompt - 1)]
        ls = Stream(host, port, {"prompt": lp, "max_tokens": 1, "temperature": 0, "stream": True,
                                 "return_token_ids": True})
        ls.run()
        long_window = (ls.t0, ls.end)
    for t in threads:
        t.join()
    errors = [s.error for s in streams if s.error]
    if errors:
        raise SystemExit(f"{len(errors)} streams failed: {errors[0]}")
    start = min(s.t0 for s in streams)
    end = max(s.end for s in streams)
    tokens = sum(len(s.arrivals) for s in streams)
    ttft = [s.first - s.t0 for s in streams]
    itl, itl_window = [], []
    for s in streams:
        for a, b in zip(s.arrivals, s.arrivals[1:]):
            itl.append(b - a)
            if long_window and b >= long_window[0] and a <= long_window[1]:
                itl_window.append(b - a)
    return {"streams": n, "tokens": tokens, "seconds": end - start, "tok_s": tokens / (end - start),
            "ttft_p50": pct(ttft, 50), "ttft_p99": pct(ttft, 99), "itl_p50": pct(itl, 50),
            "itl_p99": pct(itl, 99), "itl_window": itl_window, "long_window": long_window}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="a running server (else one is started with --nucleus)")
    ap.add_argument("--nucleus", help="nucleus binary to start `nucleus serve` with")
    ap.add_argument("-m", "--model", help="model for the started server")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--parallel", type=int, default=16)
    ap.add_argument("--streams", default="1,4,16", help="concurrency levels, e.g. 1,4,16")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--prompt-tokens", type=int, default=32)
    ap.add_argument("--long-prompt", type=int, default=0, help="also run each level with an L-token prompt mid-way")
    ap.add_argument("--repeat", type=int, default=2, help="runs per level; the best tok/s is reported")
    ap.add_argument("--eos", type=int, default=2, help="EOS id banned so every stream runs to --max-tokens")
    ap.add_argument("--vocab", type=int, default=32000, help="prompt ids are drawn below this")
    ap.add_argument("--json", action="store_true", help="print one JSON object per result")
    args = ap.parse_args()

    proc = None
    if args.url:
        u = urllib.parse.urlparse(args.url)
        host, port = u.hostname, u.port or 80
    else:
        if not args.nucleus or not args.model:
            ap.error("give --url, or --nucleus and -m")
        proc = subprocess.Popen([args.nucleus, "serve", "-m", args.model, "--port", "0", "-t", str(args.threads),
                                 "--parallel", str(args.parallel)], stderr=subprocess.PIPE, text=True)
        host, port = "127.0.0.1", None
        for line in proc.stderr:
            m = re.search(r"listening on http://[^:]+:(\d+)", line)
            if m:
                port = int(m.group(1))
            if "ready" in line:
                print(line.strip(), file=sys.stderr, flush=True)
                break
        if port is None:
            raise SystemExit("server did not start")
        threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    try:
        run_level(host, port, 1, argparse.Namespace(**{**vars(args), "max_tokens": 8}))  # warm-up
        print(f"{'streams':>7} {'tok/s':>8} {'TTFT p50':>9} {'TTFT p99':>9} {'ITL p50':>8} {'ITL p99':>8}"
              "   (ms; best of %d by tok/s)" % args.repeat, flush=True)
        single = None
        for n in [int(x) for x in args.streams.split(",")]:
            best = max((run_level(host, port, n, args) for _ in range(args.repeat)), key=lambda r: r["tok_s"])
            single = single or best["tok_s"]
            print(f"{n:>7} {best['tok_s']:>8.1f} {best['ttft_p50']*1e3:>9.1f} {best['ttft_p99']*1e3:>9.1f} "
                  f"{best['itl_p50']*1e3:>8.1f} {best['itl_p99']*1e3:>8.1f}   x{best['tok_s']/single:.2f} of 1 stream", flush=True)
            if args.json:
                print(json.dumps({k: v for k, v in best.items() if k not in ("itl_window", "long_window")}))
            if args.long_prompt:
                r = run_level(host, port, n, args, long_prompt=args.long_prompt)
                w = r["itl_window"]
                lw = r["long_window"]
                print(f"        + {args.long_prompt}-token prompt mid-stream ({(lw[1]-lw[0])*1e3:.0f} ms to its "
                      f"token): others' ITL p99 {r['itl_p99']*1e3:.1f} ms overall, "
                      f"{pct(w, 99)*1e3:.1f} ms (max {max(w)*1e3 if w else float('nan'):.1f}) during its "
                      f"prefill, vs {best['itl_p99']*1e3:.1f} ms without", flush=True)
    finally:
        if proc:
            proc.terminate()
            proc.wait(60)


if __name__ == "__main__":
    main()
