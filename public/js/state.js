// The view's state lives in the URL's query string, so every view can be linked, reloaded,
// and walked through with back/forward. Unknown or broken values fall back to defaults.

export const WINDOWS = { '1h': 3600, '24h': 86400, '7d': 7 * 86400 };
export const SORT_KEYS = ['orchestrator', 'regions', 'score', 'change', 'success_rate', 'round_trip_score'];

const DEFAULTS = {
  o: '', // orchestrator page when set
  job: 'transcoding',
  pipeline: '',
  model: '',
  region: '', // '' = all regions
  window: '24h',
  since: '', // custom window only, Unix seconds
  until: '',
  sort: 'score',
  dir: 'desc',
  q: '',
};

export function parseState(search = location.search) {
  const p = new URLSearchParams(search);
  const s = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS)) {
    const v = p.get(key);
    if (v !== null) s[key] = v.trim();
  }
  s.o = s.o.toLowerCase();
  s.region = s.region.toUpperCase();
  if (s.job !== 'ai') s.job = 'transcoding';
  if (s.job !== 'ai') {
    s.pipeline = '';
    s.model = '';
  }
  if (!(s.window in WINDOWS) && s.window !== 'custom') s.window = DEFAULTS.window;
  if (s.window === 'custom') {
    if (!isNumber(s.since)) s.since = '';
    if (!isNumber(s.until)) s.until = '';
  } else {
    s.since = '';
    s.until = '';
  }
  if (!SORT_KEYS.includes(s.sort)) s.sort = DEFAULTS.sort;
  if (s.dir !== 'asc') s.dir = 'desc';
  return s;
}

function isNumber(v) {
  return v !== '' && Number.isFinite(Number(v));
}

/** `?…` of a state, leaving out what equals the default. */
export function stateQuery(s) {
  const p = new URLSearchParams();
  for (const [key, def] of Object.entries(DEFAULTS)) {
    if (s[key] !== undefined && s[key] !== def && s[key] !== '') p.set(key, s[key]);
  }
  const qs = p.toString();
  return qs ? `?${qs}` : location.pathname;
}

/** The API's `since`/`until` of the state's window, as of `now` (ms). */
export function windowBounds(s, now = Date.now()) {
  if (s.window === 'custom') {
    return { since: s.since, until: s.until };
  }
  return { since: String(Math.floor(now / 1000) - WINDOWS[s.window]), until: '' };
}

/** The window in words, for headings and empty-window messages. */
export function windowLabel(s, bounds, fmt) {
  if (s.window === '1h') return 'the last hour';
  if (s.window === '24h') return 'the last 24 hours';
  if (s.window === '7d') return 'the last 7 days';
  const from = bounds.since ? fmt(Number(bounds.since)) : 'the beginning';
  const to = bounds.until ? fmt(Number(bounds.until)) : 'now';
  return `${from} – ${to}`;
}

/** Parameters for the job type: AI needs both pipeline and model. */
export function jobParams(s) {
  return s.job === 'ai' ? { pipeline: s.pipeline, model: s.model } : {};
}

/**
 * The `interval` of /api/score_history for a window (`since`/`until` as windowBounds gives
 * them): up to 2 days 1h, up to 14 days 6h, longer 1d. No start: the service's default, 7 days.
 */
export function historyInterval(bounds, now = Date.now()) {
  const until = bounds.until === '' || bounds.until === undefined ? Math.floor(now / 1000) : Number(bounds.until);
  const since = bounds.since === '' || bounds.since === undefined ? until - 7 * 86400 : Number(bounds.since);
  const span = until - since;
  if (span <= 2 * 86400) return '1h';
  if (span <= 14 * 86400) return '6h';
  return '1d';
}

/**
 * The window of the same length just before this one (`bounds` as windowBounds gives them),
 * for the leaderboard's change column; null when the window has no start.
 */
export function previousBounds(s, bounds, now = Date.now()) {
  if (bounds.since === '' || bounds.since === undefined) return null;
  const since = Number(bounds.since);
  const length = s.window in WINDOWS ? WINDOWS[s.window] : (bounds.until === '' ? Math.floor(now / 1000) : Number(bounds.until)) - since;
  if (!Number.isFinite(length) || length <= 0) return null;
  return { since: String(since - length), until: String(since) };
}
