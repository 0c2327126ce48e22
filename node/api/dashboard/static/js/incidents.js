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
  const capped = h('p', {class: 'muted', hidden: true}, `Showing the ${maxShown} incidents the node accepted last: narrow the list with the filters to see older ones.`);
  const listError = h('div');
  root.append(
    h('div', {class: 'view-head'}, h('h1', null, 'Incidents'), live),
    form, streamError, listError, capped,
    h('table', {id: 'incidents'}, h('thead', null, h('tr', null,
      ['Severity', 'Status', 'TLP', 'Jurisdiction', 'Ref', 'Summary', 'Detected', 'Notices', 'Delivery'].map(x => h('th', null, x)))), tbody),
    empty);

  let entries = new Map(); // id → {entry, row}
  // show puts an entry on screen, the newest first (the last accepted at
  // the top), replacing an older state of it in place: an event's entry is
  // the incident as of its notice, the list's as of now, and the one with
  // more notices is the later. While the list is read whole, events wait.
  let reading = null; // events that came during a read of the list
  function show(entry, fresh) {
    if (reading && fresh) { reading.push(entry); return; }
    const had = entries.get(entry.id);
    if (had && had.entry.notices.length > entry.notices.length) return;
    const row = incidentRow(entry, fresh);
    if (had) had.row.replaceWith(row);
    else tbody.prepend(row);
    entries.set(entry.id, {entry, row});
    // At most maxShown on screen: the one accepted first goes.
    if (entries.size > maxShown) {
      const oldest = tbody.lastElementChild;
      entries.delete(oldest.dataset.id);
      oldest.remove();
    }
    empty.hidden = entries.size > 0;
    if (pending(entry)) watchDeliveries();
  }

  // A TLP:RED notice's delivery changes without a new notice, so without
  // an event: while one shown is pending, it is read again now and then.
  let deliveryTimer = 0;
  signal.addEventListener('abort', () => clearTimeout(deliveryTimer));
  function watchDeliveries() {
    if (deliveryTimer) return;
    deliveryTimer = setTimeout(async () => {
      for (const {entry} of [...entries.values()].filter(x => pending(x.entry))) {
        try {
          show(await call('/v1/incidents/' + encodeURIComponent(entry.id), {signal}), false);
        } catch (e) {
          if (isAbort(e)) return;
        }
      }
      deliveryTimer = 0;
      if ([...entries.values()].some(x => pending(x.entry))) watchDeliveries();
    }, deliveryRefresh);
  }

  // loadList reads the whole list (in acceptance order, a page at a time,
  // up to maxRead entries) and shows the last maxShown read, the newest
  // first, with the events that came meanwhile.
  let loaded = false;
  async function loadList() {
    let after = '';
    const read = [];
    reading = reading || [];
    try {
      do {
        const p = new URLSearchParams(query);
        p.set('limit', '500');
        if (after) p.set('after', after);
        const page = await call('/v1/incidents?' + p, {signal});
        read.push(...page.incidents);
        after = page.next;
      } while (after && read.length < maxRead);
      entries = new Map();
      tbody.replaceChildren();
      const events = reading;
      reading = null;
      read.slice(-maxShown).forEach(e => show(e, false));
      events.forEach(e => show(e, true));
      empty.hidden = entries.size > 0;
      capped.hidden = read.length <= maxShown;
      capped.textContent = after
        ? `Showing ${maxShown} of the first ${maxRead} incidents the node accepted; there are more: narrow the list with the filters.`
        : `Showing the ${maxShown} incidents the node accepted last: narrow the list with the filters to see older ones.`;
      listError.replaceChildren();
      loaded = true;
    } catch (err) {
      const events = reading || [];
      reading = null;
      events.forEach(ev => show(ev, true));
      if (!isAbort(err)) listError.replaceChildren(errorBox(err, 'GET /v1/incidents'));
    }
  }

  // The stream first (it starts "now"), then the list: nothing accepted in
  // between is missed. A stream that reopens without an event to resume
  // after starts "now" again: the list, read again, covers the gap.
  let settled;
  const first = new Promise(resolve => { settled = resolve; });
  follow('/v1/incidents/stream' + (query.toString() ? '?' + query : ''), {
    signal,
    onEvent(ev) {
      if (ev.type === 'reset') { loadList(); return; }
      if (ev.type !== 'incident') return;
      try { show(JSON.parse(ev.data), true); } catch (e) { console.error('incident event', ev.id, e); }
      live.dataset.lastEvent = ev.id;
    },
    onState(s) {
      live.dataset.state = s.state;
      live.className = 'badge ' + ({open: 'ok', retrying: 'warn', closed: 'bad'}[s.state] || '');
      live.textContent = {open: 'live', retrying: 'reconnecting in ' + Math.round((s.retryIn || 0) / 1000) + ' s', closed: 'stream closed'}[s.state] || s.state;
      streamError.replaceChildren(s.state === 'closed' ? errorBox(s.error, 'The incident stream') : []);
      if (s.state === 'closed' && s.error && s.error.needsToken) promptToken();
      if (s.state === 'open' && s.lastId === '' && loaded) loadList();
      settled();
    },
  });
  await first;
  await loadList();
}

// maxShown bounds the incidents on screen, maxRead those the view reads
// to find the newest (beyond it, the filters narrow the list).
const maxShown = 1000;
const maxRead = 50000;
// deliveryRefresh is how often the view reads the list again while a
// delivery is pending (ms).
const deliveryRefresh = 3000;

function pending(e) {
  return Object.values(e.delivery || {}).some(d => d.state !== 'delivered');
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
    return h('tr', {'data-to': j, 'data-state': d.state}, [j, badge(d.state, d.state === 'delivered' ? 'ok' : 'warn'), String(d.attempts), rfc(d.acked_at)]
      .map(c => h('td', null, c)));
  }), {class: 'compact delivery'});
}
