// The status page's live updates (api/ui.go renders the page): every second
// it reads the local API (/v1/status, /metrics, /v1/deadletters,
// /v1/triggers and, on a cloud worker, a page of /v1/devices) and updates
// the tables in place. What the API returns goes into the page as text
// (textContent, title, data-*), never as HTML.
'use strict';

(function () {
  const POLL_MS = 1000;
  const DEAD_LIMIT = 50;
  const RATE_WINDOW = 5; // polls a throughput is averaged over

  const byId = (id) => document.getElementById(id);
  const pipelinesTable = byId('pipelines');
  const triggersTable = byId('triggers');
  const lettersTable = byId('deadletters');
  const fleetTable = byId('fleet');
  const fleetForm = byId('fleet-form');
  const live = byId('live');

  // ---- formatting: as the template's functions in api/ui.go ----

  // num writes n with thousands separators (no Intl: it is slow, and
  // a poll of a thousand devices writes thousands of numbers).
  function num(n) {
    return String(Math.trunc(Number(n) || 0)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  }

  // time parses an RFC 3339 time from the API (nanoseconds cut to
  // milliseconds); null for an absent or zero time.
  function time(s) {
    if (!s || s.startsWith('0001-01-01')) return null;
    const t = Date.parse(s.replace(/(\.\d{3})\d+/, '$1'));
    return Number.isNaN(t) ? null : t;
  }

  function duration(sec) {
    const s = Math.max(0, Math.floor(sec));
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
    if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
    return Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
  }

  function ago(s, now) {
    const t = time(s);
    if (t === null) return 'never';
    const d = (now - t) / 1000;
    return d < 1 ? 'now' : duration(d) + ' ago';
  }

  // stamp is a time as the browser's locale writes it, for titles;
  // remembered, for toLocaleString is slow.
  const stamps = new Map();
  function stamp(s) {
    let v = stamps.get(s);
    if (v === undefined) {
      const t = time(s);
      v = t === null ? '' : new Date(t).toLocaleString();
      if (stamps.size > 20000) stamps.clear();
      stamps.set(s, v);
    }
    return v;
  }

  function bytes(n) {
    if (n < 1024) return n + ' B';
    if (n < 1 << 20) return (n / 1024).toFixed(1) + ' KB';
    if (n < 1 << 30) return (n / (1 << 20)).toFixed(1) + ' MB';
    return (n / (1 << 30)).toFixed(1) + ' GB';
  }

  function conn(c) {
    if (c === undefined || c === null) return '–';
    return c ? 'connected' : 'disconnected';
  }

  function rate(r) {
    if (r === undefined || r === null || !Number.isFinite(r)) return '–';
    return (r < 10 ? r.toFixed(1) : num(Math.round(r))) + '/s';
  }

  // ---- the tables ----

  // cell is the cell of column col in row tr (the row keeps them by
  // column: a poll of a thousand devices looks up ten thousand cells).
  function cell(tr, col) {
    if (!tr.cells_) {
      tr.cells_ = {};
      for (const td of tr.cells) tr.cells_[td.dataset.col] = td;
    }
    return tr.cells_[col];
  }

  // put sets a cell's content: parts are strings, or {t: text, c: class,
  // v: data-v} for a span. The cell is rebuilt only when they change.
  function put(td, parts, title) {
    if (!td) return;
    const sig = JSON.stringify(parts);
    if (td.sig_ !== sig) {
      td.sig_ = sig;
      td.replaceChildren(...parts.map((p) => {
        if (typeof p === 'string') return document.createTextNode(p);
        const span = document.createElement('span');
        if (p.c) span.className = p.c;
        if (p.v !== undefined) span.dataset.v = p.v;
        span.textContent = p.t;
        return span;
      }));
    }
    if (title !== undefined && td.title_ !== title) {
      td.title_ = title;
      td.title = title;
    }
  }

  // syncRows makes the table's rows those of items, in order: a row is
  // kept (found by its data-key), made (a cell per header, with the
  // header's data-col and data-cls) or removed; fill updates its cells.
  function syncRows(table, items, keyOf, fill, emptyText) {
    const tbody = table.tBodies[0];
    const heads = Array.from(table.tHead.rows[0].cells);
    const old = new Map();
    for (const tr of Array.from(tbody.rows)) {
      if (tr.dataset.key === undefined) {
        if (items.length > 0) tr.remove();
      } else {
        old.set(tr.dataset.key, tr);
      }
    }
    let prev = null;
    for (const it of items) {
      const key = String(keyOf(it));
      let tr = old.get(key);
      if (tr) {
        old.delete(key);
      } else {
        tr = document.createElement('tr');
        tr.dataset.key = key;
        for (const th of heads) {
          const td = document.createElement('td');
          td.dataset.col = th.dataset.col;
          const cls = th.dataset.cls || (th.classList.contains('n') ? 'n' : '');
          if (cls) td.className = cls;
          tr.appendChild(td);
        }
      }
      fill(tr, it);
      const want = prev ? prev.nextElementSibling : tbody.firstElementChild;
      if (want !== tr) tbody.insertBefore(tr, want);
      prev = tr;
    }
    for (const tr of old.values()) tr.remove();
    if (items.length === 0 && !tbody.querySelector('tr.empty')) {
      const tr = document.createElement('tr');
      tr.className = 'empty';
      const td = document.createElement('td');
      td.colSpan = heads.length;
      td.textContent = emptyText;
      tr.appendChild(td);
      tbody.appendChild(tr);
    }
  }

  // ---- throughput: iotod_changes_out_total per pipeline over the last polls ----

  const samples = []; // {t, out: {pipeline: count}}

  function parseMetrics(text) {
    const out = {};
    for (const line of text.split('\n')) {
      if (!line.startsWith('iotod_changes_out_total{')) continue;
      const m = /pipeline="((?:[^"\\]|\\.)*)"/.exec(line);
      const v = parseFloat(line.slice(line.lastIndexOf(' ') + 1));
      if (m && Number.isFinite(v)) out[m[1]] = (out[m[1]] || 0) + v;
    }
    return out;
  }

  function rates(metrics, now) {
    if (metrics !== null) {
      samples.push({ t: now, out: parseMetrics(metrics) });
      if (samples.length > RATE_WINDOW) samples.shift();
    }
    const out = {};
    if (samples.length < 2) return null;
    const a = samples[0];
    const b = samples[samples.length - 1];
    const dt = (b.t - a.t) / 1000;
    for (const name of Object.keys(b.out)) {
      const d = b.out[name] - (a.out[name] || 0);
      if (dt > 0 && d >= 0) out[name] = d / dt; // a drop: the process restarted
    }
    return out;
  }

  function renderPipelines(status, metrics, now) {
    const site = byId('site');
    if (status.site && site.textContent !== status.site) site.textContent = status.site;
    const r = rates(metrics, now);
    syncRows(pipelinesTable, status.pipelines || [], (p) => p.name, (tr, p) => {
      const o = p.outbox;
      const oldest = o ? time(o.oldest) : null;
      const c = conn(p.connected);
      put(cell(tr, 'name'), [{ t: p.name, c: 'name' }, ' ', { t: p.direction, c: 'dir' }]);
      put(cell(tr, 'route'), [p.from + ' → ' + p.to]);
      put(cell(tr, 'state'), [{ t: p.state + (p.catching_up ? ', catching up' : ''), c: 'badge', v: p.state }]);
      put(cell(tr, 'conn'), [{ t: c, c: 'badge', v: c }]);
      put(cell(tr, 'depth'), [o ? num(o.depth) : '–']);
      put(cell(tr, 'age'), [o && o.depth > 0 && oldest !== null ? duration((now - oldest) / 1000) : '–']);
      put(cell(tr, 'last'), [o ? num(o.last) : '–']);
      put(cell(tr, 'inflight'), [num(p.in_flight) + (p.in_flight_bytes ? ' (' + bytes(p.in_flight_bytes) + ')' : '')]);
      put(cell(tr, 'ack'), [ago(p.last_ack, now)], stamp(p.last_ack));
      // A pipeline that delivered nothing yet has no counter: 0/s.
      put(cell(tr, 'rate'), [r === null ? '–' : rate(r[p.name] || 0)]);
      put(cell(tr, 'error'), [p.last_error || ''], p.last_error || '');
    }, 'No pipelines.');
  }

  // ---- dead letters and trigger queues ----

  function renderDead(dead, triggers, now) {
    const total = byId('dead-total');
    const t = num(dead.total);
    if (total.textContent !== t) total.textContent = t;
    const letters = dead.dead_letters || [];
    syncRows(lettersTable, letters.map((l, i) => ({ l, n: dead.total - i })), (x) => x.n, (tr, x) => {
      const l = x.l;
      const rej = l.reject || {};
      const key = rej.key || {};
      put(cell(tr, 'time'), [ago(l.time, now)], stamp(l.time));
      put(cell(tr, 'pipeline'), [l.pipeline || '']);
      put(cell(tr, 'site'), [l.site || '']);
      put(cell(tr, 'model'), [rej.model || '']);
      put(cell(tr, 'key'), [(key.pk || '') + (key.sk ? ' ' + key.sk : '')]);
      const reason = [rej.reason || ''];
      if (l.payload) reason.push(' ', { t: l.payload, c: 'payload' });
      put(cell(tr, 'reason'), reason);
    }, 'No dead letters.');
    syncRows(triggersTable, triggers.triggers || [], (q) => q.name, (tr, q) => {
      const more = q.more ? '+' : '';
      put(cell(tr, 'name'), [{ t: q.name, c: 'name' }]);
      put(cell(tr, 'pipeline'), [q.pipeline]);
      put(cell(tr, 'queued'), [num(q.queued) + more]);
      put(cell(tr, 'dead'), [num(q.dead) + more]);
      const td = cell(tr, 'action');
      let btn = td.querySelector('button.replay');
      if (!btn) {
        btn = document.createElement('button');
        btn.type = 'button';
        btn.className = 'replay';
        btn.textContent = 'Replay';
        td.replaceChildren(btn);
      }
      btn.dataset.trigger = q.name;
      const off = q.dead === 0 || btn.dataset.busy === '1';
      if (btn.disabled !== off) btn.disabled = off;
      btn.title = q.dead === 0 ? 'No dead deliveries' : 'Queue the ' + num(q.dead) + more + ' dead deliveries of ' + q.name + ' again';
    }, 'No triggers.');
  }

  function flash(text, state) {
    const el = byId('replay-result');
    el.textContent = text;
    el.dataset.state = state || '';
  }

  async function replay(btn) {
    const name = btn.dataset.trigger;
    btn.dataset.busy = '1';
    btn.disabled = true;
    flash('Replaying ' + name + '…', 'busy');
    try {
      const resp = await fetch('/v1/triggers/replay', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ trigger: name }),
        cache: 'no-store',
        credentials: 'same-origin',
      });
      const body = await resp.json().catch(() => ({}));
      if (!resp.ok) throw new Error(body.error || 'HTTP ' + resp.status);
      const n = body.replayed;
      flash('Queued ' + num(n) + ' dead ' + (n === 1 ? 'delivery' : 'deliveries') + ' of ' + body.trigger + ' again.', 'ok');
    } catch (e) {
      flash('Replay of ' + name + ' failed: ' + e.message, 'error');
    } finally {
      delete btn.dataset.busy;
      poll();
    }
  }

  // ---- the fleet (cloud workers) ----

  const fleet = { sort: 'site', filter: '', page: 1, limit: 100 };
  if (fleetForm) {
    fleet.sort = fleetForm.elements.sort.value;
    fleet.filter = fleetForm.elements.filter.value;
    fleet.page = parseInt(fleetForm.elements.page.value, 10) || 1;
    fleet.limit = parseInt(fleetForm.elements.limit.value, 10) || 100;
  }

  function fleetParams(page) {
    const p = new URLSearchParams();
    if (fleet.sort !== 'site') p.set('sort', fleet.sort);
    if (fleet.filter) p.set('filter', fleet.filter);
    if (fleet.limit !== 100) p.set('limit', String(fleet.limit));
    if (page > 1) p.set('page', String(page));
    return p;
  }

  // fleetChanged keeps the table's state in the address (a reload or a
  // link shows the same) and reads the new page at once.
  function fleetChanged() {
    fleetForm.elements.page.value = String(fleet.page);
    const q = fleetParams(fleet.page).toString();
    history.replaceState(null, '', q ? '/?' + q : '/');
    poll();
  }

  function pagerLink(a, page, enabled) {
    if (enabled) {
      const q = fleetParams(page).toString();
      a.href = q ? '/?' + q : '/';
      a.removeAttribute('aria-disabled');
    } else {
      a.removeAttribute('href');
      a.setAttribute('aria-disabled', 'true');
    }
    a.dataset.page = enabled ? String(page) : '0';
  }

  function renderFleet(page, now) {
    const problem = byId('fleet-problem');
    if (page instanceof Error) {
      problem.textContent = 'Devices: ' + page.message;
      problem.hidden = false;
      return;
    }
    problem.hidden = true;
    const pages = Math.max(1, Math.ceil(page.total / fleet.limit));
    if (fleet.page > pages) { // the list shrank under the page shown
      fleet.page = pages;
      fleetChanged();
      return;
    }
    const known = num(page.known);
    const count = byId('fleet-count');
    if (count.textContent !== known) count.textContent = known;
    const match = fleet.filter ? ' match' : '';
    byId('fleet-pageinfo').textContent = 'Page ' + num(fleet.page) + ' of ' + num(pages) + ' · ' + num(page.total) + ' devices' + match;
    pagerLink(byId('fleet-prev'), fleet.page - 1, fleet.page > 1);
    pagerLink(byId('fleet-next'), fleet.page + 1, fleet.page < pages);
    const name = fleet.sort.replace(/^-/, '');
    for (const btn of fleetTable.querySelectorAll('button.sort')) {
      const th = btn.closest('th');
      if (btn.dataset.sort === name) th.setAttribute('aria-sort', fleet.sort.startsWith('-') ? 'descending' : 'ascending');
      else th.removeAttribute('aria-sort');
    }
    syncRows(fleetTable, page.devices || [], (d) => d.site, (tr, d) => {
      const c = conn(d.connected);
      let cursor = '–';
      if (d.full_sync) cursor = 'full';
      else if (d.cursor && time(d.cursor_time) !== null) cursor = duration((now - time(d.cursor_time)) / 1000) + ' back';
      else if (d.cursor) cursor = d.cursor;
      put(cell(tr, 'site'), [{ t: d.site, c: 'name' }]);
      put(cell(tr, 'conn'), [{ t: c, c: 'badge', v: c }]);
      put(cell(tr, 'seen'), [ago(d.last_seen, now)], stamp(d.last_seen));
      put(cell(tr, 'up'), [ago(d.last_up, now)], stamp(d.last_up));
      put(cell(tr, 'ack'), [ago(d.last_ack, now)], stamp(d.last_ack));
      put(cell(tr, 'cursor'), [cursor], d.cursor || '');
      put(cell(tr, 'changes'), [num(d.changes)]);
      put(cell(tr, 'pending'), [num(d.pending)]);
      put(cell(tr, 'refused'), [num(d.refused)]);
      put(cell(tr, 'refusal'), [d.last_refusal ? ago(d.last_refused_at, now) + ': ' + d.last_refusal : ''], stamp(d.last_refused_at));
    }, fleet.filter ? 'No devices match.' : 'No devices.');
  }

  if (fleetForm) {
    let debounce = 0;
    fleetForm.elements.filter.addEventListener('input', () => {
      clearTimeout(debounce);
      debounce = setTimeout(() => {
        fleet.filter = fleetForm.elements.filter.value;
        fleet.page = 1;
        fleetChanged();
      }, 250);
    });
    fleetForm.elements.sort.addEventListener('change', () => {
      fleet.sort = fleetForm.elements.sort.value;
      fleet.page = 1;
      fleetChanged();
    });
    fleetForm.elements.limit.addEventListener('change', () => {
      fleet.limit = parseInt(fleetForm.elements.limit.value, 10) || 100;
      fleet.page = 1;
      fleetChanged();
    });
    fleetForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      fleet.filter = fleetForm.elements.filter.value;
      fleet.page = 1;
      fleetChanged();
    });
    fleetTable.tHead.addEventListener('click', (ev) => {
      const btn = ev.target.closest('button.sort');
      if (!btn) return;
      const name = btn.dataset.sort;
      fleet.sort = fleet.sort === name ? '-' + name : name;
      const select = fleetForm.elements.sort;
      select.value = fleet.sort;
      fleet.page = 1;
      fleetChanged();
    });
    byId('fleet-pager').addEventListener('click', (ev) => {
      const a = ev.target.closest('a[data-page]');
      if (!a) return;
      ev.preventDefault();
      const p = parseInt(a.dataset.page, 10);
      if (p >= 1) {
        fleet.page = p;
        fleetChanged();
      }
    });
  }

  triggersTable.addEventListener('click', (ev) => {
    const btn = ev.target.closest('button.replay');
    if (btn && !btn.disabled) replay(btn);
  });

  // ---- polling ----

  async function get(path, asText) {
    const resp = await fetch(path, { headers: { Accept: asText ? 'text/plain' : 'application/json' }, cache: 'no-store' });
    if (!resp.ok) {
      let msg = 'HTTP ' + resp.status;
      try {
        msg = (await resp.json()).error || msg;
      } catch (e) { /* not JSON */ }
      throw new Error(path.split('?')[0] + ': ' + msg);
    }
    return asText ? resp.text() : resp.json();
  }

  let busy = false;
  let again = false;
  let timer = 0;

  async function poll() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    clearTimeout(timer);
    try {
      const [status, metrics, dead, triggers, devices] = await Promise.all([
        get('/v1/status'),
        get('/metrics', true).catch(() => null), // none without pipelines
        get('/v1/deadletters?limit=' + DEAD_LIMIT),
        get('/v1/triggers'),
        fleetTable ? get('/v1/devices?' + fleetParams(fleet.page).toString()).catch((e) => e) : null,
      ]);
      const now = Date.now();
      renderPipelines(status, metrics, now);
      renderDead(dead, triggers, now);
      if (fleetTable) renderFleet(devices, now);
      live.dataset.state = 'ok';
      live.textContent = 'Live · updated ' + new Date(now).toLocaleTimeString();
    } catch (e) {
      live.dataset.state = 'error';
      live.textContent = 'Cannot reach iotod (' + e.message + '); trying again every second.';
    } finally {
      busy = false;
      if (again) {
        again = false;
        poll();
      } else {
        // Hidden tabs poll every 5 s.
        timer = setTimeout(poll, document.hidden ? 5 * POLL_MS : POLL_MS);
      }
    }
  }

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) poll();
  });
  poll();
})();
