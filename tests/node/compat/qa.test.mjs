// The Q&A board with the real npm `eventsource` client (protocols.md §7,
// scenario 4): login, questions, answer targeting, notifications, pings, and
// reconnects with Last-Event-ID after the server is killed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EventSource } from 'eventsource';
import { authHeaders, startServer } from '../lib/server.mjs';

const WAIT_MS = 5000;

/**
 * An EventSource that records what it receives and the headers of each
 * request it makes. `identity()` may return a user id to present on
 * (re)connects through the `_sse_user_id_` header.
 */
function client(url, { identity = () => null } = {}) {
  const requests = [];
  const events = [];
  const waiters = [];
  let cut = null;
  const es = new EventSource(`${url}/login`, {
    fetch: async (input, init) => {
      const headers = { ...init.headers, ...authHeaders() };
      const id = identity();
      if (id) headers._sse_user_id_ = id;
      requests.push({ at: Date.now(), headers });
      const res = await fetch(input, { ...init, headers });
      // A pass-through body the test can break, as a network failure would.
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
    es,
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

async function action(url, kind, text, user) {
  const res = await fetch(`${url}/${kind}/${encodeURIComponent(text)}`, {
    method: 'POST',
    headers: { ...authHeaders(), ...(user ? { _sse_user_id_: user } : {}) },
  });
  return { status: res.status, body: await res.text() };
}

test('two eventsource clients: login, questions, answers to followers, notifications, ping', async () => {
  const server = await startServer(['--qa-ping-ms', '300']);
  const a = client(server.url);
  const b = client(server.url);
  try {
    const ids = [];
    for (const c of [a, b]) {
      const login = await c.waitFor(isLogin);
      const id = JSON.parse(login.data);
      assert.equal(typeof id, 'string');
      assert.match(id, /^[0-9a-f]{32}$/);
      ids.push(id);
      // The next message after the login is the questions snapshot.
      const first = await c.waitFor((e) => e.type === 'message', login.index);
      assert.deepEqual(JSON.parse(first.data), { type: 'questions', questions: {}, meta: {} });
    }
    const [aId, bId] = ids;
    assert.notEqual(aId, bId);

    assert.equal((await action(server.url, 'askquestion', 'Is SSE fine?', aId)).status, 200);
    for (const c of [a, b]) {
      const q = await c.waitFor(msgOf('questions'), 2);
      const keys = Object.keys(JSON.parse(q.data).questions);
      assert.deepEqual(keys, ['Is SSE fine?']);
      assert.ok(!q.data.includes(aId), 'no secret ids in the questions map');
    }

    // No selection: only A is told.
    const bBefore = b.events.length;
    assert.equal((await action(server.url, 'addanswer', 'early', aId)).status, 409);
    const note = await a.waitFor(msgOf('notification'));
    assert.equal(JSON.parse(note.data).message, 'Please select a question to answer');

    assert.equal((await action(server.url, 'selectquestion', 'Is SSE fine?', aId)).status, 200);
    const selected = await a.waitFor(msgOf('answers'));
    assert.deepEqual(JSON.parse(selected.data).answers, []);
    assert.equal((await action(server.url, 'addanswer', 'Yes, it is.', aId)).status, 200);
    const got = await a.waitFor((e) => msgOf('answers')(e) && JSON.parse(e.data).answers.length === 1);
    assert.deepEqual(JSON.parse(got.data).answers, ['Yes, it is.']);

    // Pings reach both; by then B would have seen any answers or notifications.
    await a.waitFor((e) => e.type === 'ping');
    await b.waitFor((e) => e.type === 'ping', bBefore);
    const bTypes = b.messages(bBefore).map((m) => m.type);
    assert.ok(!bTypes.includes('answers'), `B follows nothing: ${bTypes}`);
    assert.ok(!bTypes.includes('notification'), `B was not told: ${bTypes}`);

    // Ids increase over the whole stream.
    const seq = a.events.map((e) => Number(e.id));
    assert.ok(seq.every((v, i) => i === 0 || v > seq[i - 1]), `ids increase: ${seq}`);
  } finally {
    a.close();
    b.close();
    await server.stop();
  }
});

test('killed server: reconnect within retry, new login, Last-Event-ID sent', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rt-qa-compat-'));
  const data = path.join(dir, 'rt.db');
  const first = await startServer(['--data', data, '--qa-retry-ms', '1000']);
  const c = client(first.url);
  let second;
  try {
    const login = await c.waitFor(isLogin);
    const before = JSON.parse(login.data);
    await c.waitFor((e) => e.type === 'message');
    assert.equal((await action(first.url, 'askquestion', 'survives?', before)).status, 200);
    const asked = await c.waitFor(msgOf('questions'), 2);
    await first.kill('SIGKILL');
    const killedAt = Date.now();
    second = await startServer(['--data', data, '--qa-retry-ms', '1000', '--bind', `127.0.0.1:${first.port}`]);
    const relogin = await c.waitFor(isLogin, asked.index + 1);
    const elapsed = relogin.at - killedAt;
    // retry is 1000 ms; a second attempt is allowed while the new server starts.
    assert.ok(elapsed < 4000, `reconnected after ${elapsed} ms`);
    assert.notEqual(JSON.parse(relogin.data), before, 'no identity presented: a new user');
    const last = c.requests.at(-1);
    assert.equal(last.headers['Last-Event-ID'], asked.id);
    // The board survived the kill; ids keep increasing across the restart.
    const snapshot = await c.waitFor((e) => e.type === 'message', relogin.index);
    assert.deepEqual(Object.keys(JSON.parse(snapshot.data).questions), ['survives?']);
    assert.ok(Number(relogin.id) > Number(asked.id));
  } finally {
    c.close();
    await second?.stop();
    await first.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a client presenting its id resumes: same user, missed events replayed once', async () => {
  const server = await startServer(['--qa-retry-ms', '500']);
  let me = null;
  const c = client(server.url, { identity: () => me });
  const other = client(server.url);
  try {
    me = JSON.parse((await c.waitFor(isLogin)).data);
    const otherId = JSON.parse((await other.waitFor(isLogin)).data);
    await action(server.url, 'askquestion', 'before', otherId);
    const seen = await c.waitFor((e) => msgOf('questions')(e) && 'before' in JSON.parse(e.data).questions);
    c.cut();
    // Asked while C is away.
    for (const q of ['away 1', 'away 2']) {
      assert.equal((await action(server.url, 'askquestion', q, otherId)).status, 200);
    }
    const relogin = await c.waitFor(isLogin, seen.index + 1);
    assert.equal(JSON.parse(relogin.data), me, 'same identity');
    assert.equal(c.requests.at(-1).headers['Last-Event-ID'], seen.id);
    const replayed = c.messages(seen.index + 1);
    assert.deepEqual(
      replayed.map((m) => Object.keys(m.questions).at(-1)),
      ['away 1', 'away 2'],
    );
    const ids = c.events.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, 'no duplicated events');
  } finally {
    c.close();
    other.close();
    await server.stop();
  }
});
