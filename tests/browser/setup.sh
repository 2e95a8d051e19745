# Sourced by tests/browser/run.sh and bench/dashboard.sh: makes sure Debian's chromium and
# the pinned Playwright + pytest (tests/browser/requirements.txt, in target/browser-venv)
# are there, installing them when missing. Sets VENV.

if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing chromium (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "the browser tests need Debian's chromium: apt-get install chromium" >&2
    exit 1
  fi
fi

VENV=target/browser-venv
if ! cmp -s tests/browser/requirements.txt "$VENV/requirements.txt"; then
  python=""
  for candidate in python3.13 python3.12 python3.11 python3.10 python3.9 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import venv, ensurepip' 2>/dev/null; then
      python=$candidate
      break
    fi
  done
  [ -n "$python" ] || { echo "the browser tests need python3 with venv and ensurepip" >&2; exit 1; }
  rm -rf "$VENV"
  "$python" -m venv "$VENV"
  # Playwright's own browser download is never used: PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 "$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/browser/requirements.txt
  cp tests/browser/requirements.txt "$VENV/requirements.txt"
fi
