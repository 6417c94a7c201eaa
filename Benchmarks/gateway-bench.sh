#!/usr/bin/env bash
# The gateway against a proxy floor and a peer, in one run on loopback (run on purpose; not part of CI):
#   Benchmarks/gateway-bench.sh [seconds per measurement, default 20]
#
# One fast mock upstream (keywarden-mock-vendors, release build, a fixed chat completion, recording off) is
# measured directly, through nginx proxy_pass (the floor for a proxy hop), through Keywarden (release build,
# native face /openai/v1/chat/completions with a workspace key: token lookup, resolution, key opened from the
# vault, injection, streaming pass-through, metering) and through the LiteLLM proxy (OpenAI-compatible
# api_base to the same mock). Each is loaded
#   - at a fixed 1,000 requests/s with `hey` (wrk cannot pace requests; wrk2 is not in Debian), p50 / p99;
#   - at saturation with `wrk` (64 connections, 2 threads), requests/s.
# Added latency = proxy - direct at the same percentile. Prints a table and the ratios the issue sets goals on.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
root=$PWD
work=$(mktemp -d /tmp/kw-bench.XXXXXX)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

command -v nginx >/dev/null && command -v wrk >/dev/null && command -v hey >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx wrk hey; }
venv=Benchmarks/.venv-litellm
[ -x "$venv/bin/litellm" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet --disable-pip-version-check 'litellm[proxy]'; }

echo "building release binaries (.build-release)…"
swift build -c release --scratch-path .build-release --product keywarden >/dev/null
swift build -c release --scratch-path .build-release --product keywarden-mock-vendors >/dev/null
bin=.build-release/release

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 300); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "not up: $1"; exit 1; }

# 1. The mock upstream.
"$bin/keywarden-mock-vendors" --vendor openai --no-record > "$work/mock.out" 2>&1 & pids+=($!)
for _ in $(seq 1 100); do grep -q "mock openai" "$work/mock.out" && break; sleep 0.1; done
mock=$(grep "mock openai" "$work/mock.out" | awk '{print $3}')
wait_http "$mock/__mock/requests"

# 2. nginx proxy_pass with upstream keep-alive.
nginx_port=$(free_port)
mkdir -p "$work/nginx/logs" "$work/nginx/tmp"
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/tmp; proxy_temp_path $work/nginx/tmp; fastcgi_temp_path $work/nginx/tmp;
  uwsgi_temp_path $work/nginx/tmp; scgi_temp_path $work/nginx/tmp;
  upstream mock { server ${mock#http://}; keepalive 128; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / { proxy_pass http://mock; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }
  }
}
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' & pids+=($!)
wait_http "http://127.0.0.1:$nginx_port/__mock/requests"

# 3. Keywarden: a workspace with its own OpenAI key, a service token.
kw_port=$(free_port)
export KEYWARDEN_UPSTREAM_OPENAI=$mock KEYWARDEN_ALLOW_PRIVATE_TARGETS=1 KEYWARDEN_HEALTH_INTERVAL=0 KEYWARDEN_LOG_LEVEL=warning
"$bin/keywarden" serve --data "$work/kw" --port "$kw_port" > "$work/kw.out" 2> "$work/kw.err" & pids+=($!)
wait_http "http://127.0.0.1:$kw_port/healthz"
admin=$(grep -o 'kw_[A-Za-z0-9_-]*' "$work/kw.out" | head -1)
api() { curl -s -X "$1" "http://127.0.0.1:$kw_port$2" -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' ${3:+-d "$3"}; }
ws=$(api POST /api/v1/workspaces '{"name":"Bench"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
api POST "/api/v1/workspaces/$ws/keys" '{"provider":"openai","description":"bench","api_key":"sk-bench-workspace-key-0001","role":"primary","active":true}' >/dev/null
token=$(api POST "/api/v1/workspaces/$ws/tokens" '{"name":"bench","permissions":["gateway.use"]}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["value"])')

# 4. LiteLLM proxy to the same mock.
ll_port=$(free_port)
cat > "$work/litellm.yaml" <<CONF
model_list:
  - model_name: gpt-5.4-mini
    litellm_params: { model: openai/gpt-5.4-mini, api_base: "$mock/v1", api_key: sk-bench-litellm-0001 }
litellm_settings: { drop_params: true, set_verbose: false }
general_settings: { master_key: sk-litellm-master-0001 }
CONF
LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_LOG=ERROR "$venv/bin/litellm" --config "$work/litellm.yaml" --host 127.0.0.1 --port "$ll_port" > "$work/litellm.log" 2>&1 & pids+=($!)
for _ in $(seq 1 600); do curl -s -o /dev/null "http://127.0.0.1:$ll_port/health/liveliness" && break; sleep 0.2; done

body='{"model":"gpt-5.4-mini","messages":[{"role":"user","content":"Say hello to the benchmark."}]}'
declare -A url=(
  [direct]="$mock/v1/chat/completions"
  [nginx]="http://127.0.0.1:$nginx_port/v1/chat/completions"
  [keywarden]="http://127.0.0.1:$kw_port/openai/v1/chat/completions"
  [litellm]="http://127.0.0.1:$ll_port/v1/chat/completions"
)
auth_for() { case $1 in keywarden) echo "Bearer $token";; litellm) echo "Bearer sk-litellm-master-0001";; *) echo "Bearer sk-bench-direct-0001";; esac; }
for name in direct nginx keywarden litellm; do
  code=$(curl -s -o "$work/check.$name" -w '%{http_code}' -X POST "${url[$name]}" -H "Authorization: $(auth_for $name)" -H 'Content-Type: application/json' -d "$body")
  [ "$code" = 200 ] || { echo "$name answered $code: $(head -c 300 "$work/check.$name")"; exit 1; }
done

cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
LUA

declare -A p50 p99 rps ok
for name in direct nginx keywarden litellm; do
  echo "measuring $name…" >&2
  # Warm up, then 1,000 requests/s for $seconds s: 50 workers × 20 requests/s each.
  hey -z 3s -c 20 -m POST -T application/json -H "Authorization: $(auth_for $name)" -d "$body" "${url[$name]}" >/dev/null
  hey -z "${seconds}s" -c 50 -q 20 -m POST -T application/json -H "Authorization: $(auth_for $name)" -d "$body" "${url[$name]}" > "$work/hey.$name"
  p50[$name]=$(awk '/ 50% in/ {print $3 * 1000}' "$work/hey.$name")
  p99[$name]=$(awk '/ 99% in/ {print $3 * 1000}' "$work/hey.$name")
  ok[$name]=$(awk '/\[200\]/ {print $2}' "$work/hey.$name")
  wrk -t2 -c64 -d"${seconds}s" -s "$work/post.lua" -H "Authorization: $(auth_for $name)" "${url[$name]}" > "$work/wrk.$name"
  rps[$name]=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.$name")
  grep -q "Non-2xx" "$work/wrk.$name" && echo "  $name: $(grep Non-2xx "$work/wrk.$name")" >&2
done

python3 - "$seconds" <<PY
import sys
p50 = {"direct": ${p50[direct]}, "nginx": ${p50[nginx]}, "keywarden": ${p50[keywarden]}, "litellm": ${p50[litellm]}}
p99 = {"direct": ${p99[direct]}, "nginx": ${p99[nginx]}, "keywarden": ${p99[keywarden]}, "litellm": ${p99[litellm]}}
rps = {"direct": ${rps[direct]}, "nginx": ${rps[nginx]}, "keywarden": ${rps[keywarden]}, "litellm": ${rps[litellm]}}
ok = {"direct": "${ok[direct]}", "nginx": "${ok[nginx]}", "keywarden": "${ok[keywarden]}", "litellm": "${ok[litellm]}"}
print(f"\n{'':10} {'p50 ms':>8} {'p99 ms':>8} {'+p50 ms':>8} {'+p99 ms':>8} {'200s @1k/s':>11} {'max req/s':>10}")
for name in ["direct", "nginx", "keywarden", "litellm"]:
    print(f"{name:10} {p50[name]:8.3f} {p99[name]:8.3f} {p50[name]-p50['direct']:8.3f} {p99[name]-p99['direct']:8.3f} {ok[name]:>11} {rps[name]:10.0f}")
add = lambda n, p: (p[n] - p["direct"])
def ratio(a, b): return float("inf") if b <= 0 else a / b
print(f"\nkeywarden added p50 / nginx added p50 = {ratio(add('keywarden', p50), add('nginx', p50)):.2f}  (goal <= 1.5)")
print(f"keywarden added p99 at 1,000 req/s     = {add('keywarden', p99):.3f} ms  (goal < 1 ms)")
print(f"keywarden max req/s / nginx max req/s  = {ratio(rps['keywarden'], rps['nginx']):.2f}  (goal >= 0.60)")
print(f"keywarden max req/s / litellm max req/s = {ratio(rps['keywarden'], rps['litellm']):.2f}")
print(f"litellm added p50 = {add('litellm', p50):.3f} ms, p99 = {add('litellm', p99):.3f} ms")
PY
