#!/usr/bin/env node
// A stand-in for `gimel serve`, for working on the dashboard without building the C++ binary:
//   GIMEL_BIN=./fake_gimel.mjs node --test dashboard.test.mjs
// Same command line, same "gimel listening on" line, same HTTP contract for what the dashboard
// uses (GET /track, GET /experiments?stats=true, DELETE /delete, /dashboard assets read from
// web/ on disk with the real server's Content-Security-Policy). Counting is exact (Sets) and the
// statistics are textbook approximations, not gimel's: never use it to check numbers.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const webDir = path.resolve(here, '../../../web');
const args = process.argv.slice(2);
const flag = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
if (args[0] !== 'serve') { console.error('fake_gimel: only `serve` is supported'); process.exit(2); }
const config = flag('--config') ? JSON.parse(fs.readFileSync(flag('--config'), 'utf8')) : {};
const apiKey = config.api_key || 'fake-key';
const [host, port] = flag('--listen', '127.0.0.1:0').split(':');

// ns -> experiment -> event -> variant -> Set(uuid)
const data = new Map();
const child = (m, k) => { if (!m.has(k)) m.set(k, new Map()); return m.get(k); };

const Z = { 0.9: 1.6449, 0.95: 1.96, 0.99: 2.5758 };
const phi = (x) => 0.5 * (1 + erf(x / Math.SQRT2));
function erf(x) {  // Abramowitz-Stegun 7.1.26
  const s = Math.sign(x); x = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * x);
  const y = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return s * y;
}
function stats(s, n, base, z) {
  const nt = n + z * z, pt = (s + z * z / 2) / nt, h = z * Math.sqrt(pt * (1 - pt) / nt);
  const rate = { value: n ? s / n : 0, lower: Math.max(0, pt - h), upper: Math.min(1, pt + h) };
  if (!base) {
    return { rate, improvement: null, relative_improvement: null, p_value: null, p_value_one_tailed: null,
             chance_to_beat_baseline: null, expected_loss: null };
  }
  const d = rate.value - base.rate.value;
  const se = Math.sqrt(rate.value * (1 - rate.value) / Math.max(n, 1) +
                       base.rate.value * (1 - base.rate.value) / Math.max(base.n, 1)) || 1e-9;
  const br = base.rate.value || 1e-9;
  const one = 1 - phi(Math.abs(d) / se);
  return { rate, improvement: { value: d, lower: d - z * se, upper: d + z * se },
           relative_improvement: { value: d / br, lower: (d - z * se) / br, upper: (d + z * se) / br },
           p_value: Math.min(1, 2 * one), p_value_one_tailed: one,
           chance_to_beat_baseline: phi(d / se), expected_loss: 0 };
}
function srm(trials) {
  const k = trials.length, total = trials.reduce((a, b) => a + b, 0);
  if (k < 2 || !total) return { p_value: 1, mismatch: false };
  const e = total / k, x = trials.reduce((a, t) => a + (t - e) ** 2 / e, 0), df = k - 1;
  const zz = (Math.cbrt(x / df) - (1 - 2 / (9 * df))) / Math.sqrt(2 / (9 * df));  // Wilson-Hilferty
  const p = 1 - phi(zz);
  return { p_value: p, mismatch: p < 0.001 };
}

function report(ns, q) {
  const out = [{ meta: { scope: q.get('scope') } }];
  const z = Z[q.get('confidence') || '0.95'] || 1.96;
  for (const [name, events] of data.get(ns) || []) {
    const part = events.get('participate') || new Map();
    const variants = new Set();
    for (const ev of events.values()) for (const v of ev.keys()) variants.add(v);
    const goals = [];
    for (const [goal, byVariant] of events) {
      if (goal === 'participate') continue;
      const results = [...variants].map((label) => ({
        label, successes: byVariant.get(label)?.size || 0, trials: part.get(label)?.size || 0 }));
      const g = { goal, results };
      if (q.get('stats') === 'true') {
        const baseline = results.find((r) => r.label === q.get('baseline')) || results[0];
        const b = { rate: stats(baseline.successes, baseline.trials, null, z).rate, n: baseline.trials };
        for (const r of results) r.stats = stats(r.successes, r.trials, r === baseline ? null : b, z);
        g.baseline = baseline.label;
        g.srm = srm(results.map((r) => r.trials));
      }
      goals.push(g);
    }
    out.push({ experiment: name, goals });
  }
  return out;
}

const ASSETS = { 'index.html': 'text/html; charset=utf-8', 'app.js': 'text/javascript; charset=utf-8',
                 'style.css': 'text/css; charset=utf-8' };
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; " +
            "connect-src 'self'; frame-ancestors 'none'";

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const q = url.searchParams;
  const send = (status, body, type = 'application/json', extra = {}) => {
    res.writeHead(status, { 'Content-Type': type, 'Access-Control-Allow-Origin': '*',
                            'Cache-Control': 'no-cache, no-store, must-revalidate', ...extra });
    res.end(type === 'application/json' ? JSON.stringify(body) : body);
  };
  const ns = q.get('namespace') || 'alephbet';
  if (url.pathname === '/dashboard' || url.pathname.startsWith('/dashboard/')) {
    const file = url.pathname.replace(/^\/dashboard\/?/, '') || 'index.html';
    if (!ASSETS[file]) return send(404, { error: 'no such dashboard file' });
    return send(200, fs.readFileSync(path.join(webDir, file)), ASSETS[file], { 'Content-Security-Policy': CSP });
  }
  if (url.pathname === '/track' && req.method === 'GET') {
    for (const p of ['experiment', 'variant', 'event', 'uuid']) {
      if (!q.get(p)) return send(400, { error: `missing parameter '${p}'` });
    }
    child(child(child(data, ns), q.get('experiment')), q.get('event'));
    const byVariant = data.get(ns).get(q.get('experiment')).get(q.get('event'));
    if (!byVariant.has(q.get('variant'))) byVariant.set(q.get('variant'), new Set());
    byVariant.get(q.get('variant')).add(q.get('uuid'));
    return send(200, null);
  }
  if (['/experiments', '/delete'].includes(url.pathname)) {
    if (req.headers['x-api-key'] !== apiKey) return send(403, { message: 'Forbidden' });
    if (url.pathname === '/experiments' && req.method === 'GET') return send(200, report(ns, q));
    if (url.pathname === '/delete' && req.method === 'DELETE') {
      data.get(ns)?.delete(q.get('experiment'));
      return send(200, {});
    }
  }
  return send(404, { error: 'not found' });
});
server.listen(Number(port), host, () => {
  console.log(`gimel listening on http://${host}:${server.address().port}`);
});
process.on('SIGTERM', () => { server.close(() => process.exit(0)); server.closeAllConnections(); });
