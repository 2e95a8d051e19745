#!/usr/bin/env bash
# CI scaffolding (sourced by ci/container.sh): the base images the Dockerfile and
# docker-compose.yml name, made locally because no image registry can be reached here, each
# under the exact name its FROM/image line uses, so `podman build --pull=never` and
# podman-compose find them:
#
#   docker.io/library/debian:bookworm-slim   debootstrap --variant=minbase bookworm, slimmed
#                                            the way the official slim image is (dpkg excludes
#                                            docs, man pages, locales; apt cleans its caches)
#   docker.io/library/rust:<X.Y>-slim-bookworm  ci/images/rust.Containerfile: the official
#                                            recipe on the slim image, the machine's toolchain
#                                            copied in (it must be Rust X.Y, as the FROM says)
#   docker.io/library/postgres:15            ci/images/postgres.Containerfile: Debian's
#                                            postgresql-15 with an entrypoint like the official
#
# Each image carries a label with a hash of its recipe (and of the toolchain): an image that
# exists with the same hash is reused (no debootstrap, no apt), any other is rebuilt.

BASE_WORK=${LEADERBOARD_CI_WORK:-/var/tmp/leaderboard-ci}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SLIM=docker.io/library/debian:bookworm-slim

recipe_label() { podman image inspect --format '{{index .Config.Labels "leaderboard.ci.recipe"}}' "$1" 2>/dev/null || true; }

# The slim configuration of the official image (debuerreotype --slim), kept in the image
# so later apt-get installs stay slim too.
slim_config() {
  local root=$1
  mkdir -p "$root/etc/dpkg/dpkg.cfg.d" "$root/etc/apt/apt.conf.d"
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
# This is the "slim" variant of the Debian base image.
# Many files which are normally unnecessary in containers are excluded,
# and this configuration file keeps them that way.
path-exclude /usr/share/doc/*
# we need to keep copyright files for legal reasons
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
CFG
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
  printf 'Acquire::Languages "none";\n' >"$root/etc/apt/apt.conf.d/docker-no-languages"
  printf 'Acquire::GzipIndexes "true";\n' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
  printf 'Apt::AutoRemove::SuggestsImportant "false";\n' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<CFG
Types: deb
URIs: $DEBIAN_MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${DEBIAN_MIRROR%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
CFG
}

debian_slim_image() {
  local name=$DEBIAN_SLIM hash root old
  hash=$(declare -f slim_config debian_slim_image | cat - <(echo "$DEBIAN_MIRROR") | sha256sum | cut -c1-16)
  if [ "$(recipe_label "$name")" = "$hash" ]; then
    log "$name: reusing the local image (recipe $hash)"
    return
  fi
  old=$(image_id "$name" 2>/dev/null || true)
  root=$BASE_WORK/debian-rootfs
  rm -rf "$root"
  mkdir -p "$BASE_WORK"
  log "$name: debootstrap --variant=minbase bookworm (recipe $hash)"
  timeout 900 debootstrap --variant=minbase bookworm "$root" "$DEBIAN_MIRROR" >"$BASE_WORK/debootstrap.log" 2>&1 ||
    { tail -n 30 "$BASE_WORK/debootstrap.log"; fail "debootstrap"; }
  slim_config "$root"
  # What the excludes keep out of later installs, out of this one too; no caches, no logs.
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/{groff,info,linda,lintian,locale,man}/* \
    "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/log/*.log \
    "$root"/var/log/apt/* "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old
  : >"$root/etc/machine-id"
  tar -C "$root" --numeric-owner -cf - . |
    podman import --change 'CMD ["bash"]' --change "LABEL leaderboard.ci.recipe=$hash" - "$name" \
      >"$BASE_WORK/import.log" 2>&1 || { cat "$BASE_WORK/import.log"; fail "podman import $name"; }
  rm -rf "$root"
  drop_replaced "$old" "$name"
  log "$name: imported ($(image_mb "$name") MB)"
}

# rust_image NAME (docker.io/library/rust:X.Y-slim-bookworm): the machine's toolchain must be X.Y.
rust_image() {
  local name=$1 want have sysroot triple hash ctx tc old proxy
  want=$(sed -n 's|.*/rust:\([0-9][0-9.]*\)-slim-bookworm$|\1|p' <<<"$name")
  [ -n "$want" ] || fail "cannot read the Rust version from $name"
  have=$(rustc --version | awk '{print $2}')
  case "$have." in
    "$want".*) ;;
    *) fail "the Dockerfile builds FROM $name but this machine's Rust is $have: CI's stand-in would lie (update the FROM line)" ;;
  esac
  sysroot=$(rustc --print sysroot)
  triple=$(rustc -vV | sed -n 's/^host: //p')
  hash=$( (cat ci/images/rust.Containerfile; declare -f rust_image; rustc -vV; cargo -V; image_id "$DEBIAN_SLIM"
    cat /usr/local/share/ca-certificates/*.crt 2>/dev/null) | sha256sum | cut -c1-16)
  if [ "$(recipe_label "$name")" = "$hash" ]; then
    log "$name: reusing the local image (recipe $hash)"
    return
  fi
  log "$name: from debian:bookworm-slim + gcc + the machine's Rust $have (recipe $hash)"
  old=$(image_id "$name" 2>/dev/null || true)
  ctx=$BASE_WORK/rust-context
  rm -rf "$ctx"
  tc=$ctx/rustup/toolchains/$have-$triple
  mkdir -p "$tc/bin" "$tc/lib/rustlib" "$ctx/cargo/bin"
  # The minimal profile: rustc, rust-std, cargo (no docs, sources, clippy, rustfmt).
  cp -a "$sysroot"/bin/{cargo,rustc,rustdoc} "$tc/bin/"
  cp -a "$sysroot"/lib/*.so* "$tc/lib/"
  cp -a "$sysroot/lib/rustlib/$triple" "$sysroot"/lib/rustlib/{components,rust-installer-version} "$tc/lib/rustlib/"
  printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\n' "$have-$triple" >"$ctx/rustup/settings.toml"
  cp "$(command -v rustup || echo "${HOME:-/root}/.cargo/bin/rustup")" "$ctx/cargo/bin/rustup"
  for proxy in cargo rustc rustdoc; do ln -s rustup "$ctx/cargo/bin/$proxy"; done
  chmod -R a+w "$ctx/rustup" "$ctx/cargo"
  mkdir -p "$ctx/local-ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$ctx/local-ca-certificates/" 2>/dev/null || true
  cp ci/images/rust.Containerfile "$ctx/Containerfile"
  nice -n 10 podman build --pull=never --network host --format docker --build-arg "RUST_VERSION=$have" \
    --label "leaderboard.ci.recipe=$hash" -t "$name" "$ctx" >"$BASE_WORK/rust-image.log" 2>&1 ||
    { tail -n 30 "$BASE_WORK/rust-image.log"; fail "building $name"; }
  rm -rf "$ctx"
  drop_replaced "$old" "$name"
  log "$name: built ($(image_mb "$name") MB)"
}

postgres_image() {
  local name=docker.io/library/postgres:15 hash ctx old
  hash=$( (cat ci/images/postgres.Containerfile ci/images/postgres-entrypoint.sh; image_id "$DEBIAN_SLIM") |
    sha256sum | cut -c1-16)
  if [ "$(recipe_label "$name")" = "$hash" ]; then
    log "$name: reusing the local image (recipe $hash)"
    return
  fi
  log "$name: from debian:bookworm-slim + Debian's postgresql-15 (recipe $hash)"
  old=$(image_id "$name" 2>/dev/null || true)
  ctx=$BASE_WORK/postgres-context
  rm -rf "$ctx"
  mkdir -p "$ctx"
  cp ci/images/postgres.Containerfile "$ctx/Containerfile"
  cp ci/images/postgres-entrypoint.sh "$ctx/"
  nice -n 10 podman build --pull=never --network host --format docker \
    --label "leaderboard.ci.recipe=$hash" -t "$name" "$ctx" >"$BASE_WORK/postgres-image.log" 2>&1 ||
    { tail -n 30 "$BASE_WORK/postgres-image.log"; fail "building $name"; }
  rm -rf "$ctx"
  drop_replaced "$old" "$name"
  log "$name: built ($(image_mb "$name") MB)"
}

image_id() { podman image inspect --format '{{.Id}}' "$1"; }
# drop_replaced OLD_ID NAME: remove the image NAME pointed at before a rebuild (now untagged).
drop_replaced() {
  [ -n "$1" ] && [ "$1" != "$(image_id "$2")" ] && podman rmi "$1" >/dev/null 2>&1 || true
}
image_mb() { podman image inspect --format '{{.Size}}' "$1" | awk '{printf "%.1f", $1 / 1e6}'; }
