"""Fixtures of the dashboard's browser tests. tests/browser/run.sh starts the local server
on a throwaway database and passes it in DASHBOARD_URL (plus DASHBOARD_PGDATA, the data
directory of its PostgreSQL, for the test that stops it)."""

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from browser import Browser  # noqa: E402

BASE = os.environ.get("DASHBOARD_URL", "").rstrip("/")
SHOTS = os.environ.get("DASHBOARD_SCREENSHOTS", "target/browser-screenshots")

# Every request any page of the run made, for the check that none left the local server.
REQUESTS = []


def api(path):
    """GET from the service outside the browser: (status, JSON body)."""
    try:
        with urllib.request.urlopen(BASE + path, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


@pytest.fixture(scope="session")
def base():
    if not BASE:
        pytest.exit("DASHBOARD_URL is not set: run tests/browser/run.sh", returncode=2)
    return BASE


@pytest.fixture(scope="session")
def browser(base):
    b = Browser()
    yield b
    b.close()


@pytest.fixture
def page(browser, base):
    p = browser.context.new_page()
    p.set_default_timeout(20000)
    errors = []
    p.on("request", lambda r: REQUESTS.append(r.url))
    p.on("pageerror", lambda e: errors.append(str(e)))
    yield p
    p.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def shot(page, name, full_page=False):
    os.makedirs(SHOTS, exist_ok=True)
    path = os.path.join(SHOTS, f"{name}.png")
    page.screenshot(path=path, full_page=full_page)
    return path


def wait_view(page, states=("ready",)):
    """Waits until the view left 'loading' and returns its state, which must be in states."""
    page.wait_for_selector("#view:not([data-state='loading'])")
    state = page.get_attribute("#view", "data-state")
    assert state in states, f"view state {state!r}: {page.inner_text('#view')[:500]}"
    return state


def source_query(page, selector="#leaderboard"):
    """The API URL the numbers on screen came from (the page says it in data-source)."""
    src = page.get_attribute(selector, "data-source")
    assert src and src.startswith("/api/"), src
    return src, dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(src).query))
