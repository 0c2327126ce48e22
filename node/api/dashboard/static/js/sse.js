// Server-Sent Events over fetch. EventSource cannot send an Authorization
// header, so the page reads the stream itself: fetch with the tab's token,
// the body's ReadableStream parsed as the HTML standard's event-stream
// format, and on a dropped stream a reconnection that sends the last event
// ID as Last-Event-ID, so that the node resumes after it with nothing lost
// (DESIGN.md §8, "Event streams").
import {errorOf, headers} from './api.js';
import {sleep} from './dom.js';

// Parser turns the text of an event stream, in chunks cut anywhere, into
// events {type, data, id}: id is the stream's last event ID as of the
// event ('' if none yet). Comment lines and fields it does not know are
// skipped; a "retry" field sets retry (ms).
export class Parser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buf = '';
    this.type = '';
    this.data = [];
    this.lastId = '';
    this.retry = 0;
    this.started = false;
    this.pendingCR = false;
  }

  // push parses the next chunk of text.
  push(text) {
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.pendingCR && text.startsWith('\n')) text = text.slice(1); // the \n of a \r\n cut in two
    this.pendingCR = false;
    this.buf += text;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buf);
      if (!m) break;
      if (m[0] === '\r' && m.index === this.buf.length - 1) {
        this.pendingCR = true; // a \r at the end: a line end, maybe the first half of \r\n
      }
      const line = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      this.line(line);
    }
  }

  line(line) {
    if (line === '') { this.dispatch(); return; }
    if (line.startsWith(':')) return;
    const i = line.indexOf(':');
    const name = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? '' : line.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (name) {
      case 'event': this.type = value; break;
      case 'data': this.data.push(value); break;
      case 'id': if (!value.includes('\0')) this.lastId = value; break;
      case 'retry': if (/^\d+$/.test(value)) this.retry = Number(value); break;
    }
  }

  dispatch() {
    const type = this.type || 'message', data = this.data;
    this.type = '';
    this.data = [];
    if (data.length === 0) return;
    this.onEvent({type, data: data.join('\n'), id: this.lastId});
  }
}

// follow reads the event stream at path until signal aborts, reconnecting
// after a dropped stream (backoff from 1 s to 30 s, or the stream's retry)
// with Last-Event-ID. It calls onEvent(event) for each event and
// onState({state, lastId, error, retryIn}) as the stream opens ("open"),
// drops ("retrying") or ends for good ("closed": an answer that retrying
// cannot change, such as 401, 403 or 400). lastId starts the stream after
// that event (omit it to start now). fetchFn stands in for fetch in tests.
export function follow(path, {signal, onEvent, onState, lastId = '', fetchFn = fetch, minDelay = 1000, maxDelay = 30000}) {
  let delay = minDelay;
  const state = s => onState && onState(Object.assign({lastId}, s));
  const run = async () => {
    while (!signal.aborted) {
      let retryAfter = 0;
      try {
        const hd = headers({Accept: 'text/event-stream'});
        if (lastId !== '') hd['Last-Event-ID'] = lastId;
        const resp = await fetchFn(path, {headers: hd, signal, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer'});
        if (!resp.ok) {
          const err = await errorOf(resp);
          if (resp.status !== 429 && resp.status !== 503 && resp.status < 500) {
            state({state: 'closed', error: err});
            return;
          }
          retryAfter = Number(err.retryAfter) * 1000 || 0;
          throw err;
        }
        state({state: 'open'});
        delay = minDelay;
        const parser = new Parser(ev => {
          lastId = ev.id;
          if (ev.type === 'reset') lastId = ''; // older than what the node keeps: start again from now
          onEvent(ev);
        });
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const {value, done} = await reader.read();
          if (done) break;
          parser.push(value);
        }
        if (parser.retry > 0) delay = parser.retry;
        throw new Error('the node ended the stream');
      } catch (e) {
        if (signal.aborted) return;
        const wait = Math.max(delay, retryAfter);
        state({state: 'retrying', error: e, retryIn: wait});
        try { await sleep(wait, signal); } catch { return; }
        delay = Math.min(delay * 2, maxDelay);
      }
    }
  };
  return run();
}
