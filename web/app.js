// gimel dashboard: reads GET /experiments?stats=true with the API key and renders each goal's
// table, interval chart and warnings. Plain DOM, no framework. Every name (namespace,
// experiment, goal, variant) is an arbitrary user string: it only ever reaches the page through
// textContent, attribute values or SVG text nodes, never through innerHTML.
(function () {
  'use strict';

  const KEY_STORAGE = 'gimel.apiKey';
  const NS_STORAGE = 'gimel.namespace';
  const MIN_TRIALS = 100;            // "too few trials" when any variant has fewer than this
  const HLL_STD_ERROR = 0.0081;      // relative standard error of one HyperLogLog count
  const AUTO_REFRESH_MS = 30000;
  const SVG_NS = 'http://www.w3.org/2000/svg';

  // The API lives one level above the dashboard's assets (app.js is at <root>/dashboard/app.js),
  // so it keeps working behind a path prefix such as an API Gateway stage.
  const script = document.currentScript;
  const API_ROOT = new URL('../', script ? script.src : location.href);

  const $ = (id) => document.getElementById(id);
  const ui = {
    controls: $('controls'), namespace: $('namespace'), baseline: $('baseline'),
    confidence: $('confidence'), autoRefresh: $('auto-refresh'), forgetKey: $('forget-key'),
    keyPanel: $('key-panel'), keyForm: $('key-form'), keyInput: $('api-key'), keyError: $('key-error'),
    status: $('status'), error: $('error'), experiments: $('experiments'), notes: $('notes'),
  };
  $('min-trials').textContent = String(MIN_TRIALS);

  let requestSeq = 0;        // ignore answers to superseded requests
  let autoTimer = null;
  let charts = [];           // {holder, goal} of the rendered charts, redrawn on resize

  // ---- API key ---------------------------------------------------------------------------

  function getKey() {
    try { return sessionStorage.getItem(KEY_STORAGE) || ''; } catch (e) { return ''; }
  }
  function setKey(key) {
    try {
      if (key) sessionStorage.setItem(KEY_STORAGE, key); else sessionStorage.removeItem(KEY_STORAGE);
    } catch (e) { /* storage disabled: the key lives only until the page is reloaded */ }
    memoryKey = key;
  }
  let memoryKey = getKey();

  function askForKey(message) {
    setKey('');
    requestSeq++;  // drop any answer still in flight
    ui.controls.hidden = true;
    ui.notes.hidden = true;
    clear(ui.experiments);
    hideError();
    setStatus('');
    ui.keyError.hidden = !message;
    ui.keyError.textContent = message || '';
    ui.keyPanel.hidden = false;
    ui.keyInput.value = '';
    ui.keyInput.focus();
  }

  ui.keyForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const key = ui.keyInput.value.trim();
    if (!key) return;
    setKey(key);
    ui.keyPanel.hidden = true;
    ui.controls.hidden = false;
    refresh();
  });
  ui.forgetKey.addEventListener('click', () => askForKey(''));

  // ---- requests --------------------------------------------------------------------------

  function apiUrl(path, params) {
    const url = new URL(path, API_ROOT);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    return url.toString();
  }

  // fetch with the key; resolves to {status, body} (body: parsed JSON or null).
  async function api(method, path, params) {
    const res = await fetch(apiUrl(path, params), {
      method,
      headers: { 'X-Api-Key': memoryKey, 'Accept': 'application/json' },
      cache: 'no-store',
      credentials: 'omit',
    });
    let body = null;
    const text = await res.text();
    try { body = text ? JSON.parse(text) : null; } catch (e) { body = text; }
    return { status: res.status, body };
  }

  function errorText(res) {
    const b = res.body;
    if (b && typeof b === 'object') return b.error || b.message || JSON.stringify(b);
    return typeof b === 'string' && b ? b : 'HTTP ' + res.status;
  }

  function namespace() { return ui.namespace.value.trim() || 'alephbet'; }

  async function refresh() {
    if (!memoryKey) { askForKey(''); return; }
    const seq = ++requestSeq;
    const ns = namespace();
    const params = { namespace: ns, stats: 'true' };
    const baseline = ui.baseline.value.trim();
    if (baseline) params.baseline = baseline;
    if (ui.confidence.value !== '0.95') params.confidence = ui.confidence.value;
    try { localStorage.setItem(NS_STORAGE, ns); } catch (e) { /* ignore */ }
    setStatus('Loading…');
    let res;
    try {
      res = await api('GET', 'experiments', params);
    } catch (e) {
      if (seq !== requestSeq) return;
      showError('Cannot reach the server: ' + e.message);
      setStatus('');
      return;
    }
    if (seq !== requestSeq) return;
    if (res.status === 403) { askForKey('Wrong API key. Please enter it again.'); return; }
    if (res.status !== 200 || !Array.isArray(res.body)) {
      showError('Could not load experiments: ' + errorText(res));
      setStatus('');
      return;
    }
    hideError();
    render(ns, res.body, Number(ui.confidence.value));
    setStatus('Namespace “' + ns + '” · updated ' + new Date().toLocaleTimeString());
  }

  async function deleteExperiment(ns, name) {
    const ok = window.confirm('Delete experiment “' + name + '” in namespace “' + ns +
        '”?\n\nAll its counters are removed. This cannot be undone.');
    if (!ok) return;
    let res;
    try {
      res = await api('DELETE', 'delete', { namespace: ns, experiment: name });
    } catch (e) {
      showError('Cannot reach the server: ' + e.message);
      return;
    }
    if (res.status === 403) { askForKey('Wrong API key. Please enter it again.'); return; }
    if (res.status < 200 || res.status >= 300) {
      showError('Could not delete “' + name + '”: ' + errorText(res));
      return;
    }
    await refresh();
  }

  // ---- controls --------------------------------------------------------------------------

  ui.controls.addEventListener('submit', (ev) => { ev.preventDefault(); refresh(); });
  ui.confidence.addEventListener('change', () => refresh());
  ui.autoRefresh.addEventListener('change', () => {
    if (autoTimer) { clearInterval(autoTimer); autoTimer = null; }
    if (ui.autoRefresh.checked) {
      autoTimer = setInterval(() => {
        if (!document.hidden && memoryKey && ui.keyPanel.hidden) refresh();
      }, AUTO_REFRESH_MS);
    }
  });

  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => charts.forEach((c) => drawChart(c.holder, c.goal)), 150);
  });

  // ---- small DOM helpers -----------------------------------------------------------------

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function setStatus(text) { ui.status.textContent = text; }
  function showError(text) { ui.error.textContent = text; ui.error.hidden = false; }
  function hideError() { ui.error.hidden = true; ui.error.textContent = ''; }

  // ---- formatting ------------------------------------------------------------------------

  const isNum = (x) => typeof x === 'number' && isFinite(x);
  const intFmt = new Intl.NumberFormat('en-US');
  const fmtInt = (n) => (isNum(n) ? intFmt.format(n) : '—');
  const pct = (x, digits) => (x * 100).toFixed(digits);
  const signed = (s) => (s.startsWith('-') ? '−' + s.slice(1) : '+' + s);
  function fmtP(p) {
    if (!isNum(p)) return '—';
    return p < 0.001 ? '< 0.001' : p.toFixed(3);
  }
  // {value, lower, upper} → main text and the interval text.
  function interval(iv, fmt) {
    if (!iv || !isNum(iv.value)) return null;
    const range = isNum(iv.lower) && isNum(iv.upper) ? '[' + fmt(iv.lower) + ', ' + fmt(iv.upper) + ']' : '';
    return { main: fmt(iv.value), range };
  }
  const fmtRate = (x) => pct(x, 2) + ' %';
  const fmtPP = (x) => signed(pct(x, 2)) + ' pp';
  const fmtRel = (x) => signed(pct(x, 1)) + ' %';

  // ---- data normalisation ----------------------------------------------------------------

  // One goal's variants, defensive about missing fields: rate falls back to successes/trials.
  function variantsOf(goal) {
    const results = Array.isArray(goal.results) ? goal.results : [];
    const baselineLabel = typeof goal.baseline === 'string' ? goal.baseline
        : (results[0] ? String(results[0].label) : null);
    const vs = results.map((r) => {
      const trials = isNum(r.trials) ? r.trials : 0;
      const successes = isNum(r.successes) ? r.successes : 0;
      const stats = r.stats && typeof r.stats === 'object' ? r.stats : null;
      let rate = stats && stats.rate && isNum(stats.rate.value) ? stats.rate : null;
      if (!rate) rate = { value: trials > 0 ? successes / trials : NaN, lower: NaN, upper: NaN };
      return { label: String(r.label), trials, successes, stats, rate,
               isBaseline: String(r.label) === baselineLabel };
    });
    // Baseline first, then by label, so a refresh never reorders rows.
    vs.sort((a, b) => (b.isBaseline - a.isBaseline) || a.label.localeCompare(b.label));
    return vs;
  }

  // ---- warnings --------------------------------------------------------------------------

  function warningsFor(goal, vs) {
    const out = [];
    if (goal.srm && goal.srm.mismatch === true) {
      const p = goal.srm.p_value;
      out.push({ kind: 'srm', text: 'Sample ratio mismatch' +
          (isNum(p) ? (p < 0.001 ? ' (p < 0.001)' : ' (p = ' + fmtP(p) + ')') : '') +
          ': the trials are not split between variants as expected. Assignment or tracking is ' +
          'probably broken; do not trust these results.' });
    }
    const few = vs.filter((v) => v.trials < MIN_TRIALS);
    if (few.length) {
      out.push({ kind: 'few', text: 'Too few trials: ' +
          few.map((v) => v.label + ' has ' + fmtInt(v.trials)).join(', ') +
          ' (fewer than ' + MIN_TRIALS + ' per variant). Results are not reliable yet.' });
    }
    // HLL rule: each HyperLogLog count has a relative standard error of 0.81 %. For a variant v
    // against the baseline b, the observed difference expressed in conversions is
    //   d = |rate_v − rate_b| × min(trials_v, trials_b)
    // and a 2-sigma counting error on the larger success count is
    //   e = 2 × 0.0081 × max(successes_v, successes_b).
    // When d < e, counting error alone could explain the difference: warn.
    const base = vs.find((v) => v.isBaseline);
    if (base && isNum(base.rate.value)) {
      const hll = vs.filter((v) => {
        if (v.isBaseline || !isNum(v.rate.value)) return false;
        const d = Math.abs(v.rate.value - base.rate.value) * Math.min(v.trials, base.trials);
        const e = 2 * HLL_STD_ERROR * Math.max(v.successes, base.successes);
        return e > 0 && d < e;
      });
      if (hll.length) {
        out.push({ kind: 'hll', text: 'HLL error larger than the observed difference for ' +
            hll.map((v) => v.label).join(', ') + ': with HyperLogLog counting (±0.81 % per count) ' +
            'this difference could be counting noise. Use exact counting to measure effects this small.' });
      }
    }
    return out;
  }

  // ---- rendering -------------------------------------------------------------------------

  function render(ns, body, confidence) {
    const experiments = body.filter((e) => e && typeof e === 'object' && 'experiment' in e)
        .sort((a, b) => String(a.experiment).localeCompare(String(b.experiment)));
    clear(ui.experiments);
    charts = [];
    ui.notes.hidden = false;
    if (!experiments.length) {
      ui.experiments.appendChild(el('p', 'empty', 'No experiments in namespace “' + ns + '” yet.'));
      return;
    }
    for (const exp of experiments) ui.experiments.appendChild(renderExperiment(ns, exp, confidence));
    // Charts are sized to their container, so draw them once they are in the document.
    charts.forEach((c) => drawChart(c.holder, c.goal));
  }

  function renderExperiment(ns, exp, confidence) {
    const name = String(exp.experiment);
    const card = el('section', 'experiment');
    card.dataset.experiment = name;
    const head = el('div', 'experiment-head');
    head.appendChild(el('h2', null, name));
    const del = el('button', 'danger delete', 'Delete');
    del.type = 'button';
    del.title = 'Delete this experiment and all its counters';
    del.addEventListener('click', () => deleteExperiment(ns, name));
    head.appendChild(del);
    card.appendChild(head);

    const goals = (Array.isArray(exp.goals) ? exp.goals : [])
        .slice().sort((a, b) => String(a.goal).localeCompare(String(b.goal)));
    if (!goals.length) {
      card.appendChild(el('p', 'empty', 'No goals yet: only participations have been recorded, ' +
          'so variants and trials are not known from this report.'));
      return card;
    }
    for (const goal of goals) card.appendChild(renderGoal(goal, confidence));
    return card;
  }

  function renderGoal(goal, confidence) {
    const box = el('div', 'goal');
    box.dataset.goal = String(goal.goal);
    const h = el('h3');
    h.appendChild(el('span', 'muted', 'Goal '));
    h.appendChild(el('span', 'goal-name', String(goal.goal)));
    box.appendChild(h);

    const vs = variantsOf(goal);
    const warnings = warningsFor(goal, vs);
    if (warnings.length) {
      const ul = el('ul', 'warnings');
      for (const w of warnings) {
        const li = el('li', 'warning warning-' + w.kind);
        li.appendChild(el('span', 'warning-icon', '⚠'));
        li.appendChild(el('span', null, w.text));
        ul.appendChild(li);
      }
      box.appendChild(ul);
    }
    if (!vs.length) {
      box.appendChild(el('p', 'empty', 'No variants recorded.'));
      return box;
    }
    const hasStats = vs.some((v) => v.stats);
    if (!hasStats) box.appendChild(el('p', 'muted', 'Statistics unavailable from this server: counts only.'));

    const scroll = el('div', 'table-scroll');
    const table = el('table', 'results');
    const thead = el('thead');
    const hr = el('tr');
    const confText = isNum(confidence) ? Math.round(confidence * 100) + ' %' : '';
    for (const [text, cls] of [['Variant', 'c-label'], ['Trials', 'num'], ['Successes', 'num'],
        ['Rate (' + confText + ' interval)', 'num'], ['Improvement', 'num'], ['Relative improvement', 'num'],
        ['p-value', 'num'], ['Chance to beat baseline', 'num']]) {
      const th = el('th', cls, text);
      th.scope = 'col';
      hr.appendChild(th);
    }
    thead.appendChild(hr);
    table.appendChild(thead);
    const tbody = el('tbody');
    for (const v of vs) tbody.appendChild(renderRow(v));
    table.appendChild(tbody);
    scroll.appendChild(table);
    box.appendChild(scroll);

    const holder = el('div', 'chart');
    box.appendChild(holder);
    charts.push({ holder, goal: vs });
    return box;
  }

  function renderRow(v) {
    const tr = el('tr', v.isBaseline ? 'baseline' : null);
    tr.dataset.variant = v.label;
    const s = v.stats || {};
    const label = el('th', 'c-label');
    label.scope = 'row';
    label.appendChild(el('span', 'variant-name', v.label));
    if (v.isBaseline) label.appendChild(el('span', 'badge', 'baseline'));
    tr.appendChild(label);
    tr.appendChild(numCell('c-trials', fmtInt(v.trials), v.trials));
    tr.appendChild(numCell('c-successes', fmtInt(v.successes), v.successes));
    tr.appendChild(intervalCell('c-rate', interval(v.rate, fmtRate), v.rate.value));
    const imp = s.improvement;
    const tone = imp && isNum(imp.lower) && isNum(imp.upper)
        ? (imp.lower > 0 ? 'good' : imp.upper < 0 ? 'bad' : null) : null;
    const impCell = intervalCell('c-improvement', v.isBaseline ? null : interval(imp, fmtPP), imp && imp.value);
    const relCell = intervalCell('c-relative', v.isBaseline ? null : interval(s.relative_improvement, fmtRel),
        s.relative_improvement && s.relative_improvement.value);
    if (tone) { impCell.classList.add(tone); relCell.classList.add(tone); }
    tr.appendChild(impCell);
    tr.appendChild(relCell);
    tr.appendChild(numCell('c-p', v.isBaseline ? '—' : fmtP(s.p_value), s.p_value));
    const chance = s.chance_to_beat_baseline;
    tr.appendChild(numCell('c-chance', !v.isBaseline && isNum(chance) ? pct(chance, 1) + ' %' : '—', chance));
    return tr;
  }

  function numCell(cls, text, raw) {
    const td = el('td', 'num ' + cls, text);
    if (isNum(raw)) td.dataset.value = String(raw);
    return td;
  }
  function intervalCell(cls, iv, raw) {
    const td = el('td', 'num ' + cls);
    if (!iv) { td.textContent = '—'; return td; }
    td.appendChild(el('span', 'value', iv.main));
    if (iv.range) td.appendChild(el('span', 'range', iv.range));
    if (isNum(raw)) td.dataset.value = String(raw);
    return td;
  }

  // ---- interval chart (SVG, sized to its container) --------------------------------------

  function niceStep(span, maxTicks) {
    const raw = span / Math.max(1, maxTicks);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * mag >= raw) return m * mag;
    return 10 * mag;
  }

  function drawChart(holder, vs) {
    clear(holder);
    const width = Math.max(260, Math.floor(holder.clientWidth || 600));
    const narrow = width < 480;
    const rowH = 26, top = 8, axisH = 24;
    const labelW = Math.min(160, Math.round(width * (narrow ? 0.28 : 0.22)));
    const right = 12, left = labelW + 10;
    const height = top + vs.length * rowH + axisH;
    const plotW = width - left - right;

    const lows = [], highs = [];
    for (const v of vs) {
      const r = v.rate;
      if (!isNum(r.value)) continue;
      lows.push(isNum(r.lower) ? r.lower : r.value);
      highs.push(isNum(r.upper) ? r.upper : r.value);
    }
    const root = svg('svg', { width, height, viewBox: '0 0 ' + width + ' ' + height,
                              role: 'img', class: 'interval-chart' });
    root.appendChild(svg('title', {}, 'Conversion rate intervals per variant'));
    holder.appendChild(root);
    if (!lows.length) {
      root.appendChild(svg('text', { x: 8, y: top + 14, class: 'axis' }, 'No trials yet'));
      return;
    }
    let lo = Math.min(...lows), hi = Math.max(...highs);
    if (hi - lo < 1e-6) { lo -= 0.005; hi += 0.005; }
    const pad = (hi - lo) * 0.06;
    lo = Math.max(0, lo - pad); hi = Math.min(1, hi + pad);
    const x = (val) => left + ((val - lo) / (hi - lo)) * plotW;

    // Axis and grid.
    const axisY = top + vs.length * rowH;
    const step = niceStep(hi - lo, narrow ? 3 : 6);
    const digits = Math.max(0, -Math.floor(Math.log10(step * 100) + 1e-9));
    for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-12; t += step) {
      const tx = x(t);
      root.appendChild(svg('line', { x1: tx, x2: tx, y1: top, y2: axisY, class: 'grid' }));
      root.appendChild(svg('text', { x: tx, y: axisY + 16, 'text-anchor': 'middle', class: 'axis' },
          (t * 100).toFixed(digits) + ' %'));
    }
    root.appendChild(svg('line', { x1: left, x2: width - right, y1: axisY, y2: axisY, class: 'axis-line' }));

    // Rows.
    const maxChars = Math.max(4, Math.floor(labelW / 7));
    vs.forEach((v, i) => {
      const cy = top + i * rowH + rowH / 2;
      const g = svg('g', { class: 'row' + (v.isBaseline ? ' baseline' : '') });
      const name = v.label.length > maxChars ? v.label.slice(0, maxChars - 1) + '…' : v.label;
      const label = svg('text', { x: labelW, y: cy + 4, 'text-anchor': 'end', class: 'label' }, name);
      label.appendChild(svg('title', {}, v.label));
      g.appendChild(label);
      const r = v.rate;
      if (isNum(r.value)) {
        const imp = v.stats && v.stats.improvement;
        const tone = v.isBaseline ? 'base' : imp && isNum(imp.lower) && imp.lower > 0 ? 'good'
            : imp && isNum(imp.upper) && imp.upper < 0 ? 'bad' : 'neutral';
        if (isNum(r.lower) && isNum(r.upper)) {
          g.appendChild(svg('rect', { x: x(r.lower), y: cy - 5, width: Math.max(1, x(r.upper) - x(r.lower)),
                                      height: 10, rx: 3, class: 'bar ' + tone }));
        }
        g.appendChild(svg('circle', { cx: x(r.value), cy, r: 4.5, class: 'point ' + tone }));
        const tip = svg('title', {}, v.label + ': ' + fmtRate(r.value) +
            (isNum(r.lower) && isNum(r.upper) ? ' [' + fmtRate(r.lower) + ', ' + fmtRate(r.upper) + ']' : ''));
        g.appendChild(tip);
      }
      root.appendChild(g);
    });

    // Baseline rate as a vertical dashed line over all rows.
    const base = vs.find((v) => v.isBaseline);
    if (base && isNum(base.rate.value)) {
      const bx = x(base.rate.value);
      root.appendChild(svg('line', { x1: bx, x2: bx, y1: top - 4, y2: axisY, class: 'baseline-line' }));
    }
  }

  // ---- start -----------------------------------------------------------------------------

  const fromQuery = new URLSearchParams(location.search).get('namespace');
  let saved = null;
  try { saved = localStorage.getItem(NS_STORAGE); } catch (e) { /* ignore */ }
  ui.namespace.value = fromQuery || saved || 'alephbet';
  if (memoryKey) {
    ui.keyPanel.hidden = true;
    ui.controls.hidden = false;
    refresh();
  } else {
    askForKey('');
  }
})();
