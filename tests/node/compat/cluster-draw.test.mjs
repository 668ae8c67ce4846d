// The drawing board across two rt-server nodes (one PostgreSQL database,
// one Redis) with the real socket.io-client: one client on node A, one on
// node B, in each transport mode. Fails without PostgreSQL or Redis.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { ioAuth, startCluster } from '../lib/server.mjs';

const WAIT_MS = 5000;

let cluster;
before(async () => {
  cluster = await startCluster(2);
});
after(async () => {
  await cluster?.stop();
});

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

/** Resolves with the first `name` event for which `pred` holds. */
function nextWhere(socket, name, pred, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(name, on);
      reject(new Error(`no matching ${name} event within ${ms} ms`));
    }, ms);
    function on(arg) {
      if (!pred(arg)) return;
      clearTimeout(timer);
      socket.off(name, on);
      resolve(arg);
    }
    socket.on(name, on);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function eventually(cond, what) {
  const deadline = Date.now() + WAIT_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`not within ${WAIT_MS} ms: ${what}`);
    await sleep(20);
  }
}

const MODES = {
  'websocket only': { transports: ['websocket'] },
  'polling only': { transports: ['polling'], upgrade: false },
  'default (polling, then upgrade)': {},
};

/** A client on node `i` that has its whole canvas (its parts' strokes). */
async function client(i, opts) {
  const socket = io(cluster.nodes[i].url, { ...opts, ...ioAuth(), reconnection: false, forceNew: true });
  const strokes = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no canvas')), WAIT_MS);
    socket.on('canvas', function part(p) {
      if (p.part === 0) strokes.length = 0;
      strokes.push(...p.strokes);
      if (p.part === p.parts - 1) {
        clearTimeout(timer);
        socket.off('canvas', part);
        resolve();
      }
    });
  });
  socket.strokes = strokes;
  return socket;
}

async function draw(socket, points) {
  socket.emit('mousemove', { x: points[0][0], y: points[0][1], drawing: false });
  for (const [x, y] of points.slice(1)) {
    await sleep(20);
    socket.emit('mousemove', { x, y, drawing: true });
  }
  await sleep(20);
  socket.emit('mousemove', { x: points.at(-1)[0], y: points.at(-1)[1], drawing: false });
}

for (const [mode, opts] of Object.entries(MODES)) {
  describe(`two nodes, ${mode}`, () => {
    test('moving, peer and clientdisconnect cross nodes', async () => {
      const a = await client(0, opts);
      // A's news of its joiner reaches B within Redis' delay; a client
      // joining B meanwhile is told by a `peer` event instead.
      await sleep(200);
      const peersOnA = [];
      a.on('peer', (p) => peersOnA.push(p));
      const b = io(cluster.nodes[1].url, { ...opts, ...ioAuth(), reconnection: false, forceNew: true });
      try {
        const list = await next(b, 'peers');
        assert.ok(list.some((p) => p.id === a.id), `B lists A's client: ${JSON.stringify(list)}`);
        await eventually(() => peersOnA.some((p) => p.id === b.id), 'A hears of B\'s joiner');
        const got = nextWhere(b, 'moving', (m) => m.x === 12);
        a.emit('mousemove', { x: 12, y: 34, drawing: false, tool: 'pen' });
        assert.deepEqual(await got, { x: 12, y: 34, drawing: false, tool: 'pen', id: a.id });
        const back = nextWhere(a, 'moving', (m) => m.x === 56);
        b.emit('mousemove', { x: 56, y: 78, drawing: false });
        assert.equal((await back).id, b.id);
        const gone = next(b, 'clientdisconnect');
        const id = a.id;
        a.disconnect();
        assert.equal(await gone, id);
      } finally {
        a.disconnect();
        b.disconnect();
      }
    });

    test('a late joiner on B sees strokes drawn on A; undo and clear cross', async () => {
      const a = await client(0, opts);
      const watcher = await client(1, opts);
      try {
        await draw(a, [[100, 100], [110, 110], [120, 120]]);
        await sleep(300);
        const late = await client(1, opts);
        try {
          const mine = late.strokes.filter((s) => s.by === a.id);
          assert.equal(mine.length, 1, JSON.stringify(late.strokes));
          assert.deepEqual(mine[0].points, [100, 100, 110, 110, 120, 120]);

          const undone = next(late, 'undone');
          a.emit('undo');
          const ev = await undone;
          assert.equal(ev.stroke, mine[0].id);
          assert.equal(ev.by, a.id);

          await draw(late, [[300, 300], [310, 310]]);
          await sleep(300);
          const cleared = next(watcher, 'cleared');
          a.emit('clear');
          assert.equal((await cleared).by, a.id);
          await sleep(300);
          const after = await client(1, opts);
          try {
            assert.deepEqual(after.strokes, []);
          } finally {
            after.disconnect();
          }
        } finally {
          late.disconnect();
        }
      } finally {
        a.disconnect();
        watcher.disconnect();
      }
    });
  });
}
