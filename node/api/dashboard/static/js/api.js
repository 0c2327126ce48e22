// The node's API, called from this origin with the tab's access token.
import {h} from './dom.js';

const tokenKey = 'entente.token';
const listeners = new Set();

// auth is the tab's access token: kept in sessionStorage (this tab only,
// gone when it closes), sent as a bearer token, never as a cookie.
export const auth = {
  get token() {
    try { return sessionStorage.getItem(tokenKey) || ''; } catch { return ''; }
  },
  set(token) {
    sessionStorage.setItem(tokenKey, token);
    listeners.forEach(f => f());
  },
  clear() {
    sessionStorage.removeItem(tokenKey);
    listeners.forEach(f => f());
  },
  // onChange calls f after each sign-in and sign-out.
  onChange(f) { listeners.add(f); },
};

// APIError is an error answer of the API: its status, its stable code
// (DESIGN.md §8) and its message; status 0 when the node did not answer.
export class APIError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.name = 'APIError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter || '';
  }
  // needsToken: the caller must sign in (again), or with another token.
  get needsToken() { return this.status === 401 || this.status === 403; }
}

// headers are the request headers of a call: the token, if any.
export function headers(extra) {
  const hd = Object.assign({}, extra);
  const t = auth.token;
  if (t) hd.Authorization = 'Bearer ' + t;
  return hd;
}

// errorOf reads an error answer: its JSON {error, message}, or the status.
export async function errorOf(resp) {
  let code = 'http_' + resp.status, message = resp.statusText || 'HTTP ' + resp.status;
  try {
    const j = await resp.json();
    if (j && typeof j.error === 'string') {
      code = j.error;
      message = typeof j.message === 'string' ? j.message : '';
    }
  } catch { /* not JSON: keep the status */ }
  return new APIError(resp.status, code, message, resp.headers.get('Retry-After'));
}

// call calls the API: GET path, or a method with a JSON body. It resolves
// to the answer's JSON (or text, for a text answer) and rejects with an
// APIError.
export async function call(path, {method = 'GET', body, signal} = {}) {
  const init = {method, signal, credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer',
    headers: headers({Accept: 'application/json, text/plain;q=0.5'})};
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    if (signal && signal.aborted) throw e;
    throw new APIError(0, 'unreachable', 'the node did not answer (' + e.message + ')');
  }
  if (!resp.ok) throw await errorOf(resp);
  const ct = resp.headers.get('Content-Type') || '';
  return ct.startsWith('application/json') ? resp.json() : resp.text();
}

// isAbort reports whether e is the abort of a view's calls (the view was
// left): nothing to show.
export function isAbort(e) {
  return Boolean(e && e.name === 'AbortError');
}

// errorBox shows an error to the user: its code and message, and for a
// caller without a (valid) token, what to do.
export function errorBox(e, what) {
  if (!(e instanceof APIError)) {
    console.error(e);
    e = new APIError(0, 'page_error', String(e && e.message || e));
  }
  const box = h('div', {class: 'error-box', role: 'alert', 'data-status': e.status, 'data-code': e.code},
    h('strong', null, (what ? what + ': ' : '') + (e.status ? e.status + ' ' : '') + e.code),
    e.message ? h('span', {class: 'message'}, ' — ' + e.message) : null);
  if (e.status === 401) {
    box.append(h('p', null, auth.token
      ? 'The node does not know the token of this tab. Sign in with another one.'
      : 'This needs an access token: sign in with the token the node\'s operator gave you.'), signInButton());
  } else if (e.status === 403) {
    box.append(h('p', null, 'The caller of this token may not do this: the node says why above (its role, or an accreditation no longer live). Sign in with another token to go on.'), signInButton());
  } else if (e.status === 429 || e.status === 503) {
    box.append(h('p', null, 'The node asks to retry' + (e.retryAfter ? ' after ' + e.retryAfter + ' s' : ' later') + '.'));
  }
  return box;
}

function signInButton() {
  return h('button', {type: 'button', class: 'sign-in-prompt', onclick: () => promptToken()}, 'Sign in with a token');
}

// promptToken brings the sign-in form forward.
export function promptToken() {
  document.getElementById('token-form').hidden = false;
  document.getElementById('signed-in').hidden = true;
  const input = document.getElementById('token-input');
  input.focus();
  input.classList.add('attention');
  setTimeout(() => input.classList.remove('attention'), 1500);
}
