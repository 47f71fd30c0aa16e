#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Browser test of the dashboard (issue 4): a real nginx under real traffic, a real reqmon
// observing it with eBPF, and real headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core from web/node_modules) looking at http://127.0.0.1:<port>/.
//
//   node dashboard.test.mjs --reqmon build/reqmon --source-dir . --artifacts build/test-artifacts
//
// Checks: the tiles show the same total as /stats; the charts have drawn data points; the
// recent-requests table lists the driven paths; screenshots (1280 px and 400 px wide) are saved;
// stopping reqmon shows the "reconnecting" state and starting it again recovers without reload.
// Alerts: a rules file whose error-share rules fire on the load phase's 500s; the banner shows
// the firing alert (name, severity, summary) as /alerts lists it; a short-window rule resolves
// once traffic stops and is a row of the history table; alert starts and ends fall on the
// charts' time range (where they are marked); the restarted reqmon (no errors) shows no banner.
// Exit codes: 0 pass, 1 fail, 77 skipped (not root: BPF needs it). Only 127.0.0.1 is used;
// every loop is bounded; nginx, reqmon and Chromium are killed on exit, also on failure.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const SKIP = 77;
const HOST = '127.0.0.1';
const OVERALL_TIMEOUT_MS = 270_000;  // below CTest's TIMEOUT 300
const NGINX = '/usr/sbin/nginx';
const CHROMIUM = '/usr/bin/chromium';

// ---- arguments -----------------------------------------------------------------------------
function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m) throw new Error(`unexpected argument ${argv[i]}`);
    out[m[1]] = m[2] !== undefined ? m[2] : argv[++i];
  }
  return out;
}
const args = parseArgs(process.argv.slice(2));
const sourceDir = path.resolve(args['source-dir'] || path.join(import.meta.dirname || '.', '..', '..'));
const reqmonBin = path.resolve(args.reqmon || path.join(sourceDir, 'build', 'reqmon'));
const artifacts = path.resolve(args.artifacts || path.join(path.dirname(reqmonBin), 'test-artifacts'));

const t0 = Date.now();
const log = (...a) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s]`, ...a);

if (typeof process.getuid === 'function' && process.getuid() !== 0) {
  console.log('SKIPPED: needs root for BPF');
  process.exit(SKIP);
}

// ---- child process bookkeeping ---------------------------------------------------------------
const children = new Set();  // {name, proc}
let browser = null;
let tmp = null;

function killGroup(proc, sig) {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  try { process.kill(-proc.pid, sig); } catch { try { proc.kill(sig); } catch { /* gone */ } }
}
function killAllSync() {
  for (const c of children) killGroup(c.proc, 'SIGKILL');
  children.clear();
  if (browser) {
    const p = browser.process && browser.process();
    browser = null;
    if (p && p.pid) { try { process.kill(-p.pid, 'SIGKILL'); } catch { try { p.kill('SIGKILL'); } catch { /* gone */ } } }
  }
}
process.on('exit', killAllSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => { console.error(`FAIL: interrupted by ${sig}`); killAllSync(); process.exit(1); });
}

function start(name, cmd, argv, opts = {}) {
  const outPath = path.join(tmp, `${name}.out.log`);
  const fd = fs.openSync(outPath, 'a');
  // detached: its own process group, so cleanup kills it with everything it forked.
  const proc = spawn(cmd, argv, { stdio: ['ignore', fd, fd], detached: true, ...opts });
  fs.closeSync(fd);
  const entry = { name, proc, outPath };
  children.add(entry);
  proc.on('exit', () => children.delete(entry));
  return entry;
}
function waitExit(proc, ms) {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    proc.once('exit', () => { clearTimeout(t); resolve(true); });
  });
}
async function stop(entry, sig = 'SIGTERM', ms = 15000) {
  if (!entry) return;
  killGroup(entry.proc, sig);
  if (!(await waitExit(entry.proc, ms))) {
    log(`${entry.name} did not exit after ${sig} within ${ms} ms: SIGKILL`);
    killGroup(entry.proc, 'SIGKILL');
    await waitExit(entry.proc, 5000);
  }
  children.delete(entry);
}
const tail = (file, n = 40) => {
  try { return fs.readFileSync(file, 'utf8').split('\n').slice(-n).join('\n'); } catch { return '(none)'; }
};

// ---- small helpers ---------------------------------------------------------------------------
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
class TestFailure extends Error {}
class FatalFailure extends TestFailure {}  // ends a waitFor at once (e.g. a child exited)
function check(cond, msg) { if (!cond) throw new TestFailure(msg); }
function checkAlive(entry) {
  const p = entry.proc;
  if (p.exitCode !== null || p.signalCode !== null) {
    throw new FatalFailure(`${entry.name} exited early (code ${p.exitCode}, signal ${p.signalCode}):\n${tail(entry.outPath)}`);
  }
}

// Polls fn() until it returns a truthy value; bounded in time and in attempts.
async function waitFor(what, fn, { timeout = 15000, interval = 250 } = {}) {
  const deadline = Date.now() + timeout;
  const maxTries = Math.ceil(timeout / interval) + 1;
  let last;
  for (let i = 0; i < maxTries && Date.now() <= deadline; i++) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      if (e instanceof FatalFailure) throw e;
      last = e;
    }
    await sleep(interval);
  }
  throw new TestFailure(`timed out after ${timeout} ms waiting for ${what}` +
    (last instanceof Error ? `: ${last.message}` : last !== undefined ? ` (last: ${JSON.stringify(last)})` : ''));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, HOST, () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// One HTTP/1.1 request with a real client; resolves {status, body}.
function httpGet(port, p, timeout = 5000) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: HOST, port, path: p, agent: false, headers: { Connection: 'close' }, timeout },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => { if (body.length < 1 << 20) body += d; });
        res.on('end', () => resolve({ status: res.statusCode, body }));
      });
    req.on('timeout', () => req.destroy(new Error(`GET ${p}: timeout`)));
    req.on('error', reject);
  });
}
async function getJson(port, p) {
  const r = await httpGet(port, p);
  check(r.status === 200, `GET ${p} -> HTTP ${r.status}`);
  return JSON.parse(r.body);
}

// ---- nginx -----------------------------------------------------------------------------------
function writeNginxConf(dir, port) {
  const conf = `# written by tests/browser/dashboard.test.mjs
daemon off;
master_process on;
worker_processes 2;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 256; }
http {
  access_log ${dir}/nginx-access.log;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  default_type text/plain;
  keepalive_timeout 5;
  server {
    listen ${HOST}:${port};
    location /api/     { return 200 "ok\\n"; }
    location /missing/ { return 404 "not here\\n"; }
    location /boom/    { return 500 "boom\\n"; }
    location /         { return 200 "root\\n"; }
  }
}
`;
  const file = path.join(dir, 'nginx.conf');
  fs.writeFileSync(file, conf);
  return file;
}

// ---- reqmon ----------------------------------------------------------------------------------
async function startReqmon(nginxPid, apiPort, label) {
  const r = start(label, reqmonBin, [
    '--pid', String(nginxPid), '--listen', `${HOST}:${apiPort}`,
    '--log-file', path.join(tmp, 'monitor_logs.txt'),
    '--alert-rules', path.join(tmp, 'rules.yaml'),
  ]);
  await waitFor(`${label} /healthz on ${HOST}:${apiPort}`, async () => {
    checkAlive(r);
    const h = await getJson(apiPort, '/healthz');
    return h.status === 'ok';
  }, { timeout: 45000, interval: 300 });
  return r;
}

// Completes `n` GETs to `paths(i)` with at most `conc` in flight.
async function drive(port, n, pathOf, conc = 4) {
  const statuses = {};
  let next = 0;
  async function worker() {
    while (next < n) {
      const i = next++;
      const r = await httpGet(port, pathOf(i));
      statuses[r.status] = (statuses[r.status] || 0) + 1;
    }
  }
  await Promise.all(Array.from({ length: Math.min(conc, n) }, worker));
  return statuses;
}

// ---- the page --------------------------------------------------------------------------------
const tileValue = (page, id) => page.$eval(`#${id} .tile-value`, (e) => ({
  raw: e.dataset.value, text: e.textContent.trim(),
}));
async function recentRows(page) {
  // {cls: "r2" (status class colour), path, status, text: the whole row as shown}
  return page.$$eval('#recent tbody tr', (rows) => rows.map((r) => ({
    cls: r.className,
    path: (r.querySelector('td.path .p') || {}).textContent || '',
    status: ((r.querySelector('.code-pill') || {}).textContent || '').trim(),
    text: [...r.cells].map((c) => c.textContent.trim()).join(' | '),
  })));
}
async function chartInfo(page) {
  return page.evaluate(() => {
    const out = {};
    const charts = (window.reqmon && window.reqmon.charts) || {};
    for (const [k, u] of Object.entries(charts)) {
      const xs = u.data[0] || [];
      let points = 0;
      let maxY = 0;
      for (let s = 1; s < u.data.length; s++) {
        for (const v of u.data[s] || []) if (typeof v === 'number') { points++; if (v > maxY) maxY = v; }
      }
      // Non-background pixels on the plot canvas (uPlot's canvas is transparent where empty).
      const c = u.ctx.canvas;
      const img = u.ctx.getImageData(0, 0, c.width, c.height).data;
      let inked = 0;
      let coloured = 0;
      for (let i = 0; i < img.length; i += 4) {
        if (img[i + 3] > 0) inked++;
        const [r, g, b] = [img[i], img[i + 1], img[i + 2]];
        if (img[i + 3] > 200 && Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured++;
      }
      out[k] = { xs: xs.length, points, maxY, inked, coloured, w: c.width, h: c.height };
    }
    return out;
  });
}
const connState = (page) => page.evaluate(() => ({
  banner: !document.getElementById('banner').hidden,
  bannerText: document.getElementById('banner-text').textContent,
  pill: document.getElementById('conn').textContent.trim(),
  okPolls: window.reqmon ? window.reqmon.state.okPolls : -1,
  online: window.reqmon ? window.reqmon.state.online : null,
}));

// ---- the test --------------------------------------------------------------------------------
async function main() {
  log(`reqmon: ${reqmonBin}`);
  check(fs.existsSync(reqmonBin), `reqmon binary not found at ${reqmonBin} (build it first)`);
  const webDir = path.join(path.dirname(reqmonBin), 'web');
  check(fs.existsSync(path.join(webDir, 'index.html')) && fs.existsSync(path.join(webDir, 'vendor', 'uPlot.iife.min.js')),
    `dashboard files missing in ${webDir}: build the reqmon_web target (needs scripts/setup.sh for uPlot)`);
  check(fs.existsSync(NGINX), `${NGINX} not found (Debian package nginx-light)`);
  check(fs.existsSync(CHROMIUM), `${CHROMIUM} not found (Debian package chromium)`);
  const pwPath = path.join(sourceDir, 'web', 'node_modules', 'playwright-core', 'index.mjs');
  check(fs.existsSync(pwPath), `${pwPath} missing: run scripts/setup.sh (npm ci in web/)`);
  const { chromium } = await import(pathToFileURL(pwPath).href);

  fs.mkdirSync(artifacts, { recursive: true });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'reqmon-browser-'));
  log(`temp dir ${tmp}`);

  // nginx: master + 2 workers on a free loopback port.
  const webPort = await freePort();
  const conf = writeNginxConf(tmp, webPort);
  const t = spawnSync(NGINX, ['-t', '-p', tmp, '-c', conf, '-e', path.join(tmp, 'nginx-error.log')], { encoding: 'utf8', timeout: 20000 });
  check(t.status === 0, `nginx -t failed:\n${t.stderr}`);
  const nginx = start('nginx', NGINX, ['-p', tmp, '-c', conf, '-e', path.join(tmp, 'nginx-error.log')]);
  await waitFor(`nginx on ${HOST}:${webPort}`, async () => {
    if (nginx.proc.exitCode !== null) throw new FatalFailure(`nginx exited: ${tail(path.join(tmp, 'nginx-error.log'))}`);
    return (await httpGet(webPort, '/')).status === 200;
  }, { timeout: 15000 });
  log(`nginx master pid ${nginx.proc.pid} on ${HOST}:${webPort}`);

  const apiPort = await freePort();
  // One rule that the load phase's 500s (1 in 23, plus 2 of the 12 distinct paths) set off.
  fs.writeFileSync(path.join(tmp, 'rules.yaml'), [
    'rules:',
    '  - name: BrowserErrors',
    '    signal: error_ratio',
    '    window: 5m',
    '    above: 1',
    '    min_requests: 20',
    '    severity: critical',
    '    summary: "5xx share {{value}}% over 5m"',
    // and one with a short window that fires on the load's 500s and resolves once traffic stops
    '  - name: BurstOf500s',
    '    signal: error_ratio',
    '    window: 3s',
    '    above: 1',
    '    min_requests: 5',
    '    severity: warning',
    '    summary: "5xx share {{value}}% over 3s"',
    '',
  ].join('\n'));
  let reqmon = await startReqmon(nginx.proc.pid, apiPort, 'reqmon');
  log(`reqmon up on ${HOST}:${apiPort}`);
  const api = (p) => getJson(apiPort, p);

  // Traffic: a paced load phase over ~6 s (so the charts have several seconds of shape, with a
  // few 404s and 500s), then one request to each of a dozen distinct paths.
  const LOAD_STEPS = [10, 25, 40, 30, 20, 35];
  let loadTotal = 0;
  const load = {};
  for (const [step, n] of LOAD_STEPS.entries()) {
    const t1 = Date.now();
    const st = await drive(webPort, n, (i) => (i % 17 === 16 ? `/missing/load-${i}` : i % 23 === 22 ? `/boom/load-${i}` : `/api/load?step=${step}&i=${i}`), 3);
    for (const [k, v] of Object.entries(st)) load[k] = (load[k] || 0) + v;
    loadTotal += n;
    await sleep(Math.max(0, 1000 - (Date.now() - t1)));
  }
  log('load phase statuses', JSON.stringify(load));
  const distinct = [];
  for (let i = 1; i <= 8; i++) distinct.push({ path: `/api/browser-${i}`, status: 200 });
  distinct.push({ path: '/missing/browser-9', status: 404 }, { path: '/missing/browser-10', status: 404 });
  distinct.push({ path: '/boom/browser-11', status: 500 }, { path: '/boom/browser-12', status: 500 });
  for (const d of distinct) {
    const r = await httpGet(webPort, d.path);
    check(r.status === d.status, `nginx ${d.path}: expected ${d.status}, got ${r.status}`);
  }
  const driven = loadTotal + distinct.length;
  const stats0 = await waitFor(`/stats to count the ${driven} driven requests`, async () => {
    const s = await api('/stats');
    return s.total_requests >= driven ? s : false;
  }, { timeout: 20000, interval: 300 });
  log(`/stats total_requests=${stats0.total_requests} codes=${JSON.stringify(stats0.status_codes)}`);

  // Browser.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 60000,
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  // Only reqmon's own origin may be contacted: no CDN, no network at run time.
  const foreign = [];
  await context.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (u.hostname === HOST && u.port === String(apiPort)) return route.continue();
    foreign.push(route.request().url());
    return route.abort();
  });
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error' && !/Failed to load resource|ERR_CONNECTION_REFUSED/.test(m.text())) pageErrors.push(`console: ${m.text()}`); });
  const url = `http://${HOST}:${apiPort}/`;
  const resp = await page.goto(url, { waitUntil: 'load', timeout: 30000 });
  check(resp && resp.status() === 200, `GET ${url} -> ${resp && resp.status()}`);
  await page.waitForFunction(() => window.reqmon && window.reqmon.state.okPolls >= 2, null, { timeout: 20000 });

  // 1. Tiles show the same total as /stats (traffic has stopped, so it is stable).
  const total = await waitFor('total tile == /stats total_requests', async () => {
    const s = await api('/stats');
    const tv = await tileValue(page, 'tile-total');
    return Number(tv.raw) === s.total_requests && tv.text.replace(/[^0-9]/g, '') === String(s.total_requests)
      ? { stats: s, tile: tv } : false;
  }, { timeout: 15000, interval: 500 });
  log(`total tile "${total.tile.text}" == /stats ${total.stats.total_requests}`);
  check(total.stats.total_requests >= driven, `total ${total.stats.total_requests} < driven ${driven}`);
  const errTile = await tileValue(page, 'tile-err');
  const c = total.stats.status_classes;
  const expectErr = ((c['4xx'] + c['5xx']) / total.stats.total_requests) * 100;
  check(Math.abs(Number(errTile.raw) - expectErr) < 0.01, `error tile ${errTile.raw} != ${expectErr}`);
  check(await page.isHidden('#empty'), 'the "no requests yet" note is shown although there are requests');

  // 2. Charts have drawn data points.
  const charts = await waitFor('charts with data points', async () => {
    const ci = await chartInfo(page);
    const ok = ['rps', 'lat', 'sys', 'net'].every((k) => ci[k] && ci[k].xs > 0 && ci[k].points > 0) &&
      ci.rps.maxY > 0 && ci.rps.coloured > 100 && ci.lat.coloured > 10;
    return ok ? ci : false;
  }, { timeout: 15000, interval: 500 });
  log('charts', JSON.stringify(charts));

  // 3. The recent-requests table lists the driven paths, coloured by status class.
  const rows = await waitFor('recent-requests table listing the driven paths', async () => {
    const rs = await recentRows(page);
    const ok = distinct.every((d) => rs.some((r) => r.path === d.path && r.status === String(d.status) &&
      r.cls === `r${Math.floor(d.status / 100)}`));
    return ok ? rs : false;
  }, { timeout: 15000, interval: 500 });
  log(`recent table: ${rows.length} rows, first "${rows[0].text}"`);
  check(rows.length <= 20, `recent table has ${rows.length} rows (bounded at 20)`);

  // Bounded DOM: a few more polls must not grow the page (rows are replaced, not appended).
  const nodes = () => page.evaluate(() => document.getElementsByTagName('*').length);
  const polls0 = await page.evaluate(() => window.reqmon.state.okPolls);
  const n0 = await nodes();
  await page.waitForFunction((p) => window.reqmon.state.okPolls >= p + 3, polls0, { timeout: 15000 });
  const n1 = await nodes();
  check(n1 - n0 <= 20, `DOM grew from ${n0} to ${n1} elements in 3 polls`);

  // Status codes table and routes table agree with /stats.
  const codeCells = await page.$$eval('#codes tbody tr', (rs) => rs.map((r) => [...r.cells].map((x) => x.textContent.trim())));
  for (const [code, n] of Object.entries(total.stats.status_codes)) {
    check(codeCells.some((r) => r[0] === code && r[1].replace(/,/g, '') === String(n)), `status code ${code}=${n} not in table: ${JSON.stringify(codeCells)}`);
  }
  const routeText = await page.$eval('#routes tbody', (e) => e.textContent);
  check(routeText.includes('/api/load'), 'routes table lacks /api/load');
  const links = await page.$$eval('a', (as) => as.map((a) => a.getAttribute('href')));
  for (const l of ['stats', 'metrics', 'series', 'metrics/prometheus', 'healthz', 'alerts', 'analytics']) {
    check(links.includes(l), `no link to /${l}`);
  }
  check(links.some((l) => l && l.startsWith('requests')), 'no link to /requests');

  // Capacity & forecasts (issue #14): the panel says in words what /analytics says (here, with
  // little load variation, that there is no estimate yet), one line per forecast; the response
  // time tile splits serving and waiting once queue time was measured.
  const panel = await waitFor('the capacity panel to match /analytics', async () => {
    const an = await api('/analytics');
    const p = await page.evaluate(() => ({
      summary: document.querySelector('#capacity-summary').textContent.trim(),
      forecasts: [...document.querySelectorAll('#forecast-list li')].map((li) => li.textContent.trim()),
      anomalies: document.querySelectorAll('#anomalies tbody tr').length,
    }));
    return p.summary === an.capacity.summary && p.forecasts.length === an.forecasts.length ? { p, an } : false;
  });
  check(panel.p.forecasts.length === 3, `forecast lines: ${JSON.stringify(panel.p.forecasts)}`);
  check(/req\/s at most|load has not varied|no saturation/.test(panel.p.summary), `capacity line: ${panel.p.summary}`);
  check(panel.p.anomalies >= 1, 'the anomalies table has no row (nor its "none" row)');
  log(`capacity panel: "${panel.p.summary}"; ${panel.p.forecasts.join('; ')}`);
  const st = await api('/stats');
  if (st.queue_time && st.queue_time.count > 0) {
    const sub = await page.evaluate(() => document.querySelector('#tile-avg .tile-sub').textContent);
    check(/serving .* \+ waiting /.test(sub), `avg tile does not split serving and waiting: ${sub}`);
  }

  // The alerts banner: the firing alert, as /alerts has it; its start is marked on the charts.
  const firing = await waitFor('/alerts to list BrowserErrors firing', async () => {
    const a = await api('/alerts');
    return a.active.find((x) => x.name === 'BrowserErrors' && x.state === 'firing') || false;
  }, { timeout: 20000, interval: 300 });
  const banner = await waitFor('the alerts banner to show BrowserErrors', async () => {
    const b = await page.evaluate(() => {
      const e = document.getElementById('alerts-banner');
      const r = e.getBoundingClientRect();
      return { hidden: e.hidden, h: r.height, cls: e.className, title: document.getElementById('alerts-banner-title').textContent,
        items: [...e.querySelectorAll('li')].map((li) => ({ name: li.dataset.name, text: li.textContent })) };
    });
    return !b.hidden && b.h > 0 && b.items.some((i) => i.name === 'BrowserErrors') ? b : false;
  }, { timeout: 15000, interval: 250 });
  const item = banner.items.find((i) => i.name === 'BrowserErrors');
  check(/critical/i.test(item.text) && item.text.includes('firing since'), `banner item: ${item.text}`);
  check(/5xx share [0-9.]+% over 5m/.test(item.text), `banner lacks the summary ("${firing.summary}"): ${item.text}`);
  check(/^\d+ alerts? firing/.test(banner.title) && /is-critical/.test(banner.cls), `banner title/class: ${banner.title} / ${banner.cls}`);
  // The short-window alert resolved when traffic stopped: a row of the history table.
  const hist = await waitFor('the alert history table to list BurstOf500s', async () => {
    const rows = await page.$$eval('#alerts-history tbody tr', (rs) => rs.map((r) => [...r.cells].map((c) => c.textContent.trim())));
    return rows.find((r) => r[0] === 'BurstOf500s') || false;
  }, { timeout: 20000, interval: 250 });
  check(hist[1] === 'warning' && /^\d\d:\d\d:\d\d/.test(hist[2]) && /^\d\d:\d\d:\d\d/.test(hist[3]), `history row: ${hist.join(' | ')}`);
  const marks = await page.evaluate(() => {
    const u = window.reqmon.charts.rps;
    const a = window.reqmon.state.alerts.active.find((x) => x.name === 'BrowserErrors');
    return { since: a.since_unix, min: u.scales.x.min, max: u.scales.x.max };
  });
  check(marks.since >= marks.min && marks.since <= marks.max, `alert start ${marks.since} outside the chart's x range ${marks.min}..${marks.max}`);
  const ended = await page.evaluate(() => window.reqmon.state.alerts.history.find((h) => h.name === 'BurstOf500s'));
  check(ended && ended.ended_unix >= marks.min && ended.ended_unix <= marks.max, `alert end outside the chart: ${JSON.stringify(ended)}`);
  log(`alerts banner: "${banner.title}": ${item.text}`);

  await page.screenshot({ path: path.join(artifacts, 'dashboard.png'), fullPage: true });
  log(`screenshot ${path.join(artifacts, 'dashboard.png')}`);

  // Narrow screen: no horizontal page overflow (wide tables scroll inside their panels).
  await page.setViewportSize({ width: 400, height: 860 });
  await sleep(1500);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `page overflows a 400 px viewport by ${overflow} px`);
  await page.screenshot({ path: path.join(artifacts, 'dashboard-narrow.png'), fullPage: true });
  log(`screenshot ${path.join(artifacts, 'dashboard-narrow.png')}`);
  await page.setViewportSize({ width: 1280, height: 900 });

  // 4. Stop reqmon: the page shows the reconnecting state.
  log('stopping reqmon (SIGTERM)');
  await stop(reqmon, 'SIGTERM', 15000);
  check(reqmon.proc.exitCode !== null || reqmon.proc.signalCode !== null, 'reqmon did not stop');
  const down = await waitFor('the reconnecting banner', async () => {
    const s = await connState(page);
    return s.banner && /reconnecting/i.test(s.bannerText) && /reconnecting/i.test(s.pill) ? s : false;
  }, { timeout: 15000, interval: 250 });
  log(`page shows: "${down.bannerText}" / pill "${down.pill}"`);
  await page.screenshot({ path: path.join(artifacts, 'dashboard-reconnecting.png') });

  // 5. Start reqmon again on the same port: the page recovers by itself (no reload).
  await sleep(1500);  // let the page go through at least one backoff step
  const navsBefore = await page.evaluate(() => performance.getEntriesByType('navigation').length + ':' + performance.timeOrigin);
  reqmon = await startReqmon(nginx.proc.pid, apiPort, 'reqmon-2');
  log('reqmon restarted');
  const up = await waitFor('the page to recover (banner gone, live)', async () => {
    const s = await connState(page);
    return !s.banner && s.online === true && /live/i.test(s.pill) ? s : false;
  }, { timeout: 20000, interval: 250 });
  const navsAfter = await page.evaluate(() => performance.getEntriesByType('navigation').length + ':' + performance.timeOrigin);
  check(navsBefore === navsAfter, 'the page was reloaded');
  log(`recovered: pill "${up.pill}"`);

  // Tiles keep updating: new traffic shows up in the tiles and the table.
  const after = [];
  for (let i = 1; i <= 5; i++) after.push(`/api/after-restart-${i}`);
  for (const p of after) await httpGet(webPort, p);
  await waitFor('the restarted reqmon to count the new requests', async () =>
    (await api('/stats')).total_requests >= after.length, { timeout: 15000, interval: 300 });
  const total2 = await waitFor('total tile == /stats total after restart', async () => {
    const s = await api('/stats');
    const tv = await tileValue(page, 'tile-total');
    return s.total_requests > 0 && Number(tv.raw) === s.total_requests ? s.total_requests : false;
  }, { timeout: 15000, interval: 500 });
  await waitFor('the recent table to list the post-restart paths', async () => {
    const rs = await recentRows(page);
    return after.every((p) => rs.some((r) => r.path === p));
  }, { timeout: 15000, interval: 500 });
  log(`tiles updating after restart: total ${total2}`);
  // The restarted reqmon has seen no 5xx: no alert, no banner.
  await waitFor('the alerts banner to be hidden after the restart', async () =>
    page.evaluate(() => document.getElementById('alerts-banner').hidden && window.reqmon.state.alerts.active.length === 0),
  { timeout: 15000, interval: 250 });
  await page.screenshot({ path: path.join(artifacts, 'dashboard-recovered.png'), fullPage: true });

  check(foreign.length === 0, `the page tried to reach other origins: ${foreign.slice(0, 5).join(', ')}`);
  check(pageErrors.length === 0, `page errors: ${pageErrors.slice(0, 5).join(' | ')}`);

  await browser.close().catch(() => {});
  browser = null;
  await stop(reqmon, 'SIGTERM', 15000);
  await stop(nginx, 'SIGQUIT', 10000);
  log('PASS');
}

const watchdog = setTimeout(() => {
  console.error(`FAIL: the test did not finish within ${OVERALL_TIMEOUT_MS / 1000} s`);
  dumpLogs();
  killAllSync();
  process.exit(1);
}, OVERALL_TIMEOUT_MS);

function dumpLogs() {
  if (!tmp) return;
  for (const f of ['reqmon.out.log', 'reqmon-2.out.log', 'nginx-error.log', 'nginx.out.log']) {
    const p = path.join(tmp, f);
    if (fs.existsSync(p)) console.error(`--- ${f} (tail) ---\n${tail(p)}`);
  }
}

main().then(() => {
  clearTimeout(watchdog);
  killAllSync();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  process.exit(0);
}, async (e) => {
  clearTimeout(watchdog);
  console.error(`FAIL: ${e instanceof TestFailure ? e.message : (e && e.stack) || e}`);
  dumpLogs();
  if (browser) {
    try {
      const pages = browser.contexts().flatMap((c) => c.pages());
      if (pages[0]) await pages[0].screenshot({ path: path.join(artifacts, 'dashboard-failure.png'), fullPage: true, timeout: 5000 });
    } catch { /* best effort */ }
  }
  killAllSync();
  if (tmp) console.error(`(logs kept in ${tmp})`);
  process.exit(1);
});
