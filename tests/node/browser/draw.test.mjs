// The drawing board in headless Chromium: our page, and a page that uses the
// client script exactly as the classic drawing page does.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ioAuth, startServer, tuiBin } from '../lib/server.mjs';
import { launchBrowser } from '../lib/browser.mjs';

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

/** Inked pixels on the page's board canvas. */
async function inked(page) {
  return page.evaluate(() => {
    const c = document.getElementById('paper');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
  });
}

async function waitFor(what, fn, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function openBoard() {
  const page = await browser.newPage();
  await page.setViewportSize({ width: 1200, height: 800 });
  await page.goto(`${server.url}/draw/`);
  await waitFor('connected', () => page.evaluate(() => /online/.test(document.getElementById('status').textContent)));
  return page;
}

/** `rt-tui draw listen` against the server, collecting its JSON lines. */
function listen() {
  const proc = spawn(tuiBin(), ['draw', 'listen', '--url', server.url], { stdio: ['ignore', 'pipe', 'pipe'] });
  const events = [];
  createInterface({ input: proc.stdout }).on('line', (line) => events.push(JSON.parse(line)));
  return { events, stop: () => proc.kill('SIGTERM') };
}

test('a drag on page A appears on page B and in rt-tui draw listen, with A named on B', async () => {
  const a = await openBoard();
  const b = await openBoard();
  const tui = listen();
  try {
    await waitFor('rt-tui draw listen connected', () => tui.events.some((e) => e.event === 'canvas'));
    await a.fill('#name', 'Alice');
    await a.press('#name', 'Enter');
    await a.locator('#name').blur();
    await waitFor('peers list names Alice on B', () =>
      b.evaluate(() => [...document.querySelectorAll('#peers li')].some((li) => li.textContent === 'Alice')),
    );
    assert.equal(await inked(b), 0);
    const box = await a.locator('#paper').boundingBox();
    await a.mouse.move(box.x + box.width * 0.2, box.y + box.height * 0.3);
    await a.mouse.down();
    for (let i = 1; i <= 20; i++) {
      await a.mouse.move(box.x + box.width * (0.2 + i * 0.02), box.y + box.height * (0.3 + i * 0.01));
      await sleep(30);
    }
    await a.mouse.up();
    await waitFor('ink on B', async () => (await inked(b)) > 200);
    assert.ok((await inked(a)) > 200, 'A drew locally');
    const aId = await a.evaluate(() => {
      const me = document.querySelector('#peers li.me');
      return me && me.textContent;
    });
    assert.equal(aId, 'Alice');
    const drawn = await waitFor('drawing moves in rt-tui draw listen', () => {
      const moves = tui.events.filter((e) => e.event === 'moving' && e.data.drawing);
      return moves.length >= 5 ? moves : null;
    });
    const named = tui.events.filter((e) => e.event === 'peer').map((e) => e.data).find((p) => p.name === 'Alice');
    assert.ok(named, 'rt-tui saw Alice in a peer event');
    assert.ok(drawn.every((e) => e.data.id === named.id), 'the moves are Alice\'s');
    // A's pointer shows on B with A's name.
    const label = await waitFor('A pointer on B', () =>
      b.evaluate(() => document.querySelector('#cursors .cursor span')?.textContent),
    );
    assert.equal(label, 'Alice');

    // A late joiner sees the drawing from the snapshot.
    const c = await openBoard();
    try {
      await waitFor('ink on late joiner', async () => (await inked(c)) > 200);
    } finally {
      await c.close();
    }

    // Undo on A removes the stroke on B.
    await a.click('#undo');
    await waitFor('B cleared by undo', async () => (await inked(b)) === 0);

    // A draws again; B clears the board (after confirming) for both.
    await a.mouse.move(box.x + 50, box.y + 50);
    await a.mouse.down();
    for (let i = 1; i <= 10; i++) {
      await a.mouse.move(box.x + 50 + i * 15, box.y + 50 + i * 10);
      await sleep(30);
    }
    await a.mouse.up();
    await waitFor('ink on B again', async () => (await inked(b)) > 100);
    b.once('dialog', (d) => d.accept());
    await b.click('#clear');
    await waitFor('A cleared by B', async () => (await inked(a)) === 0);
    assert.equal(await inked(b), 0);
  } finally {
    tui.stop();
    await a.close();
    await b.close();
  }
});

test('a clear that crosses a stroke on the way leaves every page with what the server has', async () => {
  // A's frames to the server are held back, so B's clear reaches the server
  // before A's stroke does, while A drew the stroke before the clear came in.
  const a = await browser.newPage();
  await a.addInitScript(() => {
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (data) {
      setTimeout(() => send.call(this, data), 600);
    };
  });
  await a.setViewportSize({ width: 1200, height: 800 });
  await a.goto(`${server.url}/draw/`);
  await waitFor('A connected', () => a.evaluate(() => /online/.test(document.getElementById('status').textContent)));
  const b = await openBoard();
  try {
    b.on('dialog', (d) => d.accept());
    await b.click('#clear');
    await waitFor('B empty', async () => (await inked(b)) === 0);
    await waitFor('A empty', async () => (await inked(a)) === 0);
    const box = await a.locator('#paper').boundingBox();
    await a.mouse.move(box.x + 100, box.y + 100);
    await a.mouse.down();
    for (let i = 1; i <= 8; i++) {
      await a.mouse.move(box.x + 100 + i * 20, box.y + 100 + i * 8);
      await sleep(30);
    }
    await a.mouse.up();
    assert.ok((await inked(a)) > 100, 'A drew locally');
    await b.click('#clear');
    await waitFor('the stroke on B, after the clear', async () => (await inked(b)) > 100);
    await waitFor('the stroke back on A after its resync', async () => (await inked(a)) > 100);
    await sleep(1500);
    assert.ok((await inked(a)) > 100, 'A still shows the stroke');
    assert.ok(Math.abs((await inked(a)) - (await inked(b))) < 50, 'A and B show the same');
  } finally {
    await a.close();
    await b.close();
  }
});

test('after a reconnect, undo still reaches the strokes drawn before it', async () => {
  const a = await browser.newPage();
  // Keep hold of the page's sockets, to cut the connection from outside.
  await a.addInitScript(() => {
    const Original = WebSocket;
    window.__sockets = [];
    window.WebSocket = function (...args) {
      const ws = new Original(...args);
      window.__sockets.push(ws);
      return ws;
    };
    window.WebSocket.prototype = Original.prototype;
    Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  });
  await a.setViewportSize({ width: 1200, height: 800 });
  await a.goto(`${server.url}/draw/`);
  await waitFor('A connected', () => a.evaluate(() => /online/.test(document.getElementById('status').textContent)));
  const b = await openBoard();
  try {
    b.on('dialog', (d) => d.accept());
    await b.click('#clear');
    await waitFor('A empty', async () => (await inked(a)) === 0);
    const box = await a.locator('#paper').boundingBox();
    await a.mouse.move(box.x + 300, box.y + 200);
    await a.mouse.down();
    for (let i = 1; i <= 8; i++) {
      await a.mouse.move(box.x + 300 + i * 20, box.y + 200 + i * 8);
      await sleep(30);
    }
    await a.mouse.up();
    await waitFor('the stroke on B', async () => (await inked(b)) > 100);
    const before = await a.evaluate(() => document.querySelector('#peers li.me') !== null);
    assert.ok(before);
    await a.evaluate(() => window.__sockets.forEach((ws) => ws.close()));
    await waitFor('A back online', () => a.evaluate(() => window.__sockets.length >= 2 &&
      /online/.test(document.getElementById('status').textContent)), 15000);
    await waitFor('A has the stroke from the canvas', async () => (await inked(a)) > 100);
    await a.click('#undo');
    await waitFor('the stroke gone on B', async () => (await inked(b)) === 0);
    await waitFor('the stroke gone on A', async () => (await inked(a)) === 0);
  } finally {
    await a.close();
    await b.close();
  }
});

// Written the way the classic drawing page uses socket.io: a script tag for
// /socket.io/socket.io.js, io.connect("/"), emit('mousemove', …) on document
// mouse moves, on('moving', …) and on('clientdisconnect', …).
const CLASSIC_PAGE = `<!doctype html>
<html><head><title>classic</title>
<script src="/socket.io/socket.io.js"></script>
</head><body style="margin:0">
<canvas id="paper" width="2000" height="1000"></canvas>
<div id="cursors"></div>
<script>
  var ctx = document.getElementById('paper').getContext('2d');
  var drawing = false;
  var clients = {};
  var cursors = {};
  var prev = {};
  var lastEmit = Date.now();
  window.received = [];
  window.gone = [];
  var socket = io.connect("/");
  socket.on('moving', function (data) {
    window.received.push(data);
    if (!clients.hasOwnProperty(data.id)) {
      cursors[data.id] = document.createElement('div');
      cursors[data.id].className = 'cursor';
      document.getElementById('cursors').appendChild(cursors[data.id]);
    }
    cursors[data.id].style.left = data.x + 'px';
    cursors[data.id].style.top = data.y + 'px';
    if (data.drawing && clients[data.id]) {
      drawLine(clients[data.id].x, clients[data.id].y, data.x, data.y);
    }
    clients[data.id] = data;
    clients[data.id].updated = Date.now();
  });
  socket.on('clientdisconnect', function (id) {
    window.gone.push(id);
    delete clients[id];
    if (cursors[id]) cursors[id].remove();
  });
  document.getElementById('paper').addEventListener('mousedown', function (e) {
    e.preventDefault();
    drawing = true;
    prev.x = e.pageX;
    prev.y = e.pageY;
  });
  document.addEventListener('mouseup', function () { drawing = false; });
  document.addEventListener('mousemove', function (e) {
    if (Date.now() - lastEmit > 30) {
      socket.emit('mousemove', { 'x': e.pageX, 'y': e.pageY, 'drawing': drawing });
      lastEmit = Date.now();
    }
    if (drawing) {
      drawLine(prev.x, prev.y, e.pageX, e.pageY);
      prev.x = e.pageX;
      prev.y = e.pageY;
    }
  });
  function drawLine(fromx, fromy, tox, toy) {
    ctx.beginPath();
    ctx.moveTo(fromx, fromy);
    ctx.lineTo(tox, toy);
    ctx.stroke();
  }
</script></body></html>`;

test('the classic page works unchanged with our client script', async () => {
  const page = await browser.newPage();
  await page.setViewportSize({ width: 1200, height: 800 });
  // Same origin as rt: socketioxide sends no CORS headers.
  await page.goto(`${server.url}/healthz`);
  await page.setContent(CLASSIC_PAGE);
  const peer = io(server.url, { ...ioAuth(), reconnection: false, forceNew: true });
  let online = [];
  peer.on('peers', (list) => {
    online = list.map((p) => p.id);
  });
  peer.on('peer', (p) => online.push(p.id));
  try {
    await new Promise((resolve) => peer.on('connect', resolve));
    const classicId = await waitFor('classic page connected', () => page.evaluate(() => socket.connected && socket.id));
    // The board lists the page once it has joined; events flow from then on.
    await waitFor('classic page on the board', () => online.includes(classicId));

    // The page's mouse moves reach the peer as `moving` with the page's id.
    const fromPage = [];
    peer.on('moving', (d) => fromPage.push(d));
    await page.mouse.move(100, 100);
    await page.mouse.down();
    for (let i = 1; i <= 10; i++) {
      await page.mouse.move(100 + i * 20, 100 + i * 5);
      await sleep(40);
    }
    await page.mouse.up();
    await waitFor('moves from the classic page', () => fromPage.some((d) => d.drawing));
    assert.ok(fromPage.every((d) => d.id === classicId));
    assert.ok(fromPage.every((d) => Number.isFinite(d.x) && Number.isFinite(d.y)));

    // The peer's moves reach the page; the page draws them.
    peer.emit('mousemove', { x: 300, y: 300, drawing: false });
    peer.emit('mousemove', { x: 400, y: 350, drawing: true });
    const got = await waitFor('moving on the classic page', () =>
      page.evaluate(() => (window.received.length >= 2 ? window.received : null)),
    );
    assert.deepEqual(got[1], { x: 400, y: 350, drawing: true, id: peer.id, updated: got[1].updated });
    const peerId = peer.id;
    peer.disconnect();
    const gone = await waitFor('clientdisconnect on the classic page', () =>
      page.evaluate(() => (window.gone.length ? window.gone : null)),
    );
    assert.deepEqual(gone, [peerId]);
  } finally {
    peer.disconnect();
    await page.close();
  }
});
