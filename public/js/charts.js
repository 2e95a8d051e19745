// Time-series charts of an orchestrator's raw stats, drawn by uPlot (vendored, no other host).
import uPlot from '../vendor/uplot-1.6.32/uPlot.esm.js';

// Distinguishable on white, each with at least 3:1 contrast against it.
export const PALETTE = ['#1f62c4', '#c2410c', '#15803d', '#9333ea', '#b91c1c', '#0e7490', '#a16207', '#be185d', '#4d7c0f', '#4338ca', '#57534e', '#0f766e'];

export function colorOf(i) {
  return PALETTE[i % PALETTE.length];
}

const live = new Set();

/** Destroys the charts of the previous view. */
export function destroyCharts() {
  for (const chart of live) chart.destroy();
  live.clear();
}

function widthOf(el) {
  return Math.max(260, Math.floor(el.clientWidth || el.parentElement?.clientWidth || 600));
}

window.addEventListener('resize', () => {
  for (const chart of live) {
    const el = chart.root.parentElement;
    if (el) chart.setSize({ width: widthOf(el), height: chart.height });
  }
});

/** The legend's value of a series under the cursor: the y value, then its details if any. */
function legendValue(s, yFormat) {
  const details = s.details ? new Map(s.xs.map((x, i) => [x, s.details[i]])) : null;
  return (u, v, sidx, idx) => {
    if (v == null) return '–';
    const shown = yFormat ? yFormat(v) : String(v);
    const extra = details && idx != null ? details.get(u.data[0][idx]) : undefined;
    return extra ? `${shown} · ${extra}` : shown;
  };
}

/**
 * Draws one chart into `el`: `series` is [{label, xs: [unix s ascending], ys: [number]}],
 * one per region, each optionally with `details` (a string per point, shown in the legend
 * after the value under the cursor). Returns the uPlot instance (its canvas and `data` are
 * what the tests inspect).
 */
export function timeChart(el, { series, yLabel, yRange, yFormat, lines = true, name }) {
  const tables = series.map((s) => [Float64Array.from(s.xs), Float64Array.from(s.ys)]);
  const data = tables.length === 1 ? tables[0] : uPlot.join(tables);
  const opts = {
    width: widthOf(el),
    height: 260,
    cursor: { drag: { x: true, y: false } },
    legend: { live: true },
    scales: { x: { time: true }, y: yRange ? { range: yRange } : { auto: true } },
    axes: [
      { stroke: '#333', grid: { stroke: '#e4e4e7' } },
      { stroke: '#333', grid: { stroke: '#e4e4e7' }, label: yLabel, size: 60, values: yFormat ? (u, vals) => vals.map(yFormat) : undefined },
    ],
    series: [
      { label: 'time', value: (u, v) => (v == null ? '–' : new Date(v * 1000).toLocaleString()) },
      ...series.map((s, i) => ({
        label: s.label,
        stroke: colorOf(i),
        width: lines ? 1.25 : 0,
        spanGaps: true,
        ...(lines ? {} : { paths: () => null }),
        points: { show: true, size: lines ? 4 : 5, fill: colorOf(i) },
        value: legendValue(s, yFormat),
      })),
    ],
  };
  const started = performance.now();
  const chart = new uPlot(opts, data, el);
  live.add(chart);
  el.uplot = chart; // for the benchmark (bench/dashboard.sh) and the curious console user
  // Drawn once the frame that shows it is painted.
  requestAnimationFrame(() => {
    performance.measure(`chart:${name}`, { start: started, end: performance.now() });
    el.dataset.drawn = 'true';
    el.dataset.points = String(series.reduce((n, s) => n + s.xs.length, 0));
  });
  return chart;
}
