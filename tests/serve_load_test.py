#!/usr/bin/env python3
"""nucleus serve under load, checked token for token:
  - greedy, seeded sampling (n = 1 and 3) and beam search through the server
    equal `nucleus generate` with the same settings (ids, beam scores);
  - 32 concurrent streams of mixed lengths and settings all complete, every
    seeded or greedy one equal to its solo run (ids and logprobs), and no KV
    block stays in use afterwards;
  - a KV pool too small for the load pre-empts, with the same outputs;
  - a second request sharing a long prefix hits the prefix cache, prefills
    fewer tokens and gives the output of a server without the cache;
  - a client that disconnects (streaming or not) is cancelled and frees its blocks."""
import json
import random
import sys
import threading

from serve_harness import Server, cli_generate, deadline, stream_tokens

STORY = ("Once upon a time, there was a little girl named Lily. She loved to play outside in the sun. "
         "One day, she saw a big tree with a red ball in it. She wanted the ball very much, so she asked "
         "her mom to help her. Her mom said yes and they went to the park together. ")


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def ids_arg(ids):
    return ",".join(str(i) for i in ids)


def against_cli(nucleus, s):
    prompt = s.post("/tokenize", {"prompt": "Once upon a time"})[1]["tokens"]
    cases = [
        ({"temperature": 0}, ["--temperature", "0"]),
        ({"temperature": 0.8, "top_p": 0.9, "seed": 5}, ["--temperature", "0.8", "--top-p", "0.9", "--top-k", "0",
                                                         "--seed", "5"]),
        ({"temperature": 1.0, "top_k": 20, "seed": 9}, ["--do-sample", "--top-k", "20", "--seed", "9"]),
        ({"temperature": 0.7, "min_p": 0.05, "repetition_penalty": 1.3, "seed": 3},
         ["--temperature", "0.7", "--min-p", "0.05", "--repetition-penalty", "1.3", "--top-k", "0", "--seed", "3"]),
        ({"temperature": 0.9, "n": 3, "seed": 4}, ["--temperature", "0.9", "--top-k", "0",
                                                   "--num-return-sequences", "3", "--seed", "4"]),
    ]
    for body, flags in cases:
        st, r = s.post("/v1/completions", {"prompt": prompt, "max_tokens": 48, "return_token_ids": True, **body})
        check(st == 200, f"{body}: {st} {r}")
        cli = cli_generate(nucleus, "--tokens", ids_arg(prompt), "-n", "48", *flags)
        seqs = cli.get("sequences") or [{"tokens": cli["tokens"], "text": cli["text"]}]
        check(len(r["choices"]) == len(seqs), f"{body}: {len(r['choices'])} choices, CLI {len(seqs)}")
        for ch, ref in zip(r["choices"], seqs):
            check(ch["token_ids"] == ref["tokens"], f"{body}: server {ch['token_ids']} vs CLI {ref['tokens']}")
            check(ch["text"] == ref["text"], f"{body}: text")
    # Beam search: sequences and scores.
    st, r = s.post("/v1/completions", {"prompt": prompt, "max_tokens": 32, "num_beams": 4, "n": 2,
                                       "length_penalty": 0.8, "return_token_ids": True})
    check(st == 200, f"beams: {st} {r}")
    cli = cli_generate(nucleus, "--tokens", ids_arg(prompt), "-n", "32", "--num-beams", "4",
                       "--num-return-sequences", "2", "--length-penalty", "0.8")
    for ch, ref in zip(r["choices"], cli["sequences"]):
        check(ch["token_ids"] == ref["tokens"], f"beam ids {ch['token_ids']} vs {ref['tokens']}")
        check(abs(ch["score"] - ref["score"]) <= 1e-12 * max(1.0, abs(ref["score"])),
              f"beam score {ch['score']} vs {ref['score']}")
    # The same through a stream (beam search streams its result at the end).
    ev = s.stream("/v1/completions", {"prompt": prompt, "max_tokens": 32, "num_beams": 4, "n": 2,
                                      "length_penalty": 0.8, "return_token_ids": True, "stream": True})
    check([stream_tokens(ev, i)[0] for i in range(2)] == [ref["tokens"] for ref in cli["sequences"]],
          "streamed beams")


def mixed_requests(story_ids, count, rng):
    """Requests of mixed lengths and settings; None seeds are unseeded sampling."""
    reqs = []
    for i in range(count):
        prompt = story_ids[: rng.randint(3, len(story_ids))]
        body = {"prompt": prompt, "max_tokens": rng.choice([8, 40, 120, 300]), "stream": True,
                "return_token_ids": True, "logprobs": rng.choice([0, 2])}
        kind = i % 4
        if kind == 0:
            body["temperature"] = 0
        elif kind == 1:
            body.update(temperature=0.8, top_p=0.95, seed=1000 + i)
        elif kind == 2:
            body.update(temperature=1.1, top_k=30, seed=2000 + i, n=2, stop=[" the end"])
        else:
            body.update(temperature=0.9)  # unseeded: only has to complete
        reqs.append(body)
    return reqs


def outputs(events, n):
    return [stream_tokens(events, i) for i in range(n)]


def concurrent(s, reqs):
    results = [None] * len(reqs)

    def one(i):
        results[i] = s.stream("/v1/completions", reqs[i], timeout=300)

    ts = [threading.Thread(target=one, args=(i,)) for i in range(len(reqs))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(300)
    check(all(r is not None for r in results), "a concurrent request did not complete")
    return results


def load(s, story_ids, solo_cache):
    rng = random.Random(7)
    reqs = mixed_requests(story_ids, 32, rng)
    for i, body in enumerate(reqs):
        if "seed" in body or body.get("temperature") == 0:
            solo_cache[i] = outputs(s.stream("/v1/completions", body), body.get("n", 1))
    results = concurrent(s, reqs)
    for i, body in enumerate(reqs):
        got = outputs(results[i], body.get("n", 1))
        check(all(len(ids) > 0 for ids, _ in got), f"request {i}: no tokens")
        if i in solo_cache:
            check(got == solo_cache[i], f"request {i} ({body}) differs from its solo run")
    s.wait_metric("nucleus:kv_blocks_in_use", lambda v: v == 0)
    check(s.metrics()["nucleus:num_requests_running"] == 0, "requests still running")
    return reqs


def pool_requests(story_ids):
    """Requests that cannot stop early (EOS banned by logit_bias): each needs
    ~34 blocks, the small pool has 51."""
    reqs = []
    for i in range(10):
        body = {"prompt": story_ids[: 30 + 3 * i], "max_tokens": 500, "stream": True, "return_token_ids": True,
                "logprobs": 1, "logit_bias": {"2": -100}}
        body.update({"temperature": 0} if i % 2 == 0 else {"temperature": 0.9, "seed": 50 + i})
        reqs.append(body)
    return reqs


def tiny_pool(nucleus, reqs, solo):
    """--kv-cache-mib 1: 51 blocks (816 positions) for 10 requests of 530-560 positions."""
    with Server(nucleus, "--kv-cache-mib", "1", "--parallel", "16", "-t", "1") as s:
        results = concurrent(s, reqs)
        for i, body in enumerate(reqs):
            got = outputs(results[i], 1)
            check(len(got[0][0]) == 500, f"request {i}: {len(got[0][0])} tokens")
            check(got == solo[i], f"request {i} differs from its solo run after pre-emption")
        m = s.settled_metrics()
        check(m["nucleus:kv_blocks_total"] == 51, f"--kv-cache-mib 1: {m['nucleus:kv_blocks_total']} blocks")
        check(m["nucleus:num_preemptions_total"] > 0, "the small pool never pre-empted")
        check(m["nucleus:kv_blocks_in_use"] == 0, "blocks left in use")
        check(s.stop() == 0, "exit status")


def prefix_cache(nucleus, s, story_ids):
    prefix = (story_ids * 6)[:400]
    check(len(prefix) == 400, "prefix length")
    a = {"prompt": prefix + [450], "max_tokens": 30, "temperature": 0.8, "seed": 77, "return_token_ids": True,
         "logprobs": 1}
    b = dict(a, prompt=prefix + [300, 301])
    s.post("/v1/completions", a)
    before = s.settled_metrics()
    st, rb = s.post("/v1/completions", b)
    after = s.settled_metrics()
    check(st == 200, "prefix request")
    hits = after["nucleus:prefix_cache_hits_total"] - before["nucleus:prefix_cache_hits_total"]
    prefilled = after["nucleus:prefill_tokens_total"] - before["nucleus:prefill_tokens_total"]
    check(hits >= 384, f"second request hit only {hits} cached prompt tokens")
    check(prefilled <= len(b["prompt"]) - 384, f"second request prefilled {prefilled} of {len(b['prompt'])}")
    with Server(nucleus, "--no-prefix-cache", "-t", "1") as ref:
        st, rr = ref.post("/v1/completions", b)
        check(ref.metrics()["nucleus:prefix_cache_hits_total"] == 0, "--no-prefix-cache hit the cache")
        check(rb["choices"][0]["token_ids"] == rr["choices"][0]["token_ids"]
              and rb["choices"][0]["logprobs"] == rr["choices"][0]["logprobs"],
              "output with prefix-cache hits differs from the output without the cache")
        check(ref.stop() == 0, "exit status")


def disconnects(s, story_ids):
    base = s.metrics()["nucleus:requests_cancelled_total"]
    # Streaming: read a few chunks, then hang up.
    c = s.conn()
    c.request("POST", "/v1/completions", body=json.dumps({
        "prompt": story_ids, "max_tokens": 1800, "n": 8, "temperature": 1.0, "stream": True}).encode(),
        headers={"Content-Type": "application/json"})
    r = c.getresponse()
    for _ in range(6):
        r.readline()
    c.sock.close()
    c.close()
    s.wait_metric("nucleus:requests_cancelled_total", lambda v: v >= base + 1)
    s.wait_metric("nucleus:kv_blocks_in_use", lambda v: v == 0)
    # Non-streaming: hang up while it runs.
    c = s.conn()
    c.request("POST", "/v1/completions", body=json.dumps({
        "prompt": story_ids, "max_tokens": 1800, "n": 8, "temperature": 1.0}).encode(),
        headers={"Content-Type": "application/json"})
    s.wait_metric("nucleus:num_requests_running", lambda v: v >= 1)
    c.sock.close()
    c.close()
    s.wait_metric("nucleus:requests_cancelled_total", lambda v: v >= base + 2)
    s.wait_metric("nucleus:kv_blocks_in_use", lambda v: v == 0)
    check(s.post("/v1/completions", {"prompt": "Once", "max_tokens": 3})[0] == 200, "serving after disconnects")


def speculative(s, story_ids):
    """The speculative extension changes the number of forwards, never the output."""
    prompt = story_ids + story_ids[:40]  # text the continuation can copy from
    for extra in ({"temperature": 0}, {"temperature": 0.8, "top_p": 0.9, "seed": 12, "n": 2}):
        body = {"prompt": prompt, "max_tokens": 40, "return_token_ids": True, "logprobs": 1, **extra}
        st, plain = s.post("/v1/completions", body)
        check(st == 200, f"plain: {st} {plain}")
        st, spec = s.post("/v1/completions", {**body, "speculative": "lookup", "draft_max": 6})
        check(st == 200, f"speculative: {st} {spec}")
        for a, b in zip(plain["choices"], spec["choices"]):
            check(a["token_ids"] == b["token_ids"], f"speculative ids {b['token_ids']} vs {a['token_ids']}")
            check(a["logprobs"]["token_logprobs"] == b["logprobs"]["token_logprobs"], "speculative logprobs")
    st, r = s.post("/v1/completions", {"prompt": "Once", "speculative": "draft"})
    check(st in (400, 422) and "speculative" in json.dumps(r), f"speculative draft refused: {st} {r}")


def main():
    nucleus = sys.argv[1]
    deadline(420)
    with Server(nucleus, "-t", "1") as s:
        story_ids = s.post("/tokenize", {"prompt": STORY})[1]["tokens"]
        against_cli(nucleus, s)
        speculative(s, story_ids)
        solo = {}
        load(s, story_ids, solo)
        pool_reqs = pool_requests(story_ids)
        pool_solo = [outputs(s.stream("/v1/completions", body), 1) for body in pool_reqs]
        prefix_cache(nucleus, s, story_ids)
        disconnects(s, story_ids)
        check(s.stop() == 0, "exit status")
    tiny_pool(nucleus, pool_reqs, pool_solo)
    print("serve_load_test: ok")


if __name__ == "__main__":
    main()
