// The transfer check: a transfer request posted to
// POST /v1/transfers/verify, and its verdict with each check and its
// reason. A controller may ask for itself as sender only; the operator for
// anyone.
import {call, errorBox} from './api.js';
import {badge, cidLink, field, h, hashQuery} from './dom.js';

// The request's fields: [name, label, placeholder, hint].
const text = [
  ['consent', 'Consent', 'bafyrei…', 'the CID of the consent the transfer relies on'],
  ['from', 'From', 'DE', 'the origin jurisdiction'],
  ['to', 'To', 'BR', 'the destination jurisdiction'],
  ['sender', 'Sender', '12D3KooW…', 'the peer ID of the party sending the data'],
  ['recipient', 'Recipient', '12D3KooW…', 'the peer ID of the party receiving it'],
  ['purpose', 'Purpose', 'research', ''],
  ['categories', 'Categories', 'face, fingerprint', 'comma-separated'],
  ['tier', 'Tier', '1', '1 for the first transfer; a resale is one more than its parent'],
  ['retention_days', 'Retention (days)', '30', ''],
  ['at', 'At', 'now', 'RFC 3339 (2026-11-24T10:00:00Z); empty: now'],
  ['parent_receipt', 'Parent receipt', 'bafyrei…', 'for a resale (tier 2 and above): the receipt of the decision it comes from'],
  ['parent_item', 'Parent item', '0', 'that decision\'s item in its receipt'],
];

export default async function verify(root) {
  const q = hashQuery();
  const form = h('form', {id: 'verify-form', class: 'grid-form', novalidate: true},
    text.map(([name, label, ph, hint]) => field(label,
      h('input', {name, id: 'v-' + name, placeholder: ph, spellcheck: 'false', value: q.get(name) || '',
        inputmode: ['tier', 'retention_days', 'parent_item'].includes(name) ? 'numeric' : null}), hint)),
    h('div', {class: 'actions'},
      h('button', {type: 'submit', id: 'verify-submit', class: 'primary'}, 'Check the transfer'),
      h('button', {type: 'button', id: 'verify-clear', onclick: () => { form.reset(); preview(); }}, 'Clear')));
  const json = h('pre', {class: 'raw', id: 'verify-json'});
  const result = h('div', {id: 'verify-result', 'aria-live': 'polite'});
  root.append(h('div', {class: 'view-head'}, h('h1', null, 'Transfer check')),
    h('p', {class: 'muted'}, 'Asks this node whether a transfer may go ahead (POST /v1/transfers/verify). An allowed or denied decision is signed in a receipt and kept in the node\'s log for good: every check adds one. ' +
      'A platform\'s token asks for the transfers it sends; the operator\'s for anyone; a regulator\'s or an auditor\'s may not ask (they read decisions under Receipts).'),
    h('div', {class: 'two'}, form, h('div', null, h('h3', null, 'Request'), json)), result);

  const preview = () => { json.textContent = JSON.stringify(request(form), null, 2); };
  form.addEventListener('input', preview);
  preview();

  let busy = false;
  form.addEventListener('submit', async e => {
    e.preventDefault();
    if (busy) return;
    busy = true;
    form.querySelectorAll('[aria-invalid]').forEach(el => el.removeAttribute('aria-invalid'));
    result.replaceChildren(h('p', {class: 'muted'}, 'Checking…'));
    try {
      const v = await call('/v1/transfers/verify', {method: 'POST', body: request(form)});
      result.replaceChildren(verdictView(v));
    } catch (err) {
      // A refused request names its field first ("consent: …"): mark it.
      const m = /^([a-z_]+)[.:]/.exec(err.message || '');
      const input = m && (form.elements[m[1]] || (m[1] === 'parent' && form.elements.parent_receipt));
      if (input) input.setAttribute('aria-invalid', 'true');
      result.replaceChildren(errorBox(err, 'The node refused the request'));
    } finally {
      busy = false;
    }
  });
}

// request is the transfer request of the form's values; a number field
// that does not read as an integer is sent as typed, for the node to name.
function request(form) {
  const v = name => form.elements[name].value.trim();
  const int = name => (/^-?\d+$/.test(v(name)) ? Number(v(name)) : v(name));
  const r = {
    consent: v('consent'), from: v('from'), to: v('to'), sender: v('sender'), recipient: v('recipient'),
    purpose: v('purpose'), categories: v('categories').split(',').map(s => s.trim()).filter(Boolean),
    tier: int('tier'), retention_days: int('retention_days'),
  };
  if (v('at')) r.at = v('at');
  if (v('parent_receipt') || v('parent_item')) r.parent = {receipt: v('parent_receipt'), item: v('parent_item') ? int('parent_item') : 0};
  return r;
}

function verdictView(v) {
  const allowed = v.verdict === 'allow';
  return h('section', {class: 'card verdict-card'},
    h('h2', null, 'Verdict: ', h('span', {id: 'verdict', class: 'verdict ' + (allowed ? 'allow' : 'deny'), 'data-verdict': v.verdict}, v.verdict)),
    h('p', null, v.receipt
      ? ['Signed as decision ', String(v.item), ' of receipt ', cidLink(v.receipt, v.receipt), '.']
      : h('span', {class: 'muted', id: 'unsigned', 'data-unsigned': v.unsigned || ''}, v.unsigned === 'signing_held'
        ? 'Not signed: this node holds signing after a restore (see the Log view; the same checks, no receipt).'
        : 'Not signed: the decision time is outside the signing window (the same checks, no receipt).')),
    h('table', {id: 'checks'},
      h('thead', null, h('tr', null, ['Check', 'Result', 'Reason', 'Detail', 'Evidence'].map(x => h('th', null, x)))),
      h('tbody', null, v.checks.map(c => h('tr', {class: c.ok ? 'check ok' : 'check fail', 'data-check': c.id, 'data-ok': String(c.ok)},
        h('td', {class: 'mono'}, c.id),
        h('td', null, c.ok ? badge('✓ passed', 'ok') : badge('✗ failed', 'bad')),
        h('td', {class: 'reason mono'}, c.reason || ''),
        h('td', {class: 'detail'}, c.detail || ''),
        h('td', null, c.evidence ? cidLink(c.evidence) : ''))))));
}
