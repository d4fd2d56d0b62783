#!/usr/bin/env python3
"""Directory logins against atriumd: each of USERS logs in once, from CONC threads each on a
keep-alive HTTPS connection; prints 'logins/s p50_ms p99_ms failures'.
Usage: logins.py API_URL CONC USER... (password: USER-pass-1)"""
import http.client
import json
import ssl
import sys
import threading
import time
import urllib.parse

url = urllib.parse.urlparse(sys.argv[1])
conc = int(sys.argv[2])
users = sys.argv[3:]
ctx = ssl._create_unverified_context()
lock = threading.Lock()
times, fails = [], [0]
queue = list(users)


def worker():
    conn = http.client.HTTPSConnection(url.hostname, url.port, context=ctx, timeout=30)
    while True:
        with lock:
            if not queue:
                return
            u = queue.pop()
        body = json.dumps({"name": u, "password": u + "-pass-1"})
        t0 = time.perf_counter()
        try:
            conn.request("POST", url.path + "/auth/login", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            ok = r.status == 200
        except Exception:
            conn = http.client.HTTPSConnection(url.hostname, url.port, context=ctx, timeout=30)
            ok = False
        dt = time.perf_counter() - t0
        with lock:
            times.append(dt)
            if not ok:
                fails[0] += 1


start = time.perf_counter()
threads = [threading.Thread(target=worker) for _ in range(conc)]
for t in threads:
    t.start()
for t in threads:
    t.join()
wall = time.perf_counter() - start
times.sort()
p = lambda q: times[min(len(times) - 1, int(q * len(times)))] * 1000
print(f"{len(times) / wall:.0f} {p(0.5):.1f} {p(0.99):.1f} {fails[0]}")
