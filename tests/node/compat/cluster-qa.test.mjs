// The Q&A board across two nodes (one PostgreSQL database, one Redis) with
// the real npm `eventsource` client: actions on node A reach the right
// streams on node B, and a client that reconnects to the other node with
// Last-Event-ID misses and duplicates nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { EventSource } from 'eventsource';
import { authHeaders, createDatabase, redisUrl, startCluster, startServer, withToken } from '../lib/server.mjs';

const WAIT_MS = 5000;

/**
 * An EventSource on `urls[0]` that records what it receives. `route()`
 * picks the node of each (re)connect (an index into `urls`), `identity()`
 * the user id presented in `_sse_user_id_`, and `gate()` may return a
 * promise a reconnect waits for (so a test can act while it is away).
 */
function client(urls, { identity = () => null, route = () => 0, gate = () => null } = {}) {
  const requests = [];
  const events = [];
  const waiters = [];
  let cut = null;
  const es = new EventSource(`${urls[0]}/login`, {
    fetch: async (_input, init) => {
      await gate();
      const headers = { ...init.headers, ...authHeaders() };
      const id = identity();
      if (id) headers._sse_user_id_ = id;
      const node = route();
      requests.push({ at: Date.now(), headers, node });
      const res = await fetch(`${urls[node]}/login`, { ...init, headers });
      const ac = new AbortController();
      const { readable, writable } = new TransformStream();
      res.body.pipeTo(writable, { signal: ac.signal }).catch(() => {});
      cut = () => ac.abort(new TypeError('network connection lost'));
      return new Response(readable, { status: res.status, headers: res.headers });
    },
  });
  const record = (type) => (e) => {
    events.push({ type, data: e.data, id: e.lastEventId, at: Date.now() });
    for (const w of [...waiters]) w();
  };
  for (const type of ['login', 'ping', 'reset', 'meta']) es.addEventListener(type, record(type));
  es.addEventListener('message', record('message'));
  return {
    events,
    requests,
    cut: () => cut?.(),
    /** Resolves with the first event after index `from` matching `pred`. */
    waitFor(pred, from = 0, ms = WAIT_MS) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const i = events.findIndex((e, k) => k >= from && pred(e));
          if (i >= 0) {
            waiters.splice(waiters.indexOf(check), 1);
            clearTimeout(timer);
            resolve({ ...events[i], index: i });
          }
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(check), 1);
          reject(new Error(`no matching event in ${ms} ms; got ${JSON.stringify(events.slice(from))}`));
        }, ms);
        waiters.push(check);
        check();
      });
    },
    messages(from = 0) {
      return events.slice(from).filter((e) => e.type === 'message').map((e) => JSON.parse(e.data));
    },
    close: () => es.close(),
  };
}

const isLogin = (e) => e.type === 'login';
const msgOf = (type) => (e) => e.type === 'message' && JSON.parse(e.data).type === type;
const hasQuestion = (q) => (e) => msgOf('questions')(e) && q in JSON.parse(e.data).questions;

async function action(url, kind, text, user) {
  const res = await fetch(`${url}/${kind}/${encodeURIComponent(text)}`, {
    method: 'POST',
    headers: { ...authHeaders(), ...(user ? { _sse_user_id_: user } : {}) },
  });
  return { status: res.status, body: await res.text() };
}

test('two nodes: questions, answers to followers, votes and notifications cross nodes', async () => {
  const cluster = await startCluster(2, ['--qa-ping-ms', '60000']);
  const [A, B] = cluster.nodes.map((n) => n.url);
  const a = client([A]);
  const b = client([B]);
  const c = client([B]);
  try {
    const ids = [];
    for (const x of [a, b, c]) {
      const login = await x.waitFor(isLogin);
      ids.push(JSON.parse(login.data));
      await x.waitFor(msgOf('questions'), login.index);
    }
    const [ua, ub, uc] = ids;

    assert.equal((await action(A, 'askquestion', 'Across nodes?', ua)).status, 200);
    for (const x of [a, b, c]) await x.waitFor(hasQuestion('Across nodes?'));
    assert.equal((await action(B, 'askquestion', 'Across nodes?', ub)).body, 'already asked');

    // B's user follows through B; A's user answers through A.
    assert.equal((await action(B, 'selectquestion', 'Across nodes?', ub)).status, 200);
    await b.waitFor(msgOf('answers'));
    assert.equal((await action(A, 'selectquestion', 'Across nodes?', ua)).status, 200);
    assert.equal((await action(A, 'addanswer', 'Yes.', ua)).status, 200);
    for (const x of [a, b]) {
      const got = await x.waitFor((e) => msgOf('answers')(e) && JSON.parse(e.data).answers.length === 1);
      assert.deepEqual(JSON.parse(got.data).answers, ['Yes.']);
    }
    // A vote on B reaches A.
    const v = await action(B, 'vote', 'Across nodes?', uc);
    assert.equal(v.status, 200);
    for (const x of [a, b, c]) {
      await x.waitFor((e) => e.type === 'meta' && JSON.parse(e.data).meta.votes === 1);
    }
    // C follows nothing; a refusal on B is told to C only.
    assert.equal((await action(B, 'addanswer', 'early', uc)).status, 409);
    const note = await c.waitFor(msgOf('notification'));
    assert.equal(JSON.parse(note.data).message, 'Please select a question to answer');
    const cTypes = c.messages().map((m) => m.type);
    assert.ok(!cTypes.includes('answers'), `C follows nothing: ${cTypes}`);
    assert.ok(!b.messages().some((m) => m.type === 'notification'), 'B was not told');
  } finally {
    for (const x of [a, b, c]) x.close();
    await cluster.stop();
  }
});

test('a client reconnecting to the other node resumes: same user, nothing missed or repeated', async () => {
  const cluster = await startCluster(2, ['--qa-retry-ms', '300', '--qa-ping-ms', '60000']);
  const urls = cluster.nodes.map((n) => n.url);
  const [A, B] = urls;
  let me = null;
  let node = 0;
  let hold = null;
  const c = client(urls, { identity: () => me, route: () => node, gate: () => hold });
  const other = client([B]);
  try {
    me = JSON.parse((await c.waitFor(isLogin)).data);
    const asker = JSON.parse((await other.waitFor(isLogin)).data);
    const expected = [];
    let from = 0;
    for (let round = 0; round < 4; round++) {
      const q = `live ${round}`;
      assert.equal((await action(urls[round % 2], 'askquestion', q, asker)).status, 200);
      expected.push(q);
      const seen = await c.waitFor(hasQuestion(q), from);
      // Cut, and keep the reconnect waiting while both nodes change the board.
      let release;
      hold = new Promise((r) => (release = r));
      c.cut();
      for (const [i, url] of [A, B].entries()) {
        const missed = `missed ${round}.${i}`;
        assert.equal((await action(url, 'askquestion', missed, asker)).status, 200);
        expected.push(missed);
      }
      node = 1 - node;
      hold = null;
      release();
      const relogin = await c.waitFor(isLogin, seen.index + 1);
      assert.equal(JSON.parse(relogin.data), me, 'same identity on the other node');
      const req = c.requests.at(-1);
      assert.equal(req.node, node);
      assert.equal(req.headers['Last-Event-ID'], seen.id);
      const last = await c.waitFor(hasQuestion(expected.at(-1)), seen.index + 1);
      from = last.index + 1;
    }
    // Every questions message after the first snapshot adds exactly the
    // next question: nothing missed, nothing twice.
    const lists = c.messages().filter((m) => m.type === 'questions').map((m) => Object.keys(m.questions));
    const added = lists.slice(1).map((l) => l.at(-1));
    assert.deepEqual(added, expected);
    lists.slice(1).forEach((l, i) => assert.equal(l.length, i + 1));
    assert.ok(!c.events.some((e) => e.type === 'reset'), 'replayed, not reset');
    // The ids of the logged events only grow.
    const ids = c.events.filter((e) => e.type === 'message').map((e) => Number(e.id));
    assert.ok(ids.every((v, i) => i === 0 || v > ids[i - 1]), `ids increase: ${ids}`);
    // The identity created on A acts on B.
    assert.equal((await action(B, 'askquestion', 'mine', me)).status, 200);
  } finally {
    c.close();
    other.close();
    await cluster.stop();
  }
});

/**
 * A TCP relay to `target` ("host:port") that can be cut (every connection
 * dropped, new ones refused) and restored on the same port.
 */
async function relay(target) {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const sockets = new Set();
  const make = () =>
    net.createServer((c) => {
      const up = net.connect(port, host);
      for (const s of [c, up]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => {});
      }
      c.pipe(up).pipe(c);
    });
  let server = make();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const at = server.address().port;
  return {
    port: at,
    cut: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
    restore: async () => {
      server = make();
      await new Promise((r) => server.listen(at, '127.0.0.1', r));
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(() => r()));
    },
  };
}

test('while PostgreSQL is unreachable the npm EventSource keeps retrying /login, and logs in once it is back', async () => {
  const db = createDatabase();
  const pg = new URL(db.url);
  const cut = await relay(`${pg.hostname}:${pg.port || 5432}`);
  pg.host = `127.0.0.1:${cut.port}`;
  const node = await startServer(['--database', pg.toString(), '--redis', redisUrl, '--qa-retry-ms', '200']);
  let es;
  try {
    await cut.cut();
    // The plain client, as a browser page uses it: no custom fetch.
    es = new EventSource(withToken(`${node.url}/login`));
    const unavailable = [];
    let loggedIn;
    const login = new Promise((r) => (loggedIn = r));
    es.addEventListener('unavailable', (e) => unavailable.push(JSON.parse(e.data)));
    es.addEventListener('login', (e) => loggedIn(JSON.parse(e.data)));
    const deadline = Date.now() + 10_000;
    while (unavailable.length < 3) {
      assert.ok(Date.now() < deadline, `retried ${unavailable.length} times`);
      assert.notEqual(es.readyState, EventSource.CLOSED, 'the client gave up');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(unavailable[0].error, /database/);
    await cut.restore();
    const user = await Promise.race([
      login,
      new Promise((_, reject) => setTimeout(() => reject(new Error('no login after PostgreSQL returned')), 15_000)),
    ]);
    assert.match(user, /\S/);
  } finally {
    es?.close();
    await node.stop();
    await cut.close();
    db.drop();
  }
});
