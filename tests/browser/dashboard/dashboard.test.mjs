// The dashboard in a real headless Chromium against a real `gimel serve` (embedded store, fresh
// data dir, port 0). Run from this folder: `npm install && npm test`; GIMEL_BIN overrides the
// binary (default ../../../build/src/cli/gimel). Screenshots go to tests/out/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const GIMEL_BIN = process.env.GIMEL_BIN
  ? path.resolve(process.env.GIMEL_BIN) : path.resolve(here, '../../../build/src/cli/gimel');
const OUT_DIR = path.resolve(here, '../../out');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const API_KEY = 'dashboard-test-key-' + process.pid;
const NS = 'alephbet';  // the dashboard's default namespace
const OTHER_NS = 'other ns/ü';
const XSS_EXPERIMENT = '<img src=x onerror="window.__xss=1"> & "quotes" <b>bold</b>';
const XSS_VARIANT = '<i>v1</i>';

let server;      // { proc, url, dir, output }
let browser;
const pageErrors = [];

// ---- gimel process ---------------------------------------------------------------------

function startGimel() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gimel-dashboard-'));
  const config = path.join(dir, 'config.json');
  fs.writeFileSync(config, JSON.stringify({ api_key: API_KEY }), { mode: 0o600 });
  const proc = spawn(GIMEL_BIN, ['serve', '--config', config, '--listen', '127.0.0.1:0',
                                 '--data-dir', path.join(dir, 'data'), '--store', 'embedded'],
                     { stdio: ['ignore', 'pipe', 'pipe'] });
  const s = { proc, dir, url: null, output: '', exited: null };
  proc.on('exit', (code, signal) => { s.exited = { code, signal }; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error('no "gimel listening on" line within 30 s')), 30000);
    function fail(err) {
      clearTimeout(timer);
      reject(new Error(err.message + '\n--- gimel output ---\n' + s.output));
    }
    proc.on('error', fail);
    proc.on('exit', (code, signal) => {
      if (!s.url) fail(new Error(`gimel exited early (code ${code}, signal ${signal})`));
    });
    proc.stderr.on('data', (d) => { s.output += d; });
    proc.stdout.on('data', (d) => {
      s.output += d;
      const m = !s.url && /gimel listening on (http:\/\/\S+)/.exec(s.output);
      if (m) { s.url = m[1].replace(/\/$/, ''); clearTimeout(timer); resolve(s); }
    });
  });
}

async function stopGimel(s) {
  if (!s) return;
  if (!s.exited) {
    const exited = new Promise((r) => s.proc.once('exit', r));
    s.proc.kill('SIGTERM');
    const t = setTimeout(() => s.proc.kill('SIGKILL'), 10000);
    await exited;
    clearTimeout(t);
  }
  fs.rmSync(s.dir, { recursive: true, force: true });
}

// ---- HTTP helpers ----------------------------------------------------------------------

async function track(ns, experiment, variant, event, uuid) {
  const q = new URLSearchParams({ namespace: ns, experiment, variant, event, uuid });
  const res = await fetch(`${server.url}/track?${q}`);
  await res.arrayBuffer();
  assert.equal(res.status, 200, `track ${q} answered ${res.status}`);
}

// Runs the tasks with at most `width` in flight.
async function pool(tasks, width = 8) {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < tasks.length) await tasks[next++]();
  }));
}

// variants: {label: [participants, conversions]}; uuids are unique per experiment and variant.
async function seed(ns, experiment, goal, variants) {
  const tasks = [];
  for (const [label, [trials, successes]] of Object.entries(variants)) {
    for (let i = 0; i < trials; i++) {
      const uuid = `${experiment}|${label}|${i}`;
      tasks.push(() => track(ns, experiment, label, 'participate', uuid));
      if (goal && i < successes) tasks.push(() => track(ns, experiment, label, goal, uuid));
    }
  }
  await pool(tasks);
}

async function experiments(ns, key = API_KEY) {
  const res = await fetch(`${server.url}/experiments?${new URLSearchParams({ namespace: ns, stats: 'true' })}`,
                          { headers: { 'X-Api-Key': key } });
  const body = await res.json();
  return { status: res.status, body };
}

// ---- page helpers ----------------------------------------------------------------------

async function newPage(viewport, extra = {}) {
  const context = await browser.newContext({ viewport, ...extra });
  const page = await context.newPage();
  const requests = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    // The wrong-key test makes Chromium log the expected 403 as a failed resource load.
    if (m.type() === 'error' && !/status of 403/.test(m.text())) pageErrors.push(m.text());
  });
  page.on('request', (r) => requests.push({ url: r.url(), headers: r.headers() }));
  page.on('dialog', (d) => { pageErrors.push('unexpected dialog: ' + d.message()); d.dismiss(); });
  return { context, page, requests };
}

async function signIn(page, key) {
  await page.locator('#api-key').fill(key);
  await page.locator('#key-form button[type=submit]').click();
}

// What the page shows, read back as plain data.
function scrape(page) {
  return page.evaluate(() => [...document.querySelectorAll('#experiments section.experiment')].map((card) => ({
    experiment: card.dataset.experiment,
    title: card.querySelector('h2').textContent,
    text: card.textContent,
    warnings: [...card.querySelectorAll('.warning')].map((w) => w.className),
    goals: [...card.querySelectorAll('.goal')].map((g) => ({
      goal: g.dataset.goal,
      title: g.querySelector('.goal-name').textContent,
      warnings: [...g.querySelectorAll('.warning')].map((w) => w.className.replace('warning ', '')),
      chartBars: g.querySelectorAll('svg .bar').length,
      chartPoints: g.querySelectorAll('svg .point').length,
      baselineLine: g.querySelectorAll('svg .baseline-line').length,
      rows: [...g.querySelectorAll('tbody tr')].map((tr) => ({
        variant: tr.dataset.variant,
        label: tr.querySelector('.variant-name').textContent,
        baseline: tr.classList.contains('baseline'),
        trials: tr.querySelector('.c-trials').textContent,
        successes: tr.querySelector('.c-successes').textContent,
        rate: tr.querySelector('.c-rate .value')?.textContent ?? tr.querySelector('.c-rate').textContent,
        improvement: tr.querySelector('.c-improvement').textContent,
        p: tr.querySelector('.c-p').textContent,
        chance: tr.querySelector('.c-chance').textContent,
      })),
    })),
  })));
}

const num = (s) => Number(s.replace(/,/g, ''));
const rateText = (r) => {
  const v = r.stats?.rate?.value ?? (r.trials ? r.successes / r.trials : NaN);
  return (v * 100).toFixed(2) + ' %';
};

// Checks every experiment, goal and variant of the API answer against the page.
function assertPageMatches(shown, api) {
  const exps = api.filter((e) => 'experiment' in e);
  assert.deepEqual(shown.map((e) => e.experiment).sort(), exps.map((e) => e.experiment).sort());
  for (const exp of exps) {
    const card = shown.find((c) => c.experiment === exp.experiment);
    assert.equal(card.title, exp.experiment, 'experiment name shown verbatim');
    assert.deepEqual(card.goals.map((g) => g.goal).sort(), exp.goals.map((g) => g.goal).sort());
    if (!exp.goals.length) assert.match(card.text, /No goals yet/);
    for (const goal of exp.goals) {
      const g = card.goals.find((x) => x.goal === goal.goal);
      assert.equal(g.title, goal.goal);
      assert.equal(g.rows.length, goal.results.length, `${exp.experiment}/${goal.goal}: one row per variant`);
      const baseline = goal.baseline ?? goal.results[0].label;
      assert.deepEqual(g.rows.filter((r) => r.baseline).map((r) => r.variant), [baseline]);
      for (const r of goal.results) {
        const row = g.rows.find((x) => x.variant === r.label);
        assert.ok(row, `${exp.experiment}/${goal.goal}: row for ${r.label}`);
        assert.equal(row.label, r.label);
        assert.equal(num(row.trials), r.trials, `${exp.experiment}/${goal.goal}/${r.label} trials`);
        assert.equal(num(row.successes), r.successes, `${exp.experiment}/${goal.goal}/${r.label} successes`);
        assert.equal(row.rate, rateText(r), `${exp.experiment}/${goal.goal}/${r.label} rate`);
        if (r.label !== baseline && typeof r.stats?.p_value === 'number') {
          const p = r.stats.p_value;
          assert.equal(row.p, p < 0.001 ? '< 0.001' : p.toFixed(3));
        }
      }
      assert.equal(g.chartPoints, goal.results.length, 'one chart point per variant');
      assert.equal(g.baselineLine, 1, 'baseline line in the chart');
    }
  }
}

// ---- setup -----------------------------------------------------------------------------

before(async () => {
  assert.ok(fs.existsSync(GIMEL_BIN), `gimel binary not found at ${GIMEL_BIN} (set GIMEL_BIN)`);
  fs.mkdirSync(OUT_DIR, { recursive: true });
  server = await startGimel();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  await Promise.all([
    seed(NS, 'button color', 'clicked', { red: [300, 30], blue: [300, 60] }),
    seed(NS, 'srm skewed', 'signup', { A: [400, 40], B: [150, 15] }),
    seed(NS, XSS_EXPERIMENT, 'goal <script>', { [XSS_VARIANT]: [120, 12], 'v/2:ü': [120, 18] }),
    seed(NS, 'only participations', null, { x: [10, 0], y: [10, 0] }),
    seed(NS, 'to delete', 'done', { a: [20, 2], b: [20, 5] }),
    seed(OTHER_NS, 'elsewhere', 'g', { one: [150, 20], two: [150, 25] }),
  ]);
});

after(async () => {
  await browser?.close().catch(() => {});
  await stopGimel(server);
});

// ---- tests -----------------------------------------------------------------------------

test('API sanity: the server needs the key and reports the seeded data', async () => {
  const wrong = await experiments(NS, 'not-the-key');
  assert.equal(wrong.status, 403);
  assert.deepEqual(wrong.body, { message: 'Forbidden' });
  const { status, body } = await experiments(NS);
  assert.equal(status, 200);
  assert.equal(body.filter((e) => 'experiment' in e).length, 5);
  const skewed = body.find((e) => e.experiment === 'srm skewed');
  assert.equal(skewed.goals[0].srm?.mismatch, true, 'server reports SRM for the 400/150 split: ' +
               JSON.stringify(skewed.goals[0]));
  const even = body.find((e) => e.experiment === 'button color');
  assert.equal(even.goals[0].srm?.mismatch, false);
});

test('wrong key is refused with a clear message, the right key shows the report', async () => {
  const { context, page, requests } = await newPage({ width: 1280, height: 900 });
  try {
    await page.goto(`${server.url}/dashboard`);
    await page.locator('#key-panel').waitFor({ state: 'visible' });
    await signIn(page, 'not-the-key');
    await page.locator('#key-error').waitFor({ state: 'visible' });
    assert.match(await page.locator('#key-error').textContent(), /Wrong API key/);
    assert.equal(await page.locator('#api-key').isVisible(), true, 'asks again');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('gimel.apiKey')), null);

    await signIn(page, API_KEY);
    await page.locator('section.experiment').first().waitFor();
    assert.equal(await page.locator('#namespace').inputValue(), NS);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('gimel.apiKey')), API_KEY);

    const api = (await experiments(NS)).body;
    const shown = await scrape(page);
    assertPageMatches(shown, api);

    // Warnings.
    const warningsOf = (name) => shown.find((c) => c.experiment === name).goals.flatMap((g) => g.warnings);
    assert.ok(warningsOf('srm skewed').includes('warning-srm'), 'SRM warning on the skewed experiment');
    assert.ok(!warningsOf('button color').includes('warning-srm'));
    assert.ok(!warningsOf('button color').includes('warning-few'), '300 trials is enough');
    assert.ok(warningsOf('to delete').includes('warning-few'), 'too-few-trials warning at 20 trials');
    assert.ok(await page.locator('.warning-srm').first().isVisible());

    // Names are text, never markup.
    const xss = shown.find((c) => c.experiment === XSS_EXPERIMENT);
    assert.equal(xss.title, XSS_EXPERIMENT);
    assert.equal(xss.goals[0].title, 'goal <script>');
    assert.ok(xss.goals[0].rows.some((r) => r.label === XSS_VARIANT));
    assert.equal(await page.locator('#experiments img, #experiments b, #experiments i, #experiments script').count(), 0);
    assert.equal(await page.evaluate(() => window.__xss), undefined);

    // The key travels only as a header.
    const apiRequests = requests.filter((r) => new URL(r.url).pathname === '/experiments');
    assert.ok(apiRequests.length >= 2);
    for (const r of requests) assert.ok(!r.url.includes(API_KEY), `key in URL ${r.url}`);
    assert.equal(apiRequests.at(-1).headers['x-api-key'], API_KEY);

    await page.screenshot({ path: path.join(OUT_DIR, 'dashboard-desktop.png'), fullPage: true });
  } finally {
    await context.close();
  }
});

test('refresh reloads data without reloading the page; namespace can be changed', async () => {
  const { context, page } = await newPage({ width: 1280, height: 900 });
  try {
    await page.goto(`${server.url}/dashboard`);
    await signIn(page, API_KEY);
    await page.locator('section.experiment').first().waitFor();
    await page.evaluate(() => { window.__notReloaded = true; });
    const trialsOf = () => page.evaluate(() => {
      const card = [...document.querySelectorAll('section.experiment')]
        .find((c) => c.dataset.experiment === 'button color');
      const row = [...card.querySelectorAll('tbody tr')].find((r) => r.dataset.variant === 'red');
      return row.querySelector('.c-trials').textContent;
    });
    assert.equal(await trialsOf(), '300');
    await pool(Array.from({ length: 5 }, (_, i) => () => track(NS, 'button color', 'red', 'participate', 'late' + i)));
    const expected = (await experiments(NS)).body.find((e) => e.experiment === 'button color')
      .goals[0].results.find((r) => r.label === 'red').trials;
    await page.locator('#refresh').click();
    await page.waitForFunction((want) => {
      const card = [...document.querySelectorAll('section.experiment')]
        .find((c) => c.dataset.experiment === 'button color');
      const row = card && [...card.querySelectorAll('tbody tr')].find((r) => r.dataset.variant === 'red');
      return row && row.querySelector('.c-trials').textContent.replace(/,/g, '') === String(want);
    }, expected);
    assert.equal(await page.evaluate(() => window.__notReloaded), true);

    await page.locator('#namespace').fill(OTHER_NS);
    await page.locator('#refresh').click();
    await page.waitForFunction(() => [...document.querySelectorAll('section.experiment')]
      .map((c) => c.dataset.experiment).join() === 'elsewhere');
    assertPageMatches(await scrape(page), (await experiments(OTHER_NS)).body);
  } finally {
    await context.close();
  }
});

test('phone viewport (375 px): no page-wide horizontal scroll, tables scroll inside', async () => {
  const { context, page } = await newPage({ width: 375, height: 812 }, { isMobile: true, hasTouch: true });
  try {
    await page.goto(`${server.url}/dashboard`);
    await signIn(page, API_KEY);
    await page.locator('section.experiment').first().waitFor();
    const layout = await page.evaluate(() => ({
      page: document.documentElement.scrollWidth,
      charts: [...document.querySelectorAll('svg.interval-chart')].map((s) => s.getBoundingClientRect().right),
      scrollers: [...document.querySelectorAll('.table-scroll')].map((d) => getComputedStyle(d).overflowX),
    }));
    assert.ok(layout.page <= 375, `page is ${layout.page} px wide`);
    assert.ok(layout.charts.length > 0 && layout.charts.every((r) => r <= 375), 'charts fit the screen');
    assert.ok(layout.scrollers.every((o) => o === 'auto'));
    await page.screenshot({ path: path.join(OUT_DIR, 'dashboard-phone.png'), fullPage: true });
  } finally {
    await context.close();
  }
});

test('delete asks for confirmation and removes the experiment', async () => {
  const { context, page } = await newPage({ width: 1280, height: 900 });
  try {
    await page.goto(`${server.url}/dashboard`);
    await signIn(page, API_KEY);
    const card = page.locator('section.experiment[data-experiment="to delete"]');
    await card.waitFor();
    page.removeAllListeners('dialog');
    // Dismissing the dialog keeps the experiment.
    page.once('dialog', (d) => d.dismiss());
    await card.locator('button.delete').click();
    await page.waitForTimeout(300);
    assert.equal(await card.count(), 1);
    assert.ok((await experiments(NS)).body.some((e) => e.experiment === 'to delete'));

    const dialog = new Promise((resolve) => page.once('dialog', async (d) => {
      resolve({ type: d.type(), message: d.message() });
      await d.accept();
    }));
    await card.locator('button.delete').click();
    const d = await dialog;
    assert.equal(d.type, 'confirm');
    assert.match(d.message, /to delete/);
    await card.waitFor({ state: 'detached' });
    const api = (await experiments(NS)).body;
    assert.ok(!api.some((e) => e.experiment === 'to delete'), 'gone from /experiments');
    assertPageMatches(await scrape(page), api);
  } finally {
    await context.close();
  }
});

test('no script errors or CSP violations in the page', () => {
  assert.deepEqual(pageErrors, []);
});
