#!/usr/bin/env bash
# The dashboard on real data sizes, measured in the browser (Performance API marks set by
# the page, read by Playwright in headless Debian chromium; HTTP cache off): time from
# navigation to the leaderboard table on screen with EVENTS events in the default 24 h
# window, and the orchestrator page's round-trip chart (about 5,000 points: 80 % of the
# events are transcoding, spread over ORCHESTRATORS): first draw, redraw, frames while
# zooming. A release build of the local server on a throwaway embedded PostgreSQL.
# Prints figures; no pass/fail on timing.
#
#   bench/dashboard.sh            EVENTS=1000000 ORCHESTRATORS=160 RUNS=5 (seeding ~1 min),
#                                 LEADERBOARD_BIN=path to skip the release build
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${EVENTS:-1000000}
ORCHESTRATORS=${ORCHESTRATORS:-160}
export RUNS=${RUNS:-5}

# shellcheck source=tests/browser/setup.sh
. tests/browser/setup.sh
# LEADERBOARD_BIN: a release binary built elsewhere (e.g. from another tree).
if [ -n "${LEADERBOARD_BIN:-}" ]; then
  BIN=$LEADERBOARD_BIN
else
  cargo build --quiet --release --bin leaderboard
  BIN=target/release/leaderboard
fi

WORK=$(mktemp -d /tmp/leaderboard-bench-dashboard.XXXXXX)
chmod 755 "$WORK"
# shellcheck source=bench/lib.sh
. bench/lib.sh

started=$SECONDS
LEADERBOARD_DATA_DIR="$WORK/pg" LOG_LEVEL=warn "$BIN" seed --events "$EVENTS" --orchestrators "$ORCHESTRATORS" --hours 23.5 2>/dev/null | tail -1
echo "seeded in $((SECONDS - started)) s"
start_server "$BIN"
echo "chromium $(chromium --version 2>/dev/null | awk '{print $2}'), $(nproc) cores, release server on port $PORT"
DASHBOARD_URL="http://127.0.0.1:$PORT" "$VENV/bin/python" bench/dashboard.py
