// The dashboard's shell: the sign-in form, the navigation and the router
// that shows one view at a time (#/view/...). Each view gets an
// AbortSignal that ends its calls, timers and streams when it is left.
import {auth, call, isAbort} from './api.js';
import {h} from './dom.js';
import federation from './federation.js';
import incidents from './incidents.js';
import records from './records.js';
import verify from './verify.js';
import receipts from './receipts.js';
import log from './log.js';

const views = {federation, incidents, records, verify, receipts, log};

let current = null; // the AbortController of the view on screen

function route() {
  if (current) current.abort();
  current = new AbortController();
  const [path] = location.hash.replace(/^#\/?/, '').split('?');
  const parts = path.split('/').filter(Boolean).map(decode);
  const name = views[parts[0]] ? parts[0] : 'federation';
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.dataset.view === name);
    if (a.dataset.view === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const main = document.getElementById('main');
  const root = h('div', {id: 'view-' + name, class: 'view'});
  main.replaceChildren(root);
  views[name](root, parts.slice(1), current.signal).catch(e => {
    if (!isAbort(e)) console.error(e);
  });
}

// decode decodes a part of the hash; one that is not valid stays as it is
// (the view then names it in its error).
function decode(part) {
  try { return decodeURIComponent(part); } catch { return part; }
}

function showAuth() {
  const signedIn = auth.token !== '';
  document.getElementById('token-form').hidden = signedIn;
  document.getElementById('signed-in').hidden = !signedIn;
}

// nodeName shows the node's jurisdiction and federation in the header,
// and whose the tab's token is (the status names the caller).
async function nodeName() {
  const el = document.getElementById('node-name');
  const badge = document.getElementById('token-badge');
  try {
    const st = await call('/v1/status');
    el.textContent = st.jurisdiction + ' · ' + st.federation;
    document.title = 'entente ' + st.jurisdiction + ' · ' + st.federation;
    const c = st.caller;
    badge.textContent = c ? (c.name ? c.name + ' · ' + c.role : c.role) : 'token in this tab';
    badge.className = 'badge ok';
  } catch (e) {
    el.textContent = '';
    if (e.status === 401) {
      badge.textContent = 'token unknown to this node';
      badge.className = 'badge bad';
    }
  }
}

document.getElementById('token-form').addEventListener('submit', e => {
  e.preventDefault();
  const input = document.getElementById('token-input');
  const token = input.value.trim();
  input.value = '';
  if (token === '') return;
  auth.set(token);
});
document.getElementById('sign-out').addEventListener('click', () => auth.clear());
auth.onChange(() => { showAuth(); nodeName(); route(); });
window.addEventListener('hashchange', route);
showAuth();
nodeName();
route();
