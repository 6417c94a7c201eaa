#!/usr/bin/env bash
# The gateway's cost per call against nginx, side by side in one run (run on purpose; not part of CI):
#   Benchmarks/gateway-cost.sh [seconds per measurement, default 10] [--peers] [--bin DIR] [--floors-only] [--scratch-path DIR]
#                              [--no-streams | --streams-only]
# (--bin: the keywarden binary of another build, e.g. a saved baseline, instead of building this checkout's;
#  --baseline DIR: also a Keywarden from another build (e.g. the last release), measured in the same run right after
#  this build's, so a before/after comparison shares the machine's state;
#  --perf FILE: `perf record -g` of Keywarden during the native face's 16-connection run (another target: KEYWARDEN_BENCH_PERF_TARGET=name),
#  for `perf report -i FILE`;
#  --floors-only: only direct, nginx and the floors (no Keywarden is built or started);
#  --scratch-path DIR: build and find this checkout's binaries in DIR (swift build --scratch-path) instead of .build;
#  --no-streams: skip the second table (streams and memory, about 4 minutes more; 5 with --baseline);
#  --streams-only: only the second table.
#  valgrind 3.19 here stops on the Swift 6 runtime, even with --tool=none, so instruction counts are not offered.)
#
# One static upstream (nginx `return 200` with a fixed chat completion, or a fixed event stream) is called
#   direct, through nginx proxy_pass (the floor of a proxy hop), through Keywarden's native face
#   (/openai/v1/chat/completions, a workspace key; again in a workspace under a budget no call reaches, so each call
#   holds and settles its cost: "keywarden native budget"; the platform's key for a workspace without its own, free and
#   under a budget and rate limits: "keywarden platform key" / "keywarden platform limits"), its OpenAI-compatible face (/v1/chat/completions, routed by
#   model) and a streamed call on the native face; with --peers, through the LiteLLM proxy too. The floors under
#   Keywarden are measured too (`keywarden-bench floors`): a Hummingbird route answering a fixed body, and Hummingbird
#   with AsyncHTTPClient passing the call through and streaming the answer back, with nothing of Keywarden's own; and
#   the same two on plain SwiftNIO (`keywarden-bench nio-floors`: a fixed answer, and a lean forwarder over pooled
#   keep-alive client channels on the server channel's event loop), the floor a forwarder built on NIO could reach.
# For each: p50 / p99 at one connection (wrk --latency), requests/s at 16 connections (wrk), and the CPU time of
# the proxy process per call during the 16-connection run (utime + stime from /proc/PID/stat, divided by the
# requests wrk counted) — stable on a noisy machine, unlike wall-clock figures. Added = proxy − direct.
#
# The second table, streams and memory (the "On the Bench" harness's readings), has processes of its own, so its
# memory figures start clean: a paced upstream (`keywarden-bench paced-upstream`: 64 chat.completion.chunk events, a
# usage chunk and [DONE], one every 20 ms, written from the event loop), an nginx proxy_pass to it (proxy_buffering off)
# and a Keywarden whose OpenAI upstream it is (KEYWARDEN_MAX_CONNECTIONS raised); with --baseline, the baseline's too.
# `keywarden-bench stream-client` times the streams (request sent → first event; gaps between events) directly and
# through each proxy: 20 streams one at a time, every target back to back (added time to first event and added gap
# p50 / p99 over direct), then, target by target, a sweep of concurrent streams (250, 500, 1000, 2000, 4000, their
# starts spread over 1 s; KEYWARDEN_BENCH_SWEEP to change) stopping at the first step with an error or a gap between
# events longer than 10× the pace: "held" is the last clean step (first events are not paced: their p99 at the held
# step is shown, and late ones counted, apart).
# The proxy process's VmRSS (/proc/PID/status; nginx: its worker): idle (after start and one call), sampled every
# second under 30 s of wrk at 16 connections on the plain call (KEYWARDEN_BENCH_STEADY_SECONDS) — its max, and
# "plateau" when the last third's mean is within 5 % of the middle third's — and during the sweep, and recovered
# 60 s after that proxy's last load (bound: ≤ 1.2 × idle + 10 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=10
peers=0
bin=
perf_out=
baseline=
floors_only=0
streams=1
streams_only=0
scratch=
kw_port= kw_pid= token= budget_token= platform_token= limits_token=
while [ $# -gt 0 ]; do
  case $1 in
    --peers) peers=1;; --bin) bin=$2; shift;; --baseline) baseline=$2; shift;; --perf) perf_out=$2; shift;;
    --floors-only) floors_only=1;; --scratch-path) scratch=$2; shift;;
    --no-streams) streams=0;; --streams-only) streams_only=1;; *) seconds=$1;;
  esac
  shift
done
# Thousands of concurrent streams take as many descriptors in each process (twice in a proxy).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
work=$(mktemp -d /tmp/kw-cost.XXXXXX)
chmod 755 "$work"
pids=()
# TERM first: an nginx master killed with -9 leaves its worker running (and listening) after the script.
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  sleep 1
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

command -v nginx >/dev/null && command -v wrk >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx wrk; }
echo "building the release binaries…" >&2
build_args=(-c release)
[ -n "$scratch" ] && build_args+=(--scratch-path "$scratch")
release_dir=${scratch:-.build}/release
swift build "${build_args[@]}" --product keywarden-bench >/dev/null
[ "$floors_only" = 1 ] || [ -n "$bin" ] || { swift build "${build_args[@]}" --product keywarden >/dev/null; bin=$release_dir; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 300); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "not up: $1"; exit 1; }
ticks=$(getconf CLK_TCK)
cpu_seconds() { awk -v t="$ticks" '{print ($14 + $15) / t}' "/proc/$1/stat"; }

# 1. The upstream and the nginx proxy, one worker each.
up_port=$(free_port)
px_port=$(free_port)
completion='{"id":"chatcmpl-bench","object":"chat.completion","created":1,"model":"gpt-5.4-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello, benchmark."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":4,"total_tokens":16}}'
events='data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"}}]}\n\ndata: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{}, "finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":1,"total_tokens":13}}\n\ndata: [DONE]\n\n'
for role in upstream proxy; do
  mkdir -p "$work/$role/logs" "$work/$role/tmp"
done
cat > "$work/upstream/nginx.conf" <<CONF
worker_processes 1;
pid $work/upstream/nginx.pid;
error_log $work/upstream/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/upstream/tmp; proxy_temp_path $work/upstream/tmp; fastcgi_temp_path $work/upstream/tmp;
  uwsgi_temp_path $work/upstream/tmp; scgi_temp_path $work/upstream/tmp;
  server {
    listen 127.0.0.1:$up_port;
    keepalive_requests 1000000;
    location /v1/chat/completions {
      if (\$http_x_bench_stream) { rewrite ^ /__stream last; }
      default_type application/json;
      return 200 '$completion';
    }
    location = /__stream {
      internal;
      default_type text/event-stream;
      return 200 '$events';
    }
  }
}
CONF
cat > "$work/proxy/nginx.conf" <<CONF
worker_processes 1;
pid $work/proxy/nginx.pid;
error_log $work/proxy/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/proxy/tmp; proxy_temp_path $work/proxy/tmp; fastcgi_temp_path $work/proxy/tmp;
  uwsgi_temp_path $work/proxy/tmp; scgi_temp_path $work/proxy/tmp;
  upstream up { server 127.0.0.1:$up_port; keepalive 128; }
  server {
    listen 127.0.0.1:$px_port;
    keepalive_requests 1000000;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }
  }
}
CONF
nginx -p "$work/upstream" -c "$work/upstream/nginx.conf" -g 'daemon off;' & pids+=($!)
nginx -p "$work/proxy" -c "$work/proxy/nginx.conf" -g 'daemon off;' & pids+=($!)
proxy_master=$!
wait_http "http://127.0.0.1:$up_port/v1/chat/completions"
wait_http "http://127.0.0.1:$px_port/v1/chat/completions"
proxy_worker=$(pgrep -P "$proxy_master" | head -1)

# 2. Keywarden: a workspace with its own OpenAI key, a service token; the upstream stands in for OpenAI.
#    start_keywarden BIN NAME [UPSTREAM_PORT] sets kw_port, kw_pid and token (with an upstream port: that upstream, and
#    room for thousands of client connections).
start_keywarden() {
  kw_port=$(free_port)
  KEYWARDEN_UPSTREAM_OPENAI="http://127.0.0.1:${3:-$up_port}" KEYWARDEN_ALLOW_PRIVATE_TARGETS=1 KEYWARDEN_HEALTH_INTERVAL=0 KEYWARDEN_LOG_LEVEL=warning \
    KEYWARDEN_MAX_CONNECTIONS=${3:+8192} \
    "$1/keywarden" serve --data "$work/$2" --port "$kw_port" > "$work/$2.out" 2> "$work/$2.err" & pids+=($!)
  kw_pid=$!
  wait_http "http://127.0.0.1:$kw_port/readyz"
  local admin ws
  admin=$(grep -o 'kw_[A-Za-z0-9_-]*' "$work/$2.out" | head -1)
  api() { curl -s -X "$1" "http://127.0.0.1:$kw_port$2" -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' ${3:+-d "$3"}; }
  ws=$(api POST /api/v1/workspaces '{"name":"Bench"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  api POST "/api/v1/workspaces/$ws/keys" '{"provider":"openai","description":"bench","api_key":"sk-bench-workspace-key-0001","role":"primary","active":true}' >/dev/null
  token=$(api POST "/api/v1/workspaces/$ws/tokens" '{"name":"bench","permissions":["gateway.use"]}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["value"])')
  # The same, under a budget no call reaches: every call holds and settles its cost (what a budget check costs).
  local capped
  capped=$(api POST /api/v1/workspaces '{"name":"Bench budget"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  api POST "/api/v1/workspaces/$capped/keys" '{"provider":"openai","description":"bench","api_key":"sk-bench-workspace-key-0002","role":"primary","active":true}' >/dev/null
  api PATCH "/api/v1/workspaces/$capped/budget" '{"byok_limit_credits":1000000000000}' >/dev/null 2>&1 || true
  budget_token=$(api POST "/api/v1/workspaces/$capped/tokens" '{"name":"bench","permissions":["gateway.use"]}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["value"])')
  # Two workspaces without keys of their own, served by the platform's key: one free, one under a budget and rate
  # limits no call reaches (what the checks on a platform-paid call cost).
  api PUT /api/v1/platform/providers/openai '{"api_key":"sk-bench-platform-key-0001"}' >/dev/null
  api POST /api/v1/platform/providers/openai/activate >/dev/null
  local shared limited
  shared=$(api POST /api/v1/workspaces '{"name":"Bench platform"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  platform_token=$(api POST "/api/v1/workspaces/$shared/tokens" '{"name":"bench","permissions":["gateway.use"]}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["value"])')
  limited=$(api POST /api/v1/workspaces '{"name":"Bench limits"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  api PATCH "/api/v1/workspaces/$limited/budget" '{"platform_limit_credits":1000000000000}' >/dev/null 2>&1 || true
  api PATCH "/api/v1/workspaces/$limited/rate-limits" '{"requests_per_minute":1000000000,"tokens_per_minute":1000000000}' >/dev/null 2>&1 || true
  limits_token=$(api POST "/api/v1/workspaces/$limited/tokens" '{"name":"bench","permissions":["gateway.use"]}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["value"])')
}
if [ "$floors_only" = 0 ]; then
  if [ -n "$baseline" ]; then
    start_keywarden "$baseline" kw-baseline
    base_port=$kw_port base_pid=$kw_pid base_token=$token
  fi
  start_keywarden "$bin" kw
fi

# 3. The floors: Hummingbird alone, and Hummingbird with AsyncHTTPClient passing the call through; the same two on
#    plain SwiftNIO (a separate process, so each floor's CPU is its own).
"$release_dir/keywarden-bench" floors --upstream "http://127.0.0.1:$up_port" > "$work/floors.out" 2>&1 & pids+=($!)
floors_pid=$!
"$release_dir/keywarden-bench" nio-floors --upstream "http://127.0.0.1:$up_port" > "$work/nio-floors.out" 2>&1 & pids+=($!)
nio_pid=$!
for _ in $(seq 1 100); do grep -q listening "$work/floors.out" 2>/dev/null && grep -q listening "$work/nio-floors.out" 2>/dev/null && break; sleep 0.1; done
floors_port=$(awk '/listening/ {print $2}' "$work/floors.out")
nio_port=$(awk '/listening/ {print $2}' "$work/nio-floors.out")

# 4. LiteLLM, with --peers.
if [ "$peers" = 1 ]; then
  venv=Benchmarks/.venv-litellm
  [ -x "$venv/bin/litellm" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet --disable-pip-version-check 'litellm[proxy]'; }
  ll_port=$(free_port)
  cat > "$work/litellm.yaml" <<CONF
model_list:
  - model_name: gpt-5.4-mini
    litellm_params: { model: openai/gpt-5.4-mini, api_base: "http://127.0.0.1:$up_port/v1", api_key: sk-bench-litellm-0001 }
litellm_settings: { drop_params: true, set_verbose: false }
general_settings: { master_key: sk-litellm-master-0001 }
CONF
  LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_LOG=ERROR "$venv/bin/litellm" --config "$work/litellm.yaml" --host 127.0.0.1 --port "$ll_port" > "$work/litellm.log" 2>&1 & pids+=($!)
  ll_pid=$!
  for _ in $(seq 1 600); do curl -s -o /dev/null "http://127.0.0.1:$ll_port/health/liveliness" && break; sleep 0.2; done
fi

plain='{"model":"gpt-5.4-mini","messages":[{"role":"user","content":"Say hello to the benchmark."}]}'
streamed='{"model":"gpt-5.4-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say hello to the benchmark."}]}'
# name | url | authorization | body | extra header | pid whose CPU is the proxy's
targets=(
  "direct|http://127.0.0.1:$up_port/v1/chat/completions|Bearer sk-direct|$plain||"
  "nginx|http://127.0.0.1:$px_port/v1/chat/completions|Bearer sk-direct|$plain||$proxy_worker"
  "hummingbird fixed answer|http://127.0.0.1:$floors_port/hello|Bearer sk-direct|$plain||$floors_pid"
  "hummingbird + AHC pass|http://127.0.0.1:$floors_port/pass/v1/chat/completions|Bearer sk-direct|$plain||$floors_pid"
  "nio fixed answer|http://127.0.0.1:$nio_port/hello|Bearer sk-direct|$plain||$nio_pid"
  "nio pass|http://127.0.0.1:$nio_port/nio/v1/chat/completions|Bearer sk-direct|$plain||$nio_pid"
  "keywarden native|http://127.0.0.1:$kw_port/openai/v1/chat/completions|Bearer $token|$plain||$kw_pid"
  "keywarden openai face|http://127.0.0.1:$kw_port/v1/chat/completions|Bearer $token|$plain||$kw_pid"
  "keywarden native budget|http://127.0.0.1:$kw_port/openai/v1/chat/completions|Bearer $budget_token|$plain||$kw_pid"
  "keywarden platform key|http://127.0.0.1:$kw_port/openai/v1/chat/completions|Bearer $platform_token|$plain||$kw_pid"
  "keywarden platform limits|http://127.0.0.1:$kw_port/openai/v1/chat/completions|Bearer $limits_token|$plain||$kw_pid"
  "direct streamed|http://127.0.0.1:$up_port/v1/chat/completions|Bearer sk-direct|$streamed|X-Bench-Stream: 1|"
  "nio pass streamed|http://127.0.0.1:$nio_port/nio/v1/chat/completions|Bearer sk-direct|$streamed|X-Bench-Stream: 1|$nio_pid"
  "keywarden streamed|http://127.0.0.1:$kw_port/openai/v1/chat/completions|Bearer $token|$streamed|X-Bench-Stream: 1|$kw_pid"
)
if [ "$floors_only" = 1 ]; then
  kept=()
  for target in "${targets[@]}"; do case $target in keywarden*|baseline*) ;; *) kept+=("$target");; esac; done
  targets=("${kept[@]}")
fi
[ -n "$baseline" ] && [ "$floors_only" = 0 ] && targets+=(
  "baseline native|http://127.0.0.1:$base_port/openai/v1/chat/completions|Bearer $base_token|$plain||$base_pid"
  "baseline openai face|http://127.0.0.1:$base_port/v1/chat/completions|Bearer $base_token|$plain||$base_pid"
  "baseline streamed|http://127.0.0.1:$base_port/openai/v1/chat/completions|Bearer $base_token|$streamed|X-Bench-Stream: 1|$base_pid"
)
[ "$peers" = 1 ] && targets+=("litellm|http://127.0.0.1:$ll_port/v1/chat/completions|Bearer sk-litellm-master-0001|$plain||$ll_pid")

results="$work/results.tsv"
: > "$results"
index=0
[ "$streams_only" = 1 ] && targets=()
for target in "${targets[@]}"; do
  IFS='|' read -r name url auth body extra pid <<< "$target"
  index=$((index + 1))
  printf 'wrk.method = "POST"\nwrk.body = [[%s]]\nwrk.headers["Content-Type"] = "application/json"\n' "$body" > "$work/post$index.lua"
  headers=(-H "Authorization: $auth")
  [ -n "$extra" ] && headers+=(-H "$extra")
  code=$(curl -s -o "$work/check$index" -w '%{http_code}' -X POST "$url" "${headers[@]}" -H 'Content-Type: application/json' -d "$body")
  [ "$code" = 200 ] || { echo "$name answered $code: $(head -c 300 "$work/check$index")"; exit 1; }
  echo "measuring $name…" >&2
  wrk -t1 -c4 -d2s -s "$work/post$index.lua" "${headers[@]}" "$url" > /dev/null
  wrk -t1 -c1 -d"${seconds}s" --latency -s "$work/post$index.lua" "${headers[@]}" "$url" > "$work/one$index"
  before=$([ -n "$pid" ] && cpu_seconds "$pid" || echo 0)
  recorder=
  if [ -n "$perf_out" ] && [ "$name" = "${KEYWARDEN_BENCH_PERF_TARGET:-keywarden native}" ]; then
    perf record -F 999 -g -p "$pid" -o "$perf_out" > /dev/null 2>&1 & recorder=$!
  fi
  wrk -t2 -c16 -d"${seconds}s" -s "$work/post$index.lua" "${headers[@]}" "$url" > "$work/sixteen$index"
  [ -n "$recorder" ] && { kill -INT "$recorder"; wait "$recorder" || true; }
  after=$([ -n "$pid" ] && cpu_seconds "$pid" || echo 0)
  grep -q "Non-2xx" "$work/sixteen$index" && echo "  $name: $(grep Non-2xx "$work/sixteen$index")" >&2
  python3 - "$name" "$work/one$index" "$work/sixteen$index" "$before" "$after" >> "$results" <<'PY'
import re, sys
name, one, sixteen, before, after = sys.argv[1], open(sys.argv[2]).read(), open(sys.argv[3]).read(), float(sys.argv[4]), float(sys.argv[5])
def micros(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]
p50 = micros(re.search(r"^\s+50%\s+(\S+)", one, re.M).group(1))
p99 = micros(re.search(r"^\s+99%\s+(\S+)", one, re.M).group(1))
requests = int(re.search(r"(\d+) requests in", sixteen).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", sixteen).group(1))
cpu = (after - before) / requests * 1e6 if after > before else float("nan")
print(f"{name}\t{p50}\t{p99}\t{cpu}\t{rps}")
PY
done

[ "$streams_only" = 1 ] || python3 - "$results" <<'PY'
import math, sys
rows = {}
for line in open(sys.argv[1]):
    name, p50, p99, cpu, rps = line.rstrip("\n").split("\t")
    rows[name] = (float(p50), float(p99), float(cpu), float(rps))
def base(name): return rows["direct streamed"] if "streamed" in name else rows["direct"]
print(f"\n{'':26} {'p50 µs':>8} {'p99 µs':>8} {'+p50 µs':>8} {'+p99 µs':>8} {'CPU µs/call':>12} {'req/s @16':>10}")
for name, (p50, p99, cpu, rps) in rows.items():
    b = base(name)
    cpu_text = "" if math.isnan(cpu) else f"{cpu:12.1f}"
    print(f"{name:26} {p50:8.0f} {p99:8.0f} {p50 - b[0]:8.0f} {p99 - b[1]:8.0f} {cpu_text:>12} {rps:10.0f}")
nginx = rows["nginx"]
for name in [n for n in rows if n.startswith(("keywarden", "hummingbird", "nio", "baseline"))]:
    p50, p99, cpu, rps = rows[name]
    b = base(name)
    print(f"\n{name}: CPU {cpu / nginx[2]:.1f}× nginx's (goal ≤ 5×), added p50 {p50 - b[0] - (nginx[0] - rows['direct'][0]):.0f} µs and p99 "
          f"{p99 - b[1] - (nginx[1] - rows['direct'][1]):.0f} µs over nginx's (goals ≤ 100 / ≤ 500), req/s {rps / nginx[3]:.2f}× nginx's (goal ≥ 0.20)")
PY


# 5. Streams and memory: a paced upstream, an nginx proxy and a Keywarden of their own (see the header).
[ "$streams" = 1 ] || exit 0
sweep=${KEYWARDEN_BENCH_SWEEP:-250 500 1000 2000 4000}
steady=${KEYWARDEN_BENCH_STEADY_SECONDS:-30}
sequential=${KEYWARDEN_BENCH_SEQUENTIAL:-20}
bench_bin="$release_dir/keywarden-bench"
"$bench_bin" paced-upstream --events 64 --pace-ms 20 > "$work/paced.out" 2>&1 & pids+=($!)
for _ in $(seq 1 100); do grep -q listening "$work/paced.out" 2>/dev/null && break; sleep 0.1; done
paced_port=$(awk '/listening/ {print $2}' "$work/paced.out")
sp_port=$(free_port)
mkdir -p "$work/sproxy/logs" "$work/sproxy/tmp"
cat > "$work/sproxy/nginx.conf" <<CONF
worker_processes 1;
worker_rlimit_nofile 20000;
pid $work/sproxy/nginx.pid;
error_log $work/sproxy/logs/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $work/sproxy/tmp; proxy_temp_path $work/sproxy/tmp; fastcgi_temp_path $work/sproxy/tmp;
  uwsgi_temp_path $work/sproxy/tmp; scgi_temp_path $work/sproxy/tmp;
  upstream paced { server 127.0.0.1:$paced_port; keepalive 128; }
  server {
    listen 127.0.0.1:$sp_port backlog=4096;
    keepalive_requests 1000000;
    location / { proxy_pass http://paced; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }
  }
}
CONF
nginx -p "$work/sproxy" -c "$work/sproxy/nginx.conf" -g 'daemon off;' & pids+=($!)
sproxy_master=$!
wait_http "http://127.0.0.1:$sp_port/v1/chat/completions"
sproxy_worker=$(pgrep -P "$sproxy_master" | head -1)
# name | chat completions url | authorization | pid whose memory is the proxy's
stream_targets=("nginx|http://127.0.0.1:$sp_port/v1/chat/completions|Bearer sk-direct|$sproxy_worker")
if [ "$floors_only" = 0 ]; then
  start_keywarden "$bin" kw-streams "$paced_port"
  stream_targets+=("keywarden native|http://127.0.0.1:$kw_port/openai/v1/chat/completions|Bearer $token|$kw_pid")
  if [ -n "$baseline" ]; then
    start_keywarden "$baseline" kw-baseline-streams "$paced_port"
    stream_targets+=("baseline native|http://127.0.0.1:$kw_port/openai/v1/chat/completions|Bearer $token|$kw_pid")
  fi
fi
stream_targets+=("direct|http://127.0.0.1:$paced_port/v1/chat/completions|Bearer sk-direct|")

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
sample_rss() { while kill -0 "$1" 2>/dev/null; do rss_kb "$1" >> "$2"; sleep 1; done; }
slug() { echo "${1// /-}"; }
printf 'wrk.method = "POST"\nwrk.body = [[%s]]\nwrk.headers["Content-Type"] = "application/json"\n' "$plain" > "$work/plain.lua"
# Idle: after start and one call.
for target in "${stream_targets[@]}"; do
  IFS='|' read -r name url auth pid <<< "$target"
  code=$(curl -s -o "$work/pcheck" -w '%{http_code}' -X POST "$url" -H "Authorization: $auth" -H 'Content-Type: application/json' -d "$plain")
  [ "$code" = 200 ] || { echo "$name (paced upstream) answered $code: $(head -c 300 "$work/pcheck")"; exit 1; }
  if [ -n "$pid" ]; then rss_kb "$pid" > "$work/rss-$(slug "$name")-idle"; fi
done
# One stream at a time through every target back to back, so the added figures compare runs seconds apart.
for target in "${stream_targets[@]}"; do
  IFS='|' read -r name url auth pid <<< "$target"
  s=$(slug "$name")
  code=$(curl -sN -o "$work/scheck-$s" -w '%{http_code}' -X POST "$url" -H "Authorization: $auth" -H 'Content-Type: application/json' -d "$streamed")
  [ "$code" = 200 ] && grep -q '\[DONE\]' "$work/scheck-$s" || { echo "$name streamed answered $code: $(head -c 300 "$work/scheck-$s")"; exit 1; }
  echo "$sequential streams one at a time through $name…" >&2
  "$bench_bin" stream-client --url "$url" --header "Authorization: $auth" --concurrency 1 \
    --streams-per-connection "$sequential" > "$work/stream-$s-sequential.json"
done
# Then each proxy's memory under wrk and during the concurrent streams (direct's last, while the proxies' memory settles).
for target in "${stream_targets[@]}"; do
  IFS='|' read -r name url auth pid <<< "$target"
  s=$(slug "$name")
  if [ -n "$pid" ]; then
    echo "memory of $name under ${steady} s of wrk at 16 connections…" >&2
    sample_rss "$pid" "$work/rss-$s-steady" & sampler=$!
    wrk -t2 -c16 -d"${steady}s" -s "$work/plain.lua" -H "Authorization: $auth" "$url" > "$work/steady-$s"
    kill "$sampler"; wait "$sampler" 2>/dev/null || true
    sample_rss "$pid" "$work/rss-$s-streams" & sampler=$!
  fi
  echo "concurrent streams through $name ($sweep)…" >&2
  for n in $sweep; do
    "$bench_bin" stream-client --url "$url" --header "Authorization: $auth" --concurrency "$n" --ramp-ms 1000 --threads 2 \
      > "$work/stream-$s-sweep-$n.json"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["errors"] == 0 and d["late"] == 0 else 1)' \
      "$work/stream-$s-sweep-$n.json" || break
  done
  if [ -n "$pid" ]; then
    kill "$sampler"; wait "$sampler" 2>/dev/null || true
    date +%s > "$work/rss-$s-end"
  fi
done
# Recovered: 60 s after each proxy's last load.
for target in "${stream_targets[@]}"; do
  IFS='|' read -r name url auth pid <<< "$target"
  [ -n "$pid" ] || continue
  s=$(slug "$name")
  left=$(( $(cat "$work/rss-$s-end") + 60 - $(date +%s) ))
  if [ "$left" -gt 0 ]; then echo "waiting ${left} s for $name's memory to settle…" >&2; sleep "$left"; fi
  rss_kb "$pid" > "$work/rss-$s-recovered"
done

python3 - "$work" "$sweep" "${stream_targets[@]}" <<'PY'
import json, os, sys
work, sweep, targets = sys.argv[1], [int(n) for n in sys.argv[2].split()], [t.split("|") for t in sys.argv[3:]]
def slug(name): return name.replace(" ", "-")
def load(path): return json.load(open(path)) if os.path.exists(path) else None
rows = {}
for name, _, _, pid in targets:
    s = slug(name)
    sequential = load(f"{work}/stream-{s}-sequential.json")
    held, failed = 0, None
    for n in sweep:
        step = load(f"{work}/stream-{s}-sweep-{n}.json")
        if step is None: break
        if step["errors"] == 0 and step["late"] == 0: held = n
        else:
            failed = step
            break
    rows[name] = (sequential, held, failed, load(f"{work}/stream-{s}-sweep-{held}.json") if held else None)
direct = rows["direct"][0]
print(f"\nstreams: 64 events + usage + [DONE], paced 20 ms; {direct['streams']} one at a time, then concurrent (held = most concurrent with no error and no gap > 200 ms)")
print(f"{'':18} {'TTFE p50':>9} {'TTFE p99':>9} {'gap p50':>9} {'gap p99':>9} {'+TTFE p50':>10} {'+TTFE p99':>10} {'+gap p50':>9} {'+gap p99':>9} {'err/late':>9} {'held':>6} {'its TTFE p99':>13}  first failure")
for name, (q, held, failed, kept) in rows.items():
    fail = "none up to " + str(sweep[-1]) if failed is None else (
        f"{failed['concurrency']}: {failed['errors']} errors, {failed['late']} gaps > 200 ms (max {failed['gap_max_us'] / 1000:.0f} ms), "
        f"TTFE p99 {failed['ttfe_p99_us'] / 1000:.0f} ms")
    kept_ttfe = f"{kept['ttfe_p99_us'] / 1000:10.1f} ms" if kept else f"{'-':>13}"
    print(f"{name:18} {q['ttfe_p50_us']:9.0f} {q['ttfe_p99_us']:9.0f} {q['gap_p50_us']:9.0f} {q['gap_p99_us']:9.0f} "
          f"{q['ttfe_p50_us'] - direct['ttfe_p50_us']:10.0f} {q['ttfe_p99_us'] - direct['ttfe_p99_us']:10.0f} "
          f"{q['gap_p50_us'] - direct['gap_p50_us']:9.0f} {q['gap_p99_us'] - direct['gap_p99_us']:9.0f} "
          f"{str(q['errors']) + '/' + str(q['late']):>9} {held:6} {kept_ttfe}  {fail}")
print("(µs; + = over direct, one stream at a time; err/late: errors / gaps > 200 ms of those; held: concurrent streams)")

def samples(path): return [int(line) / 1024 for line in open(path) if line.strip()] if os.path.exists(path) else []
print(f"\nmemory (VmRSS MB of the proxy process; nginx: its worker)")
print(f"{'':18} {'idle':>7} {'wrk max':>8} {'plateau':>14} {'streams max':>12} {'recovered':>10} {'bound':>7}")
memory = {}
for name, _, _, pid in targets:
    if not pid: continue
    s = slug(name)
    idle = samples(f"{work}/rss-{s}-idle")[0]
    steady, streams, recovered = samples(f"{work}/rss-{s}-steady"), samples(f"{work}/rss-{s}-streams"), samples(f"{work}/rss-{s}-recovered")[0]
    third = len(steady) // 3
    middle, last = steady[third:2 * third], steady[2 * third:]
    drift = (sum(last) / len(last)) / (sum(middle) / len(middle)) - 1 if middle and last else float("nan")
    bound = 1.2 * idle + 10
    memory[name] = (drift, recovered <= bound)
    print(f"{name:18} {idle:7.1f} {max(steady, default=0):8.1f} {('yes' if abs(drift) <= 0.05 else 'no') + f' ({drift * 100:+.1f} %)':>14} "
          f"{max(streams, default=0):12.1f} {recovered:10.1f} {bound:7.1f}")
print("(plateau: the last third of the wrk samples within 5 % of the middle third; bound: recovered ≤ 1.2 × idle + 10 MB)")

for name, (q, held, failed, kept) in rows.items():
    if name == "direct": continue
    line = (f"\n{name}: added time to first event {q['ttfe_p50_us'] - direct['ttfe_p50_us']:.0f} µs (goal ≤ 200), added gap p99 "
            f"{q['gap_p99_us'] - direct['gap_p99_us']:.0f} µs (goal ≤ 100); concurrent streams held {held} (goal ≥ 2000; direct held {rows['direct'][1]})")
    if name in memory:
        drift, within = memory[name]
        line += f"; RSS {'plateaus' if abs(drift) <= 0.05 else 'does not plateau'} ({drift * 100:+.1f} %), recovered {'within' if within else 'over'} the bound"
    print(line)
PY
