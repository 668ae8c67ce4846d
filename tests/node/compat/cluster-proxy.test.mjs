// deploy/haproxy.cfg in front of two rt-server nodes: long-polling-only
// socket.io-client clients (whose every request is a new HTTP request, so
// they need the sticky cookie) and WebSocket clients, spread over both
// nodes, see each other's moves. Fails if haproxy, PostgreSQL or Redis is
// missing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { io } from 'socket.io-client';
import { authHeaders, ioAuth, startCluster } from '../lib/server.mjs';

const WAIT_MS = 5000;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const haproxyBin = process.env.RT_HAPROXY_BIN ?? '/usr/sbin/haproxy';

let cluster;
let proxy;
let proxyUrl;
let dir;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** deploy/haproxy.cfg with this test's ports in place of the example ones. */
function config(port, nodes) {
  const text = fs.readFileSync(path.join(root, 'deploy/haproxy.cfg'), 'utf8');
  let i = 0;
  const out = text
    .replace(/^(\s*bind\s+)\S+/m, `$1127.0.0.1:${port}`)
    .replace(/^(\s*server\s+\S+\s+)\S+/gm, (_, head) => `${head}127.0.0.1:${nodes[i++].port}`);
  assert.equal(i, nodes.length, 'deploy/haproxy.cfg lists one server per node');
  return out;
}

async function waitForPort(port) {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`haproxy did not listen on ${port}`);
}

before(async () => {
  if (!fs.existsSync(haproxyBin)) {
    throw new Error(`this test needs HAProxy at ${haproxyBin} (Debian package haproxy; or set RT_HAPROXY_BIN)`);
  }
  cluster = await startCluster(2);
  const port = await freePort();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rt-haproxy-'));
  const file = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(file, config(port, cluster.nodes));
  let stderr = '';
  proxy = spawn(haproxyBin, ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  proxy.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((_, reject) =>
    proxy.once('exit', (code) => reject(new Error(`haproxy exited with ${code}: ${stderr}`))),
  );
  await Promise.race([waitForPort(port), exited]);
  proxyUrl = `http://127.0.0.1:${port}`;
  // Both servers pass their first health check before the test relies on
  // round-robin spreading clients over them.
  await new Promise((r) => setTimeout(r, 500));
});

after(async () => {
  if (proxy && proxy.exitCode === null) {
    const gone = new Promise((r) => proxy.once('exit', r));
    proxy.kill('SIGTERM');
    await gone;
  }
  await cluster?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

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

/** A client through the proxy that has its canvas. */
async function client(opts) {
  // withCredentials: socket.io-client in Node keeps cookies (the sticky
  // one) only then.
  const socket = io(proxyUrl, { ...opts, ...ioAuth(), withCredentials: true, reconnection: false, forceNew: true });
  await nextWhere(socket, 'canvas', (p) => p.part === p.parts - 1);
  return socket;
}

/** Open drawing connections on each node, from its /metrics. */
async function drawConnections() {
  const counts = [];
  for (const n of cluster.nodes) {
    const res = await fetch(`${n.url}/metrics`, { headers: authHeaders() });
    const text = await res.text();
    let sum = 0;
    for (const line of text.split('\n')) {
      if (line.startsWith('rt_connections{') && line.includes('app="draw"')) sum += Number(line.split(' ').at(-1));
    }
    counts.push(sum);
  }
  return counts;
}

async function allSeeEachOther(clients) {
  for (const [i, from] of clients.entries()) {
    const x = 100 + i;
    const heard = clients.filter((c) => c !== from).map((c) => nextWhere(c, 'moving', (m) => m.x === x && m.id === from.id));
    from.emit('mousemove', { x, y: 5, drawing: false });
    await Promise.all(heard);
  }
}

test('long-polling clients through the proxy stay on their node and see each other', async () => {
  const clients = [];
  try {
    for (let i = 0; i < 4; i++) clients.push(await client({ transports: ['polling'], upgrade: false }));
    for (const c of clients) assert.equal(c.io.engine.transport.name, 'polling');
    const counts = await drawConnections();
    assert.deepEqual(counts, [2, 2], 'round-robin spreads the clients over both nodes');
    // Several polling round trips each, every one on the session's node.
    for (let round = 0; round < 3; round++) await allSeeEachOther(clients);
    for (const c of clients) assert.ok(c.connected, 'a polling session broke (a request reached the wrong node)');
  } finally {
    for (const c of clients) c.disconnect();
  }
});

test('WebSocket clients, and the default upgrade, through the proxy see each other', async () => {
  const clients = [];
  try {
    clients.push(await client({ transports: ['websocket'] }));
    clients.push(await client({ transports: ['websocket'] }));
    clients.push(await client({}));
    clients.push(await client({ transports: ['polling'], upgrade: false }));
    await allSeeEachOther(clients);
    await new Promise((r) => setTimeout(r, 300));
    const counts = await drawConnections();
    assert.ok(counts.every((n) => n > 0), `both nodes serve clients: ${counts}`);
    await allSeeEachOther(clients);
  } finally {
    for (const c of clients) c.disconnect();
  }
});
