"""Starts and drives a `nucleus serve` for the serve_*_test.py scripts.

Every server listens on 127.0.0.1 on a port the kernel picks (--port 0; the
port is read from the server's stderr), is stopped by the test, and every
wait is bounded. Standard library only.
"""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

_SERVERS = []  # killed if the test runs out of time

MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "stories260K.gguf")


class Server:
    def __init__(self, nucleus, *args, model=MODEL, ready_timeout=60):
        cmd = [nucleus, "serve", "-m", model, "--host", "127.0.0.1", "--port", "0", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _SERVERS.append(self)
        self.log = []
        self.port = None
        got_port = threading.Event()

        def drain():
            for line in self.proc.stderr:
                self.log.append(line.rstrip("\n"))
                m = re.search(r"listening on http://[^:]+:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    got_port.set()
            got_port.set()

        self._drain = threading.Thread(target=drain, daemon=True)
        self._drain.start()
        if not got_port.wait(ready_timeout) or self.port is None:
            self.kill()
            raise RuntimeError("server did not start: " + "\n".join(self.log))
        deadline = time.time() + ready_timeout
        while time.time() < deadline:
            try:
                if self.get("/health")[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        raise RuntimeError("server never became healthy: " + "\n".join(self.log))

    # --- plain HTTP -------------------------------------------------------
    def conn(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=60):
        """(status, headers dict, body bytes). body: dict/list (JSON) or bytes."""
        c = self.conn(timeout)
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, obj, **kw):
        """(status, parsed JSON body)."""
        status, _, data = self.request("POST", path, obj, **kw)
        return status, json.loads(data) if data else None

    def stream(self, path, obj, headers=None, timeout=120):
        """Events of an SSE response (parsed JSON), up to `data: [DONE]`."""
        c = self.conn(timeout)
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        c.request("POST", path, body=json.dumps(obj).encode(), headers=h)
        r = c.getresponse()
        if r.status != 200:
            body = r.read()
            c.close()
            raise AssertionError(f"stream {path}: status {r.status}: {body[:300]!r}")
        assert r.getheader("Content-Type", "").startswith("text/event-stream"), r.getheaders()
        events, done = [], False
        while True:
            line = r.readline()
            if not line:
                break
            line = line.decode().strip()
            if not line:
                continue
            assert line.startswith("data: "), line
            payload = line[len("data: "):]
            if payload == "[DONE]":
                done = True
                break
            events.append(json.loads(payload))
        c.close()
        assert done, "stream ended without data: [DONE]"
        return events

    def metrics(self):
        """{metric name: value} of the Prometheus text (labels dropped, summed)."""
        status, _, data = self.get("/metrics")
        assert status == 200, status
        out = {}
        for line in data.decode().splitlines():
            if not line or line.startswith("#"):
                continue
            name, value = line.rsplit(" ", 1)
            name = name.split("{")[0]
            out[name] = out.get(name, 0.0) + float(value)
        return out

    def settled_metrics(self, timeout=10):
        """Metrics once nothing runs or waits and two reads 50 ms apart agree
        (counters of a finished request may land a step after its response)."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            m = self.metrics()
            if m.get("nucleus:num_requests_running") == 0 and m.get("nucleus:num_requests_waiting") == 0:
                if last is not None and {k: v for k, v in m.items() if "seconds" not in k} == \
                        {k: v for k, v in last.items() if "seconds" not in k}:
                    return m
                last = m
            time.sleep(0.05)
        raise AssertionError("metrics never settled")

    def wait_metric(self, name, pred, timeout=10):
        deadline = time.time() + timeout
        value = None
        while time.time() < deadline:
            value = self.metrics().get(name)
            if value is not None and pred(value):
                return value
            time.sleep(0.05)
        raise AssertionError(f"metric {name} stayed at {value}")

    # --- life cycle -------------------------------------------------------
    def stop(self, timeout=30):
        """SIGTERM, then the exit status (the server must exit by itself)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("server did not exit after SIGTERM: " + "\n".join(self.log[-20:]))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


def stream_text(events, index=0, chat=False):
    """Concatenated text of one choice of a stream."""
    out = []
    for e in events:
        for ch in e.get("choices", []):
            if ch["index"] != index:
                continue
            out.append(ch["delta"].get("content") or "" if chat else ch["text"])
    return "".join(out)


def stream_tokens(events, index=0):
    """Token ids (return_token_ids) and logprobs (completions shape) of one choice."""
    ids, lps = [], []
    for e in events:
        for ch in e.get("choices", []):
            if ch["index"] != index:
                continue
            ids += ch.get("token_ids") or []
            if ch.get("logprobs"):
                lps += ch["logprobs"]["token_logprobs"]
    return ids, lps


def finish_reasons(events):
    out = {}
    for e in events:
        for ch in e.get("choices", []):
            if ch.get("finish_reason"):
                out[ch["index"]] = ch["finish_reason"]
    return out


def cli_generate(nucleus, *args):
    """`nucleus generate --json ...` parsed."""
    r = subprocess.run([nucleus, "generate", "-m", MODEL, "--json", *args], capture_output=True,
                       text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError(f"nucleus generate {' '.join(args)}: {r.stderr}")
    return json.loads(r.stdout)


def deadline(seconds):
    """Kills the whole test (exit 1) if it runs longer than `seconds`."""
    def fire(*_):
        print(f"FAIL: test exceeded {seconds} s", file=sys.stderr)
        for srv in _SERVERS:
            srv.kill()
            print("\n".join(srv.log[-30:]), file=sys.stderr)
        os._exit(1)
    signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)


def raw_socket(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    return s
