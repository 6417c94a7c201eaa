#!/usr/bin/env python3
"""Resolution at scale: N credentials in N/10 workspaces, one serving process, another process changing keys.

Prints, for the release build:
  - populate time (through the repositories and the vault: every key sealed and audited),
  - start-up time to a ready /readyz, RSS when ready,
  - resolve p50/p99 (POST /api/v1/resolve, one keep-alive connection) idle, and while another process
    (`keywarden-bench churn`) deactivates or reactivates a random workspace's primary key every 50 ms,
  - the delay from such a change (committed by the other process) to its use by the server,
  - RSS with the hot workspaces held (bounded cache), and with every workspace held (KEYWARDEN_RESOLUTION_CACHE_WORKSPACES
    set to all of them): bytes per credential of both designs,
  - master-key rotation time for every secret (`keywarden rotate-master-key`).

Usage: Benchmarks/scale.py [--bin .build/release] [--credentials 100000] [--hot 2000] [--data DIR] [--requests 4000]
A --data directory that was populated before is reused (populating 1M keys takes minutes).
"""
import argparse
import http.client
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Server:
    def __init__(self, binary, data, extra_env=None):
        env = dict(os.environ)
        env.update({"KEYWARDEN_HEALTH_INTERVAL": "0", "KEYWARDEN_LOG_LEVEL": "warning"})
        env.update(extra_env or {})
        self.started = time.monotonic()
        self.process = subprocess.Popen([binary, "serve", "--data", data, "--port", "0"], stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, env=env, text=True)
        self.port = None
        for line in self.process.stdout:
            match = re.search(r"listening on http://[^:]+:(\d+)", line)
            if match:
                self.port = int(match.group(1))
                break
        if self.port is None:
            raise SystemExit("the server did not start")
        threading.Thread(target=lambda: [None for _ in self.process.stdout], daemon=True).start()
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", "/readyz")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.01)
        self.ready_after = time.monotonic() - self.started

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Client:
    def __init__(self, port, token):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def resolve(self, workspace):
        body = json.dumps({"workspace": workspace, "provider": "openai"})
        started = time.perf_counter()
        self.connection.request("POST", "/api/v1/resolve", body=body, headers=self.headers)
        response = self.connection.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            return elapsed, None
        return elapsed, json.loads(payload)["candidates"][0]["reason"]


def resolve_run(client, workspaces, count, seed):
    rng = random.Random(seed)
    latencies = []
    for _ in range(count):
        elapsed, _ = client.resolve(rng.choice(workspaces))
        latencies.append(elapsed)
    return latencies


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/release")
    parser.add_argument("--credentials", type=int, default=100_000)
    parser.add_argument("--hot", type=int, default=2_000, help="workspaces the resolve load and the churn use")
    parser.add_argument("--requests", type=int, default=4_000)
    parser.add_argument("--data")
    parser.add_argument("--skip-full", action="store_true", help="skip holding every workspace (slow at 1M)")
    parser.add_argument("--skip-rotation", action="store_true")
    args = parser.parse_args()

    keywarden = os.path.join(args.bin, "keywarden")
    bench = os.path.join(args.bin, "keywarden-bench")
    data = args.data or tempfile.mkdtemp(prefix="kw-scale-")
    os.makedirs(data, exist_ok=True)
    print(f"scale: {args.credentials} credentials in {args.credentials // 10} workspaces, data in {data}")

    if not os.path.exists(os.path.join(data, "bench-workspaces.tsv")):
        started = time.monotonic()
        subprocess.run([bench, "populate", "--data", data, "--credentials", str(args.credentials)], check=True,
                       stdout=subprocess.DEVNULL, env=dict(os.environ, KEYWARDEN_LOG_LEVEL="warning"))
        print(f"  populated (repositories + vault, sealed and audited): {time.monotonic() - started:.1f} s")
    token = open(os.path.join(data, "bench-admin-token")).read().strip()
    workspaces = [line.split("\t")[0] for line in open(os.path.join(data, "bench-workspaces.tsv")) if line.strip()]
    hot = workspaces[: args.hot]
    database = sum(os.path.getsize(os.path.join(data, name)) for name in os.listdir(data) if name.startswith("keywarden.sqlite"))
    print(f"  database on disk: {database / 1e6:.0f} MB")

    # 1. Bounded cache (the default): start-up, idle, under changes.
    server = Server(keywarden, data)
    pid = server.process.pid
    print(f"  start-up to ready: {server.ready_after * 1000:.0f} ms, RSS {rss_mb(pid):.0f} MB")
    client = Client(server.port, token)
    resolve_run(client, hot, len(hot), 1)  # every hot workspace read once
    warm_rss = rss_mb(pid)
    idle = resolve_run(client, hot, args.requests, 2)
    cold = resolve_run(client, workspaces[args.hot:] or hot, min(args.requests, max(1, len(workspaces) - args.hot)), 3)
    print(f"  RSS with {len(hot)} workspaces held: {warm_rss:.0f} MB")
    print(f"  resolve idle (hot):        p50 {percentile(idle, 50) * 1e3:.2f} ms  p99 {percentile(idle, 99) * 1e3:.2f} ms")
    print(f"  resolve first use (cold):  p50 {percentile(cold, 50) * 1e3:.2f} ms  p99 {percentile(cold, 99) * 1e3:.2f} ms")

    churn = subprocess.Popen([bench, "churn", "--data", data, "--interval-ms", "50", "--workspaces", str(len(hot))],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    delays = []
    stop = threading.Event()

    def probe():
        prober = Client(server.port, token)
        for line in churn.stdout:
            if stop.is_set():
                break
            parts = line.split()
            if len(parts) != 3:
                continue
            committed, workspace, active = float(parts[0]), parts[1], parts[2] == "1"
            expected = "primary" if active else "fallback"
            deadline = time.time() + 5
            while time.time() < deadline and not stop.is_set():
                try:
                    _, reason = prober.resolve(workspace)
                except OSError:
                    return
                if reason == expected:
                    delays.append(time.time() - committed)
                    break
                time.sleep(0.002)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    time.sleep(1)
    busy = resolve_run(client, hot, args.requests, 4)
    stop.set()
    churn.terminate()
    churn.wait()
    changes_rss = rss_mb(pid)
    print(f"  resolve under changes:     p50 {percentile(busy, 50) * 1e3:.2f} ms  p99 {percentile(busy, 99) * 1e3:.2f} ms"
          f"  (p99 ratio to idle {percentile(busy, 99) / percentile(idle, 99):.2f}; goal ≤ 2)")
    if delays:
        print(f"  change (other process) → used: p50 {percentile(delays, 50) * 1e3:.0f} ms  p99 {percentile(delays, 99) * 1e3:.0f} ms"
              f"  max {max(delays) * 1e3:.0f} ms over {len(delays)} changes (goal ≤ 1 s)")
    print(f"  RSS after the changes: {changes_rss:.0f} MB")
    server.stop()

    # 2. Every workspace held: the other design, measured.
    if not args.skip_full:
        server = Server(keywarden, data, {"KEYWARDEN_RESOLUTION_CACHE_WORKSPACES": str(len(workspaces))})
        pid = server.process.pid
        base = rss_mb(pid)
        client = Client(server.port, token)
        started = time.monotonic()
        for workspace in workspaces:
            client.resolve(workspace)
        full = rss_mb(pid)
        per = (full - base) * 1024 * 1024 / args.credentials
        print(f"  every workspace held: RSS {base:.0f} → {full:.0f} MB ({per:.0f} bytes per credential; read in {time.monotonic() - started:.0f} s)")
        hot_per = (warm_rss - base) * 1024 * 1024 / max(1, len(hot) * 10)
        print(f"  bounded cache: {len(hot) * 10} credentials held, ≈ {hot_per:.0f} bytes each")
        server.stop()

    # 3. Master-key rotation of every secret.
    if not args.skip_rotation:
        started = time.monotonic()
        subprocess.run([keywarden, "rotate-master-key", "--data", data], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(f"  master-key rotation of {args.credentials} secrets: {time.monotonic() - started:.1f} s (goal ≤ 60 s at 1M)")

    if not args.data:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
