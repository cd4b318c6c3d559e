// Herald admin page: the overview's rates (polled) and the live refusal
// feed (Server-Sent Events). No framework; text is always set with
// textContent, never parsed as HTML.
'use strict';

function cell(tr, text, code) {
  const td = document.createElement('td');
  if (code) {
    const c = document.createElement('code');
    c.textContent = text;
    td.appendChild(c);
  } else {
    td.textContent = text;
  }
  tr.appendChild(td);
  return td;
}

function fillTable(id, rows, empty) {
  const body = document.querySelector('#' + id + ' tbody');
  if (!body) return;
  body.replaceChildren();
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    tr.className = 'empty';
    const td = cell(tr, empty);
    td.colSpan = 8;
    body.appendChild(tr);
    return;
  }
  for (const r of rows) {
    const tr = document.createElement('tr');
    for (const [text, code] of r) cell(tr, String(text), code);
    body.appendChild(tr);
  }
}

function human(v, unit) {
  if (unit !== 'bytes') return v < 10 ? v.toFixed(1) : Math.round(v).toString();
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return v.toFixed(1) + ' ' + units[i] + '/s';
}

function overview() {
  let prev = null;
  async function poll() {
    try {
      const res = await fetch('/admin/api/overview', { credentials: 'same-origin', headers: { Accept: 'application/json' } });
      if (res.status === 401) { location.href = '/admin/login?next=/admin/'; return; }
      const o = await res.json();
      document.getElementById('clients').textContent = o.clients;
      document.getElementById('users').textContent = o.users;
      document.getElementById('channels').textContent = o.channels;
      document.getElementById('slow').textContent = o.totals.slow_client_disconnects;
      if (prev) {
        const dt = (o.time_ms - prev.time_ms) / 1000;
        for (const el of document.querySelectorAll('.rate')) {
          const k = el.dataset.total;
          if (dt > 0) el.textContent = human(Math.max(0, o.totals[k] - prev.totals[k]) / dt, el.dataset.unit);
        }
      }
      prev = o;
      fillTable('doors', (o.doors || []).map((d) => [[d.door], [d.transport], [d.connections], [d.subscriptions]]), 'No connections yet.');
      fillTable('reasons', (o.refusals_by_reason || []).map((r) => [[r.reason, true], [r.door], [r.count]]), 'No refusals.');
      fillTable('nodes', (o.nodes || []).map((n) => [[n.uid, true], [n.name], [n.version], [n.num_clients], [n.num_users], [n.num_channels], [n.num_subs], [n.uptime]]), '');
    } catch (e) {
      // The node may be restarting: try again at the next tick.
    }
  }
  poll();
  setInterval(poll, 2000);
}

function facts(r) {
  const out = [];
  if (r.sub) out.push('sub ' + r.sub);
  if (r.alg) out.push('alg ' + r.alg);
  if (r.kid) out.push('kid ' + r.kid);
  if (r.key_fingerprint) out.push('key ' + r.key_fingerprint);
  if (r.channel) out.push('channel ' + r.channel);
  return out.join(' ');
}

function refusals() {
  const body = document.querySelector('#refusals tbody');
  const live = document.getElementById('live');
  const seen = new Set();
  for (const tr of body.querySelectorAll('tr[data-seq]')) seen.add(tr.dataset.seq);
  const es = new EventSource('/admin/api/refusals');
  es.onopen = () => live.classList.add('on');
  es.onerror = () => live.classList.remove('on');
  es.addEventListener('refusal', (ev) => {
    const r = JSON.parse(ev.data);
    const seq = String(r.seq);
    if (seen.has(seq)) return;
    seen.add(seq);
    const tr = document.createElement('tr');
    tr.dataset.seq = seq;
    tr.className = 'fresh';
    cell(tr, new Date(r.time).toISOString().slice(11, 19)); // UTC, as the server renders it
    cell(tr, r.code, true);
    cell(tr, r.detail || '');
    cell(tr, r.hint || '');
    cell(tr, r.door + (r.transport && r.transport !== r.door ? ' (' + r.transport + ')' : ''));
    cell(tr, r.token_source || '');
    cell(tr, r.remote_addr || '');
    cell(tr, facts(r));
    body.prepend(tr);
    while (body.children.length > 500) body.lastElementChild.remove();
  });
}

document.addEventListener('DOMContentLoaded', () => {
  const page = document.body.dataset.page;
  if (page === 'overview') overview();
  if (page === 'refusals') refusals();
});
