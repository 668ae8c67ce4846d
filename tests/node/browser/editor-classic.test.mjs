// The classic collaborative editor (Quill + the npm sharedb client with the
// rich-text type, tests/node/classic/editor/) in headless Chromium against
// rt, next to our own editor page and `rt-tui doc`. The classic page is
// bundled here with esbuild and served on rt's origin by request
// interception, so its WebSocket goes to rt exactly as in the original app.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import os from 'node:os';
import path from 'node:path';
import * as esbuild from 'esbuild';
import WebSocket from 'ws';
import ShareDB from 'sharedb/lib/client/index.js';
import richText from 'rich-text';
import { startServer, tuiBin, withToken } from '../lib/server.mjs';
import { launchBrowser } from '../lib/browser.mjs';

ShareDB.types.register(richText.type);
ShareDB.logger.setMethods({ info: () => {}, warn: () => {} });

const here = path.dirname(fileURLToPath(import.meta.url));
const classicDir = path.resolve(here, '../classic/editor');
const nodeModules = path.resolve(here, '../node_modules');
const WAIT_MS = 15_000;

let browser;
let buildDir;
/** The classic page's files, by name, served from memory. */
const files = {};

before(async () => {
  buildDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rt-classic-editor-'));
  await esbuild.build({
    entryPoints: [path.join(classicDir, 'entry.js')],
    bundle: true,
    format: 'iife',
    platform: 'browser',
    // sharedb's client requires Node's `events` and `util`; the npm packages
    // of the same names (in package.json) supply them to the browser bundle.
    define: { 'process.env.NODE_DEBUG': 'false', global: 'globalThis' },
    outfile: path.join(buildDir, 'bundle.js'),
    logLevel: 'warning',
  });
  files['index.html'] = { body: fs.readFileSync(path.join(classicDir, 'index.html')), type: 'text/html' };
  files['bundle.js'] = { body: fs.readFileSync(path.join(buildDir, 'bundle.js')), type: 'text/javascript' };
  files['quill.snow.css'] = {
    body: fs.readFileSync(path.join(nodeModules, 'quill/dist/quill.snow.css')),
    type: 'text/css',
  };
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  if (buildDir) fs.rmSync(buildDir, { recursive: true, force: true });
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const cb2p = (fn) => new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));

async function until(predicate, what, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await predicate();
    if (last === true) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ''}`);
    await sleep(25);
  }
}

/** Runs `rt-tui doc ARGS --url URL` and parses its JSON output. */
function tui(server, ...args) {
  return new Promise((resolve, reject) => {
    execFile(tuiBin(), ['doc', ...args, '--url', server.url], { timeout: WAIT_MS }, (err, stdout, stderr) => {
      if (err) reject(new Error(`rt-tui doc ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout));
    });
  });
}

/** The seeded document as a fresh `rt-tui doc get` sees it: {v, text, ops}. */
const serverDoc = (server) => tui(server, 'get', 'examples/richtext');

/** A fresh fetch with the real sharedb client over a new connection. */
async function sharedbFetch(server, version) {
  const connection = new ShareDB.Connection(new WebSocket(withToken(server.url.replace(/^http/, 'ws') + '/')));
  try {
    if (version === undefined) {
      const doc = connection.get('examples', 'richtext');
      await cb2p((cb) => doc.fetch(cb));
      return { v: doc.version, ops: doc.data.ops };
    }
    const snapshot = await cb2p((cb) => connection.fetchSnapshot('examples', 'richtext', version, cb));
    return { v: snapshot.v, ops: snapshot.data.ops };
  } finally {
    connection.close();
  }
}

function track(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  return errors;
}

/** The classic Quill page, on the rt server's origin. */
async function openClassic(server) {
  // Chromium treats an intercepted response as coming from a public address,
  // and its Local Network Access checks then block the page's WebSocket to
  // loopback; a page rt served itself needs no such grant.
  await browser.context.grantPermissions(['local-network-access'], { origin: server.url });
  const page = await browser.newPage();
  const errors = track(page);
  await page.route('**/classic-editor/**', (route) => {
    const name = new URL(route.request().url()).pathname.split('/').pop() || 'index.html';
    const file = files[name];
    if (file) route.fulfill({ status: 200, contentType: file.type, body: file.body });
    else route.fulfill({ status: 404, body: 'not found' });
  });
  await page.goto(`${server.url}/classic-editor/`);
  await page.waitForSelector('body[data-ready] .ql-editor', { timeout: WAIT_MS });
  return {
    page,
    errors,
    text: () => page.evaluate(() => window.classic.quill.getText()),
    contents: () => page.evaluate(() => window.classic.quill.getContents().ops),
  };
}

/** Our plain editor page (static/editor/), on its default document examples/richtext. */
async function openPlain(server, name) {
  const page = await browser.newPage();
  const errors = track(page);
  await page.goto(`${server.url}/editor/?name=${name}`);
  await page.waitForSelector('#text:not([disabled])', { timeout: WAIT_MS });
  return {
    page,
    errors,
    // The textarea leaves out the document's final newline.
    text: async () => (await page.$eval('#text', (t) => t.value)) + '\n',
  };
}

const count = (s, piece) => s.split(piece).length - 1;

test('the classic Quill page shows the seeded document and typing reaches another page and the server', {
  timeout: 90_000,
}, async () => {
  const server = await startServer();
  const pages = [];
  try {
    const seed = await serverDoc(server);
    assert.equal(seed.text, 'Hi!\n');

    const alice = await openClassic(server);
    pages.push(alice);
    assert.equal(new URL(alice.page.url()).host, new URL(server.url).host);
    assert.equal(await alice.text(), seed.text);
    assert.deepEqual(await alice.contents(), seed.ops);
    assert.equal(await alice.page.locator('.ql-editor').innerText(), seed.text.trimEnd());

    const bob = await openClassic(server);
    pages.push(bob);
    assert.equal(await bob.text(), seed.text);

    await alice.page.click('.ql-editor');
    await alice.page.keyboard.press('Control+End');
    const typed = ' héllo 😀 漢字 👍🏽';
    await alice.page.keyboard.type(typed);
    const expected = seed.text.slice(0, -1) + typed + '\n';
    const shows = (page) => async () => {
      const got = await page.text();
      return got === expected || `has ${JSON.stringify(got)}`;
    };
    await until(shows(alice), "alice's own text");
    await until(shows(bob), "bob to see alice's typing");
    await until(async () => {
      const got = await serverDoc(server);
      return got.text === expected || `server has ${JSON.stringify(got.text)}`;
    }, 'rt-tui doc get to see the typing');
    const fetched = await sharedbFetch(server);
    assert.deepEqual(fetched.ops, [{ insert: expected }]);
    assert.ok(fetched.v > seed.v, `version moved from ${seed.v} to ${fetched.v}`);
    assert.equal(await bob.page.locator('.ql-editor').innerText(), expected.trimEnd());

    // Bob answers; alice sees it.
    await bob.page.click('.ql-editor');
    await bob.page.keyboard.press('Control+Home');
    await bob.page.keyboard.type('¡');
    await until(async () => (await alice.text()) === '¡' + expected || 'not yet', "alice to see bob's typing");
    assert.equal((await serverDoc(server)).text, '¡' + expected);

    assert.deepEqual(alice.errors, []);
    assert.deepEqual(bob.errors, []);
  } finally {
    for (const p of pages) await p.page.close();
    await server.stop();
  }
});

test('a classic Quill page, our editor page and rt-tui converge on one document', { timeout: 120_000 }, async () => {
  const server = await startServer();
  const pages = [];
  const watcher = spawn(tuiBin(), ['doc', 'watch', 'examples/richtext', '--url', server.url], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const watched = [];
  let watcherErr = '';
  createInterface({ input: watcher.stdout }).on('line', (line) => watched.push(JSON.parse(line)));
  watcher.stderr.on('data', (d) => (watcherErr += d));
  const watcherExit = new Promise((resolve) => watcher.once('exit', resolve));
  try {
    // `doc watch` says nothing until a change arrives: make harmless changes
    // (clearing a format nobody set) until it reports one, so it is surely
    // subscribed before the real edits.
    await until(async () => {
      if (watched.length > 0) return true;
      if (watcher.exitCode !== null) throw new Error(`rt-tui doc watch exited: ${watcherErr}`);
      const connection = new ShareDB.Connection(new WebSocket(withToken(server.url.replace(/^http/, 'ws') + '/')));
      try {
        const doc = connection.get('examples', 'richtext');
        await cb2p((cb) => doc.fetch(cb));
        const len = doc.data.length();
        await cb2p((cb) => doc.submitOp([{ retain: len - 1 }, { retain: 1, attributes: { header: null } }], cb));
      } finally {
        connection.close();
      }
      await sleep(200);
      return watched.length > 0 || 'no line from rt-tui doc watch yet';
    }, 'rt-tui doc watch to be subscribed');

    const quill = await openClassic(server);
    pages.push(quill);
    const plain = await openPlain(server, 'plain');
    pages.push(plain);
    const start = await serverDoc(server);
    assert.equal(await quill.text(), start.text);
    assert.equal(await plain.text(), start.text);

    await quill.page.click('.ql-editor');
    await quill.page.keyboard.press('Control+End');
    await plain.page.focus('#text');
    await plain.page.$eval('#text', (t) => t.setSelectionRange(0, 0));

    // Both pages and the server agree, and the watcher has caught up.
    const converge = async () => {
      let doc;
      await until(async () => {
        doc = await serverDoc(server);
        const [q, p] = [await quill.text(), await plain.text()];
        if (q !== doc.text || p !== doc.text) {
          return `quill ${JSON.stringify(q)}, plain ${JSON.stringify(p)}, server ${JSON.stringify(doc.text)}`;
        }
        const lastWatched = watched.at(-1)?.v;
        return lastWatched === doc.v - 1 || `watch is at v ${lastWatched}, the server at ${doc.v}`;
      }, 'all three clients and the server to converge');
      return doc;
    };

    // All three at once.
    const inserted = [];
    await Promise.all([
      quill.page.keyboard.type('QQQQ😀QQQQ', { delay: 15 }),
      plain.page.keyboard.type('PPPP漢PPPP', { delay: 15 }),
      (async () => {
        for (const piece of ['T1', 'T2', 'T3']) {
          await sleep(30);
          inserted.push(await tui(server, 'insert', 'examples/richtext', '--at', '1', piece));
        }
      })(),
    ]);
    assert.equal(inserted.length, 3);

    let final = await converge();
    for (const piece of ['Q', 'P', 'T']) {
      const want = { Q: 8, P: 8, T: 3 }[piece];
      assert.equal(count(final.text, piece), want, `${piece} in ${JSON.stringify(final.text)}`);
    }
    assert.equal(count(final.text, '😀'), 1);
    assert.equal(count(final.text, '漢'), 1);
    assert.ok(final.text.includes('QQQQ😀QQQQ'), final.text);
    assert.deepEqual(await quill.contents(), final.ops);

    // Again, with line breaks and deletions on both pages.
    const keys = (page, list) => (async () => {
      for (const k of list) await page.keyboard.press(k, { delay: 10 });
    })();
    await Promise.all([
      keys(quill.page, ['Enter', 'Backspace', 'Backspace', 'Enter', 'K', 'Enter', 'Backspace']),
      keys(plain.page, ['Backspace', 'Enter', 'L', 'Backspace', 'Backspace', 'Enter', 'M']),
      tui(server, 'insert', 'examples/richtext', '--at', '0', '\n'),
    ]);
    final = await converge();
    assert.equal(count(final.text, 'Q'), 7, final.text);
    assert.equal(count(final.text, 'P'), 7, final.text);
    assert.equal(count(final.text, 'K'), 1, final.text);
    assert.equal(count(final.text, 'M'), 1, final.text);
    assert.equal(count(final.text, 'L'), 0, final.text);
    assert.deepEqual(await quill.contents(), final.ops);

    // The watcher saw every version from its first line on, and replaying
    // what it printed onto the snapshot at that version gives the final document.
    const first = watched[0].v;
    assert.deepEqual(
      watched.map((w) => w.v),
      Array.from({ length: final.v - first }, (_, i) => first + i),
    );
    let replayed = (await sharedbFetch(server, first)).ops;
    for (const w of watched) replayed = richText.type.apply(replayed, w.op).ops;
    assert.deepEqual(replayed, final.ops);

    assert.deepEqual(quill.errors, []);
    assert.deepEqual(plain.errors, []);
  } finally {
    for (const p of pages) await p.page.close();
    if (watcher.exitCode === null && watcher.signalCode === null) watcher.kill('SIGTERM');
    await watcherExit;
    await server.stop();
  }
});

test('bold set in Quill survives an edit from our editor page', { timeout: 90_000 }, async () => {
  const server = await startServer();
  const pages = [];
  try {
    const quill = await openClassic(server);
    pages.push(quill);
    const plain = await openPlain(server, 'plain');
    pages.push(plain);
    assert.equal((await serverDoc(server)).text, 'Hi!\n');

    // Select "Hi" with the keyboard and make it bold.
    await quill.page.click('.ql-editor');
    await quill.page.keyboard.press('Control+Home');
    await quill.page.keyboard.press('Shift+ArrowRight');
    await quill.page.keyboard.press('Shift+ArrowRight');
    await quill.page.keyboard.press('Control+B');
    const bold = [{ insert: 'Hi', attributes: { bold: true } }, { insert: '!\n' }];
    await until(async () => {
      const got = await serverDoc(server);
      return isDeepStrictEqual(got.ops, bold) || `server has ${JSON.stringify(got.ops)}`;
    }, 'the bold to reach the server');
    await quill.page.waitForSelector('.ql-editor strong', { timeout: WAIT_MS });

    // Our page types after the bold text and deletes a character of it.
    await until(async () => (await plain.text()) === 'Hi!\n' || 'not yet', 'our page to show the text');
    await plain.page.focus('#text');
    await plain.page.$eval('#text', (t) => t.setSelectionRange(3, 3));
    await plain.page.keyboard.type(' there');
    const expected = [{ insert: 'Hi', attributes: { bold: true } }, { insert: '! there\n' }];
    await until(async () => {
      const got = await serverDoc(server);
      return isDeepStrictEqual(got.ops, expected) || `server has ${JSON.stringify(got.ops)}`;
    }, "our page's edit to reach the server");
    await until(
      async () => isDeepStrictEqual(await quill.contents(), expected) || 'not yet',
      "Quill to show our page's edit",
    );

    // An edit inside the bold run keeps the rest of it bold.
    await plain.page.$eval('#text', (t) => t.setSelectionRange(2, 2));
    await plain.page.keyboard.press('Backspace');
    const after = [{ insert: 'H', attributes: { bold: true } }, { insert: '! there\n' }];
    await until(async () => {
      const got = await serverDoc(server);
      return isDeepStrictEqual(got.ops, after) || `server has ${JSON.stringify(got.ops)}`;
    }, 'the deletion to reach the server');
    const fetched = await sharedbFetch(server);
    assert.deepEqual(fetched.ops, after);
    await until(async () => isDeepStrictEqual(await quill.contents(), after) || 'not yet', 'Quill');
    assert.equal(await quill.page.locator('.ql-editor strong').innerText(), 'H');

    assert.deepEqual(quill.errors, []);
    assert.deepEqual(plain.errors, []);
  } finally {
    for (const p of pages) await p.page.close();
    await server.stop();
  }
});

test('Quill formatting the last line (a retain onto the final newline) is stored', { timeout: 60_000 }, async () => {
  const server = await startServer();
  try {
    const classic = await openClassic(server);
    // The seed ends in a newline (protocols.md §5.6): Quill's header on the
    // last line retains onto that newline, which must exist on the server.
    await classic.page.evaluate(() => {
      window.classic.quill.formatText(0, 2, 'bold', true, 'user');
      window.classic.quill.formatLine(0, 1, 'header', 1, 'user');
    });
    const want = [{ insert: 'Hi', attributes: { bold: true } }, { insert: '!' }, { insert: '\n', attributes: { header: 1 } }];
    await until(async () => isDeepStrictEqual((await sharedbFetch(server)).ops, want), 'the header on the server');
    assert.deepEqual(await classic.contents(), want);
    assert.deepEqual(classic.errors, []);
    await classic.page.close();
  } finally {
    await server.stop();
  }
});
