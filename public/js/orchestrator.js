// One orchestrator: its scores per region, its top AI score, its score over time per region
// (/api/score_history), and charts over time of its raw stats (round-trip time and success
// rate per region), with the errors it reported.
import { escapeHtml, fixed4, percent, dateTime, count } from './format.js';
import { timeChart, destroyCharts } from './charts.js';

export { destroyCharts };

const SUCCESS_BUCKETS = 48;

/** An unscored test (neither success rate nor round trip) is drawn nowhere, as the API
 * counts it nowhere; its errors still show in the table. */
const scored = (s) => s.success_rate != null || s.round_trip_time != null;

/** {REGION: [stat, …] newest first} → per region, oldest first, with a usable time. */
export function seriesByRegion(raw) {
  const out = [];
  for (const region of Object.keys(raw).sort()) {
    const stats = (raw[region] || []).filter((s) => s && Number.isFinite(s.timestamp)).slice().reverse();
    if (stats.length) out.push({ region, stats });
  }
  return out;
}

/** Success rate averaged per time bucket, so a run of 0/1 results reads as a rate. */
function successSeries(regions, from, to) {
  const span = Math.max(1, to - from);
  const width = span / SUCCESS_BUCKETS;
  return regions.map(({ region, stats }) => {
    const sums = new Map();
    for (const s of stats.filter(scored)) {
      const b = Math.min(SUCCESS_BUCKETS - 1, Math.max(0, Math.floor((s.timestamp - from) / width)));
      const e = sums.get(b) || [0, 0];
      e[0] += Number(s.success_rate) || 0;
      e[1] += 1;
      sums.set(b, e);
    }
    const keys = [...sums.keys()].sort((a, b) => a - b);
    return { label: region, xs: keys.map((b) => from + (b + 0.5) * width), ys: keys.map((b) => sums.get(b)[0] / sums.get(b)[1]) };
  });
}

/** Errors by error_code: total count, tests reporting it, regions, last time and message. */
export function errorTable(regions) {
  const byCode = new Map();
  for (const { region, stats } of regions) {
    for (const s of stats) {
      for (const e of Array.isArray(s.errors) ? s.errors : []) {
        if (!e || typeof e.error_code !== 'string') continue;
        const row = byCode.get(e.error_code) || { code: e.error_code, count: 0, tests: 0, regions: new Set(), last: 0, message: '' };
        row.count += Number.isFinite(e.count) ? e.count : 1;
        row.tests += 1;
        row.regions.add(region);
        if (s.timestamp >= row.last) {
          row.last = s.timestamp;
          if (e.message) row.message = e.message;
        }
        byCode.set(e.error_code, row);
      }
    }
  }
  return [...byCode.values()].sort((a, b) => b.count - a.count || (a.code < b.code ? -1 : 1));
}

export function renderOrchestrator(view, ctx) {
  const { address, state, scores, scoresSource, rawSource, raw, top, history, regionNames, heading, backLink } = ctx;
  const regions = seriesByRegion(raw);
  const tests = regions.reduce((n, r) => n + r.stats.length, 0);
  const scoreRows = Object.entries(scores[address] || {}).sort(([a], [b]) => (a < b ? -1 : 1));
  const errors = errorTable(regions);
  const from = regions.length ? Math.min(...regions.map((r) => r.stats[0].timestamp)) : 0;
  const to = regions.length ? Math.max(...regions.map((r) => r.stats[r.stats.length - 1].timestamp)) : 0;

  view.innerHTML = `
    <p><a href="${escapeHtml(backLink)}" data-nav>← Back to the leaderboard</a></p>
    <h1 id="view-title" class="address">${escapeHtml(address)}</h1>
    <p class="subtitle">${escapeHtml(heading)} · ${count(tests)} tests in ${regions.length} regions</p>
    <div class="cards">
      <section class="card" aria-labelledby="top-ai">
        <h2 id="top-ai">Top AI score</h2>
        ${topCard(top)}
      </section>
    </div>
    <section aria-labelledby="scores-h">
      <h2 id="scores-h">Scores per region</h2>
      ${
        scoreRows.length
          ? `<div class="table-wrap" tabindex="0" role="region" aria-labelledby="scores-h"><table id="scores" data-source="${escapeHtml(scoresSource)}">
        <thead><tr><th scope="col">Region</th><th scope="col" class="num">Score</th><th scope="col" class="num">Success rate</th><th scope="col" class="num">Round-trip score</th></tr></thead>
        <tbody>${scoreRows
          .map(
            ([region, v]) => `<tr data-region="${escapeHtml(region)}"><td title="${escapeHtml(regionNames.get(region) || region)}">${escapeHtml(region)} <span class="muted">${escapeHtml(regionNames.get(region) || '')}</span></td>
            <td class="num" data-key="score" data-value="${v.score}">${fixed4(v.score)}</td>
            <td class="num" data-key="success_rate" data-value="${v.success_rate}">${percent(v.success_rate)}</td>
            <td class="num" data-key="round_trip_score" data-value="${v.round_trip_score}">${fixed4(v.round_trip_score)}</td></tr>`,
          )
          .join('')}</tbody></table></div>`
          : `<p class="message empty">No ${state.job === 'ai' ? 'AI' : 'transcoding'} scores for this orchestrator in this window.</p>`
      }
    </section>
    <section aria-labelledby="history-h">
      <h2 id="history-h">Score over time per region <span class="muted">(one point per ${escapeHtml(INTERVAL_WORDS[history.interval] || history.interval)})</span></h2>
      <p class="muted hint">Each point is the score of the tests in its ${escapeHtml(INTERVAL_WORDS[history.interval] || history.interval)}; hover a point for its success rate and round-trip score.</p>
      <div id="chart-score" class="chart" data-source="${escapeHtml(history.source)}" data-interval="${escapeHtml(history.interval)}"></div>
    </section>
    <section aria-labelledby="rtt-h">
      <h2 id="rtt-h">Round-trip time per region</h2>
      <p class="muted hint">One point per test. Click a region in a legend to hide or show it; drag across a chart to zoom, double-click to zoom out.</p>
      <div id="chart-rtt" class="chart" data-source="${escapeHtml(rawSource)}"></div>
    </section>
    <section aria-labelledby="sr-h">
      <h2 id="sr-h">Success rate per region <span class="muted">(average per ${bucketWords(from, to)})</span></h2>
      <div id="chart-success" class="chart"></div>
    </section>
    <section aria-labelledby="errors-h">
      <h2 id="errors-h">Errors reported</h2>
      ${
        errors.length
          ? `<div class="table-wrap" tabindex="0" role="region" aria-labelledby="errors-h"><table id="errors">
        <thead><tr><th scope="col">Error code</th><th scope="col" class="num">Count</th><th scope="col" class="num">Tests</th><th scope="col">Regions</th><th scope="col">Last seen</th><th scope="col">Last message</th></tr></thead>
        <tbody>${errors
          .map(
            (e) => `<tr data-code="${escapeHtml(e.code)}"><td><code>${escapeHtml(e.code)}</code></td><td class="num" data-value="${e.count}">${count(e.count)}</td><td class="num">${count(e.tests)}</td>
            <td>${escapeHtml([...e.regions].sort().join(', '))}</td><td>${escapeHtml(dateTime(e.last))}</td><td class="msg">${escapeHtml(e.message)}</td></tr>`,
          )
          .join('')}</tbody></table></div>`
          : `<p class="message ok">No errors reported in this window.</p>`
      }
    </section>`;

  drawHistory(view.querySelector('#chart-score'), history, address);
  if (regions.length === 0) {
    for (const id of ['chart-rtt', 'chart-success']) {
      view.querySelector(`#${id}`).innerHTML = '<p class="message empty">No tests in this window to draw.</p>';
    }
    return;
  }
  const rtt = regions.map(({ region, stats }) => ({
    label: region,
    xs: stats.filter(scored).map((s) => s.timestamp),
    ys: stats.filter(scored).map((s) => Number(s.round_trip_time) || 0),
  }));
  timeChart(view.querySelector('#chart-rtt'), { series: rtt, yLabel: 'seconds', yFormat: (v) => `${+v.toFixed(2)} s`, lines: false, name: 'rtt' });
  timeChart(view.querySelector('#chart-success'), {
    series: successSeries(regions, from, to),
    yLabel: 'success rate',
    yRange: [0, 1],
    yFormat: (v) => `${Math.round(v * 100)} %`,
    name: 'success',
  });
}

const INTERVAL_WORDS = { '1h': 'hour', '6h': '6 hours', '1d': 'day' };

/** score_history's {orchestrator: {REGION: [point, …]}} → one series per region, oldest first. */
export function historySeries(body, address) {
  const regions = (body && body[address]) || {};
  return Object.keys(regions)
    .sort()
    .map((region) => {
      const points = (regions[region] || []).filter((p) => p && Number.isFinite(p.t) && typeof p.score === 'number').slice().sort((a, b) => a.t - b.t);
      return {
        label: region,
        xs: points.map((p) => p.t),
        ys: points.map((p) => p.score),
        details: points.map((p) => `success ${percent(p.success_rate)} · round trip ${fixed4(p.round_trip_score)} · ${count(p.tests)} tests`),
      };
    })
    .filter((s) => s.xs.length);
}

/** The score chart, or the route's error, or the empty window's message. */
function drawHistory(el, history, address) {
  if (history.error) {
    const e = history.error;
    el.innerHTML = `<div class="message error" role="alert" data-status="${e.status || 0}"><p>The score over time could not be loaded. ${escapeHtml(e.message || String(e))}</p></div>`;
    el.dataset.state = 'error';
    return;
  }
  const series = historySeries(history.body, address);
  if (series.length === 0) {
    el.innerHTML = '<p class="message empty" role="status">No tests in this window: no score to draw.</p>';
    el.dataset.state = 'empty';
    return;
  }
  el.dataset.state = 'ready';
  timeChart(el, { series, yLabel: 'score', yRange: [0, 1], yFormat: (v) => v.toFixed(4), name: 'score' });
}

function bucketWords(from, to) {
  const minutes = Math.max(1, Math.round((to - from) / SUCCESS_BUCKETS / 60));
  return minutes >= 120 ? `${Math.round(minutes / 60)} hours` : `${minutes} minutes`;
}

function topCard(top) {
  if (!top || typeof top.value !== 'number') {
    return '<p class="muted" id="top-ai-value">No AI tests in the service’s default window.</p>';
  }
  return `<p class="big" id="top-ai-value" data-value="${top.value}" title="${top.value}">${fixed4(top.value)}</p>
    <p>${escapeHtml(top.pipeline)} · <code>${escapeHtml(top.model)}</code> · ${escapeHtml(top.region)}</p>
    <p class="muted">Best AI group in the service’s default window (<code>/api/top_ai_score</code>).</p>`;
}

