#!/usr/bin/env bash
# Fuzzes a running Keywarden against its own OpenAPI document with schemathesis (an independent client).
#   scripts/api-fuzz.sh [path/to/keywarden]      (keywarden-mock-vendors is taken from beside it)
#   KEYWARDEN_FUZZ_EXAMPLES (default 40) and KEYWARDEN_FUZZ_ARGS (more schemathesis options, e.g.
#   "--include-tag gateway --report har --report-dir /tmp/fuzz") narrow or widen a run by hand.
# Fails if any request gets a 5xx, an undocumented status, a response that breaks its schema, content type or
# headers, a wrong answer to an undeclared method, ignored authentication, a deleted object still reachable,
# valid data (by the document) refused with a 400, or invalid data accepted. Every operation is fuzzed, the
# gateway's too: every catalog vendor with an API is a keywarden-mock-vendors mock, reached through
# KEYWARDEN_UPSTREAM_<ID> (so the gateway answers from the mocks, and a 5xx is Keywarden's own).
#
# The checks are listed in scripts/api-fuzz.toml. positive_data_acceptance and negative_data_rejection are on;
# the file says which statuses each accepts, and leaves positive_data_acceptance off for five operations whose
# valid input the document cannot fully say (updateKey, savePlatformCard, getUsage, chatCompletions: the reasons
# are written there). negative_data_rejection is on for every operation.
#
# Everything runs in a network namespace of its own with only loopback (unshare --net): the fuzzer invents
# URLs (webhooks, SMTP hosts, base URLs of keys) and Keywarden would otherwise try to reach them.
set -euo pipefail
script=$(realpath "$0")
cd "$(dirname "$script")/.."
binary=${1:-.build/debug/keywarden}
mocks="$(dirname "$binary")/keywarden-mock-vendors"
venv=${KEYWARDEN_VENV:-.venv}
[ -x "$binary" ] && [ -x "$mocks" ] || { echo "api-fuzz: $binary or $mocks is missing (swift build first)"; exit 1; }
[ -x "$venv/bin/schemathesis" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet --disable-pip-version-check 'schemathesis>=4,<5'; }

if [ -z "${KEYWARDEN_FUZZ_NETNS:-}" ]; then
  command -v ip >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends iproute2; }
  exec unshare --net env KEYWARDEN_FUZZ_NETNS=1 "$script" "$@"
fi
ip link set lo up

data=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$data"; }
trap cleanup EXIT

# Every vendor family the mocks know, and two catalog vendors without a family of their own served by a family
# that takes their requests (Exa: the Ollama mock, which asks for no particular auth header; a custom service,
# as set up below: the OpenAI mock, with a bearer token).
"$mocks" > "$data/mocks" 2> "$data/mocks.err" &
pids+=($!)
"$mocks" --vendor exa=ollama custom=openai > "$data/mocks2" 2> "$data/mocks2.err" &
pids+=($!)
for _ in $(seq 1 100); do [ "$(cat "$data/mocks" "$data/mocks2" 2>/dev/null | grep -c '^mock ')" -ge 20 ] && break; sleep 0.1; done
grep -h '^mock ' "$data/mocks" "$data/mocks2" > "$data/vendors" || true
upstreams=()
while read -r _ name url; do
  case "$name" in receiver|hooks|hostile-raw) continue ;; esac
  id=${name^^}
  upstreams+=("KEYWARDEN_UPSTREAM_${id//-/_}=$url")
done < "$data/vendors"
[ "${#upstreams[@]}" -ge 19 ] || { cat "$data/mocks" "$data/mocks.err" "$data/mocks2" "$data/mocks2.err"; echo "api-fuzz: the mock vendors did not start"; exit 1; }

env "${upstreams[@]}" KEYWARDEN_ALLOW_PRIVATE_TARGETS=1 "$binary" serve --data "$data/kw" --port 0 > "$data/out" 2> "$data/err" &
pids+=($!)
for _ in $(seq 1 100); do grep -q "listening on" "$data/out" 2>/dev/null && break; sleep 0.1; done
port=$(grep -o 'http://127.0.0.1:[0-9]*' "$data/out" | head -1 | sed 's/.*://')
token=$(grep -o 'kw_[A-Za-z0-9_-]*' "$data/out" | head -1)
[ -n "$port" ] && [ -n "$token" ] || { cat "$data/out" "$data/err"; echo "keywarden did not start"; exit 1; }

# The platform's card of every mocked vendor gets a key and is switched on, so the gateway's operations reach
# the mocks (a platform token calling without a workspace uses the platform's keys) instead of stopping at
# no_key_available. The fuzzer may change or switch them off again as it goes.
base="http://127.0.0.1:$port/api/v1/platform/providers"
count=0
while read -r _ name url; do
  case "$name" in receiver|hooks|hostile-raw) continue ;; esac
  count=$((count + 1))
  case "$name" in
    azure-openai) extras="{\"endpoint\": \"$url\", \"api_version\": \"2024-10-21\"}" ;;
    ollama|openai-compatible) extras="{\"base_url\": \"$url\"}" ;;
    azure-speech) extras='{"region": "westeurope"}' ;;
    custom) extras="{\"base_url\": \"$url\", \"auth_header\": \"Authorization\", \"auth_prefix\": \"Bearer \"}" ;;
    *) extras='{}' ;;
  esac
  curl -fsS -o /dev/null -X PUT -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"api_key\": \"sk-fuzz-0123456789-$count\", \"extras\": $extras}" "$base/$name"
  curl -fsS -o /dev/null -X POST -H "Authorization: Bearer $token" "$base/$name/activate"
done < "$data/vendors"

"$venv/bin/schemathesis" --config-file scripts/api-fuzz.toml run "http://127.0.0.1:$port/openapi.yaml" \
  -H "Authorization: Bearer $token" \
  --max-examples "${KEYWARDEN_FUZZ_EXAMPLES:-40}" --seed 20261122 --no-color ${KEYWARDEN_FUZZ_ARGS:-}
echo "api-fuzz: no failures"
