// Calls to the service's own /api routes (same origin), with every failure turned into an
// ApiError whose message a person can act on. Every call has a deadline, so no spinner
// can wait forever.

const DEADLINE_MS = 30000;

export class ApiError extends Error {
  /**
   * @param {'network'|'timeout'|'unavailable'|'client'|'server'|'invalid'} kind
   * @param {number} status HTTP status, 0 when there was no answer
   * @param {string} detail the service's own `error` text, when it gave one
   * @param {string} url the request
   */
  constructor(kind, status, detail, url) {
    super(describe(kind, status, detail));
    this.name = 'ApiError';
    this.kind = kind;
    this.status = status;
    this.detail = detail;
    this.url = url;
  }
}

function describe(kind, status, detail) {
  const said = detail ? ` The service said: “${detail}”.` : '';
  switch (kind) {
    case 'unavailable':
      return `The database is not reachable right now (HTTP ${status}).${said} The service retries on its own: try again in a few seconds.`;
    case 'client':
      return `The service refused this request (HTTP ${status}).${said} Check the filters.`;
    case 'server':
      return `The service failed to answer (HTTP ${status}).${said} Try again; if it persists, the service's log has the details.`;
    case 'timeout':
      return `The service did not answer within ${DEADLINE_MS / 1000} s. Try again, or a shorter window.`;
    case 'invalid':
      return `The service answered something that is not the JSON expected (HTTP ${status}).`;
    default:
      return 'Could not reach the service: is it running, and is this the right address?';
  }
}

/** `/api/<route>?…` from a route name and parameters (empty values left out). */
export function apiUrl(route, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') query.set(key, String(value));
  }
  const qs = query.toString();
  return `/api/${route}${qs ? `?${qs}` : ''}`;
}

/**
 * GETs `/api/<route>` and returns the parsed JSON; throws ApiError otherwise, or the
 * AbortError when `signal` aborted it (a newer view replaced this one).
 */
export async function getJSON(route, params = {}, signal) {
  const url = apiUrl(route, params);
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), DEADLINE_MS);
  const onAbort = () => deadline.abort();
  signal?.addEventListener('abort', onAbort);
  let response;
  try {
    response = await fetch(url, { signal: deadline.signal, headers: { Accept: 'application/json' } });
  } catch (e) {
    if (signal?.aborted) throw e;
    throw new ApiError(deadline.signal.aborted ? 'timeout' : 'network', 0, '', url);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
  let body = null;
  let text = '';
  try {
    text = await response.text();
    body = JSON.parse(text);
  } catch (e) {
    if (signal?.aborted) throw e;
    body = null;
  }
  if (!response.ok) {
    const detail = body && typeof body.error === 'string' ? body.error : '';
    const kind = response.status === 503 ? 'unavailable' : response.status >= 500 ? 'server' : 'client';
    const error = new ApiError(kind, response.status, detail, url);
    error.body = body;
    throw error;
  }
  if (body === null || typeof body !== 'object') throw new ApiError('invalid', response.status, '', url);
  return body;
}
