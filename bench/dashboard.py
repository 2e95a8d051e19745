"""bench/dashboard.sh's driver: loads the dashboard in headless chromium (HTTP cache off) and
prints what the page itself measured with the Performance API. No pass/fail on timing."""

import json
import os
import statistics
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "browser"))
from browser import Browser  # noqa: E402

BASE = os.environ["DASHBOARD_URL"].rstrip("/")
RUNS = int(os.environ.get("RUNS", "5"))

TIMING_JS = """(api) => {
  const nav = performance.getEntriesByType('navigation')[0];
  const mark = performance.getEntriesByName('leaderboard-painted')[0];
  const res = performance.getEntriesByType('resource').filter(r => r.name.includes(api)).pop();
  return {
    painted: mark ? mark.startTime : null,
    domContentLoaded: nav ? nav.domContentLoadedEventEnd : null,
    api: res ? res.responseEnd - res.requestStart : null,
    apiBytes: res ? res.encodedBodySize : null,
    rows: document.querySelectorAll('#leaderboard tbody tr.orch-row').length,
  };
}"""

CHART_JS = """async () => {
  const el = document.querySelector('#chart-rtt');
  const u = el.uplot;
  const draw = performance.getEntriesByName('chart:rtt')[0];
  const res = performance.getEntriesByType('resource').filter(r => r.name.includes('/api/raw_stats')).pop();
  const xs = u.data[0];
  const min = xs[0], max = xs[xs.length - 1];
  // 30 zoom steps, one per frame: the time per frame while the chart redraws.
  const frames = [];
  let last = performance.now();
  for (let i = 1; i <= 30; i++) {
    const f = i / 40;
    u.setScale('x', { min: min + (max - min) * f / 2, max: max - (max - min) * f / 2 });
    await new Promise(r => requestAnimationFrame(r));
    const now = performance.now();
    frames.push(now - last);
    last = now;
  }
  return {
    points: Number(el.dataset.points),
    series: u.series.length - 1,
    firstDraw: draw ? draw.duration : null,
    drawnAt: draw ? draw.startTime + draw.duration : null,
    rawApi: res ? res.responseEnd - res.requestStart : null,
    rawBytes: res ? res.encodedBodySize : null,
    frames,
  };
}"""


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


def fresh_page(browser, viewport):
    page = browser.context.new_page()
    page.set_viewport_size(viewport)
    cdp = browser.context.new_cdp_session(page)
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    page.set_default_timeout(60000)
    return page


def main():
    with urllib.request.urlopen(BASE + "/api/health", timeout=30) as r:
        json.load(r)
    browser = Browser()
    try:
        # Warm the server (its first query after start plans and caches).
        page = fresh_page(browser, {"width": 1280, "height": 900})
        page.goto(BASE + "/")
        page.wait_for_selector("#view[data-state='ready']")
        page.close()

        for label, path, viewport in [
            ("leaderboard, transcoding, all regions, 24 h", "/", {"width": 1280, "height": 900}),
            ("leaderboard, transcoding, all regions, 24 h, phone", "/", {"width": 390, "height": 844}),
            ("leaderboard, transcoding, FRA, 24 h", "/?region=FRA", {"width": 1280, "height": 900}),
            ("leaderboard, transcoding, all regions, 1 h", "/?window=1h", {"width": 1280, "height": 900}),
        ]:
            results = []
            for _ in range(RUNS):
                page = fresh_page(browser, viewport)
                page.goto(BASE + path)
                page.wait_for_selector("#view[data-state='ready']")
                page.wait_for_function("performance.getEntriesByName('leaderboard-painted').length > 0")
                results.append(page.evaluate(TIMING_JS, "/api/aggregated_stats"))
                page.close()
            r = results[0]
            print(
                f"{label}: navigation to table painted median {median([x['painted'] for x in results]):.0f} ms "
                f"(min {min(x['painted'] for x in results):.0f}, max {max(x['painted'] for x in results):.0f}; "
                f"of which aggregated_stats {median([x['api'] for x in results]):.0f} ms, "
                f"{r['apiBytes'] / 1024:.0f} KiB, {r['rows']} rows; DOMContentLoaded {median([x['domContentLoaded'] for x in results]):.0f} ms) over {RUNS} loads"
            )

        # The orchestrator with the most tests: its round-trip chart.
        with urllib.request.urlopen(BASE + "/api/aggregated_stats", timeout=60) as r:
            first = sorted(json.load(r))[0]
        charts = []
        for _ in range(RUNS):
            page = fresh_page(browser, {"width": 1280, "height": 900})
            page.goto(f"{BASE}/?o={first}")
            page.wait_for_selector("#chart-rtt[data-drawn='true']")
            charts.append(page.evaluate(CHART_JS))
            page.close()
        c = charts[0]
        frames = [f for x in charts for f in x["frames"]]
        print(
            f"orchestrator page ({first[:10]}…): round-trip chart of {c['points']} points in {c['series']} series: "
            f"first draw median {median([x['firstDraw'] for x in charts]):.1f} ms, zooming {statistics.mean(frames):.1f} ms per frame "
            f"(p95 {sorted(frames)[int(len(frames) * 0.95)]:.1f} ms); on screen {median([x['drawnAt'] for x in charts]):.0f} ms "
            f"after navigation (raw_stats {median([x['rawApi'] for x in charts]):.0f} ms, {c['rawBytes'] / 1024:.0f} KiB) over {RUNS} loads"
        )
    finally:
        browser.close()


if __name__ == "__main__":
    main()
