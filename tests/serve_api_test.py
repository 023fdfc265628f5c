#!/usr/bin/env python3
"""nucleus serve over HTTP: the endpoints and their OpenAI shapes, the API
key, an OpenAI-shaped error with the right status for every kind of bad
input while a healthy request keeps streaming, 429 with Retry-After when the
queue is full, connections held open not starving /health, and SIGTERM
draining to exit 0. Expected values come from the OpenAI API's documented
shapes and from the CLI (`nucleus tokenize`, `nucleus generate`, `nucleus chat`)."""
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

from serve_harness import (MODEL, Server, cli_generate, deadline, finish_reasons, raw_socket,
                           stream_text, stream_tokens)

CHAT_TEMPLATE = "data/chat/llama2.tokenizer_config.json"


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def is_error(body, status, got_status, what):
    check(got_status == status, f"{what}: status {got_status}, expected {status}: {body}")
    check(isinstance(body, dict) and isinstance(body.get("error"), dict), f"{what}: no error object: {body}")
    e = body["error"]
    for key in ("message", "type", "param", "code"):
        check(key in e, f"{what}: error has no '{key}': {body}")
    check(isinstance(e["message"], str) and e["message"], f"{what}: empty message")
    check(isinstance(e["type"], str), f"{what}: type")


def endpoints(nucleus, s):
    st, _, body = s.get("/health")
    check(st == 200 and json.loads(body)["status"] == "ok", f"/health: {st} {body}")
    st, _, body = s.get("/v1/models")
    models = json.loads(body)
    check(st == 200 and models["object"] == "list" and models["data"][0]["id"] == "stories260K", models)
    check(s.get("/v1/models/stories260K")[0] == 200, "/v1/models/stories260K")
    st, _, body = s.get("/v1/models/gpt-4")
    is_error(json.loads(body), 404, st, "unknown model id")

    st, tok = s.post("/tokenize", {"prompt": "Once upon a time"})
    ref = json.loads(subprocess.run([nucleus, "tokenize", "-m", MODEL, "Once upon a time"],
                                    capture_output=True, text=True, check=True).stdout)
    check(st == 200 and tok["tokens"] == ref and tok["count"] == len(ref), f"/tokenize {tok} vs CLI {ref}")
    st, detok = s.post("/detokenize", {"tokens": ref})
    check(st == 200 and detok["prompt"] == "Once upon a time", f"/detokenize {detok}")

    # Non-streaming completion: shape, and the tokens of `nucleus generate`.
    st, r = s.post("/v1/completions", {"model": "stories260K", "prompt": "Once upon a time",
                                       "max_tokens": 24, "temperature": 0, "return_token_ids": True})
    check(st == 200, f"completion: {st} {r}")
    check(r["object"] == "text_completion" and r["id"].startswith("cmpl-"), r)
    check(r["system_fingerprint"].startswith("fp_") and r["model"] == "stories260K", r)
    ch = r["choices"][0]
    cli = cli_generate(nucleus, "-p", "Once upon a time", "-n", "24", "--temperature", "0")
    check(ch["token_ids"] == cli["tokens"] and ch["text"] == cli["text"], f"greedy: {ch} vs CLI {cli}")
    check(ch["finish_reason"] == ("length" if cli["stop_reason"] == "length" else "stop"), ch)
    u = r["usage"]
    check(u["prompt_tokens"] == len(cli["prompt_tokens"]) and u["completion_tokens"] == len(cli["tokens"])
          and u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"], u)

    # Streaming: same text, usage chunk last, then [DONE].
    ev = s.stream("/v1/completions", {"prompt": "Once upon a time", "max_tokens": 24, "temperature": 0,
                                      "stream": True, "stream_options": {"include_usage": True}})
    check(all(e["object"] == "text_completion" for e in ev), "stream object")
    check(stream_text(ev) == cli["text"], f"stream text {stream_text(ev)!r} vs {cli['text']!r}")
    check(ev[-1]["choices"] == [] and ev[-1]["usage"] == u, f"usage chunk {ev[-1]}")
    check(finish_reasons(ev) == {0: ch["finish_reason"]}, finish_reasons(ev))

    # Chat through the template: equals `nucleus chat` with the same template.
    msg = "Tell me a story."
    chat_cli = subprocess.run([nucleus, "chat", "-m", MODEL, "--template-config", CHAT_TEMPLATE,
                               "--message", msg, "--temperature", "0", "-n", "40"],
                              capture_output=True, text=True, timeout=60, check=True).stdout
    st, r = s.post("/v1/chat/completions", {"messages": [{"role": "user", "content": msg}],
                                            "max_tokens": 40, "temperature": 0})
    check(st == 200 and r["object"] == "chat.completion", f"chat {st} {r}")
    m = r["choices"][0]["message"]
    check(m["role"] == "assistant" and m["content"] == chat_cli.rstrip("\n"),
          f"chat {m['content']!r} vs CLI {chat_cli!r}")
    ev = s.stream("/v1/chat/completions", {"messages": [{"role": "user", "content": msg}],
                                           "max_tokens": 40, "temperature": 0, "stream": True})
    check(ev[0]["object"] == "chat.completion.chunk" and ev[0]["choices"][0]["delta"].get("role") == "assistant",
          ev[0])
    check(stream_text(ev, chat=True) == m["content"], "chat stream text")
    check(ev[-1]["choices"][0]["finish_reason"] in ("stop", "length"), ev[-1])

    st, _, body = s.get("/metrics")
    text = body.decode()
    for name in ("nucleus:num_requests_running", "nucleus:num_requests_waiting", "nucleus:kv_cache_usage_perc",
                 "nucleus:prefix_cache_queries_total", "nucleus:prefix_cache_hits_total",
                 "nucleus:num_preemptions_total", "nucleus:prompt_tokens_total", "nucleus:generation_tokens_total",
                 "nucleus:time_to_first_token_seconds_bucket", "nucleus:inter_token_latency_seconds_bucket",
                 "nucleus:e2e_request_latency_seconds_bucket"):
        check(name in text, f"/metrics lacks {name}")


def bad_inputs(s):
    """Every bad request gets its status and the error shape while a healthy
    stream runs; the healthy one still equals its solo run."""
    healthy = {"prompt": "Once upon a time", "max_tokens": 1200, "temperature": 0.9, "seed": 11,
               "stream": True, "return_token_ids": True, "logprobs": 1}
    solo = stream_tokens(s.stream("/v1/completions", healthy))
    result = {}
    t = threading.Thread(target=lambda: result.update(ev=s.stream("/v1/completions", healthy)))
    t.start()
    long_prompt = [1] + [400] * 2100
    ok_prompt = {"prompt": "Once"}
    cases = [
        ("malformed JSON", "/v1/completions", b'{"prompt": "a",', 400),
        ("not UTF-8", "/v1/completions", b'{"prompt": "\xff\xfe"}', 400),
        ("not an object", "/v1/completions", b'[1, 2]', 400),
        ("deep nesting", "/v1/completions", b'{"prompt": "a", "x": ' + b"[" * 200 + b"]" * 200 + b"}", 400),
        ("body too large", "/v1/completions", b'{"prompt": "' + b"a" * (5 << 20) + b'"}', 413),
        ("wrong type", "/v1/completions", {"prompt": "a", "max_tokens": "ten"}, 400),
        ("wrong prompt type", "/v1/completions", {"prompt": {"text": "a"}}, 400),
        ("missing prompt", "/v1/completions", {"max_tokens": 3}, 400),
        ("unknown model", "/v1/completions", {"model": "gpt-4", "prompt": "a"}, 404),
        ("empty prompt", "/v1/completions", {"prompt": ""}, 422),
        ("empty id list", "/v1/completions", {"prompt": []}, 422),
        ("prompt beyond context", "/v1/completions", {"prompt": long_prompt}, 422),
        ("max_tokens beyond context", "/v1/completions", {"prompt": "a", "max_tokens": 5000}, 422),
        ("bad token id", "/v1/completions", {"prompt": [1, 512]}, 422),
        ("n above cap", "/v1/completions", {**ok_prompt, "n": 1000}, 422),
        ("num_beams above cap", "/v1/completions", {**ok_prompt, "num_beams": 1000}, 422),
        ("logprobs above 20", "/v1/completions", {**ok_prompt, "logprobs": 21}, 422),
        ("top_logprobs above 20", "/v1/chat/completions",
         {"messages": [{"role": "user", "content": "hi"}], "logprobs": True, "top_logprobs": 21}, 422),
        ("too many stop strings", "/v1/completions", {**ok_prompt, "stop": [str(i) for i in range(40)]}, 422),
        ("too long stop string", "/v1/completions", {**ok_prompt, "stop": "x" * 1000}, 422),
        ("logit_bias bad id", "/v1/completions", {**ok_prompt, "logit_bias": {"9999": 5}}, 422),
        ("logit_bias not an id", "/v1/completions", {**ok_prompt, "logit_bias": {"hello": 5}}, 422),
        ("batched prompts", "/v1/completions", {"prompt": ["a", "b"]}, 422),
        ("no messages", "/v1/chat/completions", {"messages": []}, 422),
        ("message without role", "/v1/chat/completions", {"messages": [{"content": "x"}]}, 400),
        ("unknown route", "/v1/embeddings", {"input": "a"}, 404),
    ]
    for what, path, body, status in cases:
        st, _, data = s.request("POST", path, body)
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = data
        is_error(parsed, status, st, what)
    st, _, data = s.get("/v1/nothing")
    is_error(json.loads(data), 404, st, "GET unknown route")
    t.join(120)
    check(not t.is_alive(), "healthy stream did not finish")
    check(stream_tokens(result["ev"]) == solo, "healthy stream differs from its solo run")
    check(s.get("/health")[0] == 200, "server unhealthy after bad input")


def queue_full(nucleus):
    """--parallel 1 --max-queue 1: a burst gets 429 with Retry-After; the rest finish."""
    with Server(nucleus, "--parallel", "1", "--max-queue", "1", "-t", "1") as s:
        res = []
        lock = threading.Lock()

        def one():
            st, h, data = s.request("POST", "/v1/completions", {"prompt": [1], "max_tokens": 1500,
                                                                "temperature": 0})
            with lock:
                res.append((st, h, json.loads(data)))

        ts = [threading.Thread(target=one) for _ in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        codes = sorted(st for st, _, _ in res)
        check(len(res) == 8 and set(codes) <= {200, 429} and 429 in codes and 200 in codes, codes)
        for st, h, body in res:
            if st == 429:
                is_error(body, 429, st, "queue full")
                check(h.get("retry-after", "").isdigit(), f"429 without Retry-After: {h}")
        check(s.stop() == 0, "exit status")


def api_key(nucleus):
    with tempfile.NamedTemporaryFile("w", suffix=".key", delete=False) as f:
        f.write("  s3cret-key \n")
    try:
        with Server(nucleus, "--api-key-file", f.name) as s:
            check(s.get("/health")[0] == 200, "/health must not need the key")
            for method, path, body in (("GET", "/v1/models", None), ("GET", "/metrics", None),
                                       ("POST", "/v1/completions", {"prompt": "a"}),
                                       ("POST", "/tokenize", {"prompt": "a"})):
                st, h, data = s.request(method, path, body)
                is_error(json.loads(data), 401, st, f"{path} without key")
                st, _, data = s.request(method, path, body, headers={"Authorization": "Bearer wrong"})
                is_error(json.loads(data), 401, st, f"{path} with a wrong key")
                st, _, data = s.request(method, path, body, headers={"Authorization": "Bearer s3cret-key"})
                check(st == 200, f"{path} with the key: {st} {data[:200]}")
            check(s.stop() == 0, "exit status")
    finally:
        os.unlink(f.name)


def held_connections(nucleus):
    """More idle connections and queued streams than httplib's default pool
    (8 threads): /health and a new request are still answered."""
    with Server(nucleus, "--parallel", "1", "-t", "1") as s:
        idle = []
        for _ in range(40):
            c = raw_socket(s.port)
            c.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")  # never finished
            idle.append(c)
        streams = [threading.Thread(target=s.stream, args=("/v1/completions",
                   {"prompt": [1], "max_tokens": 400, "temperature": 0, "stream": True})) for _ in range(16)]
        for t in streams:
            t.start()
        time.sleep(0.2)
        t0 = time.time()
        st, _, _ = s.get("/health", timeout=10)
        check(st == 200 and time.time() - t0 < 5, f"/health took {time.time() - t0:.1f} s (status {st})")
        st, r = s.post("/v1/completions", {"prompt": "Once", "max_tokens": 4, "temperature": 0}, timeout=60)
        check(st == 200, f"completion beside held connections: {st}")
        for t in streams:
            t.join(120)
        for c in idle:
            c.close()
        check(s.stop() == 0, "exit status")


def drain(nucleus):
    """SIGTERM during a stream: the stream finishes, the process exits 0."""
    s = Server(nucleus, "-t", "1")
    try:
        c = s.conn()
        c.request("POST", "/v1/completions", body=json.dumps({"prompt": [1], "max_tokens": 600, "temperature": 0,
                                                              "stream": True}).encode(),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        check(r.status == 200, "drain stream status")
        r.readline()  # the first chunk is out: the request is in flight
        s.proc.send_signal(15)
        rest = r.read().decode()
        check(rest.rstrip().endswith("data: [DONE]"), f"stream cut by SIGTERM: ...{rest[-200:]!r}")
        check('"finish_reason":"length"' in rest, "drained stream has no finish_reason")
        check(s.proc.wait(30) == 0, "exit status after SIGTERM")
    finally:
        s.kill()


def loading(nucleus):
    """/health says 503 while the model loads, other endpoints 503 in the error
    shape, and SIGTERM then stops the server at once with exit 0. The model is
    a FIFO nobody writes to, so loading blocks in open()."""
    d = tempfile.mkdtemp()
    fifo = os.path.join(d, "loading.gguf")
    os.mkfifo(fifo)
    p = subprocess.Popen([nucleus, "serve", "-m", fifo, "--port", "0"], stderr=subprocess.PIPE, text=True)
    try:
        line = p.stderr.readline()
        port = int(re.search(r"listening on http://[^:]+:(\d+)", line).group(1))

        def req(method, path, body=None):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request(method, path, body=body, headers={"Content-Type": "application/json"})
            r = c.getresponse()
            out = (r.status, json.loads(r.read()))
            c.close()
            return out

        st, body = req("GET", "/health")
        check(st == 503 and body == {"status": "loading"}, f"/health while loading: {st} {body}")
        for method, path, body in (("GET", "/v1/models", None), ("POST", "/v1/completions", b'{"prompt":"a"}')):
            st, err = req(method, path, body)
            is_error(err, 503, st, f"{path} while loading")
        p.send_signal(15)
        check(p.wait(10) == 0, "exit status of SIGTERM while loading")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
        os.unlink(fifo)
        os.rmdir(d)


def main():
    nucleus = sys.argv[1]
    deadline(300)
    with Server(nucleus, "--chat-template", CHAT_TEMPLATE) as s:
        endpoints(nucleus, s)
        bad_inputs(s)
        check(s.stop() == 0, "exit status")
    queue_full(nucleus)
    api_key(nucleus)
    held_connections(nucleus)
    drain(nucleus)
    loading(nucleus)
    print("serve_api_test: ok")


if __name__ == "__main__":
    main()
