// The real sharedb 7 client (sharedb/lib/client over ws) with the rich-text
// type against rt-server: protocols.md §7 scenarios 5–11, plus durability
// across a SIGKILL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import ShareDB from 'sharedb/lib/client/index.js';
import richText from 'rich-text';
import Delta from 'quill-delta';
import { startServer, withToken } from '../lib/server.mjs';

ShareDB.types.register(richText.type);
ShareDB.logger.setMethods({ info: () => {}, warn: () => {} });

const RICH_TEXT_URI = 'http://sharejs.org/types/rich-text/v1';
const TEST_TIMEOUT = 90_000;

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// The token (RT_TEST_TOKEN) rides in the query, as a browser's WebSocket would send it.
const wsUrl = (url) => withToken(url.replace(/^http/, 'ws') + '/');
let docCounter = 0;
const freshId = (name) => `${name}-${process.pid}-${++docCounter}`;

/** Resolves once `predicate()` holds, polling; fails after `ms`. */
async function until(predicate, what, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/**
 * A ws socket as the sharedb client sees it, optionally delaying every
 * incoming and outgoing message by a random 0..latency ms (order kept), and
 * letting a test drop incoming messages.
 */
function wrapSocket(ws, { latency = 0, dropIncoming = null } = {}) {
  const wrapper = {
    onopen: null,
    onclose: null,
    onmessage: null,
    onerror: null,
    get readyState() {
      return ws.readyState;
    },
    send(data) {
      if (!latency) return ws.send(data);
      outChain = outChain.then(() => sleep(Math.random() * latency)).then(() => {
        if (ws.readyState === WebSocket.OPEN) ws.send(data);
      });
    },
    close(code, reason) {
      ws.close(code, reason);
    },
    received: [],
  };
  let inChain = Promise.resolve();
  let outChain = Promise.resolve();
  const deliver = (fn) => {
    if (!latency) return fn();
    inChain = inChain.then(() => sleep(Math.random() * latency)).then(fn);
  };
  ws.onopen = (e) => deliver(() => wrapper.onopen?.(e));
  ws.onerror = (e) => deliver(() => wrapper.onerror?.(e));
  ws.onclose = (e) => deliver(() => wrapper.onclose?.(e));
  ws.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    if (dropIncoming && dropIncoming(msg, wrapper)) return;
    wrapper.received.push(msg);
    deliver(() => wrapper.onmessage?.({ data: e.data }));
  };
  return wrapper;
}

/** A sharedb Connection to `url` (through a wrapped socket). */
function connect(url, opts = {}) {
  const socket = wrapSocket(new WebSocket(wsUrl(url)), opts);
  const connection = new ShareDB.Connection(socket);
  return { connection, socket };
}

const cb2p = (fn) =>
  new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));
const subscribe = (doc) => cb2p((cb) => doc.subscribe(cb));
const fetchDoc = (doc) => cb2p((cb) => doc.fetch(cb));
const submit = (doc, op) => cb2p((cb) => doc.submitOp(op, cb));
const nothingPending = (doc) => new Promise((r) => doc.whenNothingPending(r));

/** Creates `examples/<id>` holding `text` and closes the creating connection. */
async function createDoc(id, text = '\n') {
  const { connection } = connect(server.url);
  const doc = connection.get('examples', id);
  await cb2p((cb) => doc.create([{ insert: text }], 'rich-text', cb));
  connection.close();
}

/** A raw JSON WebSocket for protocol-level checks. */
async function rawSocket(url) {
  const ws = new WebSocket(wsUrl(url));
  const inbox = [];
  const waiters = [];
  ws.on('message', (data) => {
    inbox.push(JSON.parse(data.toString()));
    waiters.splice(0).forEach((w) => w());
  });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return {
    ws,
    inbox,
    send: (msg) => ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg)),
    /** The next message matching `pred`, consuming it and all before it. */
    async next(pred = () => true, ms = 5000) {
      const all = await this.through(pred, ms);
      return all[all.length - 1];
    },
    /** Every message up to and including the next one matching `pred`. */
    async through(pred, ms = 5000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const i = inbox.findIndex(pred);
        if (i >= 0) return inbox.splice(0, i + 1);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no matching message; inbox: ${JSON.stringify(inbox)}`);
        await new Promise((r) => {
          waiters.push(r);
          setTimeout(r, left);
        });
      }
    },
    close: () => ws.close(),
  };
}

/** The text of a rich-text Delta with embeds as U+FFFC (one unit each). */
function plain(delta) {
  return delta.ops.map((op) => (typeof op.insert === 'string' ? op.insert : '\ufffc')).join('');
}

/** Moves `i` off the middle of a surrogate pair in `text`. */
function boundary(text, i) {
  const c = text.charCodeAt(i);
  return c >= 0xdc00 && c <= 0xdfff ? i - 1 : i;
}

const SNIPPETS = ['a', 'xyz', 'é', '😀', '👍🏽', '漢字', 'かな', '🇫🇷', ' ', 'Z😀Z', '\n'];
const ATTRS = [undefined, { bold: true }, { italic: true }, { color: '#c00' }, { link: 'https://x.invalid/' }];

/** A random valid edit of `data` (a Delta document): insert, delete or format. */
function randomOp(data) {
  const text = plain(data);
  const len = text.length;
  const kind = Math.random();
  const pos = boundary(text, Math.floor(Math.random() * len));
  if (kind < 0.5 || len < 4) {
    const attrs = ATTRS[Math.floor(Math.random() * ATTRS.length)];
    const op = new Delta().retain(pos);
    if (Math.random() < 0.05) return op.insert({ image: 'https://x.invalid/i.png' }, attrs);
    return op.insert(SNIPPETS[Math.floor(Math.random() * SNIPPETS.length)], attrs);
  }
  // Keep the final newline, as Quill does.
  const end = boundary(text, Math.min(len - 1, pos + 1 + Math.floor(Math.random() * 4)));
  if (end <= pos) return new Delta().retain(pos).insert('q');
  if (kind < 0.8) return new Delta().retain(pos).delete(end - pos);
  const attr = Math.random() < 0.3 ? { bold: null } : ATTRS[1 + Math.floor(Math.random() * 4)];
  return new Delta().retain(pos).retain(end - pos, attr);
}

test('handshake, subscribe to the seeded doc, ping', { timeout: TEST_TIMEOUT }, async () => {
  const { connection } = connect(server.url);
  await new Promise((resolve) => connection.once('connected', resolve));
  assert.equal(connection.state, 'connected');
  assert.equal(typeof connection.id, 'string');
  const doc = connection.get('examples', 'richtext');
  await subscribe(doc);
  assert.equal(doc.type.uri, RICH_TEXT_URI);
  assert.ok(doc.version >= 1);
  // Other tests never edit the seeded doc, so it holds the seed text.
  assert.deepEqual(doc.data.ops, [{ insert: 'Hi!\n' }]);
  const pong = new Promise((resolve) => connection.once('pong', resolve));
  connection.ping();
  await pong;
  connection.close();
});

test('three clients making 200 random concurrent edits converge', { timeout: TEST_TIMEOUT }, async () => {
  const id = freshId('converge');
  await createDoc(id, 'Start\n');
  const clients = [connect(server.url), connect(server.url, { latency: 8 }), connect(server.url, { latency: 3 })];
  const docs = clients.map(({ connection }) => connection.get('examples', id));
  await Promise.all(docs.map(subscribe));
  const errors = [];
  await Promise.all(
    docs.map(async (doc) => {
      for (let i = 0; i < 200; i++) {
        doc.submitOp(randomOp(doc.data), (err) => err && errors.push(err));
        if (Math.random() < 0.3) await sleep(Math.random() * 4);
        else await new Promise((r) => setImmediate(r));
      }
    }),
  );
  await Promise.all(docs.map(nothingPending));
  assert.deepEqual(errors, []);
  const { connection: freshConn } = connect(server.url);
  const fresh = freshConn.get('examples', id);
  await fetchDoc(fresh);
  // The client composes ops submitted while one is in flight, so there are
  // fewer versions than edits.
  assert.ok(fresh.version > 10 && fresh.version <= 601, `version ${fresh.version}`);
  await until(() => docs.every((d) => d.version === fresh.version), 'all clients to catch up');
  for (const doc of docs) {
    assert.deepEqual(doc.data.ops, fresh.data.ops);
  }
  assert.ok(fresh.data.ops.every((op) => 'insert' in op), 'the document holds inserts only');
  assert.ok(plain(fresh.data).endsWith('\n'));
  for (const { connection } of [...clients, { connection: freshConn }]) connection.close();
});

test('insert tie-break: the op committed first comes first', { timeout: TEST_TIMEOUT }, async () => {
  const id = freshId('tie');
  await createDoc(id, 'xy\n');
  const a = connect(server.url);
  const b = connect(server.url);
  const docA = a.connection.get('examples', id);
  const docB = b.connection.get('examples', id);
  await Promise.all([subscribe(docA), subscribe(docB)]);
  docA.pause();
  docB.pause();
  docA.submitOp(new Delta().retain(1).insert('A'));
  docB.submitOp(new Delta().retain(1).insert('B'));
  docA.resume();
  await nothingPending(docA);
  docB.resume();
  await nothingPending(docB);
  await until(() => docA.version === docB.version, 'both replicas at the same version');
  assert.deepEqual(docA.data.ops, [{ insert: 'xABy\n' }]);
  assert.deepEqual(docB.data.ops, [{ insert: 'xABy\n' }]);
  a.connection.close();
  b.connection.close();
});

test('an op resent after a reconnect is applied exactly once', { timeout: TEST_TIMEOUT }, async () => {
  const id = freshId('resend');
  await createDoc(id, 'base\n');
  const observer = connect(server.url);
  const seen = observer.connection.get('examples', id);
  await subscribe(seen);
  let opsSeen = 0;
  seen.on('op', () => opsSeen++);

  let dropped = null;
  const dropAck = (msg, socket) => {
    // The ack of our op: drop it and cut the socket before the client sees it.
    if (msg.a === 'op' && msg.d === id && !('op' in msg) && !msg.create && !msg.del && !dropped) {
      dropped = msg;
      socket.close();
      return true;
    }
    return false;
  };
  const { connection } = connect(server.url, { dropIncoming: dropAck });
  const doc = connection.get('examples', id);
  await subscribe(doc);
  const v0 = doc.version;
  const acked = submit(doc, new Delta().insert('once '));
  await until(() => dropped !== null, 'the ack to be dropped');
  await until(() => connection.state !== 'connected', 'the client to notice the closed socket');
  connection.bindToSocket(wrapSocket(new WebSocket(wsUrl(server.url))));
  await acked;
  await nothingPending(doc);
  const { connection: c2 } = connect(server.url);
  const fresh = c2.get('examples', id);
  await fetchDoc(fresh);
  assert.equal(fresh.version, v0 + 1, 'the version went up by exactly one');
  assert.deepEqual(fresh.data.ops, [{ insert: 'once base\n' }]);
  assert.equal(doc.version, v0 + 1);
  assert.deepEqual(doc.data.ops, fresh.data.ops);
  await until(() => seen.version === v0 + 1, 'the observer to see the op');
  await sleep(100);
  assert.equal(opsSeen, 1, 'other clients see the op once');
  assert.deepEqual(seen.data.ops, fresh.data.ops);
  for (const c of [observer.connection, connection, c2]) c.close();
});

test('presence: join, transform, late joiner, leave', { timeout: TEST_TIMEOUT }, async () => {
  const id = freshId('presence');
  await createDoc(id, 'hello world\n');
  const mk = async () => {
    const { connection } = connect(server.url);
    const doc = connection.get('examples', id);
    await subscribe(doc);
    const presence = connection.getDocPresence('examples', id);
    await cb2p((cb) => presence.subscribe(cb));
    return { connection, doc, presence };
  };
  const A = await mk();
  const B = await mk();
  const local = A.presence.create('presence-a');
  const received = (who, pred) =>
    new Promise((resolve) => {
      const on = (pid, value) => {
        if (pid === 'presence-a' && pred(value)) {
          who.presence.off('receive', on);
          resolve(value);
        }
      };
      who.presence.on('receive', on);
    });
  const bGot = received(B, (v) => v && v.index === 2);
  await cb2p((cb) => local.submit({ index: 2, length: 0, name: 'a' }, cb));
  assert.deepEqual(await bGot, { index: 2, length: 0, name: 'a' });

  await submit(B.doc, new Delta().insert('abc'));
  await until(() => B.presence.remotePresences['presence-a']?.index === 5, "B's copy of A's range to move");
  assert.deepEqual(B.presence.remotePresences['presence-a'], { index: 5, length: 0, name: 'a' });
  await until(() => A.doc.version === B.doc.version, 'A to receive the op');

  const C = await mk();
  await until(() => C.presence.remotePresences['presence-a'] != null, 'the late joiner to get A\'s presence');
  assert.deepEqual(C.presence.remotePresences['presence-a'], { index: 5, length: 0, name: 'a' });

  const bGone = received(B, (v) => v === null);
  const cGone = received(C, (v) => v === null);
  A.connection.close();
  await Promise.all([bGone, cGone]);
  assert.equal(B.presence.remotePresences['presence-a'], undefined);
  B.connection.close();
  C.connection.close();
});

test('an op at a version ahead of the server is refused and the client rolls back', { timeout: TEST_TIMEOUT }, async () => {
  const id = freshId('ahead');
  await createDoc(id, 'text\n');
  const { connection } = connect(server.url);
  const doc = connection.get('examples', id);
  await subscribe(doc);
  const v = doc.version;
  doc.version = v + 5;
  const err = await submit(doc, new Delta().insert('nope')).then(
    () => null,
    (e) => e,
  );
  assert.ok(err, 'the submit fails');
  assert.equal(err.code, 'ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT');
  await until(() => doc.version === v && !doc.hasWritePending(), 'the hard rollback to refetch');
  assert.deepEqual(doc.data.ops, [{ insert: 'text\n' }]);

  const raw = await rawSocket(server.url);
  raw.send({ a: 'zz', c: 'examples', d: id });
  const echo = await raw.next((m) => m.a === 'zz');
  assert.equal(echo.error.code, 'ERR_MESSAGE_BADLY_FORMED');
  assert.equal(echo.d, id);
  raw.send({ a: 'pp' });
  assert.deepEqual(await raw.next(), { a: 'pp' });
  raw.close();
  connection.close();
});

test('catch-up on resubscribe: only the missing ops, no refetch', { timeout: TEST_TIMEOUT }, async () => {
  const id = freshId('catchup');
  await createDoc(id, '\n');
  const reader = connect(server.url);
  const doc = reader.connection.get('examples', id);
  await subscribe(doc);
  await cb2p((cb) => doc.unsubscribe(cb));
  const v0 = doc.version;

  const writer = connect(server.url);
  const wdoc = writer.connection.get('examples', id);
  await subscribe(wdoc);
  for (let i = 0; i < 20; i++) await submit(wdoc, new Delta().insert(`${i} `));

  reader.socket.received.length = 0;
  let ops = 0;
  doc.on('op', () => ops++);
  await subscribe(doc);
  assert.equal(doc.version, v0 + 20);
  assert.equal(ops, 20);
  assert.deepEqual(doc.data.ops, wdoc.data.ops);
  const got = reader.socket.received.filter((m) => m.d === id);
  assert.equal(got.filter((m) => m.a === 'op').length, 20);
  const sub = got.find((m) => m.a === 's');
  assert.ok(sub && sub.data === undefined, 'a versioned subscribe, answered without a snapshot');
  assert.ok(!got.some((m) => m.a === 'f'), 'no refetch');
  reader.connection.close();
  writer.connection.close();
});

test('bulk subscribe and fetch from the real client', { timeout: TEST_TIMEOUT }, async () => {
  const ids = [freshId('bulk'), freshId('bulk'), freshId('bulk')];
  for (const id of ids) await createDoc(id, `${id}\n`);
  const { connection, socket } = connect(server.url);
  const docs = ids.map((id) => connection.get('examples', id));
  connection.startBulk();
  const subscribed = Promise.all(docs.map(subscribe));
  connection.endBulk();
  await subscribed;
  assert.ok(socket.received.some((m) => m.a === 'bs' && m.data), 'a bulk subscribe was answered');
  docs.forEach((doc, i) => assert.deepEqual(doc.data.ops, [{ insert: `${ids[i]}\n` }]));
  // Ops reach every doc of the bulk subscription.
  const { connection: other } = connect(server.url);
  const odoc = other.get('examples', ids[1]);
  await subscribe(odoc);
  await submit(odoc, new Delta().insert('x'));
  await until(() => docs[1].data.ops[0].insert.startsWith('x'), 'the op on a bulk-subscribed doc');
  // A bulk fetch of docs with versions (ops since) after going offline.
  const fresh = connect(server.url);
  const fdocs = ids.map((id) => fresh.connection.get('examples', id));
  fresh.connection.startBulk();
  const fetched = Promise.all(fdocs.map(fetchDoc));
  fresh.connection.endBulk();
  await fetched;
  assert.ok(fresh.socket.received.some((m) => m.a === 'bf'), 'a bulk fetch was answered');
  assert.deepEqual(fdocs[1].data.ops, docs[1].data.ops);
  for (const c of [connection, other, fresh.connection]) c.close();
});

test('SIGKILL during concurrent editing loses no acknowledged op', { timeout: TEST_TIMEOUT }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rt-sharedb-'));
  const data = path.join(dir, 'rt.db');
  let srv = await startServer(['--data', data]);
  const id = freshId('durable');
  const { connection: creator } = connect(srv.url);
  const cdoc = creator.get('examples', id);
  await cb2p((cb) => cdoc.create([{ insert: '\n' }], 'rich-text', cb));
  creator.close();

  const clients = [0, 1, 2].map((n) => {
    const { connection, socket } = connect(srv.url, { latency: n });
    const doc = connection.get('examples', id);
    return { n, connection, socket, doc, acked: [], sent: [] };
  });
  await Promise.all(clients.map((c) => subscribe(c.doc)));
  let stop = false;
  const writers = clients.map(async (c) => {
    for (let i = 0; !stop && i < 2000; i++) {
      const marker = `[${c.n}:${i}]`;
      c.sent.push(marker);
      c.doc.submitOp(new Delta().insert(marker), (err) => {
        if (!err) c.acked.push(marker);
      });
      await sleep(Math.random() * 3);
    }
  });
  await until(() => clients.every((c) => c.acked.length >= 30), 'some acknowledged ops');
  await srv.kill('SIGKILL');
  stop = true;
  await Promise.all(writers);
  const ackedAtKill = clients.flatMap((c) => [...c.acked]);

  srv = await startServer(['--data', data]);
  try {
    // Every op acknowledged before the kill is there, exactly once.
    const { connection: check } = connect(srv.url);
    const fresh = check.get('examples', id);
    await fetchDoc(fresh);
    const text = plain(fresh.data);
    for (const marker of ackedAtKill) {
      assert.equal(text.split(marker).length - 1, 1, `${marker} committed once`);
    }
    check.close();

    // The clients reconnect and resend what was in flight; they converge and
    // every (src, seq) is in the log once.
    for (const c of clients) {
      await until(() => c.connection.state !== 'connected', 'the client to notice the kill');
      c.connection.bindToSocket(wrapSocket(new WebSocket(wsUrl(srv.url))));
    }
    await Promise.all(clients.map((c) => nothingPending(c.doc)));
    const { connection: check2 } = connect(srv.url);
    const final = check2.get('examples', id);
    await fetchDoc(final);
    await until(() => clients.every((c) => c.doc.version === final.version), 'the clients to converge');
    for (const c of clients) assert.deepEqual(c.doc.data.ops, final.data.ops);
    const finalText = plain(final.data);
    for (const marker of clients.flatMap((c) => c.sent)) {
      assert.equal(finalText.split(marker).length - 1, 1, `${marker} applied once`);
    }
    const raw = await rawSocket(srv.url);
    raw.send({ a: 'f', c: 'examples', d: id, v: 0 });
    const log = (await raw.through((m) => m.a === 'f' && m.d === id)).filter((m) => m.a === 'op');
    assert.equal(log.length, final.version);
    log.forEach((m, i) => assert.equal(m.v, i));
    const ids = log.map((m) => `${m.src}/${m.seq}`);
    assert.equal(new Set(ids).size, ids.length, 'every (src, seq) committed once');
    raw.close();
    check2.close();
  } finally {
    for (const c of clients) c.connection.close();
    await srv.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
