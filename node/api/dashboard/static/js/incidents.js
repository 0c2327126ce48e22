// Incidents: the list (GET /v1/incidents, with its filters and pages) kept
// up to date live from GET /v1/incidents/stream, which the page reads with
// fetch (the token as a header) and resumes with Last-Event-ID.
import {call, errorBox, isAbort, promptToken} from './api.js';
import {badge, cidLink, h, hashQuery, hashWith, ms, peer, rfc, table} from './dom.js';
import {follow} from './sse.js';

const filters = ['status', 'severity', 'jurisdiction'];
const choices = {
  status: ['', 'open', 'contained', 'resolved'],
  severity: ['', 'low', 'medium', 'high', 'critical'],
};

export default async function incidents(root, _parts, signal) {
  const q = hashQuery();
  const query = new URLSearchParams();
  for (const f of filters) if (q.get(f)) query.set(f, q.get(f));

  const form = h('form', {class: 'filters', id: 'incident-filters'},
    filters.map(f => h('label', {class: 'field'}, h('span', {class: 'label'}, f),
      choices[f]
        ? h('select', {name: f}, choices[f].map(v => h('option', {value: v, selected: v === (q.get(f) || '') ? true : null}, v || 'any')))
        : h('input', {name: f, value: q.get(f) || '', placeholder: 'DE', size: 4, maxlength: 2, pattern: '[A-Z]{2}'}))),
    h('button', {type: 'submit'}, 'Filter'));
  form.addEventListener('submit', e => {
    e.preventDefault();
    const p = {};
    for (const f of filters) p[f] = form.elements[f].value.trim();
    location.hash = hashWith('/incidents', p);
  });

  const live = h('span', {id: 'stream-state', class: 'badge', 'data-state': 'connecting'}, 'connecting…');
  const streamError = h('div');
  const tbody = h('tbody', {id: 'incident-rows'});
  const empty = h('p', {class: 'muted', id: 'no-incidents'}, 'No incident visible to this caller yet. New ones appear here as the node accepts them.');
  const more = h('button', {type: 'button', id: 'incidents-more', hidden: true}, 'Older incidents…');
  const listError = h('div');
  root.append(
    h('div', {class: 'view-head'}, h('h1', null, 'Incidents'), live),
    form, streamError, listError,
    h('table', {id: 'incidents'}, h('thead', null, h('tr', null,
      ['Severity', 'Status', 'TLP', 'Jurisdiction', 'Ref', 'Summary', 'Detected', 'Notices', 'Delivery'].map(x => h('th', null, x)))), tbody),
    empty, more);

  const entries = new Map(); // id → {entry, row}
  // show puts an entry on screen, replacing an older state of it (an
  // event's entry is the incident as of its notice; the list's, as of now:
  // the one with more notices is the later).
  function show(entry, fresh) {
    const had = entries.get(entry.id);
    if (had && had.entry.notices.length > entry.notices.length) return;
    const row = incidentRow(entry, fresh);
    if (had) had.row.replaceWith(row);
    else if (fresh) tbody.prepend(row);
    else tbody.append(row);
    entries.set(entry.id, {entry, row});
    empty.hidden = true;
  }

  // The stream first (it starts "now"), then the list: nothing accepted in
  // between is missed.
  let opened;
  const isOpen = new Promise(resolve => { opened = resolve; });
  follow('/v1/incidents/stream' + (query.toString() ? '?' + query : ''), {
    signal,
    onEvent(ev) {
      if (ev.type === 'reset') { tbody.replaceChildren(); entries.clear(); loadPage(''); return; }
      if (ev.type !== 'incident') return;
      try { show(JSON.parse(ev.data), true); } catch (e) { console.error('incident event', ev.id, e); }
      live.dataset.lastEvent = ev.id;
    },
    onState(s) {
      live.dataset.state = s.state;
      live.className = 'badge ' + ({open: 'ok', retrying: 'warn', closed: 'bad'}[s.state] || '');
      live.textContent = {open: 'live', retrying: 'reconnecting in ' + Math.round((s.retryIn || 0) / 1000) + ' s', closed: 'stream closed'}[s.state] || s.state;
      streamError.replaceChildren(s.state === 'closed' ? errorBox(s.error, 'The incident stream') : []);
      if (s.state !== 'retrying') opened();
      if (s.state === 'closed' && s.error && s.error.needsToken) promptToken();
    },
  });
  await isOpen;

  async function loadPage(after) {
    const p = new URLSearchParams(query);
    p.set('limit', '50');
    if (after) p.set('after', after);
    try {
      const page = await call('/v1/incidents?' + p, {signal});
      for (const e of page.incidents) show(e, false);
      more.hidden = !page.next;
      more.onclick = () => loadPage(page.next);
      listError.replaceChildren();
    } catch (e) {
      if (!isAbort(e)) listError.replaceChildren(errorBox(e, 'GET /v1/incidents'));
    }
  }
  await loadPage('');
}

const severityKind = {low: '', medium: 'warn', high: 'bad', critical: 'bad'};
const statusKind = {open: 'bad', contained: 'warn', resolved: 'ok'};

function incidentRow(e, fresh) {
  return h('tr', {class: 'incident' + (fresh ? ' fresh' : ''), 'data-id': e.id, 'data-status': e.status, 'data-notices': e.notices.length},
    h('td', null, badge(e.severity, severityKind[e.severity])),
    h('td', {class: 'status'}, badge(e.status, statusKind[e.status])),
    h('td', null, badge('TLP:' + String(e.tlp).toUpperCase(), 'tlp-' + e.tlp)),
    h('td', null, e.jurisdiction),
    h('td', null, cidLink(e.id, e.ref)),
    h('td', {class: 'summary'}, h('div', {class: 'pre-line'}, e.summary),
      (e.categories || []).length ? h('div', {class: 'muted small'}, 'categories: ' + e.categories.join(', ')) : null,
      (e.affected || []).length ? h('div', {class: 'muted small'}, 'affected: ', e.affected.map(a => [peer(a), ' '])) : null,
      h('div', {class: 'muted small'}, 'issued by ', peer(e.issuer))),
    h('td', null, ms(e.detected_at)),
    h('td', null, h('ol', {class: 'plain'}, e.notices.map(n => h('li', null, cidLink(n))))),
    h('td', null, delivery(e)));
}

// delivery shows a TLP:RED incident's direct delivery per recipient
// jurisdiction.
function delivery(e) {
  if (!e.delivery) return (e.recipients || []).length ? h('span', {class: 'muted'}, 'to ' + e.recipients.join(', ')) : '—';
  return table(['To', 'State', 'Attempts', 'Acked'], Object.keys(e.delivery).sort().map(j => {
    const d = e.delivery[j];
    return [j, badge(d.state, d.state === 'delivered' ? 'ok' : 'warn'), String(d.attempts), rfc(d.acked_at)];
  }), {class: 'compact'});
}
