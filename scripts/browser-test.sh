#!/usr/bin/env bash
# The admin UI in headless Chromium: starts the mock vendors and a fresh Keywarden, runs scripts/browser-test.py.
#   scripts/browser-test.sh [path/to/build/dir]   (default .build/debug); screenshots go to artifacts/screenshots/
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.build/debug}
venv=${KEYWARDEN_VENV:-.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import selenium' 2>/dev/null || "$venv/bin/pip" install --quiet --disable-pip-version-check 'selenium>=4.20'
command -v chromedriver >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver; }

work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
"$bin/keywarden-mock-vendors" > "$work/mocks" 2>&1 & pids+=($!)
for _ in $(seq 1 100); do [ "$(grep -c '^mock ' "$work/mocks" || true)" -ge 18 ] && break; sleep 0.1; done
while read -r _ name url; do
  [ "$name" = receiver ] && continue
  export "KEYWARDEN_UPSTREAM_$(echo "$name" | tr 'a-z-' 'A-Z_')=$url"
done < <(grep '^mock ' "$work/mocks")
export KEYWARDEN_ALLOW_PRIVATE_TARGETS=1 KEYWARDEN_HEALTH_INTERVAL=0
"$bin/keywarden" serve --data "$work/kw" --port 0 > "$work/out" 2> "$work/err" & pids+=($!)
for _ in $(seq 1 200); do grep -q '  kw_' "$work/out" 2>/dev/null && break; sleep 0.1; done
port=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/out" | head -1 | sed 's/.*://')
token=$(grep -o 'kw_[A-Za-z0-9_-]*' "$work/out" | head -1)
[ -n "$port" ] && [ -n "$token" ] || { cat "$work/out" "$work/err"; echo "keywarden did not start"; exit 1; }
"$venv/bin/python" scripts/browser-test.py "http://127.0.0.1:$port" "$token" artifacts/screenshots
if grep -q 'sk-canary-ui' "$work/out" "$work/err"; then echo "the canary key reached the server's output"; exit 1; fi
echo "browser-test: no failures"
