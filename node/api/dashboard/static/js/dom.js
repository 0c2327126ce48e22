// DOM helpers. The page builds every element node by node and sets text
// with text nodes only: nothing the API answers is ever parsed as HTML
// (the page's Content-Security-Policy enforces it with Trusted Types).

// h makes an element: h('a', {href: '#/x', class: 'cid'}, 'text', child…).
// An attribute whose name starts with "on" adds that event listener; a
// null, undefined or false attribute or child is left out.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  add(el, children);
  return el;
}

// add appends children (nodes, strings, numbers, nested arrays) to el.
export function add(el, ...children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// CIDs of records are canonical base32 text (DESIGN.md §8).
export const cidPattern = /^b[a-z2-7]{20,}$/;

// short shows a CID or a peer ID shortened, the whole in its title. Its
// middle stays in the page, folded to no width (app.css, .elided), and
// the ellipsis shown in its place cannot be selected: copying the text
// copies the whole ID.
export function short(s) {
  s = String(s);
  if (s.length <= 22) return s;
  return h('span', {class: 'short'}, s.slice(0, 10),
    h('span', {class: 'ellipsis', 'aria-hidden': 'true'}, '…'),
    h('span', {class: 'elided'}, s.slice(10, -8)), s.slice(-8));
}

// cidLink links to the record view of a CID.
export function cidLink(cid, label) {
  return h('a', {href: '#/records/' + encodeURIComponent(cid), class: 'cid', title: cid, 'data-cid': cid}, label || short(cid));
}

// peer shows a peer ID, shortened, whole in its title.
export function peer(id) {
  if (!id) return h('span', {class: 'muted'}, '—');
  return h('span', {class: 'peer mono', title: id}, short(id));
}

// ms formats a time the records hold (Unix ms) as UTC.
export function ms(v) {
  if (typeof v !== 'number' || !isFinite(v) || v <= 0) return '—';
  return new Date(v).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

// rfc formats an RFC 3339 time the API adds.
export function rfc(s) {
  if (!s) return '—';
  const d = new Date(s);
  return isNaN(d) ? s : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function duration(msecs) {
  let s = Math.floor(msecs / 1000);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hr = Math.floor(s / 3600); s -= hr * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  return (d ? d + 'd ' : '') + (d || hr ? hr + 'h ' : '') + m + 'm ' + s + 's';
}

// table makes a table of the given column heads and rows (arrays of cells).
export function table(heads, rows, attrs) {
  return h('table', attrs,
    h('thead', null, h('tr', null, heads.map(x => h('th', null, x)))),
    h('tbody', null, rows.map(r => r instanceof Node ? r : h('tr', null, r.map(c => h('td', null, c))))));
}

// badge is a small labelled state; kind picks its colour.
export function badge(text, kind) {
  return h('span', {class: 'badge ' + (kind || '')}, text);
}

export function section(title, ...children) {
  return h('section', {class: 'card'}, h('h2', null, title), children);
}

// field is a labelled form control.
export function field(label, control, hint) {
  return h('label', {class: 'field'}, h('span', {class: 'label'}, label), control, hint ? h('span', {class: 'hint muted'}, hint) : null);
}

// hashQuery reads the query part of the location's hash (#/view?a=b).
export function hashQuery() {
  const i = location.hash.indexOf('?');
  return new URLSearchParams(i < 0 ? '' : location.hash.slice(i + 1));
}

// hashWith is the hash of path with params as its query (empty ones left out).
export function hashWith(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined) q.set(k, v);
  const s = q.toString();
  return '#' + path + (s ? '?' + s : '');
}

// sleep waits ms milliseconds, or until signal aborts (then it rejects).
export function sleep(msecs, signal) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) { reject(signal.reason); return; }
    const t = setTimeout(done, msecs);
    function done() { if (signal) signal.removeEventListener('abort', stop); resolve(); }
    function stop() { clearTimeout(t); reject(signal.reason); }
    if (signal) signal.addEventListener('abort', stop, {once: true});
  });
}

// shown remembers what each box last showed (show).
const shown = new WeakMap();

// show puts children in box in place of what it held, unless key (a
// string of what they show) is what box already shows: a view refreshed
// every few seconds leaves what did not change alone, with its open
// <details> and any text the user selected. Details open before a
// change stay open after it.
export function show(box, key, ...children) {
  if (shown.get(box) === key) return;
  // A <details> is known by its data-key (one of a list), else its place.
  const id = (d, i) => d.dataset.key || String(i);
  const open = new Set([...box.querySelectorAll('details')].map((d, i) => (d.open ? id(d, i) : null)).filter(k => k !== null));
  box.replaceChildren(...children);
  shown.set(box, key);
  box.querySelectorAll('details').forEach((d, i) => { if (open.has(id(d, i))) d.open = true; });
}
