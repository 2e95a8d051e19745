// The dashboard: state from the URL, the controls, and the two views (leaderboard and one
// orchestrator), each fetched from the service's own /api routes.
import { getJSON, apiUrl, ApiError } from './api.js';
import { parseState, stateQuery, windowBounds, windowLabel, jobParams, historyInterval, previousBounds } from './state.js';
import { escapeHtml, dateTime } from './format.js';
import { renderLeaderboard, toRows } from './leaderboard.js';
// The orchestrator page and its charts (uPlot) load on first use: the leaderboard needs neither.
let orchestratorModule = null;
import { startHealth, refreshHealth } from './health.js';

const view = document.getElementById('view');
const form = document.getElementById('controls');
const controls = {
  job: form.elements.job,
  pipeline: form.elements.pipeline,
  model: form.elements.model,
  region: form.elements.region,
  window: form.elements.window,
  since: form.elements.since,
  until: form.elements.until,
};

let state = parseState();
let inFlight = null;
let regions = null; // [{id, name, type}] once loaded
const regionNames = new Map();
let pipelines = []; // of the current window
const cache = new Map(); // data of a view, so sorting and searching refetch nothing

// ---- navigation -------------------------------------------------------------------------

function navigate(changes, { replace = false, rerender = true } = {}) {
  state = { ...state, ...changes };
  history[replace ? 'replaceState' : 'pushState'](null, '', stateQuery(state));
  state = parseState();
  return rerender ? render() : Promise.resolve();
}

window.addEventListener('popstate', () => {
  state = parseState();
  render();
});

document.addEventListener('click', (e) => {
  const a = e.target.closest('a[data-nav]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  history.pushState(null, '', a.getAttribute('href'));
  state = parseState();
  render();
  window.scrollTo(0, 0);
  document.getElementById('view-title')?.focus?.();
});

/** A link to a view: this state with `changes`. */
function linkTo(changes) {
  return stateQuery({ ...state, ...changes });
}

// ---- controls ---------------------------------------------------------------------------

function options(select, list, selected) {
  select.innerHTML = list.map(([value, label]) => `<option value="${escapeHtml(value)}"${value === selected ? ' selected' : ''}>${escapeHtml(label)}</option>`).join('');
  select.value = selected;
}

function toLocalInput(unix) {
  if (unix === '' || unix === undefined) return '';
  const d = new Date(Number(unix) * 1000);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function fromLocalInput(value) {
  if (!value) return '';
  const t = new Date(value).getTime();
  return Number.isFinite(t) ? String(Math.floor(t / 1000)) : '';
}

function syncControls() {
  controls.job.value = state.job;
  const type = state.job === 'ai' ? 'ai' : 'transcoding';
  const list = (regions || []).filter((r) => r.type === type).map((r) => [r.id, `${r.id} · ${r.name}`]);
  if (state.region && !list.some(([id]) => id === state.region)) list.push([state.region, regions ? `${state.region} (not a registered ${type} region)` : state.region]);
  options(controls.region, [['', 'All regions'], ...list], state.region);
  options(controls.window, [['1h', 'Last hour'], ['24h', 'Last 24 hours'], ['7d', 'Last 7 days'], ['custom', 'Custom range…']], state.window);
  const custom = state.window === 'custom';
  form.querySelector('.custom').hidden = !custom;
  if (custom) {
    controls.since.value = toLocalInput(state.since);
    controls.until.value = toLocalInput(state.until);
  }
  const ai = state.job === 'ai';
  form.querySelectorAll('.ai-only').forEach((el) => (el.hidden = !ai));
  if (ai) {
    const ps = pipelines.map((p) => [p.id, p.id]);
    if (state.pipeline && !ps.some(([id]) => id === state.pipeline)) ps.push([state.pipeline, `${state.pipeline} (no tests in this window)`]);
    options(controls.pipeline, ps.length ? ps : [['', 'No AI pipelines in this window']], state.pipeline);
    const models = (pipelines.find((p) => p.id === state.pipeline)?.models || []).map((m) => [m, m]);
    if (state.model && !models.some(([m]) => m === state.model)) models.push([state.model, `${state.model} (no tests in this window)`]);
    options(controls.model, models.length ? models : [['', '–']], state.model);
  }
}

controls.job.addEventListener('change', () => navigate({ job: controls.job.value, pipeline: '', model: '', region: '' }));
controls.pipeline.addEventListener('change', () => {
  const p = pipelines.find((x) => x.id === controls.pipeline.value);
  navigate({ pipeline: controls.pipeline.value, model: p?.models?.[0] || '' });
});
controls.model.addEventListener('change', () => navigate({ model: controls.model.value }));
controls.region.addEventListener('change', () => navigate({ region: controls.region.value }));
controls.window.addEventListener('change', () => {
  const w = controls.window.value;
  if (w === 'custom') {
    // Start from the window shown so far; Apply fetches.
    const b = windowBounds(state);
    const now = Math.floor(Date.now() / 1000);
    navigate({ window: 'custom', since: b.since || String(now - 86400), until: b.until || String(now) });
  } else {
    navigate({ window: w, since: '', until: '' });
  }
});
form.addEventListener('submit', (e) => {
  e.preventDefault();
  if (state.window === 'custom') navigate({ since: fromLocalInput(controls.since.value), until: fromLocalInput(controls.until.value) });
});

// ---- views ------------------------------------------------------------------------------

function setView(kind, html) {
  view.dataset.state = kind;
  if (html !== undefined) view.innerHTML = html;
}

const TITLES = {
  unavailable: 'The database is away',
  client: 'Request refused',
  server: 'The service failed',
  network: 'The service is unreachable',
  timeout: 'No answer in time',
  invalid: 'Unexpected answer',
};

function showError(e) {
  const title = TITLES[e.kind] || 'Something went wrong';
  setView(
    'error',
    `<div class="message error" role="alert" data-kind="${escapeHtml(e.kind || 'unknown')}" data-status="${e.status || 0}">
      <h1 id="view-title" tabindex="-1">${escapeHtml(title)}</h1>
      <p>${escapeHtml(e.message || String(e))}</p>
      ${e.url ? `<p class="muted">Request: <code>${escapeHtml(e.url)}</code></p>` : ''}
      <p><button type="button" id="retry">Try again</button> <a href="./" data-nav>Start over</a></p>
    </div>`,
  );
  document.getElementById('retry').addEventListener('click', () => {
    cache.clear();
    render();
  });
  refreshHealth();
}

function heading(bounds, withJob = true) {
  const job = state.job === 'ai' ? `AI · ${state.pipeline || '?'} · ${state.model || '?'}` : 'Transcoding';
  if (!withJob) return `${state.job === 'ai' ? `${state.pipeline} · ${state.model} · ` : ''}${regionPart()} · ${windowLabel(state, bounds, dateTime)}`;
  return `${job} · ${regionPart()} · ${windowLabel(state, bounds, dateTime)}`;
}

function regionPart() {
  return state.region ? `${state.region}${regionNames.has(state.region) ? ` (${regionNames.get(state.region)})` : ''}` : 'all regions';
}

async function cached(key, load) {
  const hit = cache.get(key);
  if (hit && Date.now() - hit.at < 30000) return hit.value;
  const value = await load();
  cache.set(key, { at: Date.now(), value });
  return value;
}

async function loadRegions(signal) {
  if (regions) return;
  const body = await getJSON('regions', {}, signal);
  regions = Array.isArray(body.regions) ? body.regions : [];
  for (const r of regions) regionNames.set(r.id, r.name);
}

/** AI: the pipelines of the window; picks the first pipeline and model when none is set. */
async function loadPipelines(bounds, signal) {
  const key = `pipelines ${state.window} ${state.since} ${state.until}`;
  const body = await cached(key, () => getJSON('pipelines', bounds, signal));
  pipelines = Array.isArray(body.pipelines) ? body.pipelines : [];
  if (!state.pipeline && pipelines.length) {
    navigate({ pipeline: pipelines[0].id, model: pipelines[0].models?.[0] || '' }, { replace: true, rerender: false });
  } else if (state.pipeline && !state.model) {
    const p = pipelines.find((x) => x.id === state.pipeline);
    if (p?.models?.length) navigate({ model: p.models[0] }, { replace: true, rerender: false });
  }
}

function emptyAi(bounds) {
  setView(
    'empty',
    `<div class="message empty" role="status"><h1 id="view-title" tabindex="-1">No AI tests</h1>
      <p>No AI job tests were reported in ${escapeHtml(windowLabel(state, bounds, dateTime))}, so there is no pipeline to rank. Try a longer window.</p></div>`,
  );
}

async function showLeaderboard(signal, regionsReady) {
  const bounds = windowBounds(state);
  const params = { ...jobParams(state), region: state.region, ...bounds };
  const key = `agg ${state.job} ${state.pipeline} ${state.model} ${state.region} ${state.window} ${state.since} ${state.until}`;
  // The window of the same length before it, for the change column.
  const before = previousBounds(state, bounds);
  const previousParams = before && { ...params, ...before };
  const [{ data, source, previous }] = await Promise.all([
    cached(key, async () => {
      const [now, then] = await Promise.all([getJSON('aggregated_stats', params, signal), previousParams ? getJSON('aggregated_stats', previousParams, signal) : null]);
      return { data: now, source: apiUrl('aggregated_stats', params), previous: then && { data: then, source: apiUrl('aggregated_stats', previousParams) } };
    }),
    regionsReady,
  ]);
  const rows = toRows(data, previous?.data);
  const title = `${state.job === 'ai' ? 'AI' : 'Transcoding'} leaderboard`;
  if (rows.length === 0) {
    setView(
      'empty',
      `<div class="message empty" role="status" data-source="${escapeHtml(source)}"><h1 id="view-title" tabindex="-1">No tests in this window</h1>
        <p>No ${state.job === 'ai' ? 'AI' : 'transcoding'} tests match ${escapeHtml(heading(bounds))}. Try a longer window, another region or job type.</p></div>`,
    );
    return;
  }
  renderLeaderboard(view, {
    state,
    rows,
    source,
    previousSource: previous?.source || '',
    heading: `${title}: ${heading(bounds, false)}`,
    regionNames,
    linkTo: (o) => linkTo({ o, q: '' }),
    onSort: (key) => {
      const dir = state.sort === key ? (state.dir === 'asc' ? 'desc' : 'asc') : key === 'orchestrator' ? 'asc' : 'desc';
      // Keyboard users stay on the header they pressed.
      navigate({ sort: key, dir }).then(() => view.querySelector(`th button[data-key="${key}"]`)?.focus());
    },
    onSearch: (q) => navigate({ q }, { replace: true, rerender: false }),
  });
  setView('ready');
  performance.mark('leaderboard-table');
  requestAnimationFrame(() => performance.mark('leaderboard-painted'));
}

async function showOrchestrator(signal, regionsReady) {
  const loading = import('./orchestrator.js');
  const address = state.o;
  const bounds = windowBounds(state);
  const common = { orchestrator: address, region: state.region, ...bounds };
  const scoresParams = { ...common, ...jobParams(state) };
  const rawParams = { ...common, ...(state.job === 'ai' ? { job_type: 'ai', ...jobParams(state) } : {}) };
  const historyParams = { ...scoresParams, interval: historyInterval(bounds) };
  const key = `orch ${address} ${state.job} ${state.pipeline} ${state.model} ${state.region} ${state.window} ${state.since} ${state.until}`;
  const data = await cached(key, async () => {
    const [scores, raw, top, history] = await Promise.all([
      getJSON('aggregated_stats', scoresParams, signal),
      getJSON('raw_stats', rawParams, signal),
      getJSON('top_ai_score', { orchestrator: address }, signal),
      // A refused history (too many points, say) leaves the rest of the page standing.
      getJSON('score_history', historyParams, signal).then(
        (body) => ({ body }),
        (error) => {
          if (signal.aborted || !(error instanceof ApiError)) throw error;
          return { error };
        },
      ),
    ]);
    return { scores, raw, top, history };
  });
  await regionsReady;
  orchestratorModule = await loading;
  const { renderOrchestrator } = orchestratorModule;
  const { scores, raw, top } = data;
  const history = { ...data.history, interval: historyParams.interval, source: apiUrl('score_history', historyParams) };
  const nothing = Object.keys(raw).length === 0 && !scores[address];
  if (nothing) {
    // Known at all? Its transcoding stats of all time, and its AI score (default window).
    const ever = await cached(`ever ${address}`, () => getJSON('aggregated_stats', { orchestrator: address, since: 0 }, signal));
    if (!ever[address] && typeof top.value !== 'number') {
      setView(
        'unknown',
        `<div class="message empty" role="alert"><h1 id="view-title" tabindex="-1">Unknown orchestrator</h1>
          <p>The service has no stats from <code class="address">${escapeHtml(address)}</code>: no transcoding test at any time and no AI test in its default window. Check the address.</p>
          <p><a href="${escapeHtml(linkTo({ o: '' }))}" data-nav>← Back to the leaderboard</a></p></div>`,
      );
      return;
    }
  }
  renderOrchestrator(view, {
    address,
    state,
    scores,
    raw,
    top,
    history,
    regionNames,
    scoresSource: apiUrl('aggregated_stats', scoresParams),
    rawSource: apiUrl('raw_stats', rawParams),
    heading: heading(bounds),
    backLink: linkTo({ o: '' }),
  });
  if (nothing) {
    view.querySelector('.subtitle')?.insertAdjacentHTML(
      'afterend',
      `<p class="message empty" role="status">No tests from this orchestrator in ${escapeHtml(windowLabel(state, bounds, dateTime))}; it has stats at other times. Try a longer window${state.window === '7d' ? ' (a custom range)' : ''}.</p>`,
    );
  }
  setView(nothing ? 'empty' : 'ready');
}

async function render() {
  inFlight?.abort();
  const ctl = new AbortController();
  inFlight = ctl;
  orchestratorModule?.destroyCharts();
  document.title = state.o ? `${state.o} · Livepeer Leaderboard` : 'Livepeer Leaderboard';
  syncControls();
  setView('loading', '<p class="message loading" role="status"><span class="spinner" aria-hidden="true"></span>Loading…</p>');
  try {
    // Region names are fetched alongside the view's data, not before it.
    const regionsReady = loadRegions(ctl.signal).then(() => ctl.signal.aborted || syncControls());
    regionsReady.catch(() => {}); // reported by the view that awaits it
    const bounds = windowBounds(state);
    if (state.job === 'ai') {
      await loadPipelines(bounds, ctl.signal);
      syncControls();
      if (!state.pipeline || !state.model) {
        await regionsReady;
        emptyAi(bounds);
        return;
      }
    }
    if (state.o) await showOrchestrator(ctl.signal, regionsReady);
    else await showLeaderboard(ctl.signal, regionsReady);
  } catch (e) {
    if (ctl.signal.aborted) return;
    console.error(e);
    showError(e);
  }
}

startHealth(document.getElementById('health'));
render();
