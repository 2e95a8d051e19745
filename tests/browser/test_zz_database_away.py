"""Last (pytest runs files in name order): stops the server's PostgreSQL and checks that the
dashboard and its health corner say the database is away."""

import os
import signal
import time

from conftest import REQUESTS, api, shot, wait_view


def stop_postgres():
    pgdata = os.environ["DASHBOARD_PGDATA"]
    with open(os.path.join(pgdata, "postmaster.pid")) as f:
        pid = int(f.readline())
    os.kill(pid, signal.SIGINT)  # fast shutdown
    deadline = time.monotonic() + 30
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        assert time.monotonic() < deadline, "PostgreSQL did not stop within 30 s"
        time.sleep(0.05)


def test_a_stopped_database_shows_its_message(page, base):
    stop_postgres()
    status, body = api("/api/health")
    assert status == 503 and body["postgres"]["ok"] is False
    page.goto(base + "/?window=1h")
    assert wait_view(page, ("error",)) == "error"
    assert page.get_attribute("#view .message", "data-kind") == "unavailable"
    assert page.get_attribute("#view .message", "data-status") == "503"
    assert "The database is away" in page.inner_text("#view")
    page.wait_for_selector("#health[data-ok='false']")
    assert "Database unavailable" in page.inner_text("#health")
    shot(page, "database-away-desktop")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "database-away-phone")
    # Try again keeps to the message while the database stays away.
    page.click("#retry")
    assert wait_view(page, ("error",)) == "error"
    assert REQUESTS
