// Starts a real rt-server process on an ephemeral loopback port for one test
// file, and stops it afterwards.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * With RT_TEST_TOKEN=1 every server of this test process requires one random
 * access token (RT_TOKEN), and the clients below carry it. It is exported in
 * RT_TOKEN too, so the rt-tui processes a test starts send it as well.
 */
export const token = process.env.RT_TEST_TOKEN ? randomBytes(16).toString('hex') : undefined;
if (token) process.env.RT_TOKEN = token;
else delete process.env.RT_TOKEN;

/** Headers for fetch/ws/EventSource requests: `Authorization: Bearer`. */
export function authHeaders() {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** `url` with `token=` added to its query (what browsers' EventSource and WebSocket use). */
export function withToken(url) {
  if (!token) return url;
  const u = new URL(url);
  u.searchParams.set('token', token);
  return u.toString();
}

/**
 * socket.io-client options carrying the token: `query` (sent on every
 * polling request and the WebSocket upgrade) or, in Node, `extraHeaders`.
 */
export function ioAuth(how = 'query') {
  if (!token) return {};
  return how === 'headers' ? { extraHeaders: authHeaders() } : { query: { token } };
}

/** The rt-server binary under test: $RT_SERVER_BIN, else target/debug. */
export function serverBin() {
  const bin = process.env.RT_SERVER_BIN ?? path.join(root, 'target/debug/rt-server');
  if (!fs.existsSync(bin)) {
    throw new Error(`rt-server binary not found at ${bin}: run cargo build first or set RT_SERVER_BIN`);
  }
  return bin;
}

/** The rt-tui binary: $RT_TUI_BIN, else target/debug. */
export function tuiBin() {
  const bin = process.env.RT_TUI_BIN ?? path.join(root, 'target/debug/rt-tui');
  if (!fs.existsSync(bin)) {
    throw new Error(`rt-tui binary not found at ${bin}: run cargo build first or set RT_TUI_BIN`);
  }
  return bin;
}

/**
 * Starts rt-server with `args` (an in-memory store and port 0 unless given)
 * and resolves once it prints its URL.
 * @returns {Promise<{url: string, port: number, proc: import('node:child_process').ChildProcess, stop: () => Promise<void>, kill: (signal?: string) => Promise<void>}>}
 */
export async function startServer(args = []) {
  const full = [...args];
  if (!full.includes('--bind')) full.push('--bind', '127.0.0.1:0');
  if (!full.includes('--data') && !full.includes('--database')) full.push('--data', ':memory:');
  const proc = spawn(serverBin(), full, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
  });
  let stderr = '';
  proc.stderr.on('data', (d) => {
    stderr += d;
    if (process.env.RT_TEST_VERBOSE) process.stderr.write(d);
  });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`rt-server did not start in 10 s:\n${stderr}`)), 10_000);
    const lines = createInterface({ input: proc.stdout });
    lines.once('line', (line) => {
      clearTimeout(timer);
      const m = /(https?:\/\/\S+?)\/?$/.exec(line);
      if (m) resolve(m[1]);
      else reject(new Error(`unexpected first line from rt-server: ${line}`));
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`rt-server exited with ${code} before serving:\n${stderr}`));
    });
  });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  const kill = async (signal = 'SIGTERM') => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    await exited;
  };
  return { url, port: Number(new URL(url).port), token, proc, stop: () => kill('SIGTERM'), kill };
}

/** The PostgreSQL server tests use (a role that may create databases). */
export const postgresAdmin = process.env.RT_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres';
/** The Redis tests use. */
export const redisUrl = process.env.RT_TEST_REDIS ?? 'redis://127.0.0.1:6379';

let nextDb = 0;

/**
 * Creates a database of this test's own with psql (`rt_test_<pid>_js<n>`).
 * @returns {{url: string, name: string, drop: () => void}}
 */
export function createDatabase() {
  const name = `rt_test_${process.pid}_js${nextDb++}`;
  const psql = (sql) => {
    const r = spawnSync('psql', [postgresAdmin, '-v', 'ON_ERROR_STOP=1', '-qc', sql], { encoding: 'utf8' });
    if (r.error) throw new Error(`tests need psql (Debian package postgresql-client): ${r.error.message}`);
    if (r.status !== 0) throw new Error(`psql ${sql}: ${r.stderr}`);
  };
  psql(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  psql(`CREATE DATABASE "${name}"`);
  const url = postgresAdmin.replace(/\/[^/]*$/, `/${name}`);
  return { url, name, drop: () => psql(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`) };
}

/**
 * Starts `count` rt-server nodes on one fresh database and the test Redis
 * (node ids `n0`, `n1`, …), each with `args` too.
 * @returns {Promise<{db: {url: string, name: string}, nodes: Awaited<ReturnType<typeof startServer>>[], startNode: (i: number) => Promise<Awaited<ReturnType<typeof startServer>>>, stop: () => Promise<void>}>}
 */
export async function startCluster(count = 2, args = []) {
  const db = createDatabase();
  const startNode = (i) =>
    startServer(['--database', db.url, '--redis', redisUrl, '--node-id', `n${i}`, ...args]);
  const nodes = [];
  // One after the other: the first applies the migrations.
  for (let i = 0; i < count; i++) nodes.push(await startNode(i));
  return {
    db,
    nodes,
    startNode,
    stop: async () => {
      await Promise.all(nodes.map((n) => n.stop()));
      db.drop();
    },
  };
}
