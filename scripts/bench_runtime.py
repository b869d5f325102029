#!/usr/bin/env python3
"""Times one function binary through a minimal local Lambda runtime API (the endpoints a function uses:
invocation/next, .../response, .../error, init/error) against the emulator.

  cold init: process start until its first poll of invocation/next (config read, SDK clients built),
             median of --cold runs, each a fresh process;
  warm:      latency from handing an event to the function until its response arrives, p50/p99 of --warm
             invocations back to back in one process, with the throughput and the process's RSS before and
             after (a load test: memory must not grow);
  calls:     AWS API calls per invocation during the warm loop, by operation (the emulator counts them).

Prints one JSON line. The function's environment (tables, endpoint) comes from this process's environment.
"""

import argparse
import json
import os
import queue
import statistics
import subprocess
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Runtime:
    def __init__(self):
        self.events = queue.Queue()
        self.results = queue.Queue()
        self.first_poll = threading.Event()
        self.first_poll_at = None


def handler_for(rt):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, code, body=b"", headers=None):
            self.send_response(code)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path != "/2018-06-01/runtime/invocation/next":
                return self.reply(404)
            if not rt.first_poll.is_set():
                rt.first_poll_at = time.perf_counter()
                rt.first_poll.set()
            try:
                event = rt.events.get(timeout=120)
            except queue.Empty:
                return self.reply(503)
            rid = str(uuid.uuid4())
            deadline = int(time.time() * 1000) + 30_000
            self.reply(200, event, {
                "Content-Type": "application/json",
                "Lambda-Runtime-Aws-Request-Id": rid,
                "Lambda-Runtime-Deadline-Ms": str(deadline),
                "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:bench",
                "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000",
            })

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path.endswith("/response"):
                rt.results.put(("ok", time.perf_counter(), body))
            elif self.path.endswith("/error"):
                rt.results.put(("error", time.perf_counter(), body))
            self.reply(202)

    return Handler


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def calls(endpoint):
    with urllib.request.urlopen(endpoint + "/_fleetguard/calls") as r:
        return json.load(r)


def start(binary, port):
    env = dict(os.environ)
    env.update({
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": os.path.basename(binary),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "RUST_LOG": "warn",
    })
    return subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--event", required=True)
    ap.add_argument("--cold", type=int, default=5)
    ap.add_argument("--warm", type=int, default=200)
    args = ap.parse_args()
    event = open(args.event, "rb").read()
    endpoint = os.environ["AWS_ENDPOINT_URL"]

    inits = []
    for _ in range(args.cold):
        rt = Runtime()
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(rt))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        t0 = time.perf_counter()
        proc = start(args.binary, server.server_address[1])
        if not rt.first_poll.wait(30):
            raise SystemExit(f"{args.binary} never polled (exit {proc.poll()})")
        inits.append((rt.first_poll_at - t0) * 1000)
        proc.kill()
        proc.wait()
        server.shutdown()

    rt = Runtime()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(rt))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proc = start(args.binary, server.server_address[1])
    rt.first_poll.wait(30)
    # One untimed invocation: the first TLS/TCP connection and lazy work happen here.
    rt.events.put(event)
    rt.results.get(timeout=60)
    before = calls(endpoint)
    rss_start = rss_kb(proc.pid)
    started = time.perf_counter()
    latencies, errors = [], 0
    for _ in range(args.warm):
        t = time.perf_counter()
        rt.events.put(event)
        kind, at, _ = rt.results.get(timeout=60)
        latencies.append((at - t) * 1000)
        errors += kind != "ok"
    elapsed = time.perf_counter() - started
    rss_end = rss_kb(proc.pid)
    after = calls(endpoint)
    proc.kill()
    proc.wait()
    server.shutdown()

    per_call = {}
    for op, n in after.items():
        d = n - before.get(op, 0)
        if d:
            per_call[op] = round(d / args.warm, 2)
    latencies.sort()
    print(json.dumps({
        "function": os.path.basename(args.binary),
        "event": os.path.basename(args.event),
        "cold_init_ms_median": round(statistics.median(inits), 1),
        "warm_ms_p50": round(latencies[len(latencies) // 2], 2),
        "warm_ms_p99": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
        "errors": errors,
        "throughput_per_s": round(args.warm / elapsed, 1),
        "rss_kb_start": rss_start,
        "rss_kb_end": rss_end,
        "aws_calls_per_invocation": per_call,
    }))


if __name__ == "__main__":
    main()
