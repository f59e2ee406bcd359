#!/usr/bin/env python3
"""A bounded load for tests/e2e/pipeline.t: GET URL from CONNS threads,
RATE requests a second in all, a new connection for every request (so that
no keep-alive connection closed by a reloading nginx is mistaken for a
failure, or hides one), until STOP exists or SECONDS have passed.

A request succeeds when it is answered 200 with a body matching --expect;
anything else fails: another status, another body, a connection refused or
reset, a timeout. Writes OUT, JSON:

  {"requests": N, "ok": N, "failed": N, "status": {"200": N, ...},
   "errors": {"ConnectionRefusedError": N, ...}, "versions": {"v2": N, ...},
   "first_failures": ["t=1.234 500 error v5: ...", ...], "seconds": S}

where versions counts the "app vN" of the 200 answers.
"""
import argparse
import http.client
import json
import os
import re
import threading
import time
import urllib.parse

ap = argparse.ArgumentParser()
ap.add_argument("--url", required=True)
ap.add_argument("--conns", type=int, default=4)
ap.add_argument("--rate", type=float, default=100.0)
ap.add_argument("--seconds", type=float, default=60.0)
ap.add_argument("--stop", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--expect", default=r"^app v[0-9]+")
a = ap.parse_args()

u = urllib.parse.urlsplit(a.url)
path = u.path or "/"
if u.query:
    path += "?" + u.query
expect = re.compile(a.expect)
ver = re.compile(r"^app (v[0-9]+)")
lock = threading.Lock()
res = {"requests": 0, "ok": 0, "failed": 0, "status": {}, "errors": {},
       "versions": {}, "first_failures": []}
t0 = time.monotonic()
end = t0 + a.seconds


def note(ok, status, err, body):
    with lock:
        res["requests"] += 1
        if status is not None:
            k = str(status)
            res["status"][k] = res["status"].get(k, 0) + 1
        if err is not None:
            res["errors"][err] = res["errors"].get(err, 0) + 1
        if ok:
            res["ok"] += 1
            m = ver.match(body)
            if m:
                res["versions"][m.group(1)] = res["versions"].get(m.group(1), 0) + 1
        else:
            res["failed"] += 1
            if len(res["first_failures"]) < 20:
                res["first_failures"].append("t=%.3f %s %s" % (
                    time.monotonic() - t0, status if status is not None else err,
                    body[:80]))


def worker():
    gap = a.conns / a.rate
    nxt = time.monotonic()
    while time.monotonic() < end and not os.path.exists(a.stop):
        status, err, body = None, None, ""
        try:
            c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=10)
            c.request("GET", path, headers={"Connection": "close"})
            r = c.getresponse()
            status = r.status
            body = r.read().decode("utf-8", "replace").strip()
            c.close()
        except Exception as e:  # noqa: BLE001 - every failure counts
            err = type(e).__name__
            body = str(e)
        note(status == 200 and err is None and bool(expect.search(body)),
             status, err, body)
        nxt += gap
        d = nxt - time.monotonic()
        if d > 0:
            time.sleep(d)
        else:
            nxt = time.monotonic()


ts = [threading.Thread(target=worker, daemon=True) for _ in range(a.conns)]
for t in ts:
    t.start()
for t in ts:
    t.join(a.seconds + 15)
res["seconds"] = round(time.monotonic() - t0, 3)
with open(a.out + ".tmp", "w") as f:
    json.dump(res, f)
os.rename(a.out + ".tmp", a.out)
