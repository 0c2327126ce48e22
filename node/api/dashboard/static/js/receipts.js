// Receipts: the register of transfer decisions this node holds (GET
// /v1/receipts, filtered and paged), and a consent's lineage (GET
// /v1/consents/{cid}/lineage): every decision under it as a tree of
// resales. Both need a token.
import {call, errorBox, isAbort} from './api.js';
import {badge, cidLink, h, hashQuery, hashWith, ms, peer, rfc, table} from './dom.js';

const filters = [['consent', 'bafyrei…', 40], ['from', 'DE', 4], ['to', 'BR', 4], ['sender', '12D3KooW…', 30], ['recipient', '12D3KooW…', 30]];

export default async function receipts(root, parts, signal) {
  if (parts[0] === 'lineage' && parts[1]) return lineage(root, parts[1], signal);
  const q = hashQuery();
  const form = h('form', {class: 'filters', id: 'receipt-filters'},
    filters.map(([f, ph, size]) => h('label', {class: 'field'}, h('span', {class: 'label'}, f),
      h('input', {name: f, value: q.get(f) || '', placeholder: ph, size, spellcheck: 'false'}))),
    h('button', {type: 'submit'}, 'Show'));
  form.addEventListener('submit', e => {
    e.preventDefault();
    const p = {};
    for (const [f] of filters) p[f] = form.elements[f].value.trim();
    location.hash = hashWith('/receipts', p);
  });
  const body = h('div', {id: 'receipt-list'}, h('p', {class: 'muted'}, 'Loading…'));
  root.append(h('div', {class: 'view-head'}, h('h1', null, 'Receipts')),
    h('p', {class: 'muted'}, 'The decisions this node signed or received, one line per decision, as far as this caller may read them.'),
    form, body);

  const p = new URLSearchParams({limit: '50'});
  for (const [f] of filters) if (q.get(f)) p.set(f, q.get(f));
  const after = q.get('after') || '';
  if (after) p.set('after', after);
  let page;
  try {
    page = await call('/v1/receipts?' + p, {signal});
  } catch (e) {
    if (!isAbort(e)) body.replaceChildren(errorBox(e, 'GET /v1/receipts'));
    return;
  }
  const here = Object.fromEntries(filters.map(([f]) => [f, q.get(f) || '']));
  body.replaceChildren(
    page.receipts.length
      ? table(['Receipt', 'Item', 'Verdict', 'Transfer', 'Parties', 'Tier', 'Consent', 'Issued by', 'Issued'],
        page.receipts.map(r => {
          const req = r.request || {};
          return h('tr', {'data-receipt': r.receipt, 'data-item': r.item},
            h('td', null, cidLink(r.receipt)), h('td', null, String(r.item)),
            h('td', null, badge(r.verdict, r.verdict === 'allow' ? 'ok' : 'bad')),
            h('td', null, `${req.from} → ${req.to}`, h('div', {class: 'muted small'}, `${req.purpose}; ${(req.categories || []).join(', ')}; ${req.retention_days} days`)),
            h('td', {class: 'small'}, peer(req.sender), ' → ', peer(req.recipient)),
            h('td', null, String(req.tier), req.parent ? h('div', {class: 'small'}, 'parent ', cidLink(req.parent.receipt), ':' + req.parent.item) : null),
            h('td', null, req.consent ? [cidLink(req.consent), h('div', null, h('a', {href: '#/receipts/lineage/' + encodeURIComponent(req.consent), class: 'lineage-link'}, 'lineage'))] : '—'),
            h('td', null, peer(r.issuer)), h('td', null, ms(r.issued_at)));
        }), {id: 'receipts'})
      : h('p', {class: 'muted', id: 'receipts'}, 'No decision visible to this caller.'),
    h('div', {class: 'pager'}, after ? h('a', {href: hashWith('/receipts', here)}, '« First') : null,
      page.next ? h('a', {id: 'receipts-next', href: hashWith('/receipts', Object.assign({}, here, {after: page.next}))}, 'Next ›') : h('span', {class: 'muted'}, 'last page')));
}

async function lineage(root, consent, signal) {
  const body = h('div', {id: 'lineage'}, h('p', {class: 'muted'}, 'Loading…'));
  root.append(h('div', {class: 'view-head'}, h('h1', null, 'Lineage'), h('a', {href: '#/receipts'}, '« receipts')),
    h('p', null, 'The decisions under consent ', cidLink(consent, consent), ', each resale under the decision it names as its parent.'), body);
  let l;
  try {
    l = await call('/v1/consents/' + encodeURIComponent(consent) + '/lineage', {signal});
  } catch (e) {
    if (!isAbort(e)) body.replaceChildren(errorBox(e, 'GET /v1/consents/…/lineage'));
    return;
  }
  body.replaceChildren(l.roots.length
    ? h('ul', {class: 'tree'}, l.roots.map(decision))
    : h('p', {class: 'muted'}, 'No decision under this consent visible to this caller.'));
}

function decision(d) {
  return h('li', {class: 'decision', 'data-receipt': d.receipt, 'data-item': d.item},
    h('div', {class: 'node'},
      badge('tier ' + d.tier), ' ', badge(d.verdict, d.verdict === 'allow' ? 'ok' : 'bad'), ' ',
      h('strong', null, `${d.from} → ${d.to}`), ' ', peer(d.sender), ' → ', peer(d.recipient),
      h('span', {class: 'muted small'}, ' at ' + rfc(d.at) + '; decision ' + d.item + ' of '), cidLink(d.receipt),
      d.notified_at ? h('div', {class: 'small'}, badge('recipient told of revocation ' + rfc(d.notified_at), 'warn')) : null),
    (d.children || []).length ? h('ul', null, d.children.map(decision)) : null);
}
