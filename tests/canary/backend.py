#!/usr/bin/python3
"""A small HTTP backend whose behaviour a test controls, for chom-canary's
tests (tests/cli/chom-canary.t, tests/lib/canary.sh); standard library only.

Server:
    backend.py --port PORT --pool canary|stable [--ready FILE]

  Listens on 127.0.0.1:PORT (0: a port of the kernel's choice); when it
  listens, writes the port to FILE (atomically: FILE.tmp, then rename).
  Every path answers 200 "ok POOL\\n", except:

    GET /__ctl?error_rate=R&delay_ms=D&error_status=S
        sets the behaviour (any subset of the keys; "reset=1" alone only
        restarts the error pattern) and answers the state as JSON:
        pool, error_rate, delay_ms, error_status, requests, errors,
        since_ctl (requests since the last change), last_path, last_host.
    GET /metrics
        Prometheus text format: app_requests_total{pool}, app_errors_total
        {pool} and the histogram app_request_duration_seconds{pool}.

  Neither /__ctl nor /metrics counts as a request.

  Errors are deterministic: of the first n requests since the last change,
  exactly ceil(n * error_rate) answer error_status (default 500) with the
  body "error POOL\\n", spread evenly (Bresenham), the first request being
  one of them when error_rate > 0. delay_ms is added to every counted
  request (errors too) before answering.

Load generator:
    backend.py --load URL [--load URL ...] --rate R [--conns C]
               --duration S [--out FILE]

  Sends GET requests to each URL at R per second (spread over C keep-alive
  connections per URL), for S seconds at most or until SIGTERM/SIGINT; then
  writes FILE (JSON): {"requests": N, "status": {"200": n, ...},
  "pools": {"stable": n, "canary": n, "other": n}, "failures": n}.
"""
import argparse
import http.client
import http.server
import json
import math
import os
import signal
import sys
import threading
import time
import urllib.parse

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class State:
    def __init__(self, pool):
        self.lock = threading.Lock()
        self.pool = pool
        self.error_rate = 0.0
        self.delay_ms = 0.0
        self.error_status = 500
        self.since_ctl = 0
        self.requests = 0
        self.errors = 0
        self.buckets = [0] * len(BUCKETS)
        self.dur_sum = 0.0
        self.last_path = ""
        self.last_host = ""

    def next_is_error(self, path, host):
        """Counts a request; True when it is to fail."""
        with self.lock:
            n = self.since_ctl
            self.since_ctl += 1
            self.requests += 1
            self.last_path = path
            self.last_host = host
            r = self.error_rate
            # ceil((n+1)r) - ceil(nr): errors first, evenly spread; the
            # small epsilon keeps 0.3 * 10 from rounding to 3.0000000004.
            err = r > 0 and (math.ceil((n + 1) * r - 1e-9) >
                             math.ceil(n * r - 1e-9))
            if err:
                self.errors += 1
            return err, self.delay_ms / 1000.0, self.error_status

    def observe(self, seconds):
        with self.lock:
            self.dur_sum += seconds
            for i, le in enumerate(BUCKETS):
                if seconds <= le:
                    self.buckets[i] += 1

    def ctl(self, q):
        with self.lock:
            if "error_rate" in q:
                r = float(q["error_rate"][0])
                if not 0 <= r <= 1:
                    raise ValueError("error_rate must be 0-1")
                self.error_rate = r
            if "delay_ms" in q:
                d = float(q["delay_ms"][0])
                if d < 0:
                    raise ValueError("delay_ms must be >= 0")
                self.delay_ms = d
            if "error_status" in q:
                self.error_status = int(q["error_status"][0])
            if q:
                self.since_ctl = 0
            return {
                "pool": self.pool, "error_rate": self.error_rate,
                "delay_ms": self.delay_ms, "error_status": self.error_status,
                "requests": self.requests, "errors": self.errors,
                "since_ctl": self.since_ctl, "last_path": self.last_path,
                "last_host": self.last_host,
            }

    def metrics(self):
        with self.lock:
            p = 'pool="%s"' % self.pool
            out = [
                "# HELP app_requests_total Requests served.",
                "# TYPE app_requests_total counter",
                "app_requests_total{%s} %d" % (p, self.requests),
                "# HELP app_errors_total Requests answered with an error.",
                "# TYPE app_errors_total counter",
                "app_errors_total{%s} %d" % (p, self.errors),
                "# HELP app_request_duration_seconds Time to answer.",
                "# TYPE app_request_duration_seconds histogram",
            ]
            for le, c in zip(BUCKETS, self.buckets):
                out.append('app_request_duration_seconds_bucket{%s,le="%g"} %d'
                           % (p, le, c))
            out.append('app_request_duration_seconds_bucket{%s,le="+Inf"} %d'
                       % (p, self.requests))
            out.append("app_request_duration_seconds_sum{%s} %.6f"
                       % (p, self.dur_sum))
            out.append("app_request_duration_seconds_count{%s} %d"
                       % (p, self.requests))
            return "\n".join(out) + "\n"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle's
    # algorithm and delayed ACKs hold the body ~40 ms on a kept-alive
    # connection.
    disable_nagle_algorithm = True
    server_version = "chom-test-backend"
    sys_version = ""

    def _send(self, code, body, ctype="text/plain; charset=utf-8"):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _handle(self):
        st = self.server.state
        u = urllib.parse.urlsplit(self.path)
        if u.path == "/__ctl":
            try:
                q = urllib.parse.parse_qs(u.query, keep_blank_values=True)
                self._send(200, json.dumps(st.ctl(q)) + "\n",
                           "application/json")
            except (ValueError, KeyError) as e:
                self._send(400, "bad control request: %s\n" % e)
            return
        if u.path == "/metrics":
            self._send(200, st.metrics(),
                       "text/plain; version=0.0.4; charset=utf-8")
            return
        t0 = time.monotonic()
        err, delay, status = st.next_is_error(
            self.path, self.headers.get("Host", ""))
        if delay > 0:
            time.sleep(delay)
        if err:
            self._send(status, "error %s\n" % st.pool)
        else:
            self._send(200, "ok %s\n" % st.pool)
        st.observe(time.monotonic() - t0)

    def do_GET(self):
        self._handle()

    def do_HEAD(self):
        self._handle()

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > 0:
            self.rfile.read(n)
        self._handle()

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True


def serve(args):
    s = Server(("127.0.0.1", args.port), Handler)
    s.state = State(args.pool)
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    if args.ready:
        with open(args.ready + ".tmp", "w") as f:
            f.write("%d\n" % s.server_address[1])
        os.rename(args.ready + ".tmp", args.ready)
    try:
        s.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


def load(args):
    stop = threading.Event()
    lock = threading.Lock()
    tally = {"requests": 0, "status": {}, "failures": 0,
             "pools": {"stable": 0, "canary": 0, "other": 0}}
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    end = time.monotonic() + args.duration
    period = args.conns / args.rate

    def worker(url, phase):
        u = urllib.parse.urlsplit(url)
        path = (u.path or "/") + ("?" + u.query if u.query else "")
        conn = None
        nxt = time.monotonic() + phase
        while not stop.is_set() and time.monotonic() < end:
            wait = nxt - time.monotonic()
            if wait > 0 and stop.wait(min(wait, end - time.monotonic())):
                break
            if time.monotonic() >= end:
                break
            nxt = max(nxt + period, time.monotonic() - period)
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(u.hostname, u.port,
                                                      timeout=10)
                conn.request("GET", path)
                r = conn.getresponse()
                body = r.read().decode("utf-8", "replace").split()
                pool = body[1] if len(body) == 2 else "other"
                if pool not in ("stable", "canary"):
                    pool = "other"
                with lock:
                    tally["requests"] += 1
                    k = str(r.status)
                    tally["status"][k] = tally["status"].get(k, 0) + 1
                    tally["pools"][pool] += 1
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                with lock:
                    tally["failures"] += 1
                if conn is not None:
                    conn.close()
                conn = None
                stop.wait(0.05)
        if conn is not None:
            conn.close()

    threads = []
    for url in args.load:
        for i in range(args.conns):
            t = threading.Thread(target=worker,
                                 args=(url, i * period / args.conns),
                                 daemon=True)
            t.start()
            threads.append(t)
    while any(t.is_alive() for t in threads) and not stop.is_set():
        stop.wait(0.2)
    stop.set()
    for t in threads:
        t.join(12)
    if args.out:
        with open(args.out + ".tmp", "w") as f:
            json.dump(tally, f)
            f.write("\n")
        os.rename(args.out + ".tmp", args.out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--pool", choices=("canary", "stable"))
    ap.add_argument("--ready")
    ap.add_argument("--load", action="append")
    ap.add_argument("--rate", type=float, default=20)
    ap.add_argument("--conns", type=int, default=2)
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.load:
        if args.rate <= 0 or args.conns < 1 or args.duration <= 0:
            ap.error("--rate, --conns and --duration must be positive")
        load(args)
    elif args.pool:
        serve(args)
    else:
        ap.error("--pool or --load is required")


if __name__ == "__main__":
    main()
