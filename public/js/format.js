// Formatting only: the numbers themselves are the API's, kept whole in data-value.

export function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

/** A score or round-trip score in [0, 1]: four decimals. */
export function fixed4(x) {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(4) : '–';
}

/** A success rate in [0, 1] as a percentage with one decimal. */
export function percent(x) {
  return typeof x === 'number' && Number.isFinite(x) ? `${(x * 100).toFixed(1)} %` : '–';
}

/** A change of score: signed, four decimals. */
export function signed4(x) {
  if (typeof x !== 'number' || !Number.isFinite(x)) return '–';
  return `${x > 0 ? '+' : x < 0 ? '−' : '±'}${Math.abs(x).toFixed(4)}`;
}

export function seconds(x) {
  return typeof x === 'number' && Number.isFinite(x) ? `${x.toFixed(x < 10 ? 2 : 1)} s` : '–';
}

/** 0x1234…abcd for narrow places; the whole address stays in the title. */
export function shortAddress(a) {
  return a.length > 16 ? `${a.slice(0, 8)}…${a.slice(-6)}` : a;
}

export function dateTime(unixSeconds) {
  const d = new Date(unixSeconds * 1000);
  return Number.isNaN(d.getTime()) ? String(unixSeconds) : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function count(n) {
  return new Intl.NumberFormat().format(n);
}
