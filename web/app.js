// vae serve: the page. Every view is addressed by the URL's hash, so a view and its
// choices can be bookmarked, reloaded and opened by a test:
//   #/sweeps                                        sweeps with counts, progress, ETA
//   #/sweep/NAME?rows=latent&cols=beta&metric=test_nll&agg=mean_se
//   #/runs?sweep=S&where=latent%3D20&sort=test_nll&order=asc&page=1
//   #/compare?ids=ID,ID                              curves and settings side by side
//   #/run/ID                                         one run
//   #/reproductions                                  `vae reproduce` reports: published vs ours
//   #/reproduction/SPEC/BUDGET                       one report, laid out as the paper's table
// Data come from the JSON API of the same server (lib/serve/api.hpp).
'use strict';

const view = document.getElementById('view');
// replaceChildren would print a null as "null": optional parts are left out instead.
function show(...nodes) { view.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined)); }
let refreshTimer = null;
let charts = [];

// ---- small helpers -------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k.startsWith('data')) e.setAttribute(k.replace(/([A-Z])/g, '-$1').toLowerCase(), v);
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

async function api(path) {
  const r = await fetch(path, { cache: 'no-store' });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || (r.status + ' ' + r.statusText));
  return body;
}

// A metric with fixed decimals (as the CLI tables print them).
function fmt(x, digits = 2) {
  if (x === null || x === undefined || Number.isNaN(x)) return '';
  if (typeof x !== 'number') return String(x);
  return x.toFixed(digits);
}

// A setting's value as written in a sweep file: 0.5, not 0.5000.
function fmtParam(x) { return typeof x === 'number' ? String(Number(x.toPrecision(6))) : x === null || x === undefined ? '' : String(x); }

function seconds(s) {
  if (s === null || s === undefined || !isFinite(s) || s < 0) return '--';
  if (s < 59.95) return s.toFixed(1) + 's';
  const t = Math.round(s), h = Math.floor(t / 3600), m = Math.floor(t / 60) % 60, sec = t % 60;
  const two = (n) => String(n).padStart(2, '0');
  return h ? `${h}:${two(m)}:${two(sec)}` : `${m}:${two(sec)}`;
}

function short(id) { return id.slice(0, 12); }

function parseHash() {
  const h = location.hash.replace(/^#/, '') || '/sweeps';
  const q = h.indexOf('?');
  const path = (q < 0 ? h : h.slice(0, q)).split('/').filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(q < 0 ? '' : h.slice(q + 1));
  return { path, params };
}

function setHash(path, params) {
  const q = params.toString();
  location.hash = '#/' + path + (q ? '?' + q : '');
}

function statusCell(status) { return el('td', { class: 'status-' + status, text: status }); }

function showError(where, err) {
  where.replaceChildren(el('div', { class: 'error', id: 'error', text: err.message || String(err) }));
}

// Selected runs for the compare view, kept across views of this tab.
const selected = {
  get() { return JSON.parse(sessionStorage.getItem('vae-selected') || '[]'); },
  set(ids) { sessionStorage.setItem('vae-selected', JSON.stringify(ids)); updateNav(); },
  toggle(id, on) { const s = new Set(this.get()); on ? s.add(id) : s.delete(id); this.set([...s]); },
};

function updateNav() {
  const n = selected.get().length;
  document.getElementById('nav-compare').textContent = n ? `Compare (${n})` : 'Compare';
}

// ---- charts ----------------------------------------------------------------------------

const palette = ['#2457c5', '#d1495b', '#2e933c', '#edae49', '#6a4c93', '#00798c', '#8c564b', '#e377c2', '#7f7f7f', '#17becf'];

// Counts the canvas pixels that are not blank, so that a test can tell a drawn chart
// from an empty canvas (written to data-ink once Chart.js has rendered).
function inkOf(canvas) {
  const ctx = canvas.getContext('2d');
  const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
  let ink = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) ink++;
  return ink;
}

const inkPlugin = { id: 'ink', afterRender(chart) { chart.canvas.dataset.ink = inkOf(chart.canvas); } };

// Vertical error bars for datasets with an `errors` array (± one standard error).
const errorBarPlugin = {
  id: 'errorbars',
  afterDatasetsDraw(chart) {
    const ctx = chart.ctx;
    chart.data.datasets.forEach((ds, i) => {
      if (!ds.errors || chart.getDatasetMeta(i).hidden) return;
      const meta = chart.getDatasetMeta(i);
      const y = chart.scales.y;
      ctx.save();
      ctx.strokeStyle = ds.borderColor;
      ctx.lineWidth = 1.5;
      meta.data.forEach((pt, j) => {
        const e = ds.errors[j], v = ds.data[j] && ds.data[j].y;
        if (e === null || e === undefined || v === null || v === undefined || !isFinite(e)) return;
        const top = y.getPixelForValue(v + e), bottom = y.getPixelForValue(v - e);
        ctx.beginPath();
        ctx.moveTo(pt.x, top); ctx.lineTo(pt.x, bottom);
        ctx.moveTo(pt.x - 4, top); ctx.lineTo(pt.x + 4, top);
        ctx.moveTo(pt.x - 4, bottom); ctx.lineTo(pt.x + 4, bottom);
        ctx.stroke();
      });
      ctx.restore();
    });
  },
};

function chartBox(title, id, width = 560, height = 300) {
  const canvas = el('canvas', { id, width, height });
  return { box: el('div', { class: 'chart' }, el('h3', { text: title }), canvas), canvas };
}

function makeChart(canvas, config) {
  if (typeof Chart === 'undefined') {
    canvas.replaceWith(el('div', { class: 'error', text: 'Chart.js did not load (/chart.js): install libjs-chart.js' }));
    return null;
  }
  config.options = Object.assign({ animation: false, responsive: false, maintainAspectRatio: false }, config.options || {});
  config.plugins = (config.plugins || []).concat([inkPlugin]);
  const c = new Chart(canvas, config);
  charts.push(c);
  return c;
}

// ---- views -------------------------------------------------------------------------------

async function sweepsView() {
  const data = await api('/api/sweeps');
  const rows = data.sweeps.map((s) => el('tr', { dataSweep: s.name },
    el('td', { class: 'wrap' }, el('a', { href: '#/sweep/' + encodeURIComponent(s.name), text: s.name }),
      s.description ? el('div', { class: 'muted', text: s.description }) : null),
    el('td', { class: 'num total', text: s.total }),
    el('td', { class: 'num done status-done', text: s.done }),
    el('td', { class: 'num running status-running', text: s.running }),
    el('td', { class: 'num failed status-failed', text: s.failed }),
    el('td', { class: 'num diverged status-diverged', text: s.diverged }),
    el('td', { class: 'num queued', text: s.queued + s.interrupted }),
    el('td', {}, el('span', { class: 'bar' }, el('span', { style: `width:${(100 * s.progress).toFixed(1)}%` })),
      ' ' + (100 * s.progress).toFixed(0) + '%'),
    el('td', { class: 'num eta', text: s.running || s.queued || s.interrupted ? seconds(s.eta_s) : 'finished' }),
    el('td', { class: 'muted', text: s.updated_at.replace('T', ' ').replace(/\.\d+Z$/, '') }),
    el('td', {}, el('a', { href: '#/runs?sweep=' + encodeURIComponent(s.name), text: 'runs' }))));
  show(
    el('h1', { text: 'Sweeps' }),
    data.sweeps.length ? el('table', { id: 'sweeps-table' },
      el('thead', {}, el('tr', {}, ['sweep', 'runs', 'done', 'running', 'failed', 'diverged', 'to do', 'progress', 'ETA', 'updated', '']
        .map((h) => el('th', { text: h })))),
      el('tbody', {}, rows)) : el('p', { class: 'muted', text: 'No sweeps in this database yet (vae sweep run FILE).' }),
    el('p', { class: 'muted', text: 'Refreshes every 2 s.' }));
  refreshTimer = setTimeout(() => render(true), 2000);
}

function cellText(c, agg) {
  if (!c.n) return c.pending ? '…' : '';
  const d = 2;
  if (agg === 'mean_se') return fmt(c.mean, d) + (c.se === null ? '' : ' ± ' + fmt(c.se, d));
  if (agg === 'mean_sd') return fmt(c.mean, d) + (c.sd === null ? '' : ' ± ' + fmt(c.sd, d));
  return fmt(c[agg], d);
}

function label(obj) { return Object.entries(obj).map(([k, v]) => (k === 'metric' ? v : `${k}=${v}`)).join(', '); }

async function sweepView(name, params) {
  const sw = await api('/api/sweeps/' + encodeURIComponent(name));
  const axes = sw.axes.filter((a) => !a.seed).map((a) => a.key);
  const rows = params.get('rows') || (sw.table.rows.length ? sw.table.rows.join(',') : axes[0] || '');
  const cols = params.has('cols') ? params.get('cols') : sw.table.cols.length ? sw.table.cols.join(',') : axes.find((a) => a !== rows) || '';
  const metric = params.get('metric') || (sw.metrics.includes(sw.table.metric) ? sw.table.metric : sw.metrics[0] || 'test_nll');
  const agg = params.get('agg') || sw.table.agg || 'mean_se';
  const q = new URLSearchParams({ sweep: name, rows, metric, agg });
  if (cols) q.set('cols', cols);

  const pick = (id, value, options, allowNone) => el('select', {
    id, onchange: (e) => { const p = new URLSearchParams({ rows, cols, metric, agg }); p.set(id.replace('pick-', ''), e.target.value); setHash('sweep/' + encodeURIComponent(name), p); },
  }, (allowNone ? [''] : []).concat(options).map((o) => el('option', { value: o, selected: o === value, text: o || '(none)' })));

  const header = el('div', { id: 'sweep-head' },
    el('h1', { text: 'Sweep ' + name }),
    sw.description ? el('p', { class: 'muted', text: sw.description }) : null,
    el('p', { id: 'sweep-counts' },
      el('span', { class: 'status-done', text: `${sw.done} done` }), ', ',
      el('span', { class: 'status-running', text: `${sw.running} running` }), ', ',
      el('span', { class: 'status-failed', text: `${sw.failed} failed` }), ', ',
      el('span', { class: 'status-diverged', text: `${sw.diverged} diverged` }), `, ${sw.queued + sw.interrupted} to do, of ${sw.total}`,
      sw.running || sw.queued ? ` — ETA ${seconds(sw.eta_s)}` : '', ' · ',
      el('a', { href: '#/runs?sweep=' + encodeURIComponent(name), text: 'its runs' })));

  const controls = el('div', { class: 'controls' },
    el('label', {}, 'rows', pick('pick-rows', rows, axes)),
    el('label', {}, 'columns', pick('pick-cols', cols, axes.filter((a) => a !== rows), true)),
    el('label', {}, 'metric', pick('pick-metric', metric, sw.metrics)),
    el('label', {}, 'aggregate', pick('pick-agg', agg, ['mean_se', 'mean_sd', 'mean', 'median', 'min', 'max'])),
    el('span', {}, 'download: ',
      ...['csv', 'markdown', 'latex'].map((f) => el('a', { class: 'button', id: 'download-' + f, href: '/api/table?' + q + '&format=' + f, text: f.toUpperCase() === 'MARKDOWN' ? 'Markdown' : f === 'latex' ? 'LaTeX' : 'CSV' }))));

  const tableBox = el('div', { id: 'table-box' });
  const plotBox = el('div', { class: 'charts' });
  show(header, controls, tableBox, plotBox);
  let t;
  try {
    t = await api('/api/table?' + q);
  } catch (err) {
    showError(tableBox, err);
    return;
  }
  const colLabels = t.cols.map(label);
  const table = el('table', { id: 'cmp-table', dataMetric: metric, dataAgg: t.agg },
    el('thead', {}, el('tr', {}, el('th', { text: t.row_keys.join(', ') }), colLabels.map((c) => el('th', { class: 'num', text: c })))),
    el('tbody', {}, t.rows.map((r, i) => el('tr', {},
      el('th', { text: Object.values(r).join(', ') }),
      t.cells[i].map((c, j) => el('td', {
        class: 'num' + (c.best ? ' best' : ''), dataRow: Object.values(r).join(','), dataCol: colLabels[j],
        dataN: c.n, dataMean: c.mean, title: c.n ? `n = ${c.n}` + (c.failed ? `, ${c.failed} failed/diverged` : '') + (c.pending ? `, ${c.pending} pending` : '') : '',
      }, cellText(c, t.agg), c.n ? el('span', { class: 'muted', text: ` (${c.n})` }) : null))))));
  tableBox.replaceChildren(table,
    el('p', { class: 'muted' }, `${t.agg === 'mean_se' ? 'mean ± standard error' : t.agg} of ${metric} over seeds, (n); best ${t.direction ? (t.direction === 'min' ? 'lowest' : 'highest') + ' per ' + t.best_per : 'not marked (no known direction)'} in bold. Same as:`),
    el('pre', { class: 'cmd', id: 'table-command', text: t.command }));

  // the metric against a numeric axis, one line per column (or per row), ± s.e.
  const numeric = (key) => (sw.axes.find((a) => a.key === key) || {}).numeric;
  const byRows = t.row_keys.length === 1 && numeric(t.row_keys[0]);
  const byCols = !byRows && t.col_keys.length === 1 && numeric(t.col_keys[0]);
  if (byRows || byCols) {
    const xKey = byRows ? t.row_keys[0] : t.col_keys[0];
    const xs = byRows ? t.rows.map((r) => Number(r[xKey])) : t.cols.map((c) => Number(c[xKey]));
    const lines = byRows ? t.cols.map((c, j) => ({ name: colLabels[j], cells: t.cells.map((row) => row[j]) }))
      : t.rows.map((r, i) => ({ name: label(r), cells: t.cells[i] }));
    const positive = xs.every((x) => x > 0);
    const { box, canvas } = chartBox(`${metric} against ${xKey} (± 1 s.e.)`, 'plot-metric', 720, 360);
    plotBox.append(box);
    makeChart(canvas, {
      type: 'line',
      data: {
        datasets: lines.map((l, k) => ({
          label: l.name, borderColor: palette[k % palette.length], backgroundColor: palette[k % palette.length],
          data: xs.map((x, i) => ({ x, y: l.cells[i].n ? l.cells[i].mean : null })),
          errors: l.cells.map((c) => (c.n > 1 ? c.se : null)), spanGaps: true,
        })),
      },
      options: { scales: { x: { type: positive && Math.max(...xs) / Math.min(...xs) >= 20 ? 'logarithmic' : 'linear', title: { display: true, text: xKey } }, y: { title: { display: true, text: metric } } } },
      plugins: [errorBarPlugin],
    });
  }
  if (sw.running || sw.queued) refreshTimer = setTimeout(() => render(true), 3000);
}

function whereList(params) { return params.getAll('where').filter(Boolean); }

async function runsView(params) {
  const page = Math.max(1, Number(params.get('page') || 1));
  const limit = Number(params.get('limit') || 50);
  const q = new URLSearchParams();
  for (const k of ['sweep', 'status', 'sort', 'order', 'metrics']) if (params.get(k)) q.set(k, params.get(k));
  for (const w of whereList(params)) q.append('where', w);
  q.set('offset', (page - 1) * limit);
  q.set('limit', limit);

  const filter = el('input', { type: 'text', id: 'filter', value: whereList(params).join(' '), placeholder: "latent=20 beta>=2 test_nll<100" });
  const apply = () => {
    const p = new URLSearchParams(params);
    p.delete('where'); p.delete('page');
    for (const w of filter.value.split(/\s+/).filter(Boolean)) p.append('where', w);
    setHash('runs', p);
  };
  filter.addEventListener('keydown', (e) => { if (e.key === 'Enter') apply(); });
  const statusPick = el('select', { id: 'status', onchange: (e) => { const p = new URLSearchParams(params); p.delete('page'); e.target.value ? p.set('status', e.target.value) : p.delete('status'); setHash('runs', p); } },
    ['', 'done', 'running', 'queued', 'interrupted', 'failed', 'diverged'].map((s) => el('option', { value: s, selected: s === (params.get('status') || ''), text: s || 'any' })));
  const errBox = el('div', { id: 'runs-error' });
  const tableBox = el('div', { id: 'runs-box' });
  show(
    el('h1', { text: params.get('sweep') ? 'Runs of ' + params.get('sweep') : 'Runs' }),
    el('div', { class: 'controls' },
      el('label', {}, 'where (the vae query --where grammar, space separated)', filter),
      el('button', { class: 'primary', id: 'apply', onclick: apply, text: 'Filter' }),
      el('label', {}, 'status', statusPick),
      el('button', { id: 'compare-selected', onclick: () => setHash('compare', new URLSearchParams({ ids: selected.get().join(',') })), text: 'Compare selected' }),
      el('button', { onclick: () => { selected.set([]); render(); }, text: 'Clear selection' })),
    errBox, tableBox);
  let data;
  try {
    data = await api('/api/runs?' + q);
  } catch (err) {
    showError(errBox, err);
    return;
  }
  const sortBy = (col) => {
    const p = new URLSearchParams(params);
    p.set('order', params.get('sort') === col && params.get('order') !== 'desc' ? 'desc' : 'asc');
    p.set('sort', col);
    p.delete('page');
    setHash('runs', p);
  };
  const th = (col, text, num) => el('th', {
    class: 'sortable' + (num ? ' num' : '') + (data.sort === col ? ' sorted' + (data.order === 'desc' ? ' desc' : '') : ''),
    dataCol: col, onclick: () => sortBy(col), text: text || col,
  });
  const chosen = new Set(selected.get());
  const rows = data.runs.map((r) => el('tr', { dataRun: r.run_id },
    el('td', {}, el('input', { type: 'checkbox', class: 'pick', checked: chosen.has(r.run_id), onchange: (e) => selected.toggle(r.run_id, e.target.checked) })),
    el('td', {}, el('a', { href: '#/run/' + r.run_id, text: short(r.run_id) }, )),
    statusCell(r.status),
    params.get('sweep') ? null : el('td', { text: r.sweep }),
    data.params.map((k) => el('td', { class: 'num', dataKey: k, text: fmtParam(r.params[k]) })),
    data.metrics.map((m) => el('td', { class: 'num', dataKey: m, text: fmt(r.metrics[m], 3) })),
    el('td', { class: 'num', text: r.epochs }),
    el('td', { class: 'num', text: r.wall_s > 0 ? seconds(r.wall_s) : '' }),
    el('td', { class: 'muted', text: r.message.length > 60 ? r.message.slice(0, 57) + '...' : r.message })));
  const first = data.total ? data.offset + 1 : 0, last = data.offset + data.runs.length;
  const pages = Math.max(1, Math.ceil(data.total / data.limit));
  const go = (n) => { const p = new URLSearchParams(params); p.set('page', n); setHash('runs', p); };
  tableBox.replaceChildren(
    el('table', { id: 'runs-table', dataTotal: data.total },
      el('thead', {}, el('tr', {}, el('th', {}), th('run_id', 'run'), th('status'), params.get('sweep') ? null : el('th', { text: 'sweep' }),
        data.params.map((k) => th(k, k, true)), data.metrics.map((m) => th(m, m, true)), th('epochs', 'epochs', true), th('wall_s', 'wall', true), el('th', { text: 'message' }))),
      el('tbody', {}, rows)),
    el('p', { id: 'runs-count' }, `${first}–${last} of ${data.total} runs `,
      el('button', { id: 'prev', disabled: page <= 1, onclick: () => go(page - 1), text: '‹ previous' }), ' ',
      el('span', { text: `page ${page} of ${pages}` }), ' ',
      el('button', { id: 'next', disabled: page >= pages, onclick: () => go(page + 1), text: 'next ›' })),
    el('p', { class: 'muted', id: 'metrics' }, 'metrics shown: ', data.metrics_available.map((m) => el('label', { class: 'check' },
      el('input', { type: 'checkbox', value: m, checked: data.metrics.includes(m), onchange: () => {
        const p = new URLSearchParams(params);
        p.set('metrics', [...document.querySelectorAll('#metrics input:checked')].map((i) => i.value).join(','));
        setHash('runs', p);
      } }), m))));
}

const curveNames = [
  ['train_elbo', 'training ELBO per epoch: -(reconstruction + KL), nats'],
  ['train_rec', 'reconstruction term (training), nats'],
  ['train_kl', 'KL term (training), nats'],
  ['valid_elbo', 'validation ELBO, nats'],
  ['samples_per_s', 'throughput, samples per second'],
  ['train_loss', 'training loss (with beta and warm-up)'],
  ['test_elbo', 'test ELBO (evaluation epochs)'],
];

function curveChart(runs, name, title, id) {
  const { box, canvas } = chartBox(title, id, 560, 300);
  makeChart(canvas, {
    type: 'line',
    data: {
      datasets: runs.map((r, k) => ({
        label: r.label, borderColor: palette[k % palette.length], backgroundColor: palette[k % palette.length],
        data: (r.curve[name] || []).map(([x, y]) => ({ x, y })), pointRadius: 2,
      })),
    },
    options: { scales: { x: { type: 'linear', title: { display: true, text: 'epoch' }, ticks: { precision: 0 } } } },
  });
  return box;
}

async function compareView(params) {
  const ids = (params.get('ids') || selected.get().join(',')).split(',').filter(Boolean);
  if (!ids.length) {
    show(el('h1', { text: 'Compare' }), el('p', { class: 'muted', text: 'Select runs in the Runs view, then Compare selected.' }));
    return;
  }
  const data = await api('/api/compare?ids=' + encodeURIComponent(ids.join(',')));
  const present = curveNames.filter(([n]) => data.runs.some((r) => r.curve[n] && r.curve[n].length));
  const chartsBox = el('div', { class: 'charts', id: 'compare-charts' });
  const onlyDiff = params.get('all') !== '1';
  const settings = data.settings.filter((s) => s.differs || !onlyDiff);
  settings.sort((a, b) => (b.differs ? 1 : 0) - (a.differs ? 1 : 0));
  show(
    el('h1', { text: `Compare ${data.runs.length} runs` }),
    chartsBox,
    el('h2', { text: 'Settings' + (onlyDiff ? ' that differ' : '') }),
    el('p', {}, el('a', { href: '#/compare?' + new URLSearchParams({ ids: ids.join(','), all: onlyDiff ? '1' : '0' }), text: onlyDiff ? 'show all settings' : 'show only the differences' })),
    el('table', { id: 'settings-table' },
      el('thead', {}, el('tr', {}, el('th', { text: 'setting' }), data.runs.map((r) => el('th', {}, el('a', { href: '#/run/' + r.run_id, text: short(r.run_id) }), el('div', { class: 'muted', text: r.label }))))),
      el('tbody', {}, settings.map((s) => el('tr', { class: s.differs ? 'differs' : '', dataKey: s.key },
        el('td', { text: s.key }), s.values.map((v) => el('td', { text: v === null ? '' : v })))))),
    el('h2', { text: 'Final metrics' }),
    finalMetricsTable(data.runs));
  for (const [n, title] of present) chartsBox.append(curveChart(data.runs, n, title, 'curve-' + n));
}

function finalMetricsTable(runs) {
  const names = [...new Set(runs.flatMap((r) => Object.keys(r.metrics)))].sort();
  return el('table', { id: 'final-metrics' },
    el('thead', {}, el('tr', {}, el('th', { text: 'metric' }), runs.map((r) => el('th', { text: short(r.run_id) })))),
    el('tbody', {}, names.map((n) => el('tr', {}, el('td', { text: n }), runs.map((r) => el('td', { class: 'num', text: fmt(r.metrics[n], 4) }))))));
}

async function runView(id) {
  const r = await api('/api/runs/' + encodeURIComponent(id));
  const a = r.attempts.length ? r.attempts[r.attempts.length - 1] : null;
  const kv = (rows, tableId) => el('table', { id: tableId }, el('tbody', {}, rows.filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => el('tr', {}, el('th', { text: k }), el('td', { class: 'wrap', text: v })))));
  const images = r.artifacts.filter((x) => /\.(png|jpe?g|gif)$/i.test(x.path));
  const klBox = el('div', { class: 'charts' });
  const curveBox = el('div', { class: 'charts' });
  const chosen = new Set(selected.get());
  show(
    el('h1', {}, 'Run ', el('code', { text: r.run_id }), ' ', el('span', { class: 'status-' + r.status, id: 'run-status', text: r.status })),
    r.message ? el('div', { class: 'error', text: r.message }) : null,
    el('p', {}, r.sweeps.map((s) => el('span', {}, 'sweep ', el('a', { href: '#/sweep/' + encodeURIComponent(s.name), text: s.name }), ` #${s.position + 1} (${s.point_text})  `)),
      el('label', {}, el('input', { type: 'checkbox', checked: chosen.has(r.run_id), onchange: (e) => selected.toggle(r.run_id, e.target.checked) }), ' select for comparison')),
    el('h2', { text: 'The command that made it' }),
    el('pre', { class: 'cmd', id: 'run-command', text: r.command || '(not recorded)' }),
    el('p', { class: 'muted', text: 'The same run alone (settings that differ from the defaults):' }),
    el('pre', { class: 'cmd', id: 'train-command', text: r.train_command }),
    el('div', { class: 'grid2' },
      el('div', {}, el('h2', { text: 'Final metrics' }),
        kv(Object.entries(r.metrics).map(([k, v]) => [k, Number.isInteger(v) ? String(v) : fmt(v, 4)]), 'run-metrics')),
      el('div', {}, el('h2', { text: 'Provenance' }), kv([
        ['git commit', a && a.git_commit ? a.git_commit + (a.git_dirty ? ' (dirty)' : ' (clean)') : null],
        ['vae', a ? `${a.vae_version || ''} sha256 ${(a.binary_sha256 || '').slice(0, 16)}` : null],
        ['compiler', a && a.compiler], ['flags', a && a.build_flags],
        ['BLAS', a ? `${a.blas || ''}; threads ${a.blas_threads ?? '?'}` : null],
        ['machine', a ? `${a.host || ''}, ${a.cpu || ''} (${a.cpu_count ?? '?'} cpus)` : null],
        ['created', r.created_at], ['started', r.started_at], ['ended', r.ended_at],
        ['wall', seconds(r.wall_s)], ['epochs', r.epochs_done],
        ...r.data_files.map((d) => ['data', `${d.path}  sha256 ${d.sha256.slice(0, 16)}`]),
      ], 'run-provenance'))),
    el('h2', { text: 'Pictures' }),
    images.length ? el('div', { class: 'pictures', id: 'pictures' }, images.map((x) => el('figure', {},
      el('img', { src: `/api/runs/${r.run_id}/artifacts/${encodeURIComponent(x.kind)}`, alt: x.kind, dataKind: x.kind,
        onload: (e) => { e.target.dataset.loaded = e.target.naturalWidth + 'x' + e.target.naturalHeight; },
        onerror: (e) => { e.target.dataset.loaded = 'error'; } }),
      el('figcaption', { text: `${x.kind} (epoch ${x.epoch})` }))))
      : el('p', { class: 'muted', text: 'No pictures recorded (vae draw samples --run ' + short(r.run_id) + ' --out FILE.png records one).' }),
    el('h2', { text: 'KL per latent unit' }), klBox,
    el('h2', { text: 'Learning curves' }), curveBox,
    el('h2', { text: 'Attempts' }),
    el('table', { id: 'attempts' }, el('thead', {}, el('tr', {}, ['#', 'started', 'ended', 'host', 'pid', 'from epoch', 'epochs', 'outcome', 'message'].map((h) => el('th', { text: h })))),
      el('tbody', {}, r.attempts.map((x) => el('tr', {}, [x.attempt, x.started_at, x.ended_at, x.host, x.pid, x.resumed_from_epoch, x.epochs_done, x.outcome || '(running)', x.message].map((v) => el('td', { text: v ?? '' })))))),
    el('h2', { text: 'Resolved configuration' }),
    kv(Object.entries(r.config).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : String(v)]), 'run-config'));

  if (Array.isArray(r.kl_per_dim) && r.kl_per_dim.length) {
    const { box, canvas } = chartBox('KL per latent unit (nats), sorted as stored', 'kl-chart', 560, 260);
    klBox.append(box);
    makeChart(canvas, {
      type: 'bar',
      data: { labels: r.kl_per_dim.map((_, i) => String(i)), datasets: [{ label: 'KL', data: r.kl_per_dim, backgroundColor: '#2457c5' }] },
      options: { plugins: { legend: { display: false } }, scales: { x: { title: { display: true, text: 'latent unit' } } } },
    });
  } else klBox.append(el('p', { class: 'muted', text: 'No KL per unit recorded.' }));
  const names = Object.keys(r.curve);
  for (const [n, title] of curveNames.filter(([n]) => names.includes(n)))
    curveBox.append(curveChart([{ label: short(r.run_id), curve: r.curve }], n, title, 'run-curve-' + n));
}

// ---- reproductions ---------------------------------------------------------------------------

function summaryText(s) {
  return `${s.within} within, ${s.outside} outside, ${s.not_comparable} not comparable, ${s.missing} missing`;
}

async function reproductionsView() {
  const data = await api('/api/reproductions');
  const rows = data.reproductions.map((r) => el('tr', { dataSpec: r.spec, dataBudget: r.budget.name },
    el('td', { class: 'wrap' },
      el('a', { href: `#/reproduction/${encodeURIComponent(r.spec)}/${encodeURIComponent(r.budget.name)}`, text: r.title }),
      el('div', { class: 'muted', text: r.citation })),
    el('td', { text: r.budget.name }),
    el('td', { class: 'num', text: `${r.budget.epochs} (${(100 * r.budget.fraction).toPrecision(3)}%)` }),
    el('td', { class: 'num', text: r.seeds }),
    el('td', { class: 'summary ' + (r.summary.ok ? 'status-done' : 'status-failed'), text: summaryText(r.summary) })));
  show(
    el('h1', { text: 'Reproductions' }),
    data.reproductions.length ? el('table', { id: 'reproductions-table' },
      el('thead', {}, el('tr', {}, ['table', 'budget', 'epochs (of the paper\'s)', 'seeds', 'verdicts'].map((h) => el('th', { text: h })))),
      el('tbody', {}, rows))
      : el('p', { class: 'muted', text: 'No reproduction in this database (vae reproduce SPEC --db FILE), or its spec is not under the --experiments folder.' }));
}

async function reproductionView(spec, budget) {
  const r = await api(`/api/reproductions/${encodeURIComponent(spec)}/${encodeURIComponent(budget)}`);
  const cells = new Map(r.cells.map((c) => [c.row + '/' + c.column, c]));
  const head = el('tr', {}, el('th', { text: '' }),
    r.columns.map((c) => el('th', { colspan: 2, class: 'num', text: c.label })));
  const sub = el('tr', {}, el('th', { text: '' }), r.columns.flatMap(() => [el('th', { class: 'num', text: 'published' }), el('th', { class: 'num', text: 'ours' })]));
  const body = r.rows.map((row) => el('tr', { dataRow: row.id }, el('th', { text: row.label }),
    r.columns.flatMap((col) => {
      const c = cells.get(row.id + '/' + col.id) || {};
      const verdict = c.verdict || 'missing';
      return [
        el('td', { class: 'num published', text: c.published ? c.published.text : '' }),
        el('td', { class: 'num ours verdict-' + verdict.replace(/ /g, '-'), dataCell: row.id + '/' + col.id,
          title: verdict + (c.diff !== undefined ? ` (difference ${fmt(c.diff)}${c.tolerance !== undefined ? ', tolerance ' + fmt(c.tolerance) : ''})` : ''),
          text: (c.ours || '') + (verdict === 'within' ? ' ✓' : verdict === 'outside' ? ' ✗' : '') }),
      ];
    })));
  const b = r.budget;
  show(
    el('h1', { text: r.title }),
    el('p', { class: 'muted', text: r.citation }),
    el('p', { text: `Budget ${b.name}: ${b.epochs} epochs, ${(100 * b.fraction).toPrecision(3)}% of the paper's ${b.paper_epochs}` +
      (b.description ? ` (${b.description})` : '') + `; seeds ${r.seeds.join(', ')}; sweep ${r.sweep}.` }),
    b.expected_source ? el('p', { class: 'muted', text: 'Expected values at this budget: ' + b.expected_source }) : null,
    el('table', { id: 'reproduction-table' }, el('thead', {}, head, sub), el('tbody', {}, body)),
    el('p', { id: 'reproduction-summary', class: r.summary.ok ? 'status-done' : 'status-failed', text: summaryText(r.summary) }),
    el('h2', { text: 'Command' }), el('pre', { class: 'cmd', text: r.command }));
}

// ---- the router -----------------------------------------------------------------------------

async function render(refresh) {
  clearTimeout(refreshTimer);
  const scrollY = window.scrollY;
  charts.forEach((c) => c.destroy());
  charts = [];
  const { path, params } = parseHash();
  const top = path[0] || 'sweeps';
  document.querySelectorAll('header nav a').forEach((a) => a.classList.toggle('active', a.dataset.nav === top || (top === 'sweep' && a.dataset.nav === 'sweeps') || (top === 'reproduction' && a.dataset.nav === 'reproductions')));
  view.dataset.state = 'loading';
  try {
    if (top === 'sweeps') await sweepsView();
    else if (top === 'sweep') await sweepView(path[1] || '', params);
    else if (top === 'runs') await runsView(params);
    else if (top === 'compare') await compareView(params);
    else if (top === 'run') await runView(path[1] || '');
    else if (top === 'reproductions') await reproductionsView();
    else if (top === 'reproduction') await reproductionView(path[1] || '', path[2] || '');
    else throw new Error('no view ' + location.hash);
  } catch (err) {
    showError(view, err);
  }
  view.dataset.view = top;
  view.dataset.state = 'ready';
  if (refresh) window.scrollTo(0, scrollY);
}

window.addEventListener('hashchange', () => render());
updateNav();
api('/api/info').then((i) => { document.getElementById('db-info').textContent = `${i.db} · ${i.runs} runs · read-only`; }).catch(() => {});
render();
