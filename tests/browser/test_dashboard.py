"""The dashboard at / in headless chromium against the local server: the numbers on screen
are the API's for the same parameters, the controls change the rows as the API says, the
orchestrator page draws its charts and lists its errors, and every failure has a message.
The database-away test lives in test_zz_database_away.py, which runs last."""

import json
import os
import re
import time
import urllib.parse

from conftest import REQUESTS, api, shot, source_query, wait_view

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
STREAM = json.load(open(os.path.join(ROOT, "tests/fixtures/stream-tester.json")))
AI = json.load(open(os.path.join(ROOT, "tests/fixtures/ai-tester.json")))
SEEDED_ORCHESTRATORS = int(os.environ.get("DASHBOARD_ORCHESTRATORS", "0"))
KEYS = ("score", "success_rate", "round_trip_score")

# The leaderboard's rows, one per orchestrator, and their rows per region (hidden or not).
ROWS_JS = """() => [...document.querySelectorAll('#leaderboard tbody tr.orch-row')].map(tr => ({
  o: tr.dataset.orchestrator, n: Number(tr.querySelector('td[data-key=regions]').dataset.value),
  v: Object.fromEntries([...tr.querySelectorAll('td[data-key]')].map(td => [td.dataset.key, [td.dataset.value, td.textContent]]))
}))"""
REGION_ROWS_JS = """() => [...document.querySelectorAll('#leaderboard tbody tr.region-row')].map(tr => ({
  o: tr.dataset.orchestrator, r: tr.dataset.region, hidden: tr.hidden,
  v: Object.fromEntries([...tr.querySelectorAll('td[data-key]')].map(td => [td.dataset.key, [td.dataset.value, td.textContent]]))
}))"""

# Saturated pixels of a chart's canvas: the series (axes, grid and text are grey or black).
INK_JS = """(sel) => {
  const c = document.querySelector(sel + ' canvas');
  if (!c) return -1;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] > 0 && Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 60) n++;
  }
  return n;
}"""


def shown_value(key, text):
    text = text.strip()
    return float(text.rstrip(" %")) / 100 if key == "success_rate" else float(text)


def check_numbers(expected, row):
    for key in KEYS:
        value, text = row["v"][key]
        # The page keeps the API's number whole, and shows it rounded.
        assert float(value) == expected[key], (row["o"], row.get("r"), key, value, expected[key])
        tolerance = 0.0005 if key == "success_rate" else 0.00005
        assert abs(shown_value(key, text) - expected[key]) <= tolerance + 1e-12, (key, text, expected[key])


def means(regions):
    """An orchestrator's numbers on the leaderboard: the mean over its regions, summed in
    the answer's order as the page does."""
    out = {}
    for key in KEYS:
        total = 0.0
        for v in regions.values():
            total += v[key]
        out[key] = total / len(regions)
    return out


def table_is_api(page):
    """The table holds one row per orchestrator of its API answer, with the mean of its
    regions' numbers and their count, and under it the rows per region, each the API's
    numbers; returns the answer and the orchestrators' rows."""
    src, query = source_query(page)
    status, data = api(src)
    assert status == 200, (src, data)
    rows = page.evaluate(ROWS_JS)
    got = {row["o"]: row for row in rows}
    assert len(got) == len(rows), "no orchestrator twice"
    assert set(got) == set(data), (src, len(got), len(data))
    for o, row in got.items():
        assert row["n"] == len(data[o]), (o, row["n"], len(data[o]))
        check_numbers(means(data[o]), row)
    per_region = page.evaluate(REGION_ROWS_JS)
    expected = {(o, r): v for o, regions in data.items() for r, v in regions.items()}
    got = {(row["o"], row["r"]): row for row in per_region}
    assert len(got) == len(per_region) and set(got) == set(expected)
    for k, row in got.items():
        check_numbers(expected[k], row)
    changes_are_api(page, query, data)
    return src, query, data, rows


def score_change(now, before):
    return None if before is None else now - before


def shown_change(value, text):
    """The change cell: its number (None: none) after checking the text shows it."""
    text = text.strip()
    if value == "":
        assert text in ("new", "–"), text
        return None
    number = float(value)
    sign = "+" if number > 0 else "−" if number < 0 else "±"
    assert text == f"{sign}{abs(number):.4f}", (text, number)
    return number


def changes_are_api(page, query, data):
    """The change column: the mean score (and each region's score) minus the same in the
    API's answer for the window of the same length just before, fetched here."""
    prev_src = page.get_attribute("#leaderboard", "data-previous-source")
    rows = page.evaluate(ROWS_JS)
    per_region = page.evaluate(REGION_ROWS_JS)
    if not query.get("since"):
        assert prev_src == "" and all(r["v"]["change"][0] == "" for r in rows + per_region)
        return None
    prev_query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(prev_src).query))
    since = float(query["since"])
    if "until" in query:
        length = float(query["until"]) - since
    else:
        window = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.url).query)).get("window", "24h")
        length = {"1h": 3600, "24h": 86400, "7d": 7 * 86400}[window]
    assert float(prev_query["until"]) == since and float(prev_query["since"]) == since - length, (query, prev_query)
    assert {k: v for k, v in prev_query.items() if k not in ("since", "until")} == {k: v for k, v in query.items() if k not in ("since", "until")}
    status, before = api(prev_src)
    assert status == 200, (prev_src, before)
    for row in rows:
        prior = before.get(row["o"])
        expected = score_change(means(data[row["o"]])["score"], means(prior)["score"] if prior else None)
        assert shown_change(*row["v"]["change"]) == expected, (row["o"], row["v"]["change"], expected)
    for row in per_region:
        prior = (before.get(row["o"]) or {}).get(row["r"])
        expected = score_change(data[row["o"]][row["r"]]["score"], prior["score"] if prior else None)
        assert shown_change(*row["v"]["change"]) == expected, (row["o"], row["r"], row["v"]["change"], expected)
    return before


def order(rows):
    return [r["o"] for r in rows]


def region_pairs(page):
    return [(r["o"], r["r"]) for r in page.evaluate(REGION_ROWS_JS)]


def expected_order(data, key, direction):
    """Orchestrators sorted as the page sorts them: by `key` (their means, or their count
    of regions), ties by address."""
    items = [(o, len(regions), means(regions)) for o, regions in data.items()]
    value = (lambda t: t[0]) if key == "orchestrator" else (lambda t: t[1]) if key == "regions" else (lambda t: t[2][key])
    items.sort(key=lambda t: t[0])
    items.sort(key=value, reverse=direction == "desc")
    return [o for o, _, _ in items]


def test_the_leaderboard_shows_the_api_numbers_for_its_parameters(page, base):
    page.goto(base + "/")
    wait_view(page)
    src, query, data, rows = table_is_api(page)
    assert set(query) == {"since"}, "transcoding, all regions, 24 h: only since"
    assert abs(float(query["since"]) - (time.time() - 86400)) < 120
    # The seeded orchestrators and the stream tester's fixture.
    assert len(data) == SEEDED_ORCHESTRATORS + 1, len(data)
    assert STREAM["orchestrator"] in order(rows)
    assert (STREAM["orchestrator"], STREAM["region"]) in region_pairs(page)
    # Ranked by the mean of the regions' scores, best first; the regions stay folded.
    assert order(rows) == expected_order(data, "score", "desc")
    assert all(r["hidden"] for r in page.evaluate(REGION_ROWS_JS))
    regions = {r for v in data.values() for r in v}
    summary = page.inner_text("#summary")
    assert summary.startswith(f"{len(data)} orchestrators in {len(regions)} regions"), summary
    # The health corner says what /api/health says.
    status, health = api("/api/health")
    assert status == 200
    page.wait_for_selector("#health[data-ok='true']")
    assert f"schema v{health['migrations']['version']}" in page.inner_text("#health")
    shot(page, "leaderboard-desktop")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "leaderboard-phone")


def test_a_row_expands_to_its_regions_scores(page, base):
    page.goto(base + "/")
    wait_view(page)
    _, _, data, rows = table_is_api(page)
    first = rows[0]["o"]
    button = f"#leaderboard tr.orch-row[data-orchestrator='{first}'] button.expand"
    assert page.get_attribute(button, "aria-expanded") == "false"
    page.click(button)
    assert page.get_attribute(button, "aria-expanded") == "true"
    shown = [r for r in page.evaluate(REGION_ROWS_JS) if not r["hidden"]]
    assert [r["r"] for r in shown] == sorted(data[first]) and {r["o"] for r in shown} == {first}
    for r in shown:
        check_numbers(data[first][r["r"]], r)
    assert page.is_visible(f"#leaderboard tr.region-row[data-orchestrator='{first}']")
    shot(page, "leaderboard-expanded-desktop")
    # Sorting keeps it open; a second click folds it.
    page.click("th button[data-key='orchestrator']")
    wait_view(page)
    assert page.get_attribute(button, "aria-expanded") == "true"
    page.click(button)
    assert not [r for r in page.evaluate(REGION_ROWS_JS) if not r["hidden"]]


def test_the_change_column_compares_with_the_window_before(page, base):
    page.goto(base + "/?window=1h")
    wait_view(page)
    src, query, data, rows = table_is_api(page)
    before = changes_are_api(page, query, data)
    # The seed covers the last 24 hours: the hour before this one has tests.
    assert before and sum(1 for r in rows if r["v"]["change"][0] != "") >= len(rows) // 2, before
    # Sorted by change, largest first; those without one last.
    page.click("th button[data-key='change']")
    wait_view(page)
    assert "sort=change" in page.url
    got = order(page.evaluate(ROWS_JS))
    changes = {r["o"]: shown_change(*r["v"]["change"]) for r in rows}
    known = sorted(sorted(o for o in changes if changes[o] is not None), key=lambda o: changes[o], reverse=True)
    assert got == known + sorted(o for o in changes if changes[o] is None)
    shot(page, "leaderboard-change-desktop")


def test_sorting_by_every_column_follows_the_api_numbers(page, base):
    page.goto(base + "/")
    wait_view(page)
    _, _, data, _ = table_is_api(page)
    for key, first in [("orchestrator", "asc"), ("regions", "desc"), ("success_rate", "desc"), ("round_trip_score", "desc"), ("score", "desc")]:
        page.click(f"th button[data-key='{key}']")
        wait_view(page)
        for direction in (first, "asc" if first == "desc" else "desc"):
            assert f"sort={key}" in page.url or key == "score", page.url
            rows = page.evaluate(ROWS_JS)
            assert order(rows) == expected_order(data, key, direction), (key, direction)
            aria = page.get_attribute(f"th:has(button[data-key='{key}'])", "aria-sort")
            assert aria == ("ascending" if direction == "asc" else "descending")
            if direction == first:
                page.click(f"th button[data-key='{key}']")
                wait_view(page)
    # With the keyboard: focus a header, Enter sorts, focus stays on it.
    page.focus("th button[data-key='round_trip_score']")
    page.keyboard.press("Enter")
    wait_view(page)
    page.wait_for_function("document.activeElement && document.activeElement.dataset.key === 'round_trip_score'")
    assert order(page.evaluate(ROWS_JS)) == expected_order(data, "round_trip_score", "desc")
    # Back: the sort before; forward: this one again.
    page.go_back()
    wait_view(page)
    assert order(page.evaluate(ROWS_JS)) == expected_order(data, "score", "asc")
    page.go_forward()
    wait_view(page)
    assert order(page.evaluate(ROWS_JS)) == expected_order(data, "round_trip_score", "desc")


def test_the_region_control_narrows_the_rows_as_the_api_does(page, base):
    page.goto(base + "/")
    wait_view(page)
    _, _, everything, _ = table_is_api(page)
    _, regions = api("/api/regions")
    transcoding = [r["id"] for r in regions["regions"] if r["type"] == "transcoding"]
    options = page.eval_on_selector_all("select[name=region] option", "os => os.map(o => o.value)")
    assert options == [""] + transcoding
    page.select_option("select[name=region]", STREAM["region"])
    wait_view(page)
    src, query, data, rows = table_is_api(page)
    assert query["region"] == STREAM["region"]
    # One row per orchestrator with that region's own numbers (the mean of one).
    assert {r["n"] for r in rows} == {1}
    for row in rows:
        check_numbers(data[row["o"]][STREAM["region"]], row)
    assert {r for _, r in region_pairs(page)} == {STREAM["region"]}
    assert len(rows) < sum(len(v) for v in everything.values())
    assert (STREAM["orchestrator"], STREAM["region"]) in region_pairs(page)
    assert "region=" + STREAM["region"] in page.url
    # Reload: the same view from the URL alone.
    page.reload()
    wait_view(page)
    assert page.input_value("select[name=region]") == STREAM["region"]
    table_is_api(page)


def test_the_job_type_control_shows_the_ai_leaderboard_of_a_pipeline_and_model(page, base):
    page.goto(base + "/")
    wait_view(page)
    page.select_option("select[name=job]", "ai")
    wait_view(page)
    src, query, data, rows = table_is_api(page)
    _, pipelines = api("/api/pipelines?" + urllib.parse.urlencode({"since": query["since"]}))
    ids = [p["id"] for p in pipelines["pipelines"]]
    assert len(ids) >= 2, pipelines
    assert page.eval_on_selector_all("select[name=pipeline] option", "os => os.map(o => o.value)") == ids
    assert (query["pipeline"], query["model"]) == (ids[0], pipelines["pipelines"][0]["models"][0])
    ai_regions = {r["id"] for r in api("/api/regions")[1]["regions"] if r["type"] == "ai"}
    assert {r for _, r in region_pairs(page)} <= ai_regions
    shot(page, "ai-leaderboard-desktop")
    # Another pipeline: its first model, other rows, still the API's.
    second = pipelines["pipelines"][1]
    page.select_option("select[name=pipeline]", second["id"])
    wait_view(page)
    _, query2, data2, _ = table_is_api(page)
    assert (query2["pipeline"], query2["model"]) == (second["id"], second["models"][0])
    assert data2 != data
    # The AI tester's fixture, by its pipeline and model.
    if AI["pipeline"] in ids and AI["model"] in next(p for p in pipelines["pipelines"] if p["id"] == AI["pipeline"])["models"]:
        page.select_option("select[name=pipeline]", AI["pipeline"])
        wait_view(page)
        page.select_option("select[name=model]", AI["model"])
        wait_view(page)
        _, _, data3, rows3 = table_is_api(page)
        assert (AI["orchestrator"], AI["region"]) in region_pairs(page)


def test_the_window_control_and_an_empty_window(page, base):
    page.goto(base + "/")
    wait_view(page)
    _, _, day, _ = table_is_api(page)
    page.select_option("select[name=window]", "1h")
    wait_view(page)
    _, query, hour, _ = table_is_api(page)
    assert abs(float(query["since"]) - (time.time() - 3600)) < 120
    assert "window=1h" in page.url
    assert hour != day, "an hour of a day's data scores differently"
    # A custom range with no tests in it: a message, not an empty table.
    page.select_option("select[name=window]", "custom")
    wait_view(page)
    page.fill("input[name=since]", "2001-01-01T00:00")
    page.fill("input[name=until]", "2001-01-02T00:00")
    page.click(".custom button[type=submit]")
    assert wait_view(page, ("empty",)) == "empty"
    src = page.get_attribute("#view .message", "data-source")
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(src).query))
    assert float(q["until"]) - float(q["since"]) == 86400
    assert api(src) == (200, {})
    assert "No tests in this window" in page.inner_text("#view")
    shot(page, "empty-window-desktop")


def test_search_by_address(page, base):
    needle = STREAM["orchestrator"][2:10]
    page.goto(base + "/")
    wait_view(page)
    page.fill("#search", needle)
    page.wait_for_function(f"[...document.querySelectorAll('#leaderboard tbody tr.orch-row')].every(tr => tr.dataset.orchestrator.includes('{needle}'))")
    rows = page.evaluate(ROWS_JS)
    assert rows and {r["o"] for r in rows} == {STREAM["orchestrator"]}
    assert f"q={needle}" in page.url
    page.fill("#search", "no-such-address")
    page.wait_for_selector("#leaderboard td.empty")


def test_an_orchestrator_page_draws_its_charts_and_lists_its_errors(page, base):
    page.goto(base + "/")
    wait_view(page)
    first = page.evaluate(ROWS_JS)[0]["o"]
    page.click(f"#leaderboard tbody tr.orch-row[data-orchestrator='{first}'] a")
    wait_view(page)
    assert f"o={first}" in page.url
    assert page.inner_text("#view-title") == first
    # Scores per region: the API's.
    src, query = source_query(page, "#scores")
    assert query["orchestrator"] == first
    status, scores = api(src)
    assert status == 200
    shown = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('#scores tbody tr')].map(tr =>
        [tr.dataset.region, Object.fromEntries([...tr.querySelectorAll('td[data-key]')].map(td => [td.dataset.key, Number(td.dataset.value)]))]))""")
    assert shown == scores[first]
    # Top AI score: the API's.
    _, top = api("/api/top_ai_score?orchestrator=" + first)
    if top:
        assert float(page.get_attribute("#top-ai-value", "data-value")) == top["value"]
    # Charts: drawn, with as many points as raw_stats has tests, and ink on the canvas.
    raw_src = page.get_attribute("#chart-rtt", "data-source")
    status, raw = api(raw_src)
    assert status == 200 and raw
    tests = sum(1 for stats in raw.values() for s in stats if isinstance(s.get("timestamp"), int))
    page.wait_for_selector("#chart-rtt[data-drawn='true']")
    page.wait_for_selector("#chart-success[data-drawn='true']")
    assert int(page.get_attribute("#chart-rtt", "data-points")) == tests
    assert page.evaluate(INK_JS, "#chart-rtt") > 100
    assert page.evaluate(INK_JS, "#chart-success") > 100
    # Errors: every error_code of raw_stats with its summed count.
    expected = {}
    for stats in raw.values():
        for s in stats:
            for e in s.get("errors") or []:
                expected[e["error_code"]] = expected.get(e["error_code"], 0) + e["count"]
    assert expected, "the seeded orchestrator reported errors"
    listed = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('#errors tbody tr')].map(tr =>
        [tr.dataset.code, Number(tr.querySelector('td[data-value]').dataset.value)]))""")
    assert listed == expected
    page.set_viewport_size({"width": 1280, "height": 2700})
    page.wait_for_selector("#chart-score[data-drawn='true']")
    shot(page, "orchestrator-desktop")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function("document.querySelector('#chart-rtt canvas').getBoundingClientRect().width <= 390")
    shot(page, "orchestrator-phone", full_page=True)
    # Back to the leaderboard, forward to the orchestrator.
    page.go_back()
    wait_view(page)
    assert page.query_selector("#leaderboard")
    page.go_forward()
    wait_view(page)
    assert page.inner_text("#view-title") == first


# The score chart's points per region, as uPlot holds them: {region: [[t, score], …]}.
HISTORY_JS = """() => {
  const u = document.querySelector('#chart-score').uplot;
  const out = {};
  u.series.forEach((s, i) => {
    if (i === 0) return;
    out[s.label] = [];
    u.data[0].forEach((t, j) => { if (u.data[i][j] != null) out[s.label].push([t, u.data[i][j]]); });
  });
  return out;
}"""


def open_orchestrator(page, base, first=None, **params):
    """The orchestrator page of `first` (default: the leaderboard's best) with `params`."""
    if first is None:
        page.goto(base + "/")
        wait_view(page)
        first = page.evaluate(ROWS_JS)[0]["o"]
    page.goto(f"{base}/?" + urllib.parse.urlencode({"o": first, **params}))
    return first


def test_the_orchestrator_page_draws_its_score_over_time_as_the_api_answers(page, base):
    first = open_orchestrator(page, base)
    wait_view(page)
    page.wait_for_selector("#chart-score[data-drawn='true']")
    src, query = source_query(page, "#chart-score")
    _, scores_query = source_query(page, "#scores")
    # The same parameters as the scores table, plus the interval of a 24 h window.
    assert query == {**scores_query, "interval": "1h"}, (query, scores_query)
    status, history = api(src)
    assert status == 200 and set(history) == {first}, (status, list(history))
    expected = {r: [[p["t"], p["score"]] for p in sorted(points, key=lambda p: p["t"])] for r, points in history[first].items()}
    assert page.evaluate(HISTORY_JS) == expected
    assert sum(len(v) for v in expected.values()) > 1
    assert page.evaluate(INK_JS, "#chart-score") > 100
    # Above the raw stats' charts.
    assert page.evaluate("document.querySelector('#chart-score').compareDocumentPosition(document.querySelector('#chart-rtt')) & Node.DOCUMENT_POSITION_FOLLOWING")
    # Hover a point: the legend gives its success rate and round-trip score.
    region = sorted(expected)[0]
    t, score = expected[region][len(expected[region]) // 2]
    point = next(p for p in history[first][region] if p["t"] == t)
    page.locator("#chart-score").scroll_into_view_if_needed()
    x = page.evaluate("(t) => { const u = document.querySelector('#chart-score').uplot; const r = u.over.getBoundingClientRect(); return [r.left + u.valToPos(t, 'x'), r.top + r.height / 2]; }", t)
    page.mouse.move(x[0], x[1])
    page.wait_for_function("document.querySelectorAll('#chart-score .u-legend .u-series')[1].innerText.includes('success')")
    legend = page.locator("#chart-score .u-legend .u-series").nth(1).inner_text()
    assert region in legend and f"{score:.4f}" in legend, legend
    assert f"success {point['success_rate'] * 100:.1f} %" in legend and f"round trip {point['round_trip_score']:.4f}" in legend, legend
    shot(page, "orchestrator-score-history-desktop")


def test_the_score_chart_of_an_empty_window_says_so(page, base):
    open_orchestrator(page, base, window="custom", since="978307200", until="978393600")
    wait_view(page, ("empty", "ready"))
    page.wait_for_selector("#chart-score[data-state='empty']")
    src, query = source_query(page, "#chart-score")
    assert query["interval"] == "1h"
    assert api(src) == (200, {})
    assert "No tests in this window" in page.inner_text("#chart-score")


def test_the_score_chart_shows_the_routes_refusal(page, base):
    # The page's request goes to the route with an interval it refuses: its real 400.
    refused = []

    def bad_interval(route):
        url = re.sub(r"interval=[^&]*", "interval=7h", route.request.url)
        refused.append(url)
        route.continue_(url=url)

    page.route("**/api/score_history*", bad_interval)
    open_orchestrator(page, base)
    wait_view(page)
    page.wait_for_selector("#chart-score[data-state]", state="attached")
    assert page.get_attribute("#chart-score", "data-state") == "error", page.inner_text("#chart-score")
    assert refused
    status, body = api(refused[-1][len(base):])
    assert status == 400 and "invalid interval" in body["error"], (status, body)
    assert page.get_attribute("#chart-score .message", "data-status") == "400"
    assert body["error"] in page.inner_text("#chart-score")
    # The rest of the page stands.
    page.wait_for_selector("#chart-rtt[data-drawn='true']")
    page.locator("#history-h").scroll_into_view_if_needed()
    shot(page, "orchestrator-score-refused-desktop")


def test_the_ai_testers_orchestrator_lists_its_error(page, base):
    query = urllib.parse.urlencode({"o": AI["orchestrator"], "job": "ai", "pipeline": AI["pipeline"], "model": AI["model"]})
    page.goto(f"{base}/?{query}")
    wait_view(page)
    page.wait_for_selector("#chart-rtt[data-drawn='true']")
    assert page.evaluate(INK_JS, "#chart-rtt") > 0
    codes = page.eval_on_selector_all("#errors tbody tr", "trs => trs.map(tr => tr.dataset.code)")
    assert AI["errors"][0]["error_code"] in codes
    status, scores = api(page.get_attribute("#scores", "data-source"))
    assert status == 200 and AI["region"] in scores[AI["orchestrator"]]


def test_an_unknown_orchestrator_says_so(page, base):
    unknown = "0x" + "de" * 20
    page.goto(f"{base}/?o={unknown}")
    assert wait_view(page, ("unknown",)) == "unknown"
    text = page.inner_text("#view")
    assert "Unknown orchestrator" in text and unknown in text
    assert api(f"/api/raw_stats?orchestrator={unknown}") == (200, {})
    shot(page, "unknown-orchestrator-desktop")


def test_a_refused_request_shows_the_services_message(page, base):
    # A NUL in the address: the API answers 400 and says why.
    page.goto(f"{base}/?o=0xab%00cd")
    assert wait_view(page, ("error",)) == "error"
    assert page.get_attribute("#view .message", "data-status") == "400"
    assert "NUL" in page.inner_text("#view")
    assert page.query_selector("#retry")


def test_no_request_leaves_the_local_server(page, base):
    page.goto(base + "/")
    wait_view(page)
    page.select_option("select[name=job]", "ai")
    wait_view(page)
    origin = urllib.parse.urlsplit(base)
    seen = [u for u in REQUESTS if not u.startswith("data:")]
    assert any("/api/aggregated_stats" in u for u in seen) and any("/vendor/uplot-" in u for u in seen), seen[:20]
    away = [u for u in seen if (urllib.parse.urlsplit(u).scheme, urllib.parse.urlsplit(u).netloc) != (origin.scheme, origin.netloc)]
    assert not away, away
    assert re.search(r"/js/app\.js$", " ".join(seen)) or any(u.endswith("/js/app.js") for u in seen)
