#!/usr/bin/env bash
# The database fault suite: three real `keywarden serve` processes on one PostgreSQL server of the suite's own,
# under gateway and management load, through a TCP proxy the suite writes (so it can slow every round trip); then
# kill -9 of one instance, PostgreSQL restarted fast and immediate, stopped for 30 s, slowed by 200 ms per round
# trip, and SIGTERM during an outage. Asserts that every request is answered within its deadline, no acknowledged
# write is lost, a key deactivated on one instance is refused by every instance within the staleness bound after
# the database returns, usage rows equal the calls answered, no budget hold is left, the budget counters equal the
# ledger, the audit chain verifies and SIGTERM ends a process in time. Prints the figures (docs/operations.md).
#   scripts/fault-test.sh [directory of the built binaries, default .build/debug]
set -euo pipefail
cd "$(dirname "$(realpath "$0")")/.."
bin=${1:-.build/debug}
[ -x "$bin/keywarden" ] && [ -x "$bin/keywarden-mock-vendors" ] || { echo "fault-test: build first (swift build)"; exit 1; }
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[ -n "$pgbin" ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql; pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1); }
# Each request opens a connection of its own: the client may hold many at once.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec python3 scripts/fault-test.py --bin "$bin" --pgbin "$pgbin" "${@:2}"
