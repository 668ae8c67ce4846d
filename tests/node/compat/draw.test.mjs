// The drawing board with the real socket.io-client 4.8.4, in its three
// transport modes, against rt-server.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { authHeaders, ioAuth, startServer } from '../lib/server.mjs';

const WAIT_MS = 5000;

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

/** Resolves with the next `name` event's first argument, or rejects after WAIT_MS. */
function next(socket, name, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(name, on);
      reject(new Error(`no ${name} event within ${ms} ms`));
    }, ms);
    function on(arg) {
      clearTimeout(timer);
      socket.off(name, on);
      resolve(arg);
    }
    socket.on(name, on);
  });
}

/** Records every `name` event. */
function record(socket, name) {
  const seen = [];
  socket.on(name, (arg) => seen.push(arg));
  return seen;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const MODES = {
  'default (polling, then upgrade)': {},
  'websocket only': { transports: ['websocket'] },
  'polling only': { transports: ['polling'], upgrade: false },
};

/** A connected client that has its snapshot; the caller disconnects it. */
async function client(opts, { waitUpgrade = false } = {}) {
  const socket = io(server.url, { ...opts, ...ioAuth(), reconnection: false, forceNew: true });
  const canvas = next(socket, 'canvas');
  await next(socket, 'connect');
  await canvas;
  if (waitUpgrade && socket.io.engine.transport.name !== 'websocket') {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no upgrade to websocket')), WAIT_MS);
      socket.io.engine.once('upgrade', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  return socket;
}

for (const [mode, opts] of Object.entries(MODES)) {
  describe(`draw over ${mode}`, () => {
    test('transport is the one asked for', async () => {
      const a = await client(opts, { waitUpgrade: !opts.transports });
      try {
        const expected = opts.transports?.[0] ?? 'websocket';
        assert.equal(a.io.engine.transport.name, expected);
      } finally {
        a.disconnect();
      }
    });

    test('moving carries the sender id, keeps unknown fields, is not echoed', async () => {
      const a = await client(opts, { waitUpgrade: !opts.transports });
      const b = await client(opts);
      try {
        const echoed = record(a, 'moving');
        const got = next(b, 'moving');
        a.emit('mousemove', { x: 12, y: 34, drawing: false, tool: 'pen', id: 'forged' });
        assert.deepEqual(await got, { x: 12, y: 34, drawing: false, tool: 'pen', id: a.id });
        await sleep(300);
        assert.deepEqual(echoed, []);
      } finally {
        a.disconnect();
        b.disconnect();
      }
    });

    test('clientdisconnect arrives when a client leaves', async () => {
      const a = await client(opts);
      const b = await client(opts);
      try {
        const id = a.id;
        const gone = next(b, 'clientdisconnect');
        a.disconnect();
        assert.equal(await gone, id);
      } finally {
        b.disconnect();
      }
    });

    test('a joiner gets the peers list, the others get its entry in peer', async () => {
      const a = await client(opts);
      const announced = next(a, 'peer');
      const b = io(server.url, { ...opts, ...ioAuth(), reconnection: false, forceNew: true });
      try {
        const list = await next(b, 'peers');
        const ids = list.map((p) => p.id);
        assert.ok(ids.includes(a.id) && ids.includes(b.id), JSON.stringify(list));
        const entry = await announced;
        assert.deepEqual(entry, list.find((p) => p.id === b.id));
        assert.match(entry.name, /^guest-/);
      } finally {
        a.disconnect();
        b.disconnect();
      }
    });

    test('a late joiner gets the canvas with the strokes drawn so far', async () => {
      const a = await client(opts);
      const b = await client(opts);
      try {
        // b sees a's moves, so the server has applied them.
        const seen = record(b, 'moving');
        a.emit('mousemove', { x: 500, y: 500, drawing: false });
        a.emit('mousemove', { x: 510, y: 505, drawing: true });
        a.emit('mousemove', { x: 520, y: 515, drawing: true });
        a.emit('mousemove', { x: 530, y: 515, drawing: false });
        for (let i = 0; i < 50 && seen.length < 4; i++) await sleep(50);
        assert.equal(seen.length, 4);
        const late = io(server.url, { ...opts, ...ioAuth(), reconnection: false, forceNew: true });
        try {
          const part = await next(late, 'canvas');
          assert.equal(part.part, 0);
          const mine = part.strokes.filter((s) => s.by === a.id);
          assert.equal(mine.length, 1);
          assert.deepEqual(mine[0].points, [500, 500, 510, 505, 520, 515]);
          assert.equal(part.width, 2000);
          assert.equal(part.height, 1000);
        } finally {
          late.disconnect();
        }
      } finally {
        a.disconnect();
        b.disconnect();
      }
    });

    test('invalid input gets an error and is not broadcast', async () => {
      const a = await client(opts);
      const b = await client(opts);
      try {
        const moves = record(b, 'moving');
        const bad = [
          { x: -1, y: 10, drawing: true },
          { x: 10, y: 1001, drawing: true },
          { x: 'ten', y: 10, drawing: true },
          { x: 10, y: 10, drawing: 'yes' },
          { x: 10, y: 10 },
          'not an object',
        ];
        for (const arg of bad) {
          const err = next(a, 'error');
          a.emit('mousemove', arg);
          const e = await err;
          assert.equal(e.event, 'mousemove');
          assert.ok(e.message.length > 0);
        }
        await sleep(300);
        assert.deepEqual(moves, []);
        // The connection is still good.
        const ok = next(b, 'moving');
        a.emit('mousemove', { x: 1, y: 2, drawing: false });
        assert.equal((await ok).id, a.id);
      } finally {
        a.disconnect();
        b.disconnect();
      }
    });

    test('undo and clear reach the others', async () => {
      const a = await client(opts);
      const b = await client(opts);
      try {
        const seen = record(b, 'moving');
        a.emit('mousemove', { x: 100, y: 100, drawing: false });
        a.emit('mousemove', { x: 110, y: 100, drawing: true });
        for (let i = 0; i < 50 && seen.length < 2; i++) await sleep(50);
        const undone = next(b, 'undone');
        a.emit('undo');
        assert.equal((await undone).by, a.id);
        const cleared = next(a, 'cleared');
        b.emit('clear');
        assert.deepEqual(await cleared, { by: b.id });
      } finally {
        a.disconnect();
        b.disconnect();
      }
    });
  });
}

test('hello names the participant to everyone in a peer event', async () => {
  const a = await client({ transports: ['websocket'] });
  const b = await client({ transports: ['websocket'] });
  try {
    const peers = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no peer event naming Ann')), WAIT_MS);
      b.on('peer', (p) => {
        if (p.id === a.id && p.name === 'Ann') {
          clearTimeout(timer);
          resolve(p);
        }
      });
    });
    a.emit('hello', { name: 'Ann', colour: '#112233' });
    // Without a key, a socket's strokes are its own id's.
    assert.deepEqual(await peers, { id: a.id, name: 'Ann', colour: '#112233', author: a.id });
  } finally {
    a.disconnect();
    b.disconnect();
  }
});

test('a hello key gives the same author over polling after a reconnect, answered by welcome', async () => {
  const key = 'compat-key-0123456789';
  const authors = [];
  for (let i = 0; i < 2; i++) {
    const c = await client({ transports: ['polling'], upgrade: false });
    try {
      const welcome = new Promise((resolve) => c.once('welcome', resolve));
      c.emit('hello', { key });
      const me = await welcome;
      assert.equal(me.id, c.id);
      assert.ok(!me.author.includes(key), 'the key stays secret');
      authors.push(me.author);
    } finally {
      c.disconnect();
    }
  }
  assert.equal(authors[0], authors[1]);
});

test('/socket.io/socket.io.js is served as JavaScript', async () => {
  const res = await fetch(`${server.url}/socket.io/socket.io.js`, { headers: authHeaders() });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^application\/javascript/);
  const body = await res.text();
  assert.match(body, /global\.io = io/);
});

test('a raw polling GET with a bad sid returns 400', async () => {
  const res = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling&sid=not-a-session`, { headers: authHeaders() });
  assert.equal(res.status, 400);
  await res.text();
});

test('a large canvas reaches a polling-only late joiner in parts', async () => {
  const big = await startServer(['--draw-rate', '1000000']);
  const drawer = io(big.url, { transports: ['websocket'], ...ioAuth('headers'), reconnection: false, forceNew: true });
  const watcher = io(big.url, { transports: ['websocket'], ...ioAuth('headers'), reconnection: false, forceNew: true });
  let late;
  try {
    await Promise.all([next(drawer, 'canvas'), next(watcher, 'canvas')]);
    let moves = 0;
    watcher.on('moving', () => moves++);
    let segments = 0;
    drawer.emit('mousemove', { x: 0, y: 0, drawing: false });
    const total = 15000;
    for (let i = 1; i <= total; i++) {
      const drawing = i % 40 !== 0;
      drawer.emit('mousemove', { x: (i % 2000) + 0.3, y: Math.floor(i / 2000) * 100 + 0.7, drawing });
      if (drawing) segments++;
      if (i % 1000 === 0) {
        for (let t = 0; t < 100 && moves < i + 1; t++) await sleep(20);
      }
    }
    for (let t = 0; t < 100 && moves < total + 1; t++) await sleep(20);
    assert.equal(moves, total + 1);
    late = io(big.url, { transports: ['polling'], upgrade: false, ...ioAuth('headers'), reconnection: false, forceNew: true });
    const parts = [];
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${parts.length} canvas parts`)), 20000);
      late.on('canvas', (part) => {
        parts.push(part);
        if (parts.length === part.parts) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    assert.ok(parts.length > 1, 'the canvas came in one part');
    assert.deepEqual(parts.map((p) => p.part), parts.map((_, i) => i));
    // Entries that repeat an id continue a long stroke from its last point.
    let got = 0;
    let prevId = null;
    for (const p of parts) {
      for (const s of p.strokes) {
        const n = s.points.length / 2 - 1;
        got += n;
        prevId = s.id;
      }
    }
    assert.ok(prevId !== null);
    assert.equal(got, segments);
    assert.equal(late.io.engine.transport.name, 'polling');
  } finally {
    drawer.disconnect();
    watcher.disconnect();
    late?.disconnect();
    await big.stop();
  }
});

test("the page's board model (static/draw/board.js) replays events as the server does", async () => {
  const { readFileSync } = await import('node:fs');
  const vm = await import('node:vm');
  const src = readFileSync(new URL('../../../static/draw/board.js', import.meta.url), 'utf8');
  const sandbox = {};
  vm.runInNewContext(src, { window: sandbox });
  const Board = sandbox.RtBoard;

  const a = await client({ transports: ['websocket'] });
  const b = await client({ transports: ['websocket'] });
  const watcher = io(server.url, { transports: ['websocket'], ...ioAuth(), reconnection: false, forceNew: true });
  try {
    const mirror = new Board();
    let colours = new Map();
    let steps = 0;
    watcher.on('canvas', (part) => mirror.loadPart(part));
    watcher.on('peers', (list) => {
      colours = new Map(list.map((p) => [p.id, p.colour]));
    });
    watcher.on('peer', (p) => colours.set(p.id, p.colour));
    watcher.on('moving', (d) => {
      mirror.move(d.id, d.x, d.y, d.drawing, colours.get(d.id));
      steps++;
    });
    watcher.on('undone', (u) => {
      mirror.undo(u.by);
      steps++;
    });
    await next(watcher, 'canvas');
    // Two authors, several strokes each, an undo in the middle of a stroke.
    const script = [
      [a, 10.04, 10, false], [a, 20, 10, true], [a, 30.06, 15, true], [a, 40, 15, false],
      [b, 500, 500, false], [b, 510, 505, true],
      [a, 50, 50, true], [a, 60, 60, true],
      ['undo', a],
      [a, 70, 70, true], [b, 520, 505, true], [b, 530, 500, false],
    ];
    for (const [who, x, y, drawing] of script) {
      if (who === 'undo') {
        x.emit('undo');
      } else {
        who.emit('mousemove', { x, y, drawing });
      }
      const before = steps;
      for (let i = 0; i < 100 && steps === before; i++) await sleep(10);
    }
    const late = io(server.url, { transports: ['websocket'], ...ioAuth(), reconnection: false, forceNew: true });
    try {
      const part = await next(late, 'canvas');
      const server = part.strokes.map((s) => [s.by, s.points.join(',')]).sort();
      const local = [...mirror.strokes.values()].map((s) => [s.by, s.points.join(',')]).sort();
      assert.deepEqual(local, server);
      assert.equal(mirror.segments, part.strokes.reduce((n, s) => n + s.points.length / 2 - 1, 0));
    } finally {
      late.disconnect();
    }
  } finally {
    a.disconnect();
    b.disconnect();
    watcher.disconnect();
  }
});
