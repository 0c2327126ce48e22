// The record browser: the list (GET /v1/records, filtered by kind, issuer
// and jurisdiction, a page at a time by its `next`) and one record's
// DAG-JSON (GET /v1/records/{cid}), its links to other records followed
// by a click.
import {call, errorBox, isAbort} from './api.js';
import {badge, cidLink, cidPattern, h, hashQuery, hashWith, ms, peer, section, table} from './dom.js';

const kinds = ['', 'accreditation', 'ruleset', 'consent', 'revocation', 'incident', 'receipt'];
const limits = ['10', '25', '50', '100'];
// A peer ID of an Ed25519 key, as records name issuers and parties.
const peerPattern = /^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/;

export default async function records(root, parts, signal) {
  if (parts.length > 0) return recordView(root, parts[0], signal);
  const q = hashQuery();
  const kind = q.get('kind') || '', issuer = q.get('issuer') || '', jurisdiction = q.get('jurisdiction') || '';
  // Any limit the API takes (1–1000) may come in the link; the menu offers a few.
  const limit = /^[1-9]\d{0,2}$|^1000$/.test(q.get('limit') || '') ? q.get('limit') : '25';
  const after = q.get('after') || '';
  // back is the cursors of the pages before this one (for "Previous").
  const back = (q.get('back') || '').split(',').filter(Boolean);

  const form = h('form', {class: 'filters', id: 'record-filters'},
    h('label', {class: 'field'}, h('span', {class: 'label'}, 'kind'),
      h('select', {name: 'kind', id: 'kind-filter'}, kinds.map(k => h('option', {value: k, selected: k === kind ? true : null}, k || 'any')))),
    h('label', {class: 'field'}, h('span', {class: 'label'}, 'issuer'),
      h('input', {name: 'issuer', value: issuer, placeholder: '12D3KooW…', size: 30, spellcheck: 'false'})),
    h('label', {class: 'field'}, h('span', {class: 'label'}, 'jurisdiction'),
      h('input', {name: 'jurisdiction', value: jurisdiction, placeholder: 'DE', size: 4, maxlength: 2})),
    h('label', {class: 'field'}, h('span', {class: 'label'}, 'per page'),
      h('select', {name: 'limit', id: 'limit-filter'}, (limits.includes(limit) ? limits : [limit, ...limits])
        .map(l => h('option', {value: l, selected: l === limit ? true : null}, l)))),
    h('button', {type: 'submit'}, 'Show'));
  const go = () => {
    location.hash = hashWith('/records', {kind: form.elements.kind.value, issuer: form.elements.issuer.value.trim(),
      jurisdiction: form.elements.jurisdiction.value.trim(), limit: form.elements.limit.value});
  };
  form.addEventListener('submit', e => { e.preventDefault(); go(); });
  form.elements.kind.addEventListener('change', go);
  form.elements.limit.addEventListener('change', go);

  const open = h('form', {class: 'filters', id: 'open-cid'},
    h('label', {class: 'field'}, h('span', {class: 'label'}, 'open a CID'),
      h('input', {name: 'cid', placeholder: 'bafyrei…', size: 64, spellcheck: 'false'})),
    h('button', {type: 'submit'}, 'Open'));
  open.addEventListener('submit', e => {
    e.preventDefault();
    const c = open.elements.cid.value.trim();
    if (c) location.hash = '#/records/' + encodeURIComponent(c);
  });

  const body = h('div', {id: 'record-list'}, h('p', {class: 'muted'}, 'Loading…'));
  root.append(h('div', {class: 'view-head'}, h('h1', null, 'Records')), form, open, body);

  const p = new URLSearchParams({limit});
  if (kind) p.set('kind', kind);
  if (issuer) p.set('issuer', issuer);
  if (jurisdiction) p.set('jurisdiction', jurisdiction);
  if (after) p.set('after', after);
  let page;
  try {
    page = await call('/v1/records?' + p, {signal});
  } catch (e) {
    if (!isAbort(e)) body.replaceChildren(errorBox(e, 'GET /v1/records'));
    return;
  }
  const here = {kind, issuer, jurisdiction, limit};
  const nav = h('div', {class: 'pager'},
    back.length || after ? h('a', {href: hashWith('/records', here), id: 'page-first'}, '« First') : null,
    back.length || after ? h('a', {id: 'page-prev', href: hashWith('/records', Object.assign({}, here,
      {after: back[back.length - 1] === '0' ? '' : back[back.length - 1] || '', back: back.slice(0, -1).join(',')}))}, '‹ Previous') : null,
    page.next ? h('a', {id: 'page-next', href: hashWith('/records', Object.assign({}, here,
      {after: page.next, back: back.concat([after || '0']).join(',')}))}, 'Next ›') : h('span', {class: 'muted', id: 'page-last'}, 'last page'));
  body.replaceChildren(
    page.records.length
      ? table(['CID', 'Kind', 'Issuer', 'Issued', 'Jurisdiction', 'What'], page.records.map(r => h('tr', {'data-cid': r.cid},
        h('td', null, cidLink(r.cid)), h('td', null, badge(r.record.kind)), h('td', null, peer(r.record.issuer)),
        h('td', null, ms(r.record.issued_at)), h('td', null, r.record.body.jurisdiction || '—'), h('td', {class: 'small'}, gist(r.record)))),
      {id: 'records'})
      : h('p', {class: 'muted', id: 'records'}, page.next
        ? 'None visible to this caller on this page (a page reads a bounded stretch of the log): see the next one.'
        : after ? 'Nothing more.'
          : 'No record visible to this caller' + (kind ? ' of kind ' + kind : '') + '. The public sees TLP:CLEAR incidents only: sign in with a token to see more.'),
    nav);
}

// gist is one line about a record.
function gist(rec) {
  const b = rec.body || {};
  switch (rec.kind) {
    case 'accreditation': return `${b.name || ''} (${(b.roles || []).join(', ')}) until ${ms(b.valid_until)}`;
    case 'ruleset': return `version ${b.version}, effective ${ms(b.effective_from)}`;
    case 'consent': return `${(b.categories || []).join(', ')} for ${(b.purposes || []).join(', ')} to ${(b.destinations || []).join(', ')}, tier ≤ ${b.max_tier}`;
    case 'revocation': return `revokes ${linkText(b.target)}: ${b.reason || ''}`;
    case 'incident': return `${b.ref}: ${b.severity}, ${b.status}, TLP:${String(b.tlp || '').toUpperCase()}`;
    case 'receipt': return `${(b.decisions || []).length} decision(s), log size ${b.checkpoint ? b.checkpoint.size : '?'}`;
  }
  return '';
}

function linkText(l) {
  return l && typeof l['/'] === 'string' ? l['/'].slice(0, 14) + '…' : '?';
}

async function recordView(root, c, signal) {
  const body = h('div', null, h('p', {class: 'muted'}, 'Loading…'));
  root.append(h('div', {class: 'view-head'}, h('h1', null, 'Record'), h('a', {href: '#/records'}, '« all records')),
    h('p', {class: 'mono', id: 'record-cid'}, c), body);
  let v;
  try {
    v = await call('/v1/records/' + encodeURIComponent(c), {signal});
  } catch (e) {
    if (!isAbort(e)) body.replaceChildren(errorBox(e, 'GET /v1/records/' + c));
    return;
  }
  const rec = v.record;
  const related = [];
  if (rec.kind === 'consent') related.push(h('a', {href: '#/receipts/lineage/' + encodeURIComponent(v.cid), id: 'lineage-link'}, 'Decisions under this consent (lineage)'));
  if (rec.kind === 'incident') related.push(h('a', {href: '#/incidents?jurisdiction=' + encodeURIComponent(rec.body.jurisdiction)}, 'Incidents of ' + rec.body.jurisdiction));
  if (rec.kind === 'consent') related.push(h('a', {href: '#/receipts?consent=' + encodeURIComponent(v.cid)}, 'Receipts under this consent'));
  related.push(h('a', {href: '#/log?cid=' + encodeURIComponent(v.cid)}, 'Inclusion in the log'));
  body.replaceChildren(
    h('dl', {class: 'facts'},
      h('dt', null, 'Kind'), h('dd', null, badge(rec.kind)),
      h('dt', null, 'Issuer'), h('dd', {class: 'mono'}, rec.issuer,
        ' ', h('a', {href: hashWith('/records', {issuer: rec.issuer})}, 'records of this issuer')),
      h('dt', null, 'Issued'), h('dd', null, ms(rec.issued_at)),
      h('dt', null, 'See also'), h('dd', null, related.map(a => [a, ' · ']).flat().slice(0, -1))),
    section('DAG-JSON', h('div', {class: 'json', id: 'record-json'}, jsonTree(rec, rec.kind === 'receipt' ? 'receipt' : ''))),
    h('details', null, h('summary', null, 'As the API answered it'), h('pre', {class: 'raw'}, JSON.stringify(v, null, 2))));
}

// jsonTree renders a DAG-JSON value: a link {"/": cid} as a link to that
// record (a receipt's decisions link to decision blocks, which are not
// records: shown, not linked), bytes {"/": {"bytes": b64}} as bytes, a
// peer ID as a link to its records; a time (Unix ms) noted with its date.
export function jsonTree(v, ctx, key) {
  if (v === null || typeof v !== 'object') return scalar(v);
  if (Array.isArray(v)) {
    if (v.every(x => x === null || typeof x !== 'object')) { // short lists on one line
      return h('span', null, punct('['), v.map((x, i) => [i ? punct(', ') : null, scalar(x)]), punct(']'));
    }
    return h('span', null, punct('['),
      h('ul', null, v.map((x, i) => h('li', null, jsonTree(x, ctx, key), i < v.length - 1 ? punct(',') : null))), punct(']'));
  }
  const keys = Object.keys(v);
  if (keys.length === 1 && keys[0] === '/') {
    const l = v['/'];
    if (typeof l === 'string' && cidPattern.test(l)) {
      if (ctx === 'receipt' && key === 'decisions') return h('span', {class: 'j-link mono', title: 'a decision block (in the receipt\'s bundle)'}, '{"/": "' + l + '"}');
      return h('span', {class: 'j-link'}, punct('{"/": '), cidLink(l, l), punct('}'));
    }
    if (l && typeof l === 'object' && typeof l.bytes === 'string') {
      return h('span', {class: 'j-bytes', title: 'bytes, base64'}, `{"/": {"bytes": "${l.bytes}"}}`);
    }
  }
  if (keys.length === 0) return punct('{}');
  return h('span', null, punct('{'),
    h('ul', null, keys.map((k, i) => h('li', null, h('span', {class: 'j-key'}, JSON.stringify(k)), punct(': '),
      jsonTree(v[k], ctx, k), i < keys.length - 1 ? punct(',') : null, note(v[k], k)))), punct('}'));
}

// note is a comment after a member: a time's date, the length of bytes.
function note(v, key) {
  if (typeof v === 'number' && /(_at|_from|_until)$/.test(key) && v > 1e11) return h('span', {class: 'j-note'}, ' // ' + ms(v));
  const l = v && v['/'];
  if (l && typeof l === 'object' && typeof l.bytes === 'string') return h('span', {class: 'j-note'}, ` // ${Math.floor(l.bytes.length * 3 / 4)} bytes`);
  return null;
}

function punct(s) {
  return h('span', {class: 'j-punct'}, s);
}

function scalar(v) {
  if (v === null) return h('span', {class: 'j-null'}, 'null');
  if (typeof v === 'string') {
    if (peerPattern.test(v)) return h('a', {class: 'j-str', href: hashWith('/records', {issuer: v}), title: 'records issued by this peer'}, JSON.stringify(v));
    return h('span', {class: 'j-str'}, JSON.stringify(v));
  }
  return h('span', {class: 'j-num'}, String(v));
}
