// The leaderboard: /api/aggregated_stats for the job type, region and window, one row per
// orchestrator and region, sortable by any column and searchable by address.
import { escapeHtml, fixed4, percent, count } from './format.js';

const COLUMNS = [
  { key: 'orchestrator', label: 'Orchestrator', numeric: false },
  { key: 'region', label: 'Region', numeric: false },
  { key: 'score', label: 'Score', numeric: true, fmt: fixed4 },
  { key: 'success_rate', label: 'Success rate', numeric: true, fmt: percent },
  { key: 'round_trip_score', label: 'Round-trip score', numeric: true, fmt: fixed4 },
];

/** The API's answer as rows: {orchestrator, region, score, success_rate, round_trip_score}. */
export function toRows(stats) {
  const rows = [];
  for (const [orchestrator, regions] of Object.entries(stats)) {
    for (const [region, v] of Object.entries(regions || {})) {
      rows.push({ orchestrator, region, score: v.score, success_rate: v.success_rate, round_trip_score: v.round_trip_score });
    }
  }
  return rows;
}

export function sortRows(rows, key, dir) {
  const sign = dir === 'asc' ? 1 : -1;
  const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
  return rows.slice().sort((a, b) => sign * cmp(a[key], b[key]) || cmp(a.orchestrator, b.orchestrator) || cmp(a.region, b.region));
}

/**
 * Renders the table into `view`. `ctx` carries the state, the API URL the numbers came
 * from (data-source, so anyone can fetch the same), the region names and callbacks.
 */
export function renderLeaderboard(view, ctx) {
  const { state, rows, source, heading, regionNames, onSort, onSearch, linkTo } = ctx;
  const q = state.q.toLowerCase();
  const shown = sortRows(q ? rows.filter((r) => r.orchestrator.includes(q)) : rows, state.sort, state.dir);
  const orchestrators = new Set(rows.map((r) => r.orchestrator)).size;

  view.innerHTML = `
    <h1 id="view-title">${escapeHtml(heading)}</h1>
    <div class="toolbar">
      <label class="search">Search by address
        <input id="search" type="search" inputmode="search" autocomplete="off" spellcheck="false"
               placeholder="0x…" value="${escapeHtml(state.q)}" aria-describedby="summary">
      </label>
      <p id="summary" class="summary" aria-live="polite"></p>
    </div>
    <div class="table-wrap" tabindex="0" role="region" aria-labelledby="view-title">
      <table id="leaderboard" data-source="${escapeHtml(source)}">
        <thead><tr>${COLUMNS.map((c) => header(c, state)).join('')}</tr></thead>
        <tbody></tbody>
      </table>
    </div>`;

  const tbody = view.querySelector('tbody');
  const summary = view.querySelector('#summary');
  const fill = (list) => {
    tbody.innerHTML = list.map((r) => row(r, regionNames, linkTo)).join('');
    summary.textContent =
      list.length === rows.length
        ? `${count(orchestrators)} orchestrators, ${count(rows.length)} rows`
        : `${count(list.length)} of ${count(rows.length)} rows match “${state.q}”`;
    if (list.length === 0) {
      tbody.innerHTML = `<tr><td colspan="${COLUMNS.length}" class="empty">No orchestrator address contains “${escapeHtml(state.q)}”.</td></tr>`;
    }
  };
  fill(shown);

  view.querySelectorAll('th button').forEach((b) => b.addEventListener('click', () => onSort(b.dataset.key)));
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

function row(r, regionNames, linkTo) {
  const name = regionNames.get(r.region);
  return `<tr data-orchestrator="${escapeHtml(r.orchestrator)}" data-region="${escapeHtml(r.region)}">
    <td class="addr"><a href="${escapeHtml(linkTo(r.orchestrator))}" data-nav>${escapeHtml(r.orchestrator)}</a></td>
    <td class="region" title="${escapeHtml(name || r.region)}">${escapeHtml(r.region)}</td>
    ${COLUMNS.filter((c) => c.numeric)
      .map((c) => `<td class="num" data-key="${c.key}" data-value="${r[c.key]}">${c.fmt(r[c.key])}</td>`)
      .join('')}
  </tr>`;
}
