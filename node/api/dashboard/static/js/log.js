// The log: this node's latest signed checkpoint with its witnesses'
// cosignatures (GET /v1/log/checkpoint), what this node witnessed of its
// peers' logs and any equivocation it saw (GET /v1/status), and a
// record's inclusion proof (GET /v1/log/proof).
import {call, errorBox, isAbort} from './api.js';
import {badge, cidLink, h, hashQuery, peer, rfc, section, show, sleep, table} from './dom.js';

const refreshEvery = 10000;

export default async function log(root, _parts, signal) {
  const cpBox = h('div', {id: 'checkpoint'});
  // The status's three parts, each shown anew only when it changed.
  const witnessBox = h('div', {id: 'witness'}, h('div'), h('div'), h('div'));
  const proofBox = h('div');
  root.append(h('div', {class: 'view-head'}, h('h1', null, 'Log & witnesses')), cpBox, witnessBox, proofForm(proofBox), proofBox);
  const cid = hashQuery().get('cid');
  if (cid) proof(proofBox, cid, signal);
  for (let n = 1; ; n++) {
    await Promise.all([checkpoint(cpBox, signal), witnesses(witnessBox, signal)]);
    witnessBox.dataset.refreshes = String(n); // how many times it was read
    await sleep(refreshEvery, signal);
  }
}

// parseNote reads a C2SP signed note: the body's lines (origin, size,
// root, …) and the signature lines "— name base64".
export function parseNote(text) {
  const i = text.indexOf('\n\n');
  const body = (i < 0 ? text : text.slice(0, i)).split('\n');
  const sigs = (i < 0 ? '' : text.slice(i + 2)).split('\n').filter(l => l.startsWith('— ')).map(l => {
    const [name, sig] = l.slice(2).split(' ');
    return {name, sig};
  });
  return {origin: body[0], size: body[1], root: body[2], extra: body.slice(3), sigs};
}

async function checkpoint(box, signal) {
  try {
    const text = await call('/v1/log/checkpoint', {signal});
    const n = parseNote(text);
    const origin = n.origin || '';
    show(box, text, section('Latest checkpoint',
      h('dl', {class: 'facts'},
        h('dt', null, 'Origin'), h('dd', {class: 'mono'}, origin),
        h('dt', null, 'Tree size'), h('dd', {id: 'checkpoint-size'}, n.size),
        h('dt', null, 'Root hash'), h('dd', {class: 'mono'}, n.root)),
      h('h3', null, `Signatures (${n.sigs.length}): the node's, then its witnesses' cosignatures`),
      table(['Signer', 'Role', 'Signature (base64)'], n.sigs.map(s => [h('span', {class: 'mono small'}, s.name),
        s.name === origin ? badge('this node', 'ok') : badge('witness'), h('span', {class: 'mono small wrap'}, s.sig)]), {id: 'signatures'}),
      h('details', null, h('summary', null, 'The note as served'), h('pre', {class: 'raw'}, text))));
  } catch (e) {
    if (isAbort(e)) throw e;
    show(box, 'error ' + e.message, e.status === 404 && e.code === 'not_found'
      ? section('Latest checkpoint', h('p', {class: 'muted'}, e.message))
      : errorBox(e, 'GET /v1/log/checkpoint'));
  }
}

async function witnesses(box, signal) {
  try {
    const st = await call('/v1/status', {signal});
    const [logBox, witnessedBox, alertsBox] = box.children;
    show(logBox, JSON.stringify(st.log),
      section('This node\'s log', h('p', null, `${st.log.size} records; root `, h('span', {class: 'mono small'}, st.log.root || '(empty)'),
        `; latest checkpoint of ${st.log.checkpoint_size || 0}.`),
        st.log.held ? h('p', {id: 'held'}, badge('signing held', 'bad'), ' ', st.log.held.reason || '',
          (st.log.held.waiting || []).length ? [' Waiting for: ', st.log.held.waiting.map(p => [peer(p), ' '])] : null) : null));
    show(witnessedBox, JSON.stringify(st.witnessed),
      section('Peers\' logs this node witnessed', (st.witnessed || []).length
        ? table(['Peer', 'Size', 'Root', 'Verified at'], st.witnessed.map(w => [peer(w.peer_id), String(w.size), h('span', {class: 'mono small'}, w.root), rfc(w.at)]), {id: 'witnessed'})
        : h('p', {class: 'muted', id: 'witnessed'}, 'None yet: this node asks each connected peer for its checkpoint every few seconds.')));
    show(alertsBox, JSON.stringify(st.alerts),
      (st.alerts || []).length
        ? section('Equivocation', table(['Peer', 'Kind', 'Size', 'Sizes', 'Roots', 'Detected', 'Incident', 'Evidence'],
          st.alerts.map(a => [peer(a.peer_id), badge(a.kind, 'bad'), String(a.size), (a.sizes || []).join(', '),
            h('span', {class: 'mono small'}, (a.roots || []).join(' ≠ ')), rfc(a.detected_at), a.incident ? cidLink(a.incident) : '—',
            h('details', {'data-key': a.peer_id + '/' + a.size}, h('summary', null, 'the two signed checkpoints'), ...(a.notes || []).map(n => h('pre', {class: 'mono small'}, n)))]), {id: 'alerts'}))
        : section('Equivocation', h('p', {id: 'alerts'}, badge('none seen', 'ok'))));
  } catch (e) {
    if (isAbort(e)) throw e;
    const [logBox, witnessedBox, alertsBox] = box.children;
    show(logBox, 'error ' + e.message, errorBox(e, 'GET /v1/status'));
    show(witnessedBox, '');
    show(alertsBox, '');
  }
}

function proofForm(box) {
  const form = h('form', {class: 'filters', id: 'proof-form'},
    h('label', {class: 'field'}, h('span', {class: 'label'}, 'inclusion of a record'),
      h('input', {name: 'cid', placeholder: 'bafyrei…', size: 64, spellcheck: 'false', value: hashQuery().get('cid') || ''})),
    h('button', {type: 'submit'}, 'Prove'));
  form.addEventListener('submit', e => {
    e.preventDefault();
    const c = form.elements.cid.value.trim();
    if (c) proof(box, c);
  });
  return form;
}

async function proof(box, c, signal) {
  try {
    const p = await call('/v1/log/proof?cid=' + encodeURIComponent(c), {signal});
    box.replaceChildren(section('Inclusion proof', h('p', null, cidLink(c, c), ` is leaf ${p.index} of the tree of size ${p.size}.`),
      h('ol', {class: 'mono small', start: '1'}, p.hashes.map(x => h('li', null, x))),
      h('p', {class: 'muted small'}, 'Check it against the checkpoint of that size with tlog.CheckRecord (docs/operating.md, "Log and checkpoints").')));
  } catch (e) {
    if (!isAbort(e)) box.replaceChildren(errorBox(e, 'GET /v1/log/proof'));
  }
}
