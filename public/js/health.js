// /api/health in a corner: database reachable and migrated, refreshed every 30 s and after
// any failed call.

let el = null;
let timer = null;

export function startHealth(target) {
  el = target;
  refreshHealth();
}

export async function refreshHealth() {
  if (!el) return;
  clearTimeout(timer);
  timer = setTimeout(refreshHealth, 30000);
  const deadline = new AbortController();
  const t = setTimeout(() => deadline.abort(), 10000);
  let ok = false;
  let text;
  let detail = '';
  try {
    const response = await fetch('/api/health', { signal: deadline.signal, cache: 'no-store' });
    const body = await response.json().catch(() => null);
    const m = body?.migrations;
    ok = response.ok && body?.postgres?.ok === true;
    if (ok) {
      text = `Database OK${m && Number.isFinite(m.version) ? ` · schema v${m.version}` : ''}`;
    } else {
      text = response.status === 503 ? 'Database unavailable' : `Health check failed (HTTP ${response.status})`;
      detail = body?.postgres?.error || body?.error || '';
    }
    if (m && m.ok === false && !detail) detail = 'migrations not applied';
  } catch {
    text = 'Service unreachable';
  } finally {
    clearTimeout(t);
  }
  el.dataset.ok = String(ok);
  el.title = detail || text;
  el.innerHTML = '';
  const dot = document.createElement('span');
  dot.className = 'dot';
  dot.setAttribute('aria-hidden', 'true');
  const label = document.createElement('span');
  label.className = 'health-text';
  label.textContent = text;
  el.append(dot, label);
  if (detail) {
    const more = document.createElement('span');
    more.className = 'health-detail';
    more.textContent = detail;
    el.append(more);
  }
}
