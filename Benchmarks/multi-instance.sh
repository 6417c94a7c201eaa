#!/usr/bin/env bash
# Two Keywarden instances on one PostgreSQL database against the same mock upstream (run on purpose; not CI):
#   Benchmarks/multi-instance.sh [seconds per measurement, default 15] [trials, default 40]
#
# Prints gateway requests/s (wrk, native face, a workspace key) of one instance and of two instances loaded
# together, and the change-propagation delay "changed through A → used by B's gateway" (p50 / p99 / max over
# the trials: a key deactivated on A until B refuses, activated on A until B serves). PostgreSQL is started for
# the run (Debian's, as the postgres user, like .ci/run) unless KEYWARDEN_BENCH_POSTGRES_URL names a server.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-15}
trials=${2:-40}
work=$(mktemp -d /tmp/kw-multi.XXXXXX)
chmod 755 "$work"
pids=()
pg_stop=""
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  [ -n "$pg_stop" ] && eval "$pg_stop" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk; }
echo "building release binaries…" >&2
swift build -c release --product keywarden >/dev/null
swift build -c release --product keywarden-mock-vendors >/dev/null
bin=.build/release

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 300); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "not up: $1"; exit 1; }

# PostgreSQL: the one given, or one started for this run.
if [ -n "${KEYWARDEN_BENCH_POSTGRES_URL:-}" ]; then
  # A database of this run's own on the given server, dropped at the end.
  name="kwbench_$$_$RANDOM"
  psql -q "$KEYWARDEN_BENCH_POSTGRES_URL" -c "CREATE DATABASE $name" >/dev/null
  pg_stop="psql -q '$KEYWARDEN_BENCH_POSTGRES_URL' -c 'DROP DATABASE IF EXISTS $name WITH (FORCE)'"
  base=${KEYWARDEN_BENCH_POSTGRES_URL%%\?*}
  query=${KEYWARDEN_BENCH_POSTGRES_URL#"$base"}
  url="${base%/*}/$name$query"
else
  pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  pgport=$(free_port)
  as_pg() { if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$work/pg"; runuser -u postgres -- "$@"; else "$@"; fi; }
  mkdir -p "$work/pg"
  as_pg "$pgbin/initdb" -D "$work/pg/data" -U postgres --auth=trust -E UTF8 > /dev/null
  as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -o "-p $pgport -c listen_addresses=127.0.0.1 -c max_connections=200 -k $work/pg" -w start > /dev/null
  pg_stop="as_pg $pgbin/pg_ctl -D $work/pg/data -m fast -w stop"
  url="postgres://postgres@127.0.0.1:$pgport/postgres?sslmode=disable"
fi

"$bin/keywarden-mock-vendors" --vendor openai --no-record > "$work/mock.out" 2>&1 & pids+=($!)
for _ in $(seq 1 100); do grep -q "mock openai" "$work/mock.out" && break; sleep 0.1; done
mock=$(grep "mock openai" "$work/mock.out" | awk '{print $3}')

export KEYWARDEN_UPSTREAM_OPENAI=$mock KEYWARDEN_ALLOW_PRIVATE_TARGETS=1 KEYWARDEN_HEALTH_INTERVAL=0 KEYWARDEN_LOG_LEVEL=warning
export KEYWARDEN_DATABASE_URL=$url
port_a=$(free_port)
"$bin/keywarden" serve --data "$work/a" --port "$port_a" > "$work/a.out" 2> "$work/a.err" & pids+=($!)
wait_http "http://127.0.0.1:$port_a/readyz"
mkdir -p "$work/b" && cp "$work/a/keyring.json" "$work/b/keyring.json"
port_b=$(free_port)
"$bin/keywarden" serve --data "$work/b" --port "$port_b" > "$work/b.out" 2> "$work/b.err" & pids+=($!)
wait_http "http://127.0.0.1:$port_b/readyz"
admin=$(grep -o 'kw_[A-Za-z0-9_-]*' "$work/a.out" | head -1)

api() { curl -s -X "$1" "http://127.0.0.1:$port_a$2" -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' ${3:+-d "$3"}; }
ws=$(api POST /api/v1/workspaces '{"name":"Bench"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
key=$(api POST "/api/v1/workspaces/$ws/keys" '{"provider":"openai","description":"bench","api_key":"sk-bench-workspace-key-0001","role":"primary","active":true}' \
  | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("id") or d["key"]["id"])')
token=$(api POST "/api/v1/workspaces/$ws/tokens" '{"name":"bench","permissions":["gateway.use"]}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["value"])')

body='{"model":"gpt-5.4-mini","messages":[{"role":"user","content":"Say hello to the benchmark."}]}'
cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
LUA
path=/openai/v1/chat/completions
for port in "$port_a" "$port_b"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port$path" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d "$body")
  [ "$code" = 200 ] || { echo "instance on $port answered $code"; exit 1; }
done

echo "measuring one instance…" >&2
wrk -t2 -c64 -d3s -s "$work/post.lua" -H "Authorization: Bearer $token" "http://127.0.0.1:$port_a$path" > /dev/null
wrk -t2 -c64 -d"${seconds}s" -s "$work/post.lua" -H "Authorization: Bearer $token" "http://127.0.0.1:$port_a$path" > "$work/one"
echo "measuring two instances…" >&2
wrk -t1 -c32 -d"${seconds}s" -s "$work/post.lua" -H "Authorization: Bearer $token" "http://127.0.0.1:$port_a$path" > "$work/two-a" &
other=$!
wrk -t1 -c32 -d"${seconds}s" -s "$work/post.lua" -H "Authorization: Bearer $token" "http://127.0.0.1:$port_b$path" > "$work/two-b"
wait "$other"
for f in one two-a two-b; do grep -q "Non-2xx" "$work/$f" && echo "  $f: $(grep Non-2xx "$work/$f")" >&2; done

echo "measuring propagation…" >&2
python3 - "$port_a" "$port_b" "$admin" "$token" "$ws" "$key" "$trials" "$work" <<'PY'
import http.client, json, sys, time
port_a, port_b, admin, token, ws, key, trials, work = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], int(sys.argv[7]), sys.argv[8]
a = http.client.HTTPConnection("127.0.0.1", int(port_a), timeout=10)
b = http.client.HTTPConnection("127.0.0.1", int(port_b), timeout=10)
body = json.dumps({"model": "gpt-5.4-mini", "messages": [{"role": "user", "content": "hi"}]})
def change(action):
    a.request("POST", f"/api/v1/workspaces/{ws}/keys/{key}/{action}", headers={"Authorization": f"Bearer {admin}"})
    response = a.getresponse(); response.read()
    assert response.status == 200, response.status
def served_by_b():
    b.request("POST", "/openai/v1/chat/completions", body=body, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    response = b.getresponse(); response.read()
    return response.status == 200
delays = []
for trial in range(trials):
    action, wanted = ("deactivate", False) if trial % 2 == 0 else ("activate", True)
    change(action)
    changed = time.perf_counter()
    while served_by_b() != wanted:
        if time.perf_counter() - changed > 5:
            break
        time.sleep(0.001)
    delays.append(time.perf_counter() - changed)
    time.sleep(0.05)
if trials % 2 == 1:
    change("activate")
delays.sort()
pick = lambda p: delays[min(len(delays) - 1, int(round(p / 100 * (len(delays) - 1))))] * 1000
def rps(name):
    for line in open(f"{work}/{name}"):
        if line.startswith("Requests/sec"):
            return float(line.split()[1])
    return 0.0
one, two = rps("one"), rps("two-a") + rps("two-b")
print(f"\ngateway req/s, one instance (wrk 64 connections):        {one:8.0f}")
print(f"gateway req/s, two instances (wrk 32 connections each):  {two:8.0f}  ({two / one:.2f}× one)")
print(f"changed through A → used by B: p50 {pick(50):.0f} ms  p99 {pick(99):.0f} ms  max {delays[-1] * 1000:.0f} ms  ({len(delays)} trials)")
PY
echo "(two instances share this machine's cores with wrk, the mock and PostgreSQL: the ratio shows what a second instance costs here, not what a second machine adds)"
