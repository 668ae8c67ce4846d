// The editor page (static/editor/) in headless Chromium, next to the real
// sharedb client; and its Delta functions against quill-delta 4.2.2.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import ShareDB from 'sharedb/lib/client/index.js';
import richText from 'rich-text';
import Delta from 'quill-delta';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, withToken } from '../lib/server.mjs';
import { launchBrowser } from '../lib/browser.mjs';
import * as mine from '../../../static/editor/delta.js';

ShareDB.types.register(richText.type);
ShareDB.logger.setMethods({ info: () => {}, warn: () => {} });

let server;
let browser;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const cb2p = (fn) => new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));
let counter = 0;
const freshId = (name) => `${name}-${process.pid}-${++counter}`;

async function until(predicate, what, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function nodeClient() {
  const connection = new ShareDB.Connection(new WebSocket(withToken(server.url.replace(/^http/, 'ws') + '/')));
  return connection;
}

async function openEditor(id, name) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  await page.goto(`${server.url}/editor/?doc=examples/${id}&name=${name}`);
  await page.waitForSelector('#text:not([disabled])');
  return { page, errors, value: () => page.$eval('#text', (t) => t.value) };
}

// ---- the page's Delta functions agree with quill-delta ---------------------

const PIECES = ['a', 'bc', '😀', '漢', 'é', '\n', 'xyz'];
const ATTRS = [undefined, { bold: true }, { bold: null }, { color: 'red' }, { italic: true, bold: true }];
const pick = (xs) => xs[Math.floor(Math.random() * xs.length)];

function randomDoc() {
  const d = new Delta();
  const n = 1 + Math.floor(Math.random() * 5);
  for (let i = 0; i < n; i++) {
    if (Math.random() < 0.1) d.insert({ image: 'x' }, pick(ATTRS.filter((a) => !a || a.bold !== null)));
    else d.insert(pick(PIECES), pick(ATTRS.filter((a) => !a || a.bold !== null)));
  }
  return d;
}

function randomChange(len) {
  const d = new Delta();
  let left = len;
  while (Math.random() < 0.8) {
    const r = Math.random();
    if (r < 0.35) d.insert(pick(PIECES), pick(ATTRS));
    else if (left > 0 && r < 0.7) {
      const n = 1 + Math.floor(Math.random() * left);
      d.retain(n, pick(ATTRS));
      left -= n;
    } else if (left > 0) {
      const n = 1 + Math.floor(Math.random() * left);
      d.delete(n);
      left -= n;
    }
  }
  return d;
}

test('the page computes compose, transform and transformPosition like quill-delta', () => {
  for (let i = 0; i < 3000; i++) {
    const doc = randomDoc();
    const a = randomChange(doc.length());
    const b = randomChange(doc.length());
    assert.deepEqual(mine.compose(doc.ops, a.ops), doc.compose(a).ops);
    assert.deepEqual(mine.compose(a.ops, b.ops), a.compose(b).ops);
    for (const priority of [true, false]) {
      assert.deepEqual(mine.transform(a.ops, b.ops, priority), a.transform(b, priority).ops);
      const pos = Math.floor(Math.random() * (doc.length() + 1));
      assert.equal(mine.transformPosition(a.ops, pos, priority), a.transformPosition(pos, priority));
    }
  }
});

test('diffText makes the edit without cutting surrogate pairs', () => {
  const cases = [
    ['abc', 'abXc'],
    ['a😀b', 'a😃b'],
    ['😀😀', '😀'],
    ['x', ''],
    ['', 'new'],
    ['same', 'same'],
    ['ab🇫🇷cd', 'ab🇫🇷🇫🇷cd'],
  ];
  for (const [before, afterText] of cases) {
    const op = mine.diffText(before, afterText);
    const doc = new Delta().insert(before + '\n');
    const result = doc.compose(new Delta(op));
    assert.equal(result.ops.map((o) => o.insert).join(''), afterText + '\n', `${before} → ${afterText}`);
    let at = 0;
    for (const o of op) {
      if (typeof o.retain === 'number' || typeof o.delete === 'number') {
        const c = before.charCodeAt(at);
        assert.ok(!(c >= 0xdc00 && c <= 0xdfff), `op starts inside a pair: ${JSON.stringify(op)}`);
        at += o.retain ?? o.delete;
        const e = before.charCodeAt(at);
        assert.ok(!(e >= 0xdc00 && e <= 0xdfff), `op ends inside a pair: ${JSON.stringify(op)}`);
      }
    }
  }
});

// ---- the page in Chromium --------------------------------------------------

test('two editor pages and a sharedb client edit one document', { timeout: 90_000 }, async () => {
  const id = freshId('page');
  const connection = nodeClient();
  const ndoc = connection.get('examples', id);
  await cb2p((cb) => ndoc.create([{ insert: 'Hello', attributes: { bold: true } }, { insert: '\n' }], 'rich-text', cb));
  await cb2p((cb) => ndoc.subscribe(cb));

  const alice = await openEditor(id, 'alice');
  const bob = await openEditor(id, 'bob');
  assert.equal(await alice.value(), 'Hello');
  assert.equal(await bob.value(), 'Hello');

  // Typing in one page shows up in the other and in the sharedb client, and
  // the bold text stays bold.
  await alice.page.focus('#text');
  await alice.page.$eval('#text', (t) => t.setSelectionRange(5, 5));
  await alice.page.keyboard.type(' world');
  await until(async () => (await bob.value()) === 'Hello world', "bob to see alice's typing");
  await until(() => ndoc.data.ops.map((o) => o.insert).join('') === 'Hello world\n', 'the sharedb client');
  assert.deepEqual(ndoc.data.ops, [{ insert: 'Hello', attributes: { bold: true } }, { insert: ' world\n' }]);

  // Formatting set elsewhere is kept when the pages edit around it.
  await cb2p((cb) => ndoc.submitOp(new Delta().retain(6).retain(5, { italic: true }), cb));
  await bob.page.focus('#text');
  await bob.page.$eval('#text', (t) => t.setSelectionRange(11, 11));
  await bob.page.keyboard.type('! 😀');
  await until(async () => (await alice.value()) === 'Hello world! 😀', "alice to see bob's typing");
  await until(() => ndoc.data.ops.map((o) => o.insert).join('') === 'Hello world! 😀\n', 'the emoji');
  assert.deepEqual(ndoc.data.ops, [
    { insert: 'Hello', attributes: { bold: true } },
    { insert: ' ' },
    { insert: 'world', attributes: { italic: true } },
    { insert: '! 😀\n' },
  ]);

  // Each page shows the other's caret.
  await alice.page.$eval('#text', (t) => {
    t.focus();
    t.setSelectionRange(2, 4);
    t.dispatchEvent(new Event('select'));
  });
  await bob.page.waitForSelector('#cursors .caret[data-name="alice"]');
  await until(
    async () => (await bob.page.$eval('#cursors mark', (m) => m.textContent).catch(() => null)) === 'll',
    "alice's selection drawn in bob's page",
  );
  await alice.page.waitForSelector('#cursors .caret[data-name="bob"]');

  // Both type at once: everyone converges.
  await Promise.all([
    alice.page.keyboard.type('AAAA', { delay: 5 }),
    (async () => {
      await bob.page.focus('#text');
      await bob.page.$eval('#text', (t) => t.setSelectionRange(0, 0));
      await bob.page.keyboard.type('BBBB', { delay: 5 });
    })(),
  ]);
  await until(async () => {
    const [a, b] = [await alice.value(), await bob.value()];
    return a === b && ndoc.data.ops.map((o) => o.insert).join('') === a + '\n';
  }, 'convergence');
  const final = await alice.value();
  assert.equal(final.split('A').length - 1, 4);
  assert.equal(final.split('B').length - 1, 4);

  // A page that leaves disappears from the other's view.
  await alice.page.close();
  await until(async () => (await bob.page.$$('#cursors .caret[data-name="alice"]')).length === 0, 'alice to go');
  assert.deepEqual(alice.errors, []);
  assert.deepEqual(bob.errors, []);
  await bob.page.close();
  connection.close();
});

test('the page reconnects and resends without losing or doubling an edit', { timeout: 90_000 }, async () => {
  const id = freshId('reconnect');
  const connection = nodeClient();
  const ndoc = connection.get('examples', id);
  await cb2p((cb) => ndoc.create([{ insert: '\n' }], 'rich-text', cb));
  await cb2p((cb) => ndoc.subscribe(cb));
  const carol = await openEditor(id, 'carol');
  await carol.page.focus('#text');
  await carol.page.keyboard.type('one ');
  await until(() => ndoc.data.ops[0]?.insert === 'one \n', 'the first edit');
  // Cut the socket from the page side, type while offline, and come back.
  await carol.page.evaluate(() => window.rtEditor.doc.ws.close());
  await carol.page.keyboard.type('two');
  await until(() => ndoc.data.ops[0]?.insert === 'one two\n', 'the offline edit after the reconnect');
  await sleep(200);
  assert.equal(ndoc.data.ops[0].insert, 'one two\n');
  assert.equal(await carol.value(), 'one two');
  assert.deepEqual(carol.errors, []);
  await carol.page.close();
  connection.close();
});
