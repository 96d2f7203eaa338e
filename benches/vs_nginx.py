#!/usr/bin/env python3
"""turnpike against nginx, side by side in one run (driven by vs-nginx.sh).

Processes, all on loopback, on ports picked free at start:
  backend   nginx answering `return 200` with a ~1 KB JSON body (and a
            100 KB JSON file at /big), one worker, pinned with the load
            generator to the client CPU;
  nginx     the reference: one worker (master_process off), keep-alive
            `proxy_pass` to the backend, access log off, pinned alone on
            the proxy CPU;
  turnpike  the release binary, pinned alone on the proxy CPU (tokio then
            runs one worker thread), access log off; API `api` (path
            /api) needs a subscription key and runs `rate-limit-by-key`
            and `set-header`, API `plain` (path /plain) has neither.
Each variant runs its targets in interleaved rounds (A B C A B C ...)
after a warm-up of each, and prints per target: median req/s, median
p50/p99 latency, the ratio of req/s to nginx, CPU microseconds per request
(utime+stime of the process over the run / requests) and peak RSS
(VmHWM). Medians of rounds, ratios: this machine is shared and noisy.

Variants (VARIANTS, comma separated; default all):
  policies   wrk, HTTP/1.1, 1 KB, key + rate-limit-by-key + set-header
  plain      the same without key or policies
  latency    the latency each proxy adds over calling the backend
             directly: on one connection (no queueing, wrk -c1), and at a
             fixed rate of half of nginx's saturation (from `policies`, or
             measured first) and of turnpike's, with h2load --h1 --rps
             (64 connections; its requests leave in bursts, so the
             figures include queueing behind the burst)
  h2         h2load, HTTP/2 (h2c) clients, key + policies
  tls        wrk over TLS (TLS 1.3, keep-alive), key + policies
  big        100 KB responses, key + policies
  c1k        1,000 concurrent connections, key + policies
  scale      turnpike holding 10,000 APIs and 100,000 subscriptions
             (seeded into its store by the bench-seed example) against
             the 1-API turnpike; also its start-up and one management
             write (a full snapshot compile), and RSS

Environment: ROUNDS (3), DURATION (seconds per run, 10), WARMUP (5),
CONNECTIONS (64), CLIENT_CPU (0), PROXY_CPU (1), TURNPIKE_BIN,
TURNPIKE_BASE_BIN (a second binary measured beside it, as
`turnpike-base`, in `policies` and `plain`: before/after a change),
SEED_BIN (the bench-seed example), WORK (a directory to keep; default
a temporary one, removed at exit).
"""

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROUNDS = int(os.environ.get("ROUNDS", "3"))
DURATION = int(os.environ.get("DURATION", "10"))
WARMUP = int(os.environ.get("WARMUP", "5"))
CONNS = int(os.environ.get("CONNECTIONS", "64"))
CLIENT_CPU = os.environ.get("CLIENT_CPU", "0")
PROXY_CPU = os.environ.get("PROXY_CPU", "1")
TURNPIKE = os.environ["TURNPIKE_BIN"]
# Another turnpike binary (say, the last commit's) run beside TURNPIKE_BIN
# as target `turnpike-base` in the policies and plain variants: a change's
# before/after, measured in the same rounds.
BASE = os.environ.get("TURNPIKE_BASE_BIN", "")
SEED = os.environ.get("SEED_BIN", "")
ALL = ["policies", "plain", "latency", "h2", "tls", "big", "c1k", "scale"]
VARIANTS = [v for v in os.environ.get("VARIANTS", ",".join(ALL)).split(",") if v]
ADMIN = "bench-admin-key-0123456789abcdef"
KEY = "bench0123456789abcdef0123456789ab"
TICK = os.sysconf("SC_CLK_TCK")

POLICY = """<policies><inbound><base />
<rate-limit-by-key calls="1000000000" renewal-period="60"
  counter-key="@(context.Subscription.Id)" />
<set-header name="x-bench" exists-action="override"><value>turnpike</value></set-header>
</inbound><backend><base /></backend><outbound><base /></outbound>
<on-error><base /></on-error></policies>"""


def body_1k():
    items = ",".join(
        '{"id":%d,"name":"item-%04d","price":%d.99,"tags":["a","b"]}' % (i, i, i)
        for i in range(17)
    )
    return '{"items":[%s],"total":17}' % items


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def wait_port(port, proc, what, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            sys.exit(f"vs-nginx: {what} exited early (see {WORKDIR})")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"vs-nginx: {what} did not listen on {port}")


class Work:
    def __init__(self, root):
        self.root = root
        self.procs = []

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def spawn(self, args, cpu, name, env=None):
        out = open(self.path(name + ".out"), "w")
        err = open(self.path(name + ".err"), "w")
        p = subprocess.Popen(
            ["taskset", "-c", cpu] + args, stdout=out, stderr=err, env=env
        )
        self.procs.append(p)
        return p

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


NGINX_COMMON = """daemon off; master_process off; worker_processes 1;
worker_rlimit_nofile 65536;
error_log {w}/{name}.log warn; pid {w}/{name}.pid;
events {{ worker_connections 16384; }}
http {{
  access_log off; keepalive_requests 100000000; keepalive_timeout 300s;
  client_body_temp_path {w}/tmp-{name}; proxy_temp_path {w}/tmp-{name};
  fastcgi_temp_path {w}/tmp-{name}; uwsgi_temp_path {w}/tmp-{name};
  scgi_temp_path {w}/tmp-{name};
{body}
}}
"""


def start_backend(work):
    port = free_port()
    with open(work.path("small.json"), "w") as f:
        f.write(body_1k())
    with open(work.path("big.json"), "w") as f:
        row = '{"id":%d,"name":"item-%06d","price":12.99,"tags":["alpha","beta"]}'
        rows, size, i = [], 0, 0
        while size < 100 * 1024:
            r = row % (i, i)
            rows.append(r)
            size += len(r) + 1
            i += 1
        f.write('{"items":[%s]}' % ",".join(rows))
    body = f"""  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location = /big {{ default_type application/json; alias {work.path("big.json")}; }}
    location / {{ default_type application/json; return 200 '{body_1k()}'; }}
  }}"""
    conf = work.path("backend.conf")
    with open(conf, "w") as f:
        f.write(NGINX_COMMON.format(w=work.root, name="backend", body=body))
    os.makedirs(work.path("tmp-backend"), exist_ok=True)
    p = work.spawn(["nginx", "-c", conf], CLIENT_CPU, "backend")
    wait_port(port, p, "backend nginx")
    return port


def start_nginx(work, backend):
    ports = {"http": free_port(), "tls": free_port(), "h2": free_port()}
    proxy = """proxy_pass http://backend/; proxy_http_version 1.1;
      proxy_set_header Connection "";"""
    locations = f"""location /api/ {{ {proxy} }}
    location /plain/ {{ {proxy} }}"""
    body = f"""  upstream backend {{ server 127.0.0.1:{backend};
    keepalive 256; keepalive_requests 100000000; }}
  server {{ listen 127.0.0.1:{ports["http"]} backlog=4096; {locations} }}
  server {{ listen 127.0.0.1:{ports["h2"]} http2 backlog=4096; {locations} }}
  server {{ listen 127.0.0.1:{ports["tls"]} ssl backlog=4096;
    ssl_certificate {work.path("tls.crt")}; ssl_certificate_key {work.path("tls.key")};
    ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:10m;
    {locations} }}"""
    conf = work.path("nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_COMMON.format(w=work.root, name="nginx", body=body))
    os.makedirs(work.path("tmp-nginx"), exist_ok=True)
    p = work.spawn(["nginx", "-c", conf], PROXY_CPU, "nginx")
    for port in ports.values():
        wait_port(port, p, "nginx")
    return p, ports


def mgmt(base, method, path, body=None, ctype="application/json"):
    data = None
    if body is not None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + ADMIN)
    req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        sys.exit(f"vs-nginx: {method} {path} -> {e.code}: {e.read()[:300]!r}")


def start_turnpike(work, name, backend, data=None, seeded=False, binary=None):
    data = data or work.path(name + "-data")
    os.makedirs(data, exist_ok=True)
    conf = work.path(name + ".toml")
    with open(conf, "w") as f:
        f.write(f"""[node]
data_dir = "{data}"
shutdown_timeout = "5s"
[gateway]
http = "127.0.0.1:0"
https = "127.0.0.1:0"
tls_cert = "{work.path("tls.crt")}"
tls_key = "{work.path("tls.key")}"
[management]
listen = "127.0.0.1:0"
admin_key = "{ADMIN}"
[portal]
enabled = false
[telemetry]
access_log = false
log_level = "warn"
""")
    env = dict(os.environ, TURNPIKE_MASTER_KEY=MASTER)
    started = time.time()
    p = work.spawn([binary or TURNPIKE, "serve", "--config", conf], PROXY_CPU, name, env=env)
    addrs = {}
    end = time.time() + 600
    while time.time() < end and "management" not in addrs:
        if p.poll() is not None:
            sys.exit(f"vs-nginx: {name} exited (see {work.path(name + '.err')})")
        with open(work.path(name + ".out")) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[0] == "listening":
                    addrs[parts[1]] = parts[2]
        time.sleep(0.05)
    startup = time.time() - started
    base = f"http://{addrs['management']}/mgmt"
    if not seeded:
        setup_turnpike(base, backend)
    return p, addrs, base, startup


def setup_turnpike(base, backend):
    svc = f"http://127.0.0.1:{backend}"
    mgmt(base, "PUT", "/apis/api", {"path": "api", "serviceUrl": svc, "displayName": "bench"})
    mgmt(base, "PUT", "/apis/api/operations/get", {"method": "GET", "urlTemplate": "/*"})
    mgmt(base, "PUT", "/apis/api/policy", POLICY, "application/xml")
    mgmt(base, "PUT", "/products/bench",
         {"displayName": "bench", "subscriptionRequired": True, "state": "published"})
    mgmt(base, "PUT", "/products/bench/apis/api")
    mgmt(base, "PUT", "/subscriptions/bench",
         {"scope": "/products/bench", "state": "active", "displayName": "bench",
          "primaryKey": KEY})
    mgmt(base, "PUT", "/apis/plain",
         {"path": "plain", "serviceUrl": svc, "displayName": "plain",
          "subscriptionRequired": False})
    mgmt(base, "PUT", "/apis/plain/operations/get", {"method": "GET", "urlTemplate": "/*"})


def key_header(url):
    """The subscription key header, sent on every URL but /plain/ ones (a
    key the API's products do not hold is refused, as in APIM)."""
    return [] if "/plain/" in url else ["-H", "Ocp-Apim-Subscription-Key: " + KEY]


def check(url, tls=False):
    """One request through curl: the target answers 200 with the body."""
    args = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}"] + key_header(url) + [url]
    if tls:
        args[1:1] = ["-k"]
    code = subprocess.run(args, capture_output=True, text=True).stdout
    if code != "200":
        sys.exit(f"vs-nginx: {url} answered {code}, not 200")


def ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        return float("nan")
    v = float(m.group(1))
    return {"us": v / 1000, "ms": v, "s": v * 1000}[m.group(2)]


def run_wrk(url, pid, conns=CONNS, duration=DURATION):
    threads = 2 if conns >= 1000 else 1
    args = ["taskset", "-c", CLIENT_CPU, "wrk", "-t", str(threads), "-c", str(conns),
            "-d", f"{duration}s", "--latency", "--timeout", "5s"] + key_header(url) + [url]
    before = cpu_ticks(pid) if pid else 0
    out = subprocess.run(args, capture_output=True, text=True).stdout
    after = cpu_ticks(pid) if pid else 0
    total = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    n = int(total.group(1)) if total else 0
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": ms(p50.group(1)) if p50 else float("nan"),
        "p99": ms(p99.group(1)) if p99 else float("nan"),
        "cpu_us": (after - before) / TICK * 1e6 / n if pid and n else float("nan"),
        "errors": (int(errors.group(1)) if errors else 0),
        "socket": sock.group(1) if sock else "",
    }


def run_h2load(url, pid, rps_total=None, h1=False, duration=DURATION, log=None):
    conns = CONNS if h1 else 32
    args = ["taskset", "-c", CLIENT_CPU, "h2load", "-c", str(conns), "-D", str(duration)]
    args += key_header(url)
    if h1:
        args.append("--h1")
    else:
        args += ["-m", "8"]
    if rps_total:
        args += ["--rps", str(max(1, round(rps_total / conns)))]
    if log:
        args += ["--log-file", log]
    args.append(url)
    before = cpu_ticks(pid) if pid else 0
    out = subprocess.run(args, capture_output=True, text=True).stdout
    after = cpu_ticks(pid) if pid else 0
    m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    codes = re.search(r"status codes: (\d+) 2xx", out)
    failed = re.search(r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
    n = int(done.group(1)) if done else 0
    ok = int(codes.group(1)) if codes else 0
    errors = max(0, n - ok) + (sum(int(g) for g in failed.groups()) if failed else 0)
    res = {
        "rps": float(m.group(1)) if m else 0.0,
        "cpu_us": (after - before) / TICK * 1e6 / n if pid and n else float("nan"),
        "errors": errors,
        "socket": "",
        "p50": float("nan"),
        "p99": float("nan"),
    }
    if log and os.path.exists(log):
        lat = []
        with open(log) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[1] == "200":
                    lat.append(int(parts[2]) / 1000)  # µs -> ms
        lat.sort()
        if lat:
            res["p50"] = lat[len(lat) // 2]
            res["p99"] = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return res


def rounds(targets, runner):
    """targets: [(name, url, pid)]; runner(url, pid) -> result dict."""
    for name, url, pid in targets:
        runner(url, pid, duration=WARMUP)
    results = {name: [] for name, _, _ in targets}
    for r in range(ROUNDS):
        for name, url, pid in targets:
            res = runner(url, pid)
            results[name].append(res)
            print(f"  round {r + 1} {name:<14} {res['rps']:>9.0f} req/s  "
                  f"p50 {res['p50']:.2f} ms  p99 {res['p99']:.2f} ms  "
                  f"cpu {res['cpu_us']:.1f} us/req  errors {res['errors']} {res['socket']}",
                  flush=True)
    return results


def med(values):
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def added_latency(res, label):
    """Prints what each proxy adds to the direct call's median p50/p99."""
    d50 = med([r["p50"] for r in res["direct"]])
    d99 = med([r["p99"] for r in res["direct"]])
    for name in ("nginx", "turnpike"):
        p50 = med([r["p50"] for r in res[name]])
        p99 = med([r["p99"] for r in res[name]])
        print(f"added latency, {label}, {name}: "
              f"p50 {(p50 - d50) * 1000:.0f} µs, p99 {(p99 - d99) * 1000:.0f} µs")


def table(title, results, pids, reference="nginx"):
    print(f"\n### {title}\n")
    print("| target | req/s (median) | p50 ms | p99 ms | vs nginx | CPU µs/req | peak RSS MB | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    ref = med([r["rps"] for r in results.get(reference, [])]) or float("nan")
    rows = {}
    for name, res in results.items():
        rps = med([r["rps"] for r in res])
        rows[name] = rps
        pid = pids.get(name)
        rss = f"{peak_rss_mb(pid):.1f}" if pid else "-"
        ratio = f"{rps / ref:.2f}×" if ref == ref and ref else "-"
        print(f"| {name} | {rps:.0f} | {med([r['p50'] for r in res]):.2f} | "
              f"{med([r['p99'] for r in res]):.2f} | {ratio} | "
              f"{med([r['cpu_us'] for r in res]):.1f} | {rss} | "
              f"{sum(r['errors'] for r in res)} |")
    print(flush=True)
    return rows


def main():
    global WORKDIR, MASTER
    keep = os.environ.get("WORK")
    root = keep or tempfile.mkdtemp(prefix="vs-nginx-")
    os.makedirs(root, exist_ok=True)
    WORKDIR = root
    MASTER = "ab" * 32
    work = Work(root)
    try:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
             "-keyout", work.path("tls.key"), "-out", work.path("tls.crt")],
            check=True, capture_output=True)
        backend = start_backend(work)
        nginx, nports = start_nginx(work, backend)
        tp, taddrs, tbase, _ = start_turnpike(work, "turnpike", backend)
        direct = f"http://127.0.0.1:{backend}"
        ngx = f"http://127.0.0.1:{nports['http']}"
        tpk = f"http://{taddrs['gateway-http']}"
        for url in (direct + "/x", ngx + "/api/x", tpk + "/api/x", tpk + "/plain/x"):
            check(url)
        check(f"https://127.0.0.1:{nports['tls']}/api/x", tls=True)
        check(f"https://{taddrs['gateway-https']}/api/x", tls=True)
        pids = {"nginx": nginx.pid, "turnpike": tp.pid}
        base_targets = lambda path: []
        if BASE:
            bp, baddrs, _, _ = start_turnpike(work, "turnpike-base", backend, binary=BASE)
            bgw = f"http://{baddrs['gateway-http']}"
            check(bgw + "/api/x")
            pids["turnpike-base"] = bp.pid
            base_targets = lambda path: [("turnpike-base", bgw + path, bp.pid)]
        print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; "
              f"client+backend on CPU {CLIENT_CPU}, proxies on CPU {PROXY_CPU}; "
              f"{ROUNDS} rounds of {DURATION} s after {WARMUP} s warm-up; "
              f"{CONNS} connections", flush=True)
        nginx_rps = None
        turnpike_rps = None
        for variant in VARIANTS:
            print(f"\n== {variant}", flush=True)
            if variant == "policies":
                res = rounds([("direct", direct + "/x", None), ("nginx", ngx + "/api/x", nginx.pid),
                              ("turnpike", tpk + "/api/x", tp.pid)] + base_targets("/api/x"), run_wrk)
                rows = table("HTTP/1.1, 1 KB, key + rate-limit-by-key + set-header", res, pids)
                nginx_rps = rows["nginx"]
                turnpike_rps = rows["turnpike"]
            elif variant == "plain":
                res = rounds([("direct", direct + "/x", None), ("nginx", ngx + "/plain/x", nginx.pid),
                              ("turnpike", tpk + "/plain/x", tp.pid)] + base_targets("/plain/x"), run_wrk)
                table("HTTP/1.1, 1 KB, no key, no policies", res, pids)
            elif variant == "latency":
                if nginx_rps is None:
                    res = rounds([("nginx", ngx + "/api/x", nginx.pid),
                                  ("turnpike", tpk + "/api/x", tp.pid)], run_wrk)
                    nginx_rps = med([r["rps"] for r in res["nginx"]])
                    turnpike_rps = med([r["rps"] for r in res["turnpike"]])
                # The goal's point (half of nginx's saturation), and half of
                # turnpike's own when that is lower (below it turnpike queues
                # and the latency says nothing about the work per request).
                rates = [("nginx", nginx_rps / 2)]
                if turnpike_rps and turnpike_rps < nginx_rps:
                    rates.append(("turnpike", turnpike_rps / 2))
                # One connection, one request at a time: the latency a
                # proxy adds to a request that never queues.
                res = rounds([("direct", direct + "/x", None), ("nginx", ngx + "/api/x", nginx.pid),
                              ("turnpike", tpk + "/api/x", tp.pid)],
                             lambda u, p, duration=DURATION: run_wrk(u, p, conns=1, duration=duration))
                table("HTTP/1.1, one connection (no queueing), key + policies", res, pids)
                added_latency(res, "one connection")
                n = [0]
                for whose, rate in rates:
                    print(f"  fixed rate: {rate:.0f} req/s (half of {whose}'s saturation)")

                    def fixed(url, pid, duration=DURATION, rate=rate):
                        n[0] += 1
                        log = work.path(f"h2load-{n[0]}.log")
                        r = run_h2load(url, pid, rps_total=rate, h1=True, duration=duration,
                                       log=log)
                        os.remove(log)
                        return r
                    res = rounds([("direct", direct + "/x", None),
                                  ("nginx", ngx + "/api/x", nginx.pid),
                                  ("turnpike", tpk + "/api/x", tp.pid)], fixed)
                    table(f"HTTP/1.1 at {rate:.0f} req/s (half of {whose}'s saturation), "
                          "key + policies", res, pids)
                    added_latency(res, f"at {rate:.0f} req/s")
            elif variant == "h2":
                res = rounds([("nginx", f"http://127.0.0.1:{nports['h2']}/api/x", nginx.pid),
                              ("turnpike", tpk + "/api/x", tp.pid)],
                             lambda u, p, duration=DURATION: run_h2load(u, p, duration=duration))
                table("HTTP/2 (h2c) clients: 32 connections × 8 streams, key + policies "
                      "(to the backend: HTTP/1.1)", res, pids)
            elif variant == "tls":
                res = rounds([("nginx", f"https://127.0.0.1:{nports['tls']}/api/x", nginx.pid),
                              ("turnpike", f"https://{taddrs['gateway-https']}/api/x", tp.pid)],
                             run_wrk)
                table("HTTPS clients (keep-alive), 1 KB, key + policies", res, pids)
            elif variant == "big":
                res = rounds([("direct", direct + "/big", None), ("nginx", ngx + "/api/big", nginx.pid),
                              ("turnpike", tpk + "/api/big", tp.pid)], run_wrk)
                table("HTTP/1.1, 100 KB responses, key + policies", res, pids)
            elif variant == "c1k":
                res = rounds([("nginx", ngx + "/api/x", nginx.pid),
                              ("turnpike", tpk + "/api/x", tp.pid)],
                             lambda u, p, duration=DURATION: run_wrk(u, p, conns=1000, duration=duration))
                table("HTTP/1.1, 1,000 connections, key + policies", res, pids)
            elif variant == "scale":
                scale(work, backend, ngx, tpk, nginx, tp)
            else:
                sys.exit(f"vs-nginx: unknown variant {variant!r} (known: {', '.join(ALL)})")
    finally:
        work.stop()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def scale(work, backend, ngx, tpk, nginx, tp):
    if not SEED:
        sys.exit("vs-nginx: the scale variant needs SEED_BIN (the bench-seed example)")
    data = work.path("scale-data")
    started = time.time()
    out = subprocess.run(
        [SEED, "--data", data, "--apis", "10000", "--subscriptions", "100000",
         "--service-url", f"http://127.0.0.1:{backend}", "--key", KEY],
        env=dict(os.environ, TURNPIKE_MASTER_KEY=MASTER), capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"vs-nginx: bench-seed failed: {out.stderr}")
    print(f"  seeded in {time.time() - started:.1f} s: {out.stdout.strip()}")
    big, baddrs, bbase, startup = start_turnpike(work, "turnpike-10k", backend, data, seeded=True)
    burl = f"http://{baddrs['gateway-http']}"
    check(burl + "/api/x")
    print(f"  start-up to listening (store open + snapshot compile): {startup:.2f} s")
    writes = []
    for i in range(5):
        t = time.time()
        mgmt(bbase, "PUT", f"/named-values/scale-{i}", {"displayName": f"scale-{i}", "value": "v"})
        writes.append(time.time() - t)
    print(f"  one management write (compile + persist + publish), median of 5: "
          f"{statistics.median(writes) * 1000:.0f} ms")
    pids = {"nginx": nginx.pid, "turnpike": tp.pid, "turnpike-10k": big.pid}
    res = rounds([("nginx", ngx + "/api/x", nginx.pid), ("turnpike", tpk + "/api/x", tp.pid),
                  ("turnpike-10k", burl + "/api/x", big.pid)], run_wrk)
    rows = table("1 API / 1 subscription against 10,000 APIs / 100,000 subscriptions "
                 "(RSS: the whole process)", res, pids)
    print(f"10k/1 throughput: {rows['turnpike-10k'] / rows['turnpike']:.3f}")


if __name__ == "__main__":
    main()
