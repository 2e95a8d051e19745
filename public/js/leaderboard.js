// The leaderboard: /api/aggregated_stats for the job type, region and window, one row per
// orchestrator ranked by the mean of its regions' scores (the Explorer's "global" score),
// each expanding to its per-region scores, with the change of score against the window of
// the same length before it; sortable by any column and searchable by address.
import { escapeHtml, fixed4, percent, count, signed4 } from './format.js';

const COLUMNS = [
  { key: 'orchestrator', label: 'Orchestrator', numeric: false },
  { key: 'regions', label: 'Regions', numeric: true, fmt: count },
  { key: 'score', label: 'Score', numeric: true, fmt: fixed4 },
  { key: 'change', label: 'Change', numeric: true, fmt: signed4 },
  { key: 'success_rate', label: 'Success rate', numeric: true, fmt: percent },
  { key: 'round_trip_score', label: 'Round-trip score', numeric: true, fmt: fixed4 },
];
const KEYS = ['score', 'success_rate', 'round_trip_score'];

// Expanded orchestrators, kept while the page lives (sorting and searching re-render).
const expanded = new Set();

/** The mean of the numbers of `values` (in their order), null when there is none. */
function mean(values) {
  const numbers = values.filter((v) => typeof v === 'number' && Number.isFinite(v));
  if (numbers.length === 0) return null;
  let sum = 0;
  for (const v of numbers) sum += v;
  return sum / numbers.length;
}

/** Score now minus score before; null when either is missing (no tests before: new). */
function change(now, before) {
  return typeof now === 'number' && typeof before === 'number' ? now - before : null;
}

/** An orchestrator's mean score over its regions in an answer, null when it has none. */
function meanScore(regions) {
  const list = Object.values(regions || {});
  return list.length ? mean(list.map((v) => v.score)) : null;
}

/**
 * The API's answer as rows, one per orchestrator: {orchestrator, regions (count), score,
 * success_rate, round_trip_score (each the mean over its regions, in the answer's order),
 * change (of the mean score against `previous`, the answer for the window before; null
 * without one), perRegion: [{region, score, success_rate, round_trip_score, change}]}.
 */
export function toRows(stats, previous) {
  const rows = [];
  for (const [orchestrator, regions] of Object.entries(stats)) {
    const before = previous ? previous[orchestrator] : undefined;
    const perRegion = Object.entries(regions || {}).map(([region, v]) => ({
      region,
      score: v.score,
      success_rate: v.success_rate,
      round_trip_score: v.round_trip_score,
      change: change(v.score, before?.[region]?.score),
    }));
    if (perRegion.length === 0) continue;
    const row = { orchestrator, regions: perRegion.length, perRegion };
    for (const key of KEYS) row[key] = mean(perRegion.map((r) => r[key]));
    row.change = change(row.score, meanScore(before));
    rows.push(row);
  }
  return rows;
}

/** Sorted by `key` in `dir`, ties by address; a missing value (no change: new) goes last either way. */
export function sortRows(rows, key, dir) {
  const sign = dir === 'asc' ? 1 : -1;
  const cmp = (a, b) => (a === b ? 0 : a < b ? -1 : 1);
  const missing = (v) => v === null || v === undefined;
  return rows.slice().sort((a, b) => {
    const x = a[key];
    const y = b[key];
    if (missing(x) || missing(y)) return missing(x) === missing(y) ? cmp(a.orchestrator, b.orchestrator) : missing(x) ? 1 : -1;
    return sign * cmp(x, y) || cmp(a.orchestrator, b.orchestrator);
  });
}

/**
 * Renders the table into `view`. `ctx` carries the state, the API URL the numbers came
 * from (data-source, so anyone can fetch the same), the region names and callbacks.
 */
export function renderLeaderboard(view, ctx) {
  const { state, rows, source, previousSource, heading, regionNames, onSort, onSearch, linkTo } = ctx;
  const q = state.q.toLowerCase();
  const shown = sortRows(q ? rows.filter((r) => r.orchestrator.includes(q)) : rows, state.sort, state.dir);
  const regionCount = new Set(rows.flatMap((r) => r.perRegion.map((p) => p.region))).size;
  const basis = state.region
    ? `Scores in ${escapeHtml(state.region)} only.`
    : 'Each orchestrator’s numbers are the mean over its regions (the Explorer’s “global” score); expand a row for its regions.';
  const comparison = previousSource
    ? ' Change: the score against the window of the same length just before this one (“new”: no tests in it).'
    : ' Change: this window has no start, so there is nothing to compare it with.';

  view.innerHTML = `
    <h1 id="view-title">${escapeHtml(heading)}</h1>
    <div class="toolbar">
      <label class="search">Search by address
        <input id="search" type="search" inputmode="search" autocomplete="off" spellcheck="false"
               placeholder="0x…" value="${escapeHtml(state.q)}" aria-describedby="summary">
      </label>
      <p id="summary" class="summary" aria-live="polite"></p>
    </div>
    <p class="muted hint">${basis}${comparison}</p>
    <div class="table-wrap" tabindex="0" role="region" aria-labelledby="view-title">
      <table id="leaderboard" data-source="${escapeHtml(source)}" data-previous-source="${escapeHtml(previousSource)}">
        <thead><tr><th scope="col" class="rank">#</th>${COLUMNS.map((c) => header(c, state)).join('')}</tr></thead>
        <tbody></tbody>
      </table>
    </div>`;

  const tbody = view.querySelector('tbody');
  const summary = view.querySelector('#summary');
  const fill = (list) => {
    tbody.innerHTML = list.map((r, i) => row(r, i + 1, regionNames, linkTo, Boolean(previousSource))).join('');
    summary.textContent =
      list.length === rows.length
        ? `${count(rows.length)} orchestrators in ${count(regionCount)} regions`
        : `${count(list.length)} of ${count(rows.length)} orchestrators match “${state.q}”`;
    if (list.length === 0) {
      tbody.innerHTML = `<tr><td colspan="${COLUMNS.length + 1}" class="empty">No orchestrator address contains “${escapeHtml(state.q)}”.</td></tr>`;
    }
  };
  fill(shown);

  view.querySelectorAll('th button').forEach((b) => b.addEventListener('click', () => onSort(b.dataset.key)));
  tbody.addEventListener('click', (e) => {
    const button = e.target.closest('button.expand');
    if (!button) return;
    const o = button.dataset.orchestrator;
    const open = button.getAttribute('aria-expanded') !== 'true';
    if (open) expanded.add(o);
    else expanded.delete(o);
    button.setAttribute('aria-expanded', String(open));
    tbody.querySelectorAll('tr.region-row').forEach((tr) => {
      if (tr.dataset.orchestrator === o) tr.hidden = !open;
    });
  });
  const search = view.querySelector('#search');
  search.addEventListener('input', () => {
    const value = search.value.trim().toLowerCase();
    onSearch(value);
    fill(sortRows(value ? rows.filter((r) => r.orchestrator.includes(value)) : rows, state.sort, state.dir));
  });
}

function header(c, state) {
  const active = state.sort === c.key;
  const sort = active ? (state.dir === 'asc' ? 'ascending' : 'descending') : 'none';
  const arrow = active ? (state.dir === 'asc' ? '▲' : '▼') : '';
  return `<th scope="col" aria-sort="${sort}" class="${c.numeric ? 'num' : ''}">
    <button type="button" data-key="${c.key}" title="Sort by ${c.label.toLowerCase()}">${c.label}<span class="arrow" aria-hidden="true">${arrow}</span></button></th>`;
}

function cells(r, compared) {
  return COLUMNS.filter((c) => c.numeric && c.key !== 'regions')
    .map((c) => {
      if (c.key !== 'change') return `<td class="num" data-key="${c.key}" data-value="${r[c.key]}">${c.fmt(r[c.key])}</td>`;
      if (r.change === null) return `<td class="num change" data-key="change" data-value="">${compared ? '<span class="muted" title="No tests in the previous window">new</span>' : '–'}</td>`;
      const trend = r.change > 0 ? 'up' : r.change < 0 ? 'down' : 'flat';
      return `<td class="num change ${trend}" data-key="change" data-value="${r.change}">${c.fmt(r.change)}</td>`;
    })
    .join('');
}

function row(r, rank, regionNames, linkTo, compared) {
  const open = expanded.has(r.orchestrator);
  const perRegion = r.perRegion
    .slice()
    .sort((a, b) => (a.region < b.region ? -1 : 1))
    .map(
      (p) => `<tr class="region-row" data-orchestrator="${escapeHtml(r.orchestrator)}" data-region="${escapeHtml(p.region)}"${open ? '' : ' hidden'}>
    <td></td><td class="region" title="${escapeHtml(regionNames.get(p.region) || p.region)}">${escapeHtml(p.region)} <span class="muted">${escapeHtml(regionNames.get(p.region) || '')}</span></td><td></td>
    ${cells(p, compared)}
  </tr>`,
    )
    .join('');
  return `<tr class="orch-row" data-orchestrator="${escapeHtml(r.orchestrator)}">
    <td class="num rank">${rank}</td>
    <td class="addr"><a href="${escapeHtml(linkTo(r.orchestrator))}" data-nav>${escapeHtml(r.orchestrator)}</a></td>
    <td class="num" data-key="regions" data-value="${r.regions}"><button type="button" class="expand" data-orchestrator="${escapeHtml(r.orchestrator)}" aria-expanded="${open}" title="Show the scores per region"><span class="arrow" aria-hidden="true"></span>${count(r.regions)}</button></td>
    ${cells(r, compared)}
  </tr>${perRegion}`;
}
