# The Leaderboard API as one container image: the `leaderboard` binary (crates/server), which
# serves every route on PORT (8080) by default and runs every operator command too:
#
#   docker build -t leaderboard .
#   docker run -d -p 8080:8080 -e POSTGRES='postgres://…' -e SECRET='…' leaderboard
#   docker run --rm -e POSTGRES='postgres://…' leaderboard leaderboard migrate status
#
# Configured only by the environment variables of docs/api.md. POSTGRES is required: the
# image has no embedded PostgreSQL (LEADERBOARD_EMBEDDED_DB=off), so without it every
# command stops with one line saying so. Runs as the unprivileged user `leaderboard`
# (10001); the binary is PID 1 and stops gracefully on SIGTERM (`docker stop`); logs go to
# the container's output. Needs BuildKit (Docker's default builder since 23.0) or podman/buildah
# for the cache mounts. Details: docs/self-hosting.md. CI builds exactly this file
# (ci/container.sh).

# --- build: the release binary, with the repository's Cargo.lock ---------------------------
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Only what the binary is built from (docs, tests and CI scripts changing keep this layer):
# the workspace, the migrations and public/ (the dashboard), both embedded in the binary.
COPY Cargo.toml Cargo.lock ./
COPY api api
COPY crates crates
COPY migrations migrations
COPY public public
# The registry and the target directory are build caches (BuildKit, podman/buildah): a
# rebuild after a source change compiles only what changed. The binary is copied out of
# the cache mount within the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin leaderboard \
 && install -m 755 target/release/leaderboard /usr/local/bin/leaderboard

# --- run: Debian's slim image (the binary links glibc 2.36 of bookworm, nothing else) ------
FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 leaderboard \
 && useradd --system --uid 10001 --gid leaderboard --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin leaderboard
COPY --from=build /usr/local/bin/leaderboard /usr/local/bin/leaderboard
# No embedded database in the image: POSTGRES must be given.
ENV LEADERBOARD_EMBEDDED_DB=off
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
STOPSIGNAL SIGTERM
# /api/health is 200 only with the database reachable and migrated. The check speaks HTTP
# through bash's /dev/tcp, so the image needs no curl (about 10 MB with its libraries) and
# no extra command in the binary.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT:-8080} && printf 'GET /api/health HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && read -r _ status _ <&3 && [ \"$status\" = 200 ]"]
CMD ["leaderboard", "serve"]
