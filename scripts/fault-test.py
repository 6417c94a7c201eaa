#!/usr/bin/env python3
"""The database fault suite (see scripts/fault-test.sh): real processes, a real PostgreSQL, a proxy of our own.

Standard library only. Exits non-zero, naming each failed assertion, when Keywarden does not hold up.
"""
import argparse
import asyncio
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

STALE_BOUND = 10.0          # KEYWARDEN_STALE_AFTER, seconds: the longest an instance serves what it cannot confirm
CLIENT_TIMEOUT = 30.0       # a client gives up after this long: such a request was left hanging
ANSWER_DEADLINE = 15.0      # every request must be answered within this (the database deadline is 10 s, plus slack)
SIGTERM_BOUND = 10.0        # a process must exit within this after SIGTERM
MASTER_KEY = "gJ3aC0p8O5mPqW1kXv7yZt2rS9uL4nB6eD0fH3jK5mE="


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(*parts):
    print(time.strftime("%H:%M:%S"), *parts, flush=True)


# ---------------------------------------------------------------------------------------------------------------------
# PostgreSQL of the suite's own, started as the postgres user when we are root (it refuses to run as root).

class Postgres:
    def __init__(self, pgbin, root):
        self.pgbin, self.root = pgbin, root
        self.dir = os.path.join(root, "pg")
        os.makedirs(self.dir)
        self.port = free_port()
        self.as_root = os.getuid() == 0
        if self.as_root:
            os.chmod(root, 0o755)
            shutil.chown(self.dir, "postgres", "postgres")
        self.run("initdb", "-D", f"{self.dir}/data", "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()

    def run(self, tool, *args, check=True):
        command = [f"{self.pgbin}/{tool}", *args]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=check, timeout=120)

    def start(self):
        self.run("pg_ctl", "-D", f"{self.dir}/data", "-l", f"{self.dir}/log", "-w", "start", "-o",
                 f"-p {self.port} -c listen_addresses=127.0.0.1 -c max_connections=300 -k {self.dir}")

    def stop(self, mode="fast"):
        self.run("pg_ctl", "-D", f"{self.dir}/data", "-m", mode, "-w", "stop", check=False)

    def restart(self, mode):
        self.run("pg_ctl", "-D", f"{self.dir}/data", "-m", mode, "-w", "restart", "-l", f"{self.dir}/log", "-o",
                 f"-p {self.port} -c listen_addresses=127.0.0.1 -c max_connections=300 -k {self.dir}")

    def sql(self, statement, database="kwfault"):
        out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database, "-At",
                              "-c", statement], capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"psql: {out.stderr.strip()}")
        return out.stdout.strip()


# ---------------------------------------------------------------------------------------------------------------------
# A TCP proxy between the instances and PostgreSQL that can add a delay to every packet, in each direction, without
# reordering or serializing them (a packet arriving at t leaves at t + delay).

class Proxy:
    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.port = free_port()
        self.delay = 0.0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait()

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)

        async def main():
            server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
            ready.set()
            async with server:
                await server.serve_forever()
        self.loop.run_until_complete(main())

    async def _client(self, reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return

        async def pump(source, sink):
            queue = asyncio.Queue()

            async def send():
                while True:
                    at, data = await queue.get()
                    if data is None:
                        break
                    wait = at + self.delay - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    sink.write(data)
                    await sink.drain()
                sink.close()
            sender = asyncio.ensure_future(send())
            try:
                while True:
                    data = await source.read(65536)
                    if not data:
                        break
                    queue.put_nowait((time.monotonic(), data))
            except (ConnectionError, OSError):
                pass
            queue.put_nowait((time.monotonic(), None))
            try:
                await sender
            except (ConnectionError, OSError):
                pass
        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer), return_exceptions=True)


# ---------------------------------------------------------------------------------------------------------------------
# Instances

class Instance:
    def __init__(self, name, bin_dir, work, env):
        self.name, self.bin_dir, self.work, self.env = name, bin_dir, work, env
        self.port = free_port()
        self.proc = None
        self.generation = 0
        # Whether the load may send to it (a load balancer would: after /readyz said so, until it is stopped).
        self.ready = False

    def start(self):
        self.generation += 1
        self.out_path = os.path.join(self.work, f"{self.name}.{self.generation}.out")
        self.err_path = os.path.join(self.work, f"{self.name}.{self.generation}.err")
        self.proc = subprocess.Popen([f"{self.bin_dir}/keywarden", "serve", "--port", str(self.port)], cwd=self.work, env=self.env,
                                     stdout=open(self.out_path, "w"), stderr=open(self.err_path, "w"))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {open(self.err_path).read()[-2000:]}")
            try:
                status, _, _ = http_call(self.port, "GET", "/readyz", timeout=3)
                if status == 200:
                    self.ready = True
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready: {open(self.err_path).read()[-2000:]}")

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        self.ready = False
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def terminate(self):
        """SIGTERM; the seconds until the process exited (None when it did not within 3 × the bound, then killed)."""
        self.ready = False
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=SIGTERM_BOUND * 3)
            return time.monotonic() - started
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def stderr(self):
        return open(self.err_path).read()


def http_call(port, method, path, body=None, token=None, timeout=CLIENT_TIMEOUT):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = connection.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        connection.close()


# ---------------------------------------------------------------------------------------------------------------------
# The suite

class Suite:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="kw-fault.")
        self.results = []           # one dict per request made by the load
        self.readiness = []         # one dict per /readyz probe
        self.lock = threading.Lock()
        self.phase = "setup"
        self.failures = []
        self.notes = []
        self.stop_load = threading.Event()
        # Management writes at once across the load: a few admins, not a flood (every write takes the one write lock).
        self.writers = threading.Semaphore(2)
        self.figures = {}
        self.ended_processes = set()

    def fail(self, message):
        log("FAIL:", message)
        self.failures.append(message)

    # Setup ------------------------------------------------------------------------------------------------------------

    def setup(self):
        log("work directory", self.work)
        self.pg = Postgres(self.args.pgbin, self.work)
        self.pg.sql("CREATE DATABASE kwfault", database="postgres")
        self.proxy = Proxy(self.pg.port)
        mocks_out = os.path.join(self.work, "mocks.out")
        self.mocks = subprocess.Popen([f"{self.args.bin}/keywarden-mock-vendors", "--vendor", "openai", "--no-record"],
                                      stdout=open(mocks_out, "w"), stderr=subprocess.STDOUT)
        for _ in range(300):
            found = re.search(r"mock openai (\S+)", open(mocks_out).read())
            if found:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("the mock vendor did not start")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.work,
               "KEYWARDEN_DATABASE_URL": f"postgres://postgres@127.0.0.1:{self.proxy.port}/kwfault?sslmode=disable",
               "KEYWARDEN_MASTER_KEY": MASTER_KEY, "KEYWARDEN_UPSTREAM_OPENAI": found.group(1),
               "KEYWARDEN_ALLOW_PRIVATE_TARGETS": "1", "KEYWARDEN_HEALTH_INTERVAL": "0", "KEYWARDEN_LOG_LEVEL": "warning",
               "KEYWARDEN_STALE_AFTER": str(int(STALE_BOUND)), "KEYWARDEN_INSTANCE_DEAD_AFTER": "15"}
        self.instances = [Instance(name, self.args.bin, self.work, env) for name in ("a", "b", "c")]
        self.instances[0].start()
        token = re.search(r"kw_[A-Za-z0-9_-]+", open(self.instances[0].out_path).read())
        if not token:
            raise RuntimeError("no admin token printed")
        self.admin = token.group(0)
        for instance in self.instances[1:]:
            instance.start()
        a = self.instances[0].port

        def api(method, path, body=None):
            status, _, data = http_call(a, method, path, body, self.admin)
            if status >= 300:
                raise RuntimeError(f"{method} {path}: {status} {data[:300]!r}")
            return json.loads(data) if data else None

        api("PUT", "/api/v1/platform/providers/openai", {"api_key": "sk-platform-fault-0001"})
        api("POST", "/api/v1/platform/providers/openai/activate")

        def workspace(name):
            return api("POST", "/api/v1/workspaces", {"name": name})["id"]

        def service_token(ws):
            return api("POST", f"/api/v1/workspaces/{ws}/tokens", {"name": "load", "permissions": ["gateway.use"]})["value"]

        def key(ws, description, secret):
            created = api("POST", f"/api/v1/workspaces/{ws}/keys", {"provider": "openai", "description": description,
                                                                      "api_key": secret, "role": "primary", "active": True})
            return created.get("id") or created["key"]["id"]

        # Own keys only, no limits: served from memory through an outage.
        self.ws_byok = workspace("Own keys")
        key(self.ws_byok, "own", "sk-own-fault-0001")
        self.token_byok = service_token(self.ws_byok)
        # The platform's key under a budget and a rate limit: holds and admissions on PostgreSQL.
        self.ws_paid = workspace("Platform paid")
        api("PATCH", f"/api/v1/workspaces/{self.ws_paid}/budget", {"platform_limit_credits": 1_000_000})
        api("PATCH", f"/api/v1/workspaces/{self.ws_paid}/rate-limits", {"requests_per_minute": 100_000, "tokens_per_minute": 100_000_000})
        self.token_paid = service_token(self.ws_paid)
        # The staleness probe: one own key, deactivated and activated again after each fault.
        self.ws_probe = workspace("Probe")
        self.probe_key = key(self.ws_probe, "probe", "sk-probe-fault-0001")
        self.token_probe = service_token(self.ws_probe)
        # The recovery checks' calls (the platform's key, no limits), apart from the load's.
        self.ws_recover = workspace("Recovery")
        self.token_recover = service_token(self.ws_recover)
        # Where management writes land.
        self.ws_writes = workspace("Writes")
        self.acknowledged = []      # descriptions of keys whose creation was answered 2xx

    # Load -------------------------------------------------------------------------------------------------------------

    def record(self, **entry):
        with self.lock:
            self.results.append(entry)

    def load_worker(self, seed):
        rng = random.Random(seed)
        body = {"model": "gpt-5.4-mini", "messages": [{"role": "user", "content": "hello through a fault"}]}
        while not self.stop_load.is_set():
            alive = [i for i in self.instances if i.alive and i.ready]
            if not alive:
                time.sleep(0.05)
                continue
            instance = rng.choice(alive)
            roll = rng.random()
            if roll < 0.4:
                kind, method, path, payload, token = "gateway_own", "POST", "/openai/v1/chat/completions", body, self.token_byok
            elif roll < 0.75:
                kind, method, path, payload, token = "gateway_paid", "POST", "/openai/v1/chat/completions", body, self.token_paid
            elif roll < 0.9:
                description = "w-" + uuid.uuid4().hex
                kind, method, path, token = "write", "POST", f"/api/v1/workspaces/{self.ws_writes}/keys", self.admin
                payload = {"provider": "openai", "description": description, "api_key": "sk-write-" + uuid.uuid4().hex, "role": "fallback", "active": False}
            else:
                kind, method, path, payload, token = "read", "GET", f"/api/v1/workspaces/{self.ws_writes}/keys?per_page=5", None, self.admin
            if kind == "write" and not self.writers.acquire(blocking=False):
                continue
            phase, generation = self.phase, instance.generation
            started = time.monotonic()
            why = None
            try:
                status, headers, data = http_call(instance.port, method, path, payload, token)
                outcome = status
            except socket.timeout:
                outcome, headers, data = "timeout", {}, b""
            except (ConnectionError, http.client.HTTPException, OSError) as error:
                outcome, headers, data = "connection", {}, b""
                why = f"{type(error).__name__}" + (f" errno {error.errno}" if getattr(error, "errno", None) else "")
            finally:
                if kind == "write":
                    self.writers.release()
            ended = time.monotonic()
            if kind == "write" and outcome in (200, 201):
                with self.lock:
                    self.acknowledged.append(payload["description"])
            code = None
            if isinstance(outcome, int) and outcome >= 400:
                try:
                    code = json.loads(data)["error"]["code"]
                except Exception:
                    code = None
            self.record(kind=kind, instance=instance.name, generation=generation, phase=phase, started=started, ended=ended,
                        status=outcome, code=code, metered="server-timing" in headers, retry_after=headers.get("retry-after"), why=why)
            time.sleep(rng.uniform(0.005, 0.03))

    def readiness_worker(self):
        while not self.stop_load.is_set():
            for instance in self.instances:
                if not instance.alive:
                    continue
                started = time.monotonic()
                try:
                    status, _, _ = http_call(instance.port, "GET", "/readyz", timeout=10)
                except (OSError, http.client.HTTPException):
                    status = "error"
                with self.lock:
                    self.readiness.append(dict(instance=instance.name, phase=self.phase, started=started,
                                               seconds=time.monotonic() - started, status=status))
            time.sleep(0.5)

    # Probes -----------------------------------------------------------------------------------------------------------

    def change_probe(self, action, through):
        """Deactivates or activates the probe key through one instance, retrying until the database takes it."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                status, _, _ = http_call(through.port, "POST", f"/api/v1/workspaces/{self.ws_probe}/keys/{self.probe_key}/{action}",
                                         None, self.admin, timeout=20)
                if status == 200:
                    return time.monotonic()
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"could not {action} the probe key")

    def probe_uses_key(self, instance):
        body = {"model": "gpt-5.4-mini", "messages": [{"role": "user", "content": "probe"}]}
        try:
            status, headers, _ = http_call(instance.port, "POST", "/openai/v1/chat/completions", body, self.token_probe, timeout=20)
        except (OSError, http.client.HTTPException):
            return None
        return status == 200 and headers.get("x-keywarden-key") == self.probe_key

    def staleness_probe(self, label):
        """A key deactivated on one instance is refused by every instance within the bound."""
        alive = [i for i in self.instances if i.alive]
        if not alive:
            self.fail(f"{label}: no instance is running (exit codes: "
                      f"{', '.join(f'{i.name}: {i.proc.poll() if i.proc else None}' for i in self.instances)})")
            return
        through = alive[0]
        try:
            changed = self.change_probe("deactivate", through)
        except RuntimeError as error:
            self.fail(f"{label}: {error}")
            return
        worst = 0.0
        for instance in alive:
            while True:
                used = self.probe_uses_key(instance)
                elapsed = time.monotonic() - changed
                if used is False:
                    worst = max(worst, elapsed)
                    break
                if elapsed > STALE_BOUND:
                    self.fail(f"{label}: instance {instance.name} still used the deactivated key {elapsed:.1f} s after the change")
                    worst = max(worst, elapsed)
                    break
                time.sleep(0.05)
        self.figures.setdefault("stale", []).append((label, worst))
        try:
            self.change_probe("activate", through)
        except RuntimeError as error:
            self.fail(f"{label}: {error}")

    def wait_all_serving(self, label, since):
        """Seconds from `since` until every live instance answers a platform-paid call with 200 (recovery)."""
        worst = 0.0
        body = {"model": "gpt-5.4-mini", "messages": [{"role": "user", "content": "recovered?"}]}
        for instance in [i for i in self.instances if i.alive]:
            while True:
                try:
                    status, _, _ = http_call(instance.port, "POST", "/openai/v1/chat/completions", body, self.token_recover, timeout=20)
                except (OSError, http.client.HTTPException):
                    status = None
                elapsed = time.monotonic() - since
                if status == 200:
                    worst = max(worst, elapsed)
                    break
                if elapsed > 60:
                    self.fail(f"{label}: instance {instance.name} did not serve again within 60 s")
                    break
                time.sleep(0.1)
        self.figures.setdefault("recovery", []).append((label, worst))
        return worst

    # Faults -----------------------------------------------------------------------------------------------------------

    def set_phase(self, name):
        log("phase:", name)
        self.phase = name

    def run_faults(self):
        workers = [threading.Thread(target=self.load_worker, args=(n,), daemon=True) for n in range(self.args.clients)]
        workers.append(threading.Thread(target=self.readiness_worker, daemon=True))
        for worker in workers:
            worker.start()
        self.set_phase("baseline")
        time.sleep(10)

        self.set_phase("kill -9")
        victim = self.instances[2]
        self.killed_at = time.monotonic()
        victim.kill9()
        self.killed_generation = victim.generation
        self.ended_processes.add((victim.name, victim.generation))
        time.sleep(3)
        victim.start()
        time.sleep(5)

        for mode in ("fast", "immediate"):
            self.set_phase(f"restart {mode}")
            self.pg.restart(mode)
            back = time.monotonic()
            self.wait_all_serving(f"restart {mode}", back)
            self.staleness_probe(f"restart {mode}")
            time.sleep(5)

        self.set_phase("stopped 30 s")
        self.pg.stop("fast")
        time.sleep(30)
        self.pg.start()
        back = time.monotonic()
        self.set_phase("after stop")
        self.wait_all_serving("stopped 30 s", back)
        self.staleness_probe("stopped 30 s")
        time.sleep(5)

        self.set_phase("slow 200 ms")
        self.proxy.delay = 0.1      # each way: 200 ms per round trip
        time.sleep(20)
        self.staleness_probe("slow 200 ms")
        self.proxy.delay = 0.0
        self.set_phase("after slow")
        time.sleep(5)

        self.set_phase("SIGTERM in outage")
        self.pg.stop("immediate")
        time.sleep(3)
        b = self.instances[1]
        self.ended_processes.add((b.name, b.generation))
        took = b.terminate()
        self.figures["sigterm_outage"] = took
        if took is None or took > SIGTERM_BOUND:
            self.fail(f"SIGTERM during an outage: instance b exited after {took if took is not None else 'more than 30'} s")
        self.unwritten = self.unwritten_rows(b)
        self.pg.start()
        back = time.monotonic()
        b.start()
        self.set_phase("after SIGTERM")
        self.wait_all_serving("SIGTERM in outage", back)
        time.sleep(5)

        self.set_phase("done")
        self.stop_load.set()
        for worker in workers:
            worker.join(timeout=CLIENT_TIMEOUT + 5)

    @staticmethod
    def unwritten_rows(instance):
        lines = [line for line in instance.stderr().splitlines() if "usage rows not written at shutdown" in line]
        return sum(int(n) for line in lines for n in re.findall(r"\brows=(\d+)", line))

    # Checks -----------------------------------------------------------------------------------------------------------

    def check(self):
        # Every request answered, within its deadline (calls to the killed or terminated process aside: their clients lose).
        def lost_with_process(r):
            # A request to the process killed, or to the one stopped during the outage, loses its connection with it.
            return r["status"] == "connection" and (r["instance"], r["generation"]) in self.ended_processes
        hanging = [r for r in self.results if r["status"] == "timeout"]
        late = [r for r in self.results if isinstance(r["status"], int) and r["ended"] - r["started"] > ANSWER_DEADLINE]
        dropped = [r for r in self.results if r["status"] == "connection" and not lost_with_process(r)]
        if hanging:
            self.fail(f"{len(hanging)} requests were left unanswered for {CLIENT_TIMEOUT:.0f} s (by phase: {self.count_by(hanging, 'phase')})")
        if late:
            self.fail(f"{len(late)} requests were answered after more than {ANSWER_DEADLINE:.0f} s (by phase: {self.count_by(late, 'phase')})")
        if dropped:
            self.fail(f"{len(dropped)} requests lost their connection outside a process kill (by phase: {self.count_by(dropped, 'phase')}; "
                      f"by instance: {self.count_by(dropped, 'instance')}; by error: {self.count_by(dropped, 'why')}; "
                      f"by kind: {self.count_by(dropped, 'kind')})")
        # Errors say what they are: a failure of the store is 503 store_unavailable with Retry-After, never 500.
        internal = [r for r in self.results if r["status"] == 500]
        if internal:
            self.fail(f"{len(internal)} requests were answered 500 (codes: {self.count_by(internal, 'code')})")
        unavailable = [r for r in self.results if r["status"] == 503]
        bad_503 = [r for r in unavailable if r["code"] != "store_unavailable" or not r["retry_after"]]
        if bad_503:
            self.fail(f"{len(bad_503)} 503 answers without store_unavailable and Retry-After (codes: {self.count_by(bad_503, 'code')})")
        # /readyz: within 2 s, always.
        slow_ready = [r for r in self.readiness if r["seconds"] > 2.0]
        if slow_ready:
            self.fail(f"/readyz took more than 2 s {len(slow_ready)} times (worst {max(r['seconds'] for r in slow_ready):.1f} s)")
        stopped_ready = [r for r in self.readiness if r["phase"] == "stopped 30 s" and r["started"] - self.phase_start("stopped 30 s") > 3]
        if any(r["status"] == 200 for r in stopped_ready):
            self.fail("/readyz answered 200 while the database was stopped")

        # After the faults: the state.
        time.sleep(2)
        # Every instance's buffered usage is written within a few flush rounds.
        acknowledged = set(self.acknowledged)
        stored = set(self.pg.sql(f"SELECT description FROM credentials WHERE workspace_id = '{self.ws_writes}'").split("\n")) - {""}
        missing = acknowledged - stored
        if missing:
            self.fail(f"{len(missing)} of {len(acknowledged)} acknowledged key creations are not in the database")
        self.figures["acknowledged_writes"] = len(acknowledged)

        # Holds: the killed instance's are reclaimed once it is seen dead (KEYWARDEN_INSTANCE_DEAD_AFTER=15).
        deadline = time.monotonic() + 90
        while True:
            reserved = int(self.pg.sql("SELECT coalesce(sum(reserved_milli), 0) FROM budget_spend") or 0)
            try:
                holds = int(self.pg.sql("SELECT count(*) FROM budget_holds WHERE NOT reclaimed") or 0)
            except RuntimeError as error:
                self.fail(f"budget holds cannot be read: {error}")
                holds = 0
            if (reserved == 0 and holds == 0) or time.monotonic() > deadline:
                break
            time.sleep(1)
        if reserved or holds:
            self.fail(f"budget holds left: {reserved} milli-credits reserved, {holds} hold rows")

        # Usage rows: one per metered call of the load answered, but those the killed process held unwritten (at most
        # its last flush interval's) and those a process stopped during an outage reported it could not write.
        answered = [r for r in self.results if r["metered"]]
        rows = int(self.pg.sql(f"SELECT count(*) FROM usage WHERE workspace_id IN ('{self.ws_byok}', '{self.ws_paid}')") or 0)
        killed_recent = [r for r in answered if r["instance"] == "c" and r["generation"] == self.killed_generation
                         and self.killed_at - r["ended"] < 1.0]
        self.figures["usage"] = (rows, len(answered), len(killed_recent), self.unwritten)
        if not (len(answered) - len(killed_recent) - self.unwritten <= rows <= len(answered)):
            self.fail(f"usage rows of the load: {rows}, metered calls answered: {len(answered)} "
                      f"(the killed process's last second: {len(killed_recent)}, reported unwritten: {self.unwritten})")
        # Budget counters equal the ledger.
        spent = int(self.pg.sql(f"SELECT coalesce(sum(spent_milli), 0) FROM budget_spend WHERE workspace_id = '{self.ws_paid}' AND scope = 'platform'") or 0)
        ledger = int(self.pg.sql(f"SELECT coalesce(sum(milli_credits), 0) FROM usage WHERE workspace_id = '{self.ws_paid}' AND source <> 'byok'") or 0)
        self.figures["budget"] = (spent, ledger)
        if spent != ledger:
            self.fail(f"budget spent {spent} milli-credits, ledger {ledger}")

        # The audit chain.
        verify = subprocess.run([f"{self.args.bin}/keywarden", "audit", "verify"], cwd=self.work, env=self.instances[0].env,
                                capture_output=True, text=True, timeout=120)
        if verify.returncode != 0:
            self.fail(f"audit verify: {verify.stdout.strip()} {verify.stderr.strip()}")
        # No data directory made by any of them (every one was given a database URL).
        if os.path.exists(os.path.join(self.work, "keywarden-data")):
            self.fail("a keywarden-data directory was created although a database URL was given")

        # SIGTERM, ordinary.
        for instance in self.instances:
            took = instance.terminate()
            if took is None or took > SIGTERM_BOUND:
                self.fail(f"SIGTERM: instance {instance.name} took {took} s")
            self.figures.setdefault("sigterm", []).append(took)

    def phase_start(self, name):
        starts = [r["started"] for r in self.results if r["phase"] == name]
        return min(starts) if starts else 0

    @staticmethod
    def count_by(rows, field):
        counts = {}
        for row in rows:
            counts[row[field]] = counts.get(row[field], 0) + 1
        return counts

    # Report -----------------------------------------------------------------------------------------------------------

    def report(self):
        with open(os.path.join(self.work, "results.jsonl"), "w") as out:
            for r in self.results:
                out.write(json.dumps(r) + "\n")
        print()
        print("| phase | requests | answered 2xx | 503 store_unavailable | other errors | unanswered | p50 ms | p99 ms | max ms |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        phases = []
        for r in self.results:
            if r["phase"] not in phases:
                phases.append(r["phase"])
        for phase in phases:
            rows = [r for r in self.results if r["phase"] == phase]
            ok = sum(1 for r in rows if isinstance(r["status"], int) and r["status"] < 300)
            unavailable = sum(1 for r in rows if r["status"] == 503)
            other = sum(1 for r in rows if isinstance(r["status"], int) and r["status"] >= 300 and r["status"] != 503)
            unanswered = sum(1 for r in rows if not isinstance(r["status"], int))
            times = sorted((r["ended"] - r["started"]) * 1000 for r in rows if isinstance(r["status"], int))
            pick = lambda p: times[min(len(times) - 1, int(p / 100 * len(times)))] if times else 0
            print(f"| {phase} | {len(rows)} | {ok} | {unavailable} | {other} | {unanswered} | {pick(50):.0f} | {pick(99):.0f} | {times[-1] if times else 0:.0f} |")
        print()
        print("| phase | own key p50 / p99 ms | platform key (budget, rate limit) p50 / p99 ms | management write p50 / p99 ms | management read p50 / p99 ms |")
        print("| --- | --- | --- | --- | --- |")
        for phase in phases:
            cells = []
            for kind in ("gateway_own", "gateway_paid", "write", "read"):
                times = sorted((r["ended"] - r["started"]) * 1000 for r in self.results
                               if r["phase"] == phase and r["kind"] == kind and isinstance(r["status"], int))
                if not times:
                    cells.append("–")
                    continue
                pick = lambda p: times[min(len(times) - 1, int(p / 100 * len(times)))]
                failed = sum(1 for r in self.results if r["phase"] == phase and r["kind"] == kind and r["status"] == 503)
                cells.append(f"{pick(50):.0f} / {pick(99):.0f}" + (f" ({failed} × 503)" if failed else ""))
            print(f"| {phase} | " + " | ".join(cells) + " |")
        print()
        for label, seconds in self.figures.get("recovery", []):
            extra = " (the stopped instance's restart included)" if label == "SIGTERM in outage" else ""
            print(f"recovery after {label}: every instance served a platform-paid call {seconds:.1f} s after the database returned{extra}")
        for label, seconds in self.figures.get("stale", []):
            print(f"after {label}: a key deactivated on one instance was refused by every instance within {seconds:.2f} s")
        ready = self.readiness
        if ready:
            print(f"/readyz: {len(ready)} probes, slowest {max(r['seconds'] for r in ready) * 1000:.0f} ms, "
                  f"503 during the 30 s stop: {sum(1 for r in ready if r['phase'] == 'stopped 30 s' and r['status'] == 503)} "
                  f"of {sum(1 for r in ready if r['phase'] == 'stopped 30 s')}")
        if "usage" in self.figures:
            rows, answered, killed, unwritten = self.figures["usage"]
            print(f"usage: {rows} rows for {answered} metered calls answered by the load; lost with the killed process at most {killed}; "
                  f"reported unwritten at SIGTERM during the outage: {unwritten}")
        if "budget" in self.figures:
            print(f"budget: spent {self.figures['budget'][0]} milli-credits = ledger {self.figures['budget'][1]}")
        print(f"acknowledged writes checked: {self.figures.get('acknowledged_writes', 0)}")
        print(f"SIGTERM during the outage: exited in {self.figures.get('sigterm_outage')} s; "
              f"ordinary SIGTERM: {', '.join(f'{s:.1f}' if s is not None else 'none' for s in self.figures.get('sigterm', []))} s")

    def diagnose(self):
        """What each instance's log said (warnings and errors, the most frequent first), and whether it still runs."""
        for instance in getattr(self, "instances", []):
            try:
                lines = [re.sub(r"^\S+\s", "", line) for line in instance.stderr().splitlines()
                         if " warning " in line or " error " in line or "critical" in line or "Fatal" in line]
            except OSError:
                lines = []
            counts = {}
            for line in lines:
                counts[line[:200]] = counts.get(line[:200], 0) + 1
            code = instance.proc.poll() if instance.proc else None
            print(f"\ninstance {instance.name} (generation {instance.generation}, running: {instance.alive}, exit code: {code}): "
                  f"{len(lines)} warnings and errors")
            try:
                tail = instance.stderr().splitlines()[-15:]
            except OSError:
                tail = []
            for line in tail:
                print(f"  | {line[:300]}")
            for line, count in sorted(counts.items(), key=lambda item: -item[1])[:12]:
                print(f"  {count:6d} × {line}")

    def cleanup(self):
        for instance in getattr(self, "instances", []):
            if instance.alive:
                instance.proc.kill()
        if getattr(self, "mocks", None):
            self.mocks.kill()
        if getattr(self, "pg", None):
            self.pg.stop("immediate")
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/debug")
    parser.add_argument("--pgbin", required=True)
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args()
    args.bin = os.path.abspath(args.bin)
    suite = Suite(args)
    try:
        suite.setup()
        suite.run_faults()
        suite.check()
        suite.report()
    except Exception as error:
        suite.fail(f"the suite stopped: {type(error).__name__}: {error}")
        raise
    finally:
        if suite.failures:
            suite.diagnose()
            args.keep = True
            print(f"\nwork directory kept: {suite.work}")
        suite.cleanup()
    if suite.failures:
        print(f"\nfault suite: {len(suite.failures)} failure(s):")
        for failure in suite.failures:
            print("  -", failure)
        sys.exit(1)
    print("\nfault suite: passed")


if __name__ == "__main__":
    main()
