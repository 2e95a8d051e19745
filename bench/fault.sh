#!/usr/bin/env bash
# Fault test (issue 8, item 4): POSTS signed posts from CLIENTS concurrent clients to the
# release local server while its throwaway PostgreSQL is stopped and started again
# RESTARTS times mid-run; then every 200 must be in `events` exactly once, every other
# answer a 503 or a connection error, and the same server process must answer normally
# again. Prints the counts; exits 1 on a violation. The work is in examples/fault.rs.
#
#   bench/fault.sh [POSTS] [CLIENTS] [RESTARTS]     default: 50000 64 2
#
# FAULT_DOWNTIME_MS (2000), FAULT_BACKOFF_MS (100), FAULT_TIMEOUT_S (30),
# FAULT_FINAL_POSTS (1000) and LEADERBOARD_BIN (another build of the server) tune it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin leaderboard --example fault
LEADERBOARD_BIN=${LEADERBOARD_BIN:-target/release/leaderboard} exec target/release/examples/fault "$@"
