// The federation as this node sees it: itself, its jurisdictions, its
// peers and their sync and witness state (GET /v1/status, /readyz), and
// for a caller who may read records, each jurisdiction's rule sets and
// accredited parties (GET /v1/records).
import {call, errorBox, isAbort} from './api.js';
import {badge, cidLink, duration, h, ms, peer, rfc, section, sleep, table} from './dom.js';

const refreshEvery = 10000;

export default async function federation(root, _parts, signal) {
  const statusBox = h('div');
  const recordsBox = h('div');
  root.append(h('div', {class: 'view-head'}, h('h1', null, 'Federation'),
    h('button', {type: 'button', onclick: () => refresh()}, 'Refresh')), statusBox, recordsBox);
  let seq = 0;
  async function refresh() {
    const mine = ++seq;
    try {
      const [st, ready] = await Promise.all([call('/v1/status', {signal}), readiness(signal)]);
      if (mine === seq) statusBox.replaceChildren(render(st, ready));
    } catch (e) {
      if (!isAbort(e) && mine === seq) statusBox.replaceChildren(errorBox(e, 'GET /v1/status'));
    }
  }
  await refresh();
  jurisdictionRecords(recordsBox, signal); // once a visit: records change rarely
  for (;;) {
    await sleep(refreshEvery, signal);
    await refresh();
  }
}

// readiness is GET /readyz: {ready, peers} or {ready: false, reason}.
async function readiness(signal) {
  const resp = await fetch('/readyz', {signal, cache: 'no-store', credentials: 'omit'});
  return resp.json().catch(() => ({ready: resp.ok}));
}

function render(st, ready) {
  const sync = new Map((st.sync || []).map(s => [s.peer_id, s]));
  const witnessed = new Map((st.witnessed || []).map(w => [w.peer_id, w]));
  const out = h('div', {id: 'status'});

  out.append(section('This node', h('dl', {class: 'facts'},
    fact('Peer ID', h('span', {class: 'mono', id: 'self-peer'}, st.peer_id)),
    fact('Jurisdiction', h('span', {id: 'self-jurisdiction'}, st.jurisdiction)),
    fact('Federation', st.federation),
    st.version ? fact('Version', st.version) : null,
    fact('State', ready.ready ? badge('ready', 'ok') : badge('not ready: ' + (ready.reason || ''), 'bad')),
    fact('Up for', typeof st.uptime_ms === 'number' ? duration(st.uptime_ms) : '—'),
    fact('Listening on', (st.addrs || []).length ? h('ul', {class: 'plain mono'}, st.addrs.map(a => h('li', null, a))) : '—'),
    fact('Log', `${st.log.size} records; ` + (st.log.checkpoint_size ? `latest checkpoint of ${st.log.checkpoint_size}` : 'no checkpoint signed yet')),
    st.log.held ? fact('Signing', h('span', {id: 'self-held'}, badge('held', 'bad'), ' ', st.log.held.reason || '', ' (Log view)')) : null,
    fact('Equivocation', (st.alerts || []).length ? badge(`${st.alerts.length} seen: below`, 'bad') : badge('none seen', 'ok')),
  )));

  // Jurisdictions: this node's and those of its connected peers.
  const byJ = new Map();
  const addTo = (j, entry) => { j = j || '(not accredited)'; if (!byJ.has(j)) byJ.set(j, []); byJ.get(j).push(entry); };
  addTo(st.jurisdiction, {id: st.peer_id, self: true});
  for (const p of st.peers) addTo(p.jurisdiction, {id: p.peer_id, founding: p.founding});
  out.append(section('Jurisdictions', table(['Jurisdiction', 'Nodes (this one and its connected peers)', 'Founding nodes among the peers'],
    [...byJ.entries()].sort().map(([j, nodes]) => h('tr', {'data-jurisdiction': j},
      h('td', null, h('strong', null, j)),
      h('td', null, nodes.map(n => h('div', null, peer(n.id), n.self ? ' ' : null, n.self ? badge('this node') : null))),
      h('td', null, String(nodes.filter(n => n.founding).length)))),
    {id: 'jurisdictions'})));

  const peerRows = st.peers.map(p => {
    const s = sync.get(p.peer_id), w = witnessed.get(p.peer_id);
    return h('tr', {'data-peer': p.peer_id},
      h('td', null, peer(p.peer_id)),
      h('td', null, p.jurisdiction || '—'),
      h('td', null, p.founding ? badge('founding', 'ok') : ''),
      h('td', null, p.direction),
      h('td', {class: 'mono small'}, p.addr),
      h('td', null, syncCell(s)),
      h('td', null, w ? `size ${w.size}, ${rfc(w.at)}` : h('span', {class: 'muted'}, 'not yet')));
  });
  out.append(section(`Peers (${st.peers.length} connected)`, st.peers.length
    ? table(['Peer', 'Jurisdiction', '', 'Direction', 'Address', 'Sync (last session)', 'Witnessed checkpoint'], peerRows, {id: 'peers'})
    : h('p', {class: 'muted', id: 'peers'}, 'No peer is connected.')));

  // Sync sessions with peers no longer connected are still listed.
  const connected = new Set(st.peers.map(p => p.peer_id));
  const gone = (st.sync || []).filter(s => !connected.has(s.peer_id));
  if (gone.length) {
    out.append(section('Sync with peers not connected now', table(['Peer', 'Sync (last session)'],
      gone.map(s => [peer(s.peer_id), syncCell(s)]))));
  }

  if ((st.alerts || []).length) {
    out.append(section('Equivocation alerts', table(['Peer', 'Kind', 'Size', 'Roots', 'Detected', 'Incident'],
      st.alerts.map(a => [peer(a.peer_id), badge(a.kind, 'bad'), String(a.size), h('span', {class: 'mono small'}, (a.roots || []).join(' ≠ ')),
        rfc(a.detected_at), a.incident ? cidLink(a.incident) : '—']), {id: 'alerts'})));
  }

  const kinds = Object.keys(st.records).sort();
  out.append(section('Records held', kinds.length
    ? table(['Kind', 'Count'], kinds.map(k => [h('a', {href: '#/records?kind=' + encodeURIComponent(k)}, k), String(st.records[k])]), {id: 'record-counts', class: 'narrow'})
    : h('p', {class: 'muted'}, 'None that this caller may count.')));
  return out;
}

function fact(term, value) {
  return [h('dt', null, term), h('dd', null, value)];
}

function syncCell(s) {
  if (!s) return h('span', {class: 'muted'}, 'no session yet');
  return h('div', {class: 'small'},
    s.in_progress ? badge('syncing', 'warn') : null,
    s.last_error ? badge('error', 'bad') : null,
    ` ${s.sessions} sessions; last ${rfc(s.last_end)}: needed ${s.need}, fetched ${s.fetched}, peer lacked ${s.have}, ${s.rounds} rounds`,
    s.last_error ? h('div', {class: 'error-text'}, s.last_error) : null);
}

// jurisdictionRecords lists each jurisdiction's latest rule set and its
// accredited parties, as far as the caller may read records.
async function jurisdictionRecords(box, signal) {
  try {
    const [rs, acc] = await Promise.all([
      call('/v1/records?kind=ruleset&limit=200', {signal}),
      call('/v1/records?kind=accreditation&limit=500', {signal}),
    ]);
    if (rs.records.length === 0 && acc.records.length === 0) {
      box.replaceChildren(section('Rule sets and accreditations', h('p', {class: 'muted'},
        'None visible to this caller. The public sees no records: sign in with a token to see them.')));
      return;
    }
    const latest = new Map();
    for (const r of rs.records) {
      const b = r.record.body, old = latest.get(b.jurisdiction);
      if (!old || b.version > old.record.body.version) latest.set(b.jurisdiction, r);
    }
    const parties = new Map();
    for (const r of acc.records) {
      const b = r.record.body;
      if (!parties.has(b.jurisdiction)) parties.set(b.jurisdiction, []);
      parties.get(b.jurisdiction).push(r);
    }
    const codes = [...new Set([...latest.keys(), ...parties.keys()])].sort();
    box.replaceChildren(section('Rule sets and accreditations', table(['Jurisdiction', 'Rule set in force (latest held)', 'Accredited'],
      codes.map(j => {
        const r = latest.get(j);
        return [h('strong', null, j),
          r ? [cidLink(r.cid), ` v${r.record.body.version}, from ${ms(r.record.body.effective_from)}`] : h('span', {class: 'muted'}, 'none held'),
          h('ul', {class: 'plain'}, (parties.get(j) || []).map(a => h('li', null, cidLink(a.cid, a.record.body.name || a.record.body.subject),
            ' ', h('span', {class: 'muted'}, (a.record.body.roles || []).join(', ')))))];
      }), {id: 'jurisdiction-records'}),
    rs.next || acc.next ? h('p', {class: 'muted'}, 'More records than shown: see Records.') : null));
  } catch (e) {
    if (!isAbort(e)) box.replaceChildren(errorBox(e, 'Rule sets and accreditations'));
  }
}
