// A small ShareDB (protocol 1.2) client for one rich-text document and its
// presence channel, over a WebSocket that reconnects by itself. It keeps the
// same rules as sharedb/lib/client: one op in flight, later edits composed
// into one pending op, remote ops transformed against both; a reconnect
// resubscribes from the known version and resends the op in flight under the
// same src and seq, which the server acknowledges exactly once.

import { compose, transform, transformPosition } from './delta.js';

export const RICH_TEXT_URI = 'http://sharejs.org/types/rich-text/v1';
const HISTORY = 200;

function opsOf(value) {
  if (Array.isArray(value)) return value;
  if (value && Array.isArray(value.ops)) return value.ops;
  return [];
}

function randomId() {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * A subscribed rich-text document.
 *
 * Callbacks: onStatus(text), onSnapshot(ops), onRemoteOp(op) (already applied
 * to `data`), onPresence() (remote cursors changed), onError(message).
 */
export class ShareDoc {
  constructor(url, collection, id, handlers = {}) {
    this.url = url;
    this.c = collection;
    this.d = id;
    this.ch = `${collection}.${id}`;
    this.h = handlers;
    this.src = null;
    this.seq = 0;
    this.version = null;
    this.data = null;
    this.inflight = null;
    this.pending = null;
    this.history = [];
    this.presenceId = randomId();
    this.pv = 0;
    this.localPresence = null;
    this.presenceDirty = false;
    this.remote = new Map();
    this.closed = false;
    this.backoff = 250;
    this.connect();
  }

  status(text) {
    this.h.onStatus?.(text);
  }

  connect() {
    this.status('connecting…');
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => {
      this.backoff = 250;
      this.send({ a: 'hs', id: this.src, protocol: 1, protocolMinor: 2 });
    };
    ws.onmessage = (e) => {
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return;
      }
      this.handle(msg);
    };
    ws.onclose = () => {
      this.ws = null;
      this.remote.clear();
      this.h.onPresence?.();
      if (this.closed) return;
      this.status('offline, reconnecting…');
      setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 5000);
    };
  }

  close() {
    this.closed = true;
    this.ws?.close();
  }

  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  get connected() {
    return this.ws && this.ws.readyState === WebSocket.OPEN && this.src !== null && this.version !== null;
  }

  handle(msg) {
    if (msg.error && msg.a !== 'op') {
      this.h.onError?.(`${msg.error.code}: ${msg.error.message}`);
    }
    switch (msg.a) {
      case 'hs':
        this.src = msg.id;
        this.send({ a: 's', c: this.c, d: this.d, v: this.version });
        this.send({ a: 'ps', ch: this.ch, seq: 1 });
        return;
      case 's':
        if (msg.d !== this.d || msg.error) return;
        if (msg.data) this.snapshot(msg.data);
        this.status('connected');
        // After a reconnect the op in flight goes again (same src and seq).
        this.resend();
        return;
      case 'f':
        if (msg.d !== this.d || msg.error) return;
        if (msg.data) this.snapshot(msg.data);
        this.flush();
        this.flushPresence();
        return;
      case 'op':
        if (msg.d === this.d) this.onOp(msg);
        return;
      case 'p':
        this.onPresence(msg);
        return;
      case 'pr':
        if (msg.ch === this.ch) {
          this.presenceDirty = true;
          this.flushPresence();
        }
        return;
      default:
    }
  }

  snapshot(s) {
    this.version = s.v;
    this.data = s.type ? opsOf(s.data) : null;
    this.inflight = null;
    this.pending = null;
    this.history = [];
    this.h.onSnapshot?.(this.data ?? []);
  }

  /** Submits a local edit (already shown in the editor). */
  submit(op) {
    if (!op.length || this.data === null) return;
    this.data = compose(this.data, op);
    this.pending = this.pending ? compose(this.pending, op) : op;
    this.flush();
  }

  flush() {
    if (this.inflight || !this.pending || !this.connected) return;
    this.inflight = { op: this.pending, seq: ++this.seq, src: this.src };
    this.pending = null;
    this.sendInflight();
  }

  sendInflight() {
    const f = this.inflight;
    this.send({ a: 'op', c: this.c, d: this.d, v: this.version, src: f.src, seq: f.seq, op: { ops: f.op } });
  }

  resend() {
    if (this.inflight) this.sendInflight();
    else this.flush();
    this.flushPresence();
  }

  refetch() {
    this.send({ a: 'f', c: this.c, d: this.d });
  }

  onOp(msg) {
    if (msg.error) {
      // rich-text cannot invert: start over from the server's copy.
      this.h.onError?.(`${msg.error.code}: ${msg.error.message}`);
      this.refetch();
      return;
    }
    const own = this.inflight && msg.src === this.inflight.src && msg.seq === this.inflight.seq;
    if (own && !('op' in msg) && !msg.create && !msg.del) {
      if (msg.v !== this.version) return this.refetch();
      return this.acked();
    }
    if (msg.v < this.version) return;
    if (msg.v > this.version) return this.send({ a: 'f', c: this.c, d: this.d, v: this.version });
    if (own) return this.acked();
    if (msg.create || msg.del) return this.refetch();
    const op = opsOf(msg.op);
    let remote = op;
    if (this.inflight) {
      const mine = transform(remote, this.inflight.op, true);
      remote = transform(this.inflight.op, remote, false);
      this.inflight.op = mine;
    }
    if (this.pending) {
      const mine = transform(remote, this.pending, true);
      remote = transform(this.pending, remote, false);
      this.pending = mine;
    }
    this.data = compose(this.data, remote);
    this.record(msg.v, op, msg.src);
    this.version++;
    this.h.onRemoteOp?.(remote);
    this.h.onPresence?.();
  }

  acked() {
    this.record(this.version, this.inflight.op, this.inflight.src);
    this.version++;
    this.inflight = null;
    this.flush();
    this.flushPresence();
    this.h.onPresence?.();
  }

  /** Keeps server-side ops (v, op, src) to move remote cursors forward. */
  record(v, op, src) {
    this.history.push({ v, op, src });
    if (this.history.length > HISTORY) this.history.shift();
    for (const [key, r] of this.remote) {
      if (r.v === v && r.p) {
        r.p = moveRange(r.p, op, src === r.src);
        r.v = v + 1;
      }
      this.remote.set(key, r);
    }
  }

  /** Sets this user's selection (in local document coordinates). */
  setPresence(range) {
    this.localPresence = range;
    this.presenceDirty = true;
    this.flushPresence();
  }

  flushPresence() {
    // Like sharedb: only while no op is in flight, so the range is in the
    // coordinates of the server version it is sent with.
    if (!this.presenceDirty || this.inflight || this.pending || !this.connected) return;
    this.presenceDirty = false;
    this.send({
      a: 'p', ch: this.ch, id: this.presenceId, p: this.localPresence, pv: this.pv++,
      c: this.c, d: this.d, v: this.version, t: RICH_TEXT_URI,
    });
  }

  onPresence(msg) {
    if (msg.ch !== this.ch || msg.id === this.presenceId || msg.error) return;
    const prev = this.remote.get(msg.id);
    if (prev && prev.pv > msg.pv) return;
    if (msg.p === null) {
      this.remote.delete(msg.id);
    } else {
      let r = { p: msg.p, v: msg.v, pv: msg.pv, src: msg.src };
      for (const h of this.history) {
        if (h.v === r.v) {
          r = { ...r, p: moveRange(r.p, h.op, h.src === r.src), v: r.v + 1 };
        }
      }
      this.remote.set(msg.id, r);
    }
    this.h.onPresence?.();
  }

  /** Remote ranges in local coordinates: [{id, index, length, name}]. */
  remoteRanges() {
    const out = [];
    for (const [id, r] of this.remote) {
      if (!r.p || r.v !== this.version || typeof r.p.index !== 'number') continue;
      let p = r.p;
      if (this.inflight) p = moveRange(p, this.inflight.op, false);
      if (this.pending) p = moveRange(p, this.pending, false);
      out.push({ id, ...p });
    }
    return out;
  }
}

/** rich-text transformPresence: both ends move like cursors. */
export function moveRange(range, op, own) {
  const start = transformPosition(op, range.index, !own);
  const end = transformPosition(op, range.index + (range.length || 0), !own);
  return { ...range, index: start, length: end - start };
}
