#!/usr/bin/env bash
# Cut-over benchmark (issues 13, 21): a database as the Go service leaves it (golang-migrate
# version 3, `leaderboard seed --original`) with EVENTS events, CLIENTS clients posting
# with the Go service's insert at POSTS_PER_S each plus a reader, then `leaderboard migrate
# up` with this service deployed meanwhile (a local server with the background backfill,
# started a second later). Prints migrate up's exit status, the backfill time, posts
# attempted / stored / failed, post and read latency during the migration, and
# aggregated_stats right after versus after a manual VACUUM ANALYZE; exits 1 if migrate up
# failed, a post failed or was lost or a row is not counted once. The work is in
# examples/cutover.rs.
#
#   bench/cutover.sh [EVENTS] [CLIENTS] [POSTS_PER_S]     default: 1000000 4 20
#
# CUTOVER_FSYNC=on runs PostgreSQL crash-safe; LEADERBOARD_BIN another build of the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin leaderboard --example cutover
LEADERBOARD_BIN=${LEADERBOARD_BIN:-target/release/leaderboard} exec target/release/examples/cutover "$@"
