// A classroom opening the drawing page together: 200 real socket.io-client
// 4.8.4 clients join at once against rt-server on its default flags. None is
// refused: every one gets every `moving` from the moment it is connected,
// and its canvas in turn (the join rate paces canvases only), and ends up
// with the same drawing as the server, replayed with the page's own board
// model (static/draw/board.js).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import { io } from 'socket.io-client';
import { ioAuth, startServer } from '../lib/server.mjs';

const JOINERS = 200;
const MOVES = 40;
/** The moves drawn during the burst start here; the ones before, left of it. */
const BURST_X = 100;
/** 200 canvases at the default 20 per second take 10 s; leave room for a loaded machine. */
const CANVAS_WAIT_MS = 60_000;

const sandbox = {};
vm.runInNewContext(readFileSync(new URL('../../../static/draw/board.js', import.meta.url), 'utf8'), {
  window: sandbox,
});
const Board = sandbox.RtBoard;

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves once `check()` holds, polling every 20 ms; rejects after `ms`. */
async function until(check, ms, what) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A client that mirrors the board as the classic page does. */
function joiner() {
  const socket = io(server.url, { ...ioAuth(), reconnection: false, forceNew: true });
  const state = {
    socket,
    board: new Board(),
    moving: 0,
    hasCanvas: false,
    connected: false,
    errors: [],
    disconnected: null,
  };
  socket.on('connect', () => {
    state.connected = true;
  });
  socket.on('disconnect', (reason) => {
    state.disconnected = reason;
  });
  socket.on('error', (e) => state.errors.push(e));
  socket.on('canvas', (part) => {
    state.board.loadPart(part);
    if (part.part === part.parts - 1) state.hasCanvas = true;
  });
  socket.on('moving', (d) => {
    state.board.move(d.id, d.x, d.y, d.drawing, '#000');
    // The burst's moves only: the ones drawn before may be in the canvas.
    if (d.x >= BURST_X) state.moving++;
  });
  socket.on('clientdisconnect', (id) => state.board.leave(id));
  return state;
}

/** Each stroke's author and points, sorted: what a viewer sees. */
function drawn(strokes) {
  return strokes.map((s) => `${s.by}:${s.points.join(',')}`).sort();
}

test(`${JOINERS} clients joining at once all get every move and the full canvas`, { timeout: 120_000 }, async () => {
  const drawer = io(server.url, { transports: ['websocket'], ...ioAuth(), reconnection: false, forceNew: true });
  const clients = [];
  try {
    // Something on the board before the burst, so each canvas has strokes.
    await new Promise((resolve) => drawer.once('canvas', resolve));
    drawer.emit('mousemove', { x: 10, y: 10, drawing: false });
    for (let i = 1; i <= 5; i++) drawer.emit('mousemove', { x: 10 + i * 10, y: 10, drawing: true });

    for (let i = 0; i < JOINERS; i++) clients.push(joiner());
    await until(() => clients.every((c) => c.connected), 60_000, 'every client to connect');
    // Everyone is on the board before its canvas: moves from now on reach all.
    const listed = await new Promise((resolve) => {
      const probe = io(server.url, { transports: ['websocket'], ...ioAuth(), reconnection: false, forceNew: true });
      probe.once('peers', (list) => {
        probe.disconnect();
        resolve(new Set(list.map((p) => p.id)));
      });
    });
    for (const c of clients) assert.ok(listed.has(c.socket.id), `${c.socket.id} is not on the board`);

    // Draw at the page's pace while the canvases are still on their way.
    for (let i = 0; i < MOVES; i++) {
      drawer.emit('mousemove', { x: BURST_X + i * 5, y: 200 + (i % 7), drawing: i % 10 !== 0 });
      await sleep(50);
    }
    await until(() => clients.every((c) => c.moving >= MOVES), 30_000, 'every move to reach every client');
    await until(() => clients.every((c) => c.hasCanvas), CANVAS_WAIT_MS, 'every canvas');
    await sleep(200);

    for (const c of clients) {
      assert.equal(c.moving, MOVES, `${c.socket.id} got ${c.moving} moves`);
      assert.equal(c.disconnected, null, `${c.socket.id} was disconnected: ${c.disconnected}`);
      assert.deepEqual(c.errors, []);
    }
    // The drawing as the server has it: a late joiner's canvas.
    const late = joiner();
    await until(() => late.hasCanvas, CANVAS_WAIT_MS, 'the late joiner\'s canvas');
    late.socket.disconnect();
    const want = drawn([...late.board.strokes.values()]);
    assert.equal(want.length, 1 + Math.ceil(MOVES / 10), JSON.stringify(want));
    for (const c of clients) {
      assert.deepEqual(drawn([...c.board.strokes.values()]), want, `${c.socket.id}'s drawing`);
    }
  } finally {
    drawer.disconnect();
    for (const c of clients) c.socket.disconnect();
  }
});
