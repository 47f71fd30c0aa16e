// SPDX-License-Identifier: MIT
// reqmon dashboard: polls the JSON API once a second and updates tiles, uPlot charts and tables
// in place. Fields follow docs/api.md (GET /stats, /metrics, /series, /requests?limit=N, /alerts).
//
// Bounded by design, whatever the request rate: every table has a fixed maximum row count and
// rows are reused (cells rewritten) rather than appended; charts hold at most the 900 points of
// /series (15 minutes at 1 s); polls never overlap. When reqmon cannot be reached the page shows
// a "reconnecting" banner and retries with exponential backoff (capped), recovering by itself.
'use strict';

(() => {
  const POLL_MS = 1000;                 // live refresh period
  const HIDDEN_POLL_MS = 5000;          // while the tab is in the background
  const FETCH_TIMEOUT_MS = 4000;
  const BACKOFF_MS = [1000, 1000, 2000, 3000, 5000];  // then stays at the last value
  const WINDOW_S = 900;                 // the /series window: 15 minutes
  const RECENT_ROWS = 20;
  const ROUTE_ROWS = 10;
  const CODE_ROWS = 12;
  const PROC_ROWS = 10;
  const ALERT_ROWS = 10;

  const css = getComputedStyle(document.documentElement);
  const cssVar = (name, fallback) => (css.getPropertyValue(name).trim() || fallback);
  const COLORS = {
    c1: cssVar('--c1xx', '#a8b3bf'), c2: cssVar('--c2xx', '#3fb950'), c3: cssVar('--c3xx', '#58a6ff'),
    c4: cssVar('--c4xx', '#e3b341'), c5: cssVar('--c5xx', '#ff7b72'),
    bg: cssVar('--panel', '#161b22'), muted: cssVar('--muted', '#9ba7b4'),
    p50: '#58a6ff', p95: '#e3b341', p99: '#ff7b72', cpu: '#bc8cff', mem: '#39c5cf',
    rx: '#58a6ff', tx: '#f0883e',
  };

  const $ = (sel) => document.querySelector(sel);

  // State, exposed for debugging and for the browser test (tests/browser/).
  const state = {
    online: null, failures: 0, polls: 0, okPolls: 0, lastOkAt: 0, lastError: '',
    stats: null, metrics: null, series: null, requests: null, alerts: null,
  };
  const charts = {};
  window.reqmon = { state, charts };

  // ---- formatting ------------------------------------------------------------------------
  const nf = new Intl.NumberFormat('en-US');
  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
  const fmtInt = (v) => (isNum(v) ? nf.format(Math.round(v)) : '–');
  function fmtRate(v) {
    if (!isNum(v)) return '–';
    if (v === 0) return '0';
    if (v >= 100000) return (v / 1000).toFixed(0) + 'k';
    if (v >= 10000) return (v / 1000).toFixed(1) + 'k';
    if (v >= 100) return v.toFixed(0);
    if (v >= 10) return v.toFixed(1);
    return v.toFixed(2);
  }
  // Milliseconds as [number text, unit].
  function msParts(v) {
    if (!isNum(v)) return ['–', ''];
    if (v >= 10000) return [(v / 1000).toFixed(1), 's'];
    if (v >= 1000) return [(v / 1000).toFixed(2), 's'];
    if (v >= 100) return [v.toFixed(0), 'ms'];
    if (v >= 10) return [v.toFixed(1), 'ms'];
    return [v.toFixed(2), 'ms'];
  }
  const fmtMs = (v) => { const [n, u] = msParts(v); return u ? `${n} ${u}` : n; };
  function fmtMsNum(v) {  // table cells whose header says "ms"
    if (!isNum(v)) return '–';
    if (v >= 100) return nf.format(Math.round(v));
    if (v >= 10) return v.toFixed(1);
    return v.toFixed(2);
  }
  function fmtBytes(v, suffix = '') {
    if (!isNum(v)) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    const n = i === 0 ? v.toFixed(0) : v >= 100 ? v.toFixed(0) : v.toFixed(1);
    return `${n} ${units[i]}${suffix}`;
  }
  const fmtPct = (v, d = 1) => (isNum(v) ? v.toFixed(d) + '%' : '–');
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  const hms = (d) => `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  // "2024-11-22T10:00:00.123+01:00" -> "10:00:00.123" (the server's local time as sent).
  function timeOfDay(iso) {
    if (typeof iso !== 'string') return '–';
    const m = /T(\d\d:\d\d:\d\d(?:\.\d{1,3})?)/.exec(iso);
    return m ? m[1] : iso;
  }
  const statusClass = (code) => (isNum(code) && code >= 100 && code < 600 ? Math.floor(code / 100) : 0);
  const num = (v) => (isNum(v) ? v : 0);

  // ---- DOM helpers -----------------------------------------------------------------------
  function setText(el, text) {
    if (el && el.textContent !== text) el.textContent = text;
  }
  function setValue(tileId, text, unit, raw) {
    const el = document.querySelector(`#${tileId} .tile-value`);
    const key = `${text}\u0000${unit || ''}`;
    if (el.dataset.key !== key) {
      el.dataset.key = key;
      if (unit) {
        const u = document.createElement('span');
        u.className = 'u';
        u.textContent = unit;
        el.replaceChildren(document.createTextNode(text), u);
      } else {
        el.replaceChildren(document.createTextNode(text));
      }
    }
    if (raw !== undefined) el.dataset.value = String(raw);
    // Long numbers get a smaller font so eight tiles still fit in one row at 1280 px.
    const len = text.length + (unit ? unit.length : 0);
    el.classList.toggle('long', len > 7 && len <= 10);
    el.classList.toggle('xlong', len > 10);
  }
  function setSub(tileId, text) {
    setText(document.querySelector(`#${tileId} .tile-sub`), text || '\u00a0');
  }
  function setClass(el, cls) {
    if (el.className !== cls) el.className = cls;
  }

  // Renders `rows` into the table body, reusing <tr>/<td> elements: at most `max` rows exist.
  // cells(row) returns one entry per column: a string, or {text, cls, title, html: Node}.
  function renderTable(table, rows, max, ncols, emptyText, cells, rowClass) {
    const tbody = table.tBodies[0];
    rows = rows.slice(0, max);
    if (rows.length === 0) {
      if (tbody.rows.length !== 1 || !tbody.rows[0].classList.contains('empty')) {
        const tr = document.createElement('tr');
        tr.className = 'empty';
        const td = document.createElement('td');
        td.colSpan = ncols;
        td.className = 'empty-row';
        tr.appendChild(td);
        tbody.replaceChildren(tr);
      }
      setText(tbody.rows[0].cells[0], emptyText);
      return;
    }
    if (tbody.rows.length && tbody.rows[0].classList.contains('empty')) tbody.replaceChildren();
    while (tbody.rows.length > rows.length) tbody.deleteRow(-1);
    while (tbody.rows.length < rows.length) {
      const tr = tbody.insertRow(-1);
      for (let c = 0; c < ncols; c++) tr.insertCell(-1);
    }
    rows.forEach((row, i) => {
      const tr = tbody.rows[i];
      if (rowClass) setClass(tr, rowClass(row));
      const vals = cells(row);
      for (let c = 0; c < ncols; c++) {
        const td = tr.cells[c];
        let v = vals[c];
        if (v == null || typeof v !== 'object') v = { text: v == null ? '' : String(v) };
        setClass(td, v.cls || '');
        if (v.title !== undefined && td.title !== v.title) td.title = v.title;
        if (v.node) {
          const key = v.key || v.text || '';
          if (td.dataset.key !== key) { td.dataset.key = key; td.replaceChildren(v.node()); }
        } else {
          if (td.dataset.key) { delete td.dataset.key; td.replaceChildren(); }
          setText(td, v.text);
        }
      }
    });
  }

  // gRPC status codes (grpc/doc/statuscodes.md).
  const GRPC_CODES = {
    0: '0 OK', 1: '1 CANCELLED', 2: '2 UNKNOWN', 3: '3 INVALID_ARGUMENT', 4: '4 DEADLINE_EXCEEDED',
    5: '5 NOT_FOUND', 6: '6 ALREADY_EXISTS', 7: '7 PERMISSION_DENIED', 8: '8 RESOURCE_EXHAUSTED',
    9: '9 FAILED_PRECONDITION', 10: '10 ABORTED', 11: '11 OUT_OF_RANGE', 12: '12 UNIMPLEMENTED',
    13: '13 INTERNAL', 14: '14 UNAVAILABLE', 15: '15 DATA_LOSS', 16: '16 UNAUTHENTICATED',
  };

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function statusPill(code, incomplete) {
    const k = incomplete ? 0 : statusClass(code);
    const text = incomplete ? 'incompl.' : isNum(code) ? String(code) : '–';
    return { key: `${k}:${text}`, cls: 'num', node: () => el('span', `code-pill s${k}`, text),
             title: incomplete ? 'connection closed before the response ended' : '' };
  }
  function timeCell(iso) {
    const t = timeOfDay(iso);
    const dot = t.indexOf('.');
    return { key: t, cls: 'mono', title: iso || '', node: () => {
      if (dot < 0) return document.createTextNode(t);
      const f = document.createDocumentFragment();
      f.append(document.createTextNode(t.slice(0, dot)), el('span', 'ms', t.slice(dot)));
      return f;
    } };
  }
  function requestCell(r) {
    const target = r.query ? `${r.path}?${r.query}` : r.path || '';
    const method = r.method || '';
    return { key: `${method} ${target}`, cls: 'path',
      title: `${method} ${target}  (client ${r.remote || '?'} → server ${r.local || '?'})`, node: () => {
        const f = document.createDocumentFragment();
        f.append(el('span', 'method', method), el('span', 'p', target));
        return f;
      } };
  }
  function routeCell(method, route) {
    return { key: `${method} ${route}`, cls: 'path', title: `${method} ${route}`, node: () => {
      const f = document.createDocumentFragment();
      f.append(el('span', 'method', method), el('span', 'p', route));
      return f;
    } };
  }

  // ---- charts ----------------------------------------------------------------------------
  // Mixes a colour with the panel background so stacked fills stay opaque (no colour blending).
  function mix(hex, alpha) {
    const p = (h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));
    const [r, g, b] = p(hex), [R, G, B] = p(COLORS.bg.length === 7 ? COLORS.bg : '#161b22');
    const m = (a, A) => Math.round(a * alpha + A * (1 - alpha));
    return `rgb(${m(r, R)},${m(g, G)},${m(b, B)})`;
  }
  function niceMax(v, min = 1) {
    if (!isNum(v) || v <= 0) return min;
    const x = v * 1.08;
    const mag = Math.pow(10, Math.floor(Math.log10(x)));
    for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * mag >= x) return Math.max(min, m * mag);
    return Math.max(min, 10 * mag);
  }
  const lastTs = () => {
    const ts = state.series && state.series.timestamps;
    return ts && ts.length ? ts[ts.length - 1] : Math.floor(Date.now() / 1000);
  };
  function timeTicks(u, ticks) {
    return ticks.map((t) => {
      const d = new Date(t * 1000);
      return d.getSeconds() ? hms(d) : `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    });
  }
  const axisBase = {
    stroke: COLORS.muted,
    font: '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
    labelFont: '600 11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
    grid: { stroke: 'rgba(154,167,180,0.12)', width: 1 },
    ticks: { stroke: 'rgba(154,167,180,0.28)', width: 1, size: 4 },
  };
  // Legend shows the hovered second, or the latest one when the cursor is elsewhere.
  function legendValue(raw, fmt) {
    return (u, v, si, idx) => {
      const arr = raw ? raw(si) : u.data[si];
      if (!arr || !arr.length) return '–';
      let i = idx;
      if (i == null) { i = arr.length - 1; while (i > 0 && arr[i] == null) i--; }
      return fmt(arr[i]);
    };
  }

  function makeChart(key, { yLabel, yFmt, yRange, series, height }) {
    const host = document.getElementById(`chart-${key}`);
    const width = Math.max(280, host.clientWidth || 600);
    const opts = {
      width,
      height: height || chartHeight(),
      pxAlign: 1,
      cursor: { sync: { key: 'reqmon' }, drag: { x: false, y: false }, points: { size: 6 } },
      legend: { live: true },
      scales: {
        x: { time: true, range: (u, min, max) => { const hi = isNum(max) ? max : lastTs(); return [hi - WINDOW_S, hi]; } },
        y: { range: yRange },
      },
      axes: [
        { ...axisBase, label: 'Time (local)', labelSize: 16, labelGap: 0, size: 28, space: 64, values: timeTicks },
        { ...axisBase, label: yLabel, labelSize: 18, labelGap: 2, size: 58, values: (u, t) => t.map(yFmt) },
      ],
      series: [{ label: 'Time', value: (u, v) => (v == null ? '' : hms(new Date(v * 1000))) }, ...series],
      hooks: { draw: [drawAlertMarks] },
    };
    const empty = [[], ...series.map(() => [])];
    const u = new uPlot(opts, empty, host);
    charts[key] = u;
    return u;
  }
  // Alert marks on every chart: a dashed line where an alert started (its severity's colour) and a
  // green one where it ended; from /alerts (active: since, history: started/ended).
  const SEV_COLORS = { critical: COLORS.c5, warning: COLORS.c4, notice: COLORS.c3 };
  function alertMarks() {
    const a = state.alerts;
    if (!a) return [];
    const marks = [];
    for (const x of a.active || []) {
      if (x.state === 'firing') marks.push({ t: x.since_unix, color: SEV_COLORS[x.severity] || COLORS.c5 });
    }
    for (const h of (a.history || []).slice(0, 50)) {
      marks.push({ t: h.started_unix, color: SEV_COLORS[h.severity] || COLORS.c5 });
      marks.push({ t: h.ended_unix, color: COLORS.c2 });
    }
    return marks;
  }
  function drawAlertMarks(u) {
    const marks = alertMarks();
    if (!marks.length) return;
    const { ctx, bbox } = u;
    const [lo, hi] = [u.scales.x.min, u.scales.x.max];
    ctx.save();
    ctx.lineWidth = Math.max(1, devicePixelRatio);
    ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
    for (const m of marks) {
      if (!isNum(m.t) || m.t < lo || m.t > hi) continue;
      const x = Math.round(u.valToPos(m.t, 'x', true));
      ctx.strokeStyle = m.color;
      ctx.beginPath();
      ctx.moveTo(x, bbox.top);
      ctx.lineTo(x, bbox.top + bbox.height);
      ctx.stroke();
    }
    ctx.restore();
  }

  // Axis tick labels: short, no trailing zeros ("0", "2.5", "1.2k").
  function axisNum(v) {
    if (!isNum(v)) return '';
    if (Math.abs(v) >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
    if (Math.abs(v) >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
    return String(+v.toFixed(2));
  }
  const chartHeight = () => (window.innerWidth < 600 ? 190 : 230);

  // Requests/s: stacked areas. uPlot draws series in order, so series 1 is the whole stack
  // (5xx on top) and each following series covers the one before with the classes below it.
  const STACK = [5, 4, 3, 2, 1];  // series 1..5 -> status class
  let rpsRaw = [[], [], [], [], [], []];
  let latNonNull = [0, 0, 0, 0];

  function initCharts() {
    const rateFmt = (v) => (isNum(v) ? fmtRate(v) : '–');
    makeChart('rps', {
      yLabel: 'requests / s', yFmt: axisNum,
      yRange: (u, min, max) => [0, niceMax(max, 1)],
      series: STACK.map((k) => ({
        label: `${k}xx`, stroke: COLORS[`c${k}`], width: 1.5, fill: mix(COLORS[`c${k}`], 0.42),
        points: { show: false },
        value: legendValue((si) => rpsRaw[si], rateFmt),
      })),
    });
    const latSeries = (label, color) => ({
      label, stroke: color, width: 1.6, spanGaps: false,
      points: { show: (u, si) => latNonNull[si] < 180, size: 4, fill: color, stroke: color },
      value: legendValue(null, (v) => (isNum(v) ? fmtMs(v) : '–')),
    });
    makeChart('lat', {
      yLabel: 'milliseconds', yFmt: (v) => (v >= 1000 ? `${+(v / 1000).toFixed(2)}s` : String(+v.toFixed(3))),
      yRange: (u, min, max) => [0, niceMax(max, 1)],
      series: [latSeries('p50', COLORS.p50), latSeries('p95', COLORS.p95), latSeries('p99', COLORS.p99)],
    });
    const pctVal = legendValue(null, (v) => (isNum(v) ? fmtPct(v) : '–'));
    makeChart('sys', {
      yLabel: 'percent', yFmt: (v) => `${v}%`, yRange: () => [0, 100],
      series: [
        { label: 'CPU', stroke: COLORS.cpu, width: 1.6, fill: 'rgba(188,140,255,0.10)', value: pctVal },
        { label: 'Memory', stroke: COLORS.mem, width: 1.6, value: pctVal },
      ],
    });
    const bpsVal = legendValue(null, (v) => (isNum(v) ? fmtBytes(v, '/s') : '–'));
    makeChart('net', {
      yLabel: 'bytes / s', yFmt: (v) => fmtBytes(v).replace(' ', ''),
      yRange: (u, min, max) => [0, niceMax(max, 1024)],
      series: [
        { label: 'Received', stroke: COLORS.rx, width: 1.6, fill: 'rgba(88,166,255,0.10)', value: bpsVal },
        { label: 'Sent', stroke: COLORS.tx, width: 1.6, value: bpsVal },
      ],
    });

    let pending = 0;
    const resize = () => {
      cancelAnimationFrame(pending);
      pending = requestAnimationFrame(() => {
        for (const [key, u] of Object.entries(charts)) {
          const host = document.getElementById(`chart-${key}`);
          const w = Math.max(240, Math.floor(host.clientWidth));
          const h = chartHeight();
          if (w !== u.width || h !== u.height) u.setSize({ width: w, height: h });
        }
      });
    };
    if ('ResizeObserver' in window) {
      const ro = new ResizeObserver(resize);
      for (const key of Object.keys(charts)) ro.observe(document.getElementById(`chart-${key}`));
    }
    window.addEventListener('resize', resize);
  }

  function updateCharts(s) {
    const ts = Array.isArray(s.timestamps) ? s.timestamps : [];
    const n = ts.length;
    const arr = (name) => (Array.isArray(s[name]) && s[name].length === n ? s[name] : new Array(n).fill(null));

    // Requests: the last second is still filling up; leave it out so the edge doesn't dip.
    const cls = [null, arr('status_1xx'), arr('status_2xx'), arr('status_3xx'), arr('status_4xx'), arr('status_5xx')];
    rpsRaw = [null, ...STACK.map((k) => cls[k])];
    const stacked = STACK.map(() => new Array(n));
    for (let i = 0; i < n; i++) {
      const partial = i === n - 1 && n > 1;
      let acc = 0;
      for (let j = STACK.length - 1; j >= 0; j--) {  // bottom (1xx) first
        acc += num(cls[STACK[j]][i]);
        stacked[j][i] = partial ? null : acc;
      }
    }
    charts.rps.setData([ts, ...stacked]);

    const p50 = arr('p50_ms'), p95 = arr('p95_ms'), p99 = arr('p99_ms');
    const cnt = (a) => a.reduce((c, v) => c + (v == null ? 0 : 1), 0);
    latNonNull = [0, cnt(p50), cnt(p95), cnt(p99)];
    charts.lat.setData([ts, p50, p95, p99]);
    charts.sys.setData([ts, arr('cpu_usage'), arr('memory_usage')]);
    charts.net.setData([ts, arr('net_rx_bytes_per_sec'), arr('net_tx_bytes_per_sec')]);
  }

  // ---- tiles and tables ------------------------------------------------------------------
  function updateTiles(st, m) {
    const total = num(st.total_requests);
    const rates = st.rates || {};
    const classes = st.status_classes || {};
    const pct = st.percentiles || {};

    setValue('tile-rps', fmtRate(num(rates['1s'])), '', num(rates['1s']));
    setSub('tile-rps', `10 s avg ${fmtRate(num(rates['10s']))} · 60 s avg ${fmtRate(num(rates['60s']))}`);

    setValue('tile-total', fmtInt(total), '', total);
    const inc = num(st.incomplete_requests);
    const tlsReq = num((st.tls || {}).requests);
    setSub('tile-total', `${inc ? fmtInt(inc) + ' incomplete · ' : ''}${tlsReq ? fmtPct((tlsReq / Math.max(total, 1)) * 100) + ' over TLS · ' : ''}${fmtBytes(num(st.response_bytes))} sent`);

    const avg = msParts(total ? st.average_response_time : null);
    setValue('tile-avg', avg[0], avg[1], total ? st.average_response_time : '');
    // Response time split into serving (what the average measures) and waiting before the
    // server read the request (queue time), when the kernel measured it.
    const q = st.queue_time || {};
    if (total && num(q.count) > 0) {
      setSub('tile-avg', `serving ${fmtMs(st.average_response_time)} + waiting ${fmtMs(q.average)} (p99 ${fmtMs(q.p99)})`);
    } else {
      setSub('tile-avg', total ? `min ${fmtMs(st.min_response_time)} · max ${fmtMs(st.max_response_time)}` : 'no requests yet');
    }

    const p99 = msParts(total ? pct.p99 : null);
    setValue('tile-p99', p99[0], p99[1], total ? pct.p99 : '');
    setSub('tile-p99', total ? `p50 ${fmtMs(pct.p50)} · p95 ${fmtMs(pct.p95)}` : 'no requests yet');

    const c4 = num(classes['4xx']), c5 = num(classes['5xx']);
    const errPct = total ? ((c4 + c5) / total) * 100 : 0;
    setValue('tile-err', total ? errPct.toFixed(errPct >= 10 ? 1 : 2) : '–', total ? '%' : '', errPct);
    setSub('tile-err', total ? `5xx ${fmtPct((c5 / total) * 100)} · 4xx ${fmtPct((c4 / total) * 100)}` : '4xx + 5xx share');
    const errTile = $('#tile-err');
    errTile.classList.toggle('bad', total > 0 && c5 / total >= 0.05);
    errTile.classList.toggle('warnish', total > 0 && c5 / total < 0.05 && errPct >= 5);

    if (m) {
      const cpu = num(m.cpu_usage), mem = num(m.memory_usage);
      setValue('tile-cpu', cpu.toFixed(1), '%', cpu);
      const procCpu = (m.processes || []).reduce((a, p) => a + num(p.cpu_usage), 0);
      setSub('tile-cpu', (m.processes || []).length ? `observed: ${procCpu.toFixed(1)}% of one core` : 'all cores, last second');
      setMeter('tile-cpu', cpu);
      setValue('tile-mem', mem.toFixed(1), '%', mem);
      const mm = m.memory || {};
      setSub('tile-mem', mm.total_bytes ? `${fmtBytes(mm.total_bytes - num(mm.available_bytes))} of ${fmtBytes(mm.total_bytes)}` : '');
      setMeter('tile-mem', mem);
    }

    // Processes whose TLS reqmon cannot see: their HTTPS requests are missing from every figure.
    const uncovered = st.tls_not_covered || [];
    const tlsTile = $('#tile-tls-uncovered');
    tlsTile.hidden = uncovered.length === 0;
    if (uncovered.length) {
      setValue('tile-tls-uncovered', fmtInt(uncovered.length), uncovered.length === 1 ? 'process' : 'processes', uncovered.length);
      setSub('tile-tls-uncovered', uncovered.map((p) => `${p.comm} (${p.pid}): ${p.reason}`).join(' · '));
      tlsTile.title = uncovered.map((p) => `${p.comm} (${p.pid}): ${p.reason}`).join('\n');
    }

    const lost = num(st.lost_events);
    const lostTile = $('#tile-lost');
    lostTile.hidden = lost <= 0;
    if (lost > 0) setValue('tile-lost', fmtInt(lost), '', lost);

    $('#empty').hidden = !(total === 0 && inc === 0);
    document.title = `reqmon · ${fmtRate(num(rates['1s']))} req/s`;
  }
  function setMeter(tileId, pctVal) {
    const meter = document.querySelector(`#${tileId} .meter`);
    const w = `${Math.max(0, Math.min(100, pctVal)).toFixed(1)}%`;
    if (meter.firstElementChild.style.width !== w) meter.firstElementChild.style.width = w;
    meter.classList.toggle('hot', pctVal >= 90);
  }

  // "host", or the container's short id (12 hex digits, as docker and crictl print it) with
  // the full id, pod UID and runtime in the tooltip.
  function containerCell(p) {
    if (p.container_id === undefined) return { text: '–', cls: 'mono' };
    const id = p.container_id || '';
    const title = id ? `${p.container_runtime || 'container'} ${id}` + (p.pod_uid ? `\npod ${p.pod_uid}` : '')
      : p.pod_uid ? `pod ${p.pod_uid}` : 'not in a container';
    const text = id ? id.slice(0, 12) : p.pod_uid ? `pod ${p.pod_uid.slice(0, 8)}` : 'host';
    return { text, cls: 'mono', title };
  }
  function errCell(r) {
    const c = r.status_classes || {};
    const n = num(r.count);
    const p = n ? ((num(c['4xx']) + num(c['5xx'])) / n) * 100 : 0;
    return { text: n ? p.toFixed(1) : '–', cls: `num ${p >= 20 ? 'err-hi' : p > 0 ? 'err-mid' : ''}`.trim() };
  }

  function updateTables(st, m, req) {
    const routes = Array.isArray(st.routes) ? st.routes : [];
    renderTable($('#routes'), routes, ROUTE_ROWS, 6, 'No routes yet.', (r) => [
      routeCell(r.method || '', r.route || ''),
      { text: fmtInt(r.count), cls: 'num' },
      { text: fmtRate(num((r.rates || {})['10s'])), cls: 'num hide-narrow' },
      { text: r.count ? fmtMsNum(r.average_response_time) : '–', cls: 'num hide-narrow' },
      { text: r.count ? fmtMsNum((r.percentiles || {}).p99) : '–', cls: 'num' },
      errCell(r),
    ]);
    setText($('#routes-note'), routes.length > ROUTE_ROWS ? `top ${ROUTE_ROWS} of ${fmtInt(routes.length)}` : routes.length ? `${routes.length} route${routes.length > 1 ? 's' : ''}` : '');

    const codes = Object.entries(st.status_codes || {})
      .map(([code, n]) => ({ code: Number(code), n: num(n) }))
      .sort((a, b) => a.code - b.code);
    const codeTotal = codes.reduce((a, c) => a + c.n, 0);
    const shown = codes.length > CODE_ROWS ? [...codes].sort((a, b) => b.n - a.n).slice(0, CODE_ROWS).sort((a, b) => a.code - b.code) : codes;
    renderTable($('#codes'), shown, CODE_ROWS, 3, 'No responses yet.', (c) => {
      const share = codeTotal ? (c.n / codeTotal) * 100 : 0;
      const k = statusClass(c.code);
      return [
        { key: `${k}:${c.code}`, node: () => el('span', `code-pill s${k}`, String(c.code)) },
        { text: fmtInt(c.n), cls: 'num' },
        { key: `${k}:${share.toFixed(1)}`, node: () => {
          const wrap = el('div', `share s${k}`);
          const bar = el('div', 'share-bar');
          const fill = el('span');
          fill.style.width = `${share.toFixed(1)}%`;
          bar.appendChild(fill);
          wrap.append(bar, el('span', 'share-pct', `${share.toFixed(1)}%`));
          return wrap;
        } },
      ];
    });
    setText($('#codes-note'), codes.length ? `${codes.length} distinct` : '');

    const list = Array.isArray(req && req.requests) ? req.requests : [];
    renderTable($('#recent'), list, RECENT_ROWS, 6, 'No requests yet — they appear here as they happen.', (r) => [
      timeCell(r.time),
      requestCell(r),
      statusPill(r.status, r.incomplete),
      { text: r.incomplete ? '–' : fmtMsNum(r.response_time_ms), cls: 'num' },
      { text: fmtBytes(r.response_bytes), cls: 'num hide-narrow' },
      { text: String(r.pid ?? ''), cls: 'num hide-narrow' },
    ], (r) => `r${r.incomplete ? 0 : statusClass(r.status)}`);
    setText($('#recent-note'), list.length ? `newest first · last ${Math.min(list.length, RECENT_ROWS)}` : '');

    // Protocols (HTTP/1.0, HTTP/1.1, HTTP/2) and gRPC calls.
    const protos = Object.entries(st.protocols || {}).map(([name, n]) => ({ name, n: num(n) }));
    const protoTotal = protos.reduce((a, p) => a + p.n, 0);
    renderTable($('#protocols'), protos, 10, 3, 'No requests yet.', (p) => {
      const share = protoTotal ? (p.n / protoTotal) * 100 : 0;
      return [
        { text: p.name, cls: 'mono' },
        { text: fmtInt(p.n), cls: 'num' },
        { key: share.toFixed(1), node: () => {
          const wrap = el('div', 'share s2');
          const bar = el('div', 'share-bar');
          const fill = el('span');
          fill.style.width = `${share.toFixed(1)}%`;
          bar.appendChild(fill);
          wrap.append(bar, el('span', 'share-pct', `${share.toFixed(1)}%`));
          return wrap;
        } },
      ];
    });
    const unknownPaths = num(st.unknown_paths);
    setText($('#protocols-note'), unknownPaths > 0 ? `${fmtInt(unknownPaths)} with undecodable path` : '');
    const grpc = st.grpc || {};
    const calls = Array.isArray(grpc.methods) ? grpc.methods : [];
    renderTable($('#grpc'), calls, ROUTE_ROWS, 4, 'No gRPC calls.', (g) => {
      const codes = Object.entries(g.status_codes || {}).map(([c, n]) => `${GRPC_CODES[c] || c}: ${fmtInt(n)}`).join(' · ');
      return [
        { text: `${g.service || ''}/${g.method || ''}`, cls: 'mono path' },
        { text: fmtInt(g.count), cls: 'num' },
        { text: g.count ? fmtMsNum(g.average_response_time) : '–', cls: 'num hide-narrow' },
        { text: codes || '–', cls: 'mono' },
      ];
    });
    setText($('#grpc-note'), calls.length ? `${fmtInt(num(grpc.calls))} calls` : '');

    // Targets (live runs: each --pid/--comm/--port/--cgroup and the processes it selected).
    const targets = Array.isArray(st.targets) ? st.targets : [];
    $('#targets-panel').hidden = targets.length === 0;
    renderTable($('#targets'), targets, 50, 7, 'No targets.', (t) => [
      { text: t.target || '', cls: 'mono' },
      { text: fmtInt(t.processes), cls: 'num' },
      { text: fmtInt(t.count), cls: 'num' },
      { text: fmtRate(num((t.rates || {})['10s'])), cls: 'num hide-narrow' },
      { text: t.count ? fmtMsNum(t.average_response_time) : '–', cls: 'num hide-narrow' },
      { text: t.count ? fmtMsNum((t.percentiles || {}).p99) : '–', cls: 'num' },
      errCell(t),
    ]);
    setText($('#targets-note'), targets.length ? `${targets.length} target${targets.length > 1 ? 's' : ''}` : '');
    const filter = $('#target-filter');
    const names = targets.map((t) => t.target);
    const have = [...filter.options].slice(1).map((o) => o.value);
    if (names.join('\n') !== have.join('\n')) {
      const keep = filter.value;
      filter.replaceChildren(el('option', null, 'all'), ...names.map((n) => {
        const o = el('option', null, n);
        o.value = n;
        return o;
      }));
      filter.options[0].value = '';
      filter.value = names.includes(keep) ? keep : '';
    }
    $('#target-filter-wrap').hidden = targets.length < 2;

    const allProcs = Array.isArray(st.processes) ? st.processes : [];
    const procs = filter.value ? allProcs.filter((p) => p.target === filter.value) : allProcs;
    const sample = new Map(((m && m.processes) || []).map((p) => [p.pid, p]));
    renderTable($('#procs'), procs, PROC_ROWS, 11, 'No process has served a request yet.', (p) => {
      const s = sample.get(p.pid) || {};
      const cpu = isNum(p.cpu_usage) ? p.cpu_usage : s.cpu_usage;
      const rss = isNum(p.memory_rss_bytes) ? p.memory_rss_bytes : s.memory_rss_bytes;
      const alive = typeof p.alive === 'boolean' ? p.alive : s.alive;
      return [
        { text: p.pid !== 0 ? String(p.pid) : isNum(p.exited_processes) ? `${fmtInt(p.exited_processes)} exited` : 'other', cls: 'num mono' },
        { text: p.comm || '?', cls: 'mono' },
        { text: p.target || '–', cls: 'mono hide-narrow' },
        containerCell(p),
        { text: fmtInt(p.count), cls: 'num' },
        { text: fmtRate(num((p.rates || {})['10s'])), cls: 'num hide-narrow' },
        { text: p.count ? fmtMsNum(p.average_response_time) : '–', cls: 'num hide-narrow' },
        { text: p.count ? fmtMsNum((p.percentiles || {}).p99) : '–', cls: 'num hide-narrow' },
        { text: isNum(cpu) ? cpu.toFixed(1) : '–', cls: 'num' },
        { text: isNum(rss) ? fmtBytes(rss) : '–', cls: 'num hide-narrow' },
        { key: String(alive), node: () => (alive === false ? el('span', 'tag tag-gone', 'exited')
          : alive === true ? el('span', 'tag tag-ok', 'running') : el('span', 'tag', 'unknown')) },
      ];
    });
    setText($('#procs-note'), procs.length > PROC_ROWS ? `busiest ${PROC_ROWS} of ${fmtInt(procs.length)}` : procs.length ? `${procs.length} process${procs.length > 1 ? 'es' : ''}` : '');
  }

  // ---- connection state ------------------------------------------------------------------
  let countdownTimer = 0;
  function setOnline(ok, retryAt) {
    const changed = state.online !== ok;
    state.online = ok;
    document.body.classList.toggle('offline', !ok);
    const pill = $('#conn');
    if (ok) {
      clearInterval(countdownTimer);
      countdownTimer = 0;
      $('#banner').hidden = true;
      setClass(pill, 'pill pill-live');
      setText(pill, 'Live');
      setText($('#updated'), `updated ${hms(new Date())}`);
      return;
    }
    setClass(pill, 'pill pill-down');
    setText(pill, 'Reconnecting…');
    $('#banner').hidden = false;
    const since = state.lastOkAt ? ` Last data at ${hms(new Date(state.lastOkAt))}.` : '';
    const draw = () => {
      const secs = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
      setText($('#banner-text'), `Cannot reach reqmon at ${location.host} — reconnecting` +
        (secs > 0 ? ` in ${secs} s` : '…') + ` (attempt ${state.failures}).${since}`);
    };
    draw();
    clearInterval(countdownTimer);
    countdownTimer = setInterval(draw, 250);
    if (changed) setText($('#updated'), state.lastOkAt ? `stale since ${hms(new Date(state.lastOkAt))}` : '');
  }

  // A reqmon started with --token-file wants the token on every API request: open the dashboard
  // as http://host:9100/#token=... ; the token stays in this tab (sessionStorage) and off the URL.
  const token = (() => {
    const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (m) {
      sessionStorage.setItem('reqmon-token', decodeURIComponent(m[1]));
      history.replaceState(null, '', location.pathname + location.search);
    }
    return sessionStorage.getItem('reqmon-token') || '';
  })();

  async function getJson(path) {
    const ctl = new AbortController();
    const t = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    try {
      const r = await fetch(path, { cache: 'no-store', signal: ctl.signal, headers });
      if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
      return await r.json();
    } finally {
      clearTimeout(t);
    }
  }

  // ---- the poll loop (never overlapping) --------------------------------------------------
  let timer = 0;
  let inFlight = false;
  // ---- alerts ------------------------------------------------------------------------------
  function sevPill(sev) {
    return { text: sev, key: sev, node: () => el('span', `sev sev-${sev}`, sev) };
  }
  function updateAlerts(a) {
    const active = (a && a.active) || [];
    const banner = $('#alerts-banner');
    banner.hidden = active.length === 0;
    const firing = active.filter((x) => x.state === 'firing');
    setClass(banner, `alerts-banner${firing.some((x) => x.severity === 'critical') ? ' is-critical' : ''}`);
    banner.hidden = active.length === 0;
    setText($('#alerts-banner-title'), firing.length
      ? `${firing.length} alert${firing.length > 1 ? 's' : ''} firing${active.length > firing.length ? `, ${active.length - firing.length} pending` : ''}`
      : `${active.length} alert${active.length > 1 ? 's' : ''} pending`);
    const list = $('#alerts-list');
    list.replaceChildren(...active.slice(0, ALERT_ROWS).map((x) => {
      const li = el('li', `alert-item state-${x.state}`);
      li.dataset.name = x.name;
      li.append(el('span', `sev sev-${x.severity}`, x.severity), ' ',
        el('strong', 'alert-name', x.name), ' ',
        el('span', 'alert-state', `${x.state} since ${timeOfDay(x.since)}`), ' — ',
        el('span', 'alert-summary', x.summary));
      return li;
    }));
    const hist = (a && a.history) || [];
    setText($('#alerts-note'), a ? `${a.rules} rule${a.rules === 1 ? '' : 's'}${a.rules === 0 ? ' (alerting off)' : ''}` : '');
    renderTable($('#alerts-history'), hist, ALERT_ROWS, 6, 'No alert has fired and resolved yet', (h) => [
      { text: h.name, cls: 'mono' }, sevPill(h.severity), timeOfDay(h.started), timeOfDay(h.ended),
      { text: fmtRate(h.peak), cls: 'num' }, { text: h.summary, cls: 'hide-narrow' },
    ]);
  }

  // Capacity, forecasts and anomalies (GET /analytics), in words.
  function updateAnalytics(a) {
    if (!a || !a.capacity) return;
    const c = a.capacity;
    setText($('#capacity-summary'), c.summary || '');
    let detail = '';
    if (c.status === 'ok' && c.model) {
      detail = `Universal Scalability Law fit over ${c.points} seconds at ${c.levels} load levels: ` +
        `λ ${Number(c.model.lambda).toFixed(1)} req/s, σ ${Number(c.model.sigma).toFixed(3)}, ` +
        `κ ${Number(c.model.kappa).toExponential(1)}, R² ${Number(c.model.r2).toFixed(2)}`;
      if (c.concurrency_at_peak != null) detail += `; peak at about ${Number(c.concurrency_at_peak).toFixed(0)} requests in the system`;
      const at90 = (c.latency_at || []).find((x) => x.utilization === 0.9);
      if (at90 && at90.latency_ms != null) detail += `; expect ${fmtMs(at90.latency_ms)} per request at 90 %`;
    }
    setText($('#capacity-detail'), detail);
    // Per target, when there are several (with one, it is the host's line above).
    const tl = $('#capacity-targets');
    tl.replaceChildren();
    const targets = a.targets || [];
    if (targets.length > 1) {
      for (const t of targets) tl.appendChild(el('li', '', `${t.target}: ${t.capacity.summary}`));
    }
    const list = $('#forecast-list');
    list.replaceChildren();
    for (const f of a.forecasts || []) {
      const li = el('li', f.status === 'ok' ? 'forecast-ok' : 'muted', f.summary);
      if (f.status === 'ok') li.title = `least squares over ${f.window_hours} h, R² ${f.r2}`;
      list.appendChild(li);
    }
    const rows = (a.anomalies || []).map((x) => x);
    renderTable($('#anomalies'), rows, 10, 5, 'No route is off its baseline.', (x) => {
      const pctSig = x.signal === 'error_share';
      const fmt = (v) => (pctSig ? fmtPct(num(v) * 100) : fmtMs(v));
      return [x.route, pctSig ? 'error share' : 'p95 latency', fmt(x.value), fmt(x.baseline), Number(x.score).toFixed(1)];
    });
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(poll, ms);
  }
  async function poll() {
    if (inFlight) return;
    inFlight = true;
    clearTimeout(timer);
    const t0 = Date.now();
    state.polls++;
    let data;
    try {
      data = await Promise.all([
        getJson('stats'), getJson('metrics'), getJson('series'), getJson(`requests?limit=${RECENT_ROWS}`),
        getJson('alerts'), getJson('analytics'),
      ]);
    } catch (e) {
      state.failures++;
      state.lastError = String(e && e.message ? e.message : e);
      const delay = BACKOFF_MS[Math.min(state.failures - 1, BACKOFF_MS.length - 1)];
      setOnline(false, Date.now() + delay);
      inFlight = false;
      schedule(delay);
      return;
    }
    const [stats, metrics, series, requests, alerts, analytics] = data;
    Object.assign(state, { stats, metrics, series, requests, alerts, analytics, failures: 0, lastOkAt: Date.now() });
    state.okPolls++;
    try {
      updateTiles(stats, metrics);
      updateAlerts(alerts);
      updateCharts(series);
      updateTables(stats, metrics, requests);
      updateAnalytics(analytics);
    } catch (e) {
      console.error('reqmon dashboard: render failed', e);
    }
    setOnline(true);
    inFlight = false;
    const period = document.hidden ? HIDDEN_POLL_MS : POLL_MS;
    schedule(Math.max(50, period - (Date.now() - t0)));
  }

  $('#retry').addEventListener('click', () => { if (!inFlight) poll(); });
  $('#target-filter').addEventListener('change', () => { if (!inFlight) poll(); });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && !inFlight && state.online !== false) poll();
  });

  // Example command for the "no requests yet" state.
  $('#empty-cmd').textContent = 'curl -i http://127.0.0.1:8080/';

  initCharts();
  poll();
})();
