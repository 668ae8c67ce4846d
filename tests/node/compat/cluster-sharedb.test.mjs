// The real sharedb 7 client with the rich-text type on two rt-server nodes
// sharing PostgreSQL and Redis: editors on node A and on node B converge.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import ShareDB from 'sharedb/lib/client/index.js';
import richText from 'rich-text';
import { startCluster, withToken } from '../lib/server.mjs';

ShareDB.types.register(richText.type);
ShareDB.logger.setMethods({ info: () => {}, warn: () => {} });

const TEST_TIMEOUT = 120_000;
const EDITORS_PER_NODE = 3;
const OPS_PER_EDITOR = 60;

let cluster;
before(async () => {
  cluster = await startCluster(2);
});
after(async () => {
  await cluster?.stop();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const wsUrl = (url) => withToken(url.replace(/^http/, 'ws') + '/');
const cb2p = (fn) =>
  new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));

function connect(url) {
  return new ShareDB.Connection(new WebSocket(wsUrl(url)));
}

async function until(predicate, what, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const text = (doc) => doc.data.ops.map((op) => op.insert).join('');

test('sharedb editors on two nodes converge', { timeout: TEST_TIMEOUT }, async () => {
  const [a, b] = cluster.nodes;
  const id = `cluster-${process.pid}`;
  const creator = connect(a.url);
  const created = creator.get('examples', id);
  await cb2p((cb) => created.create([{ insert: '\n' }], 'rich-text', cb));
  creator.close();

  const editors = [];
  for (let i = 0; i < 2 * EDITORS_PER_NODE; i++) {
    const connection = connect(i % 2 ? b.url : a.url);
    const doc = connection.get('examples', id);
    await cb2p((cb) => doc.subscribe(cb));
    editors.push({ connection, doc, letter: String.fromCharCode(97 + i) });
  }
  // Every editor types concurrently at a random place, without waiting for
  // acks (sharedb keeps one op in flight and composes the rest).
  await Promise.all(
    editors.map(async ({ doc, letter }) => {
      for (let n = 0; n < OPS_PER_EDITOR; n++) {
        const len = text(doc).length;
        const at = Math.floor(Math.random() * len);
        doc.submitOp(at ? [{ retain: at }, { insert: letter }] : [{ insert: letter }]);
        if (n % 5 === 0) await sleep(Math.random() * 20);
      }
      await new Promise((r) => doc.whenNothingPending(r));
    }),
  );
  const total = 2 * EDITORS_PER_NODE * OPS_PER_EDITOR;
  await until(
    () => editors.every(({ doc }) => text(doc).length === total + 1),
    'every editor to see every op',
  );
  const first = text(editors[0].doc);
  for (const { doc } of editors) assert.equal(text(doc), first);
  for (const { letter } of editors) {
    assert.equal(first.split(letter).length - 1, OPS_PER_EDITOR, `${letter} typed ${OPS_PER_EDITOR}`);
  }
  // A fresh fetch on each node is the same document.
  for (const node of [a, b]) {
    const connection = connect(node.url);
    const doc = connection.get('examples', id);
    await cb2p((cb) => doc.fetch(cb));
    assert.equal(text(doc), first);
    connection.close();
  }
  for (const { connection } of editors) connection.close();
});
