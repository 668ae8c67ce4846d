// Server memory per open Q&A event stream, plain and over TLS: starts a
// fresh rt-server for each mode, opens N `GET /login` streams, waits until
// every one has had its `login` event, lets the server settle, and reports
// the growth of the server's RSS divided by N.
//
//   node bench/sse-tls-memory.mjs [N]      (N = 2000 by default)
//
// Modes: `plain` (HTTP/1.1, the lean writer), `tls-h1` (one TLS connection
// per stream, hyper) and `tls-h2` (HTTP/2 over TLS, up to 256 streams per
// connection, hyper). RT_SERVER_BIN names the server (a release build for
// figures worth keeping). Loopback only; bounded by a timeout per mode.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { startServer } from '../lib/server.mjs';

const N = Number(process.argv[2] ?? 2000);
const H2_STREAMS_PER_CONNECTION = 256;
const OPEN_TIMEOUT_MS = 120_000;
const SETTLE_MS = 2000;

function rssKib(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves once `stream` has delivered a `login` event. */
function untilLogin(stream) {
  return new Promise((resolve, reject) => {
    let seen = '';
    stream.setEncoding('utf8');
    const onData = (chunk) => {
      seen += chunk;
      if (seen.includes('event: login')) {
        stream.off('data', onData);
        stream.resume();
        resolve();
      }
    };
    stream.on('data', onData);
    stream.once('error', reject);
    stream.once('end', () => reject(new Error('stream ended before login')));
  });
}

/** Opens streams with at most `limit` being opened at once. */
async function openAll(open, limit = 128) {
  let next = 0;
  const worker = async () => {
    while (next < N) {
      next += 1;
      await open();
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
}

async function measure(mode, tlsFiles) {
  const args = tlsFiles ? ['--tls-cert', tlsFiles.cert, '--tls-key', tlsFiles.key] : [];
  // Room for every stream: one connection each except over h2.
  args.push('--max-connections', String(N + 100));
  const server = await startServer(args);
  const closers = [];
  try {
    await sleep(500);
    const before = rssKib(server.proc.pid);
    const { port } = server;
    let open;
    if (mode === 'plain' || mode === 'tls-h1') {
      const agent =
        mode === 'plain'
          ? new http.Agent({ keepAlive: false, maxSockets: Infinity })
          : new https.Agent({ keepAlive: false, maxSockets: Infinity, ca: tlsFiles.pem });
      const lib = mode === 'plain' ? http : https;
      closers.push(() => agent.destroy());
      open = () =>
        new Promise((resolve, reject) => {
          const req = lib.get(
            { host: '127.0.0.1', port, path: '/login', agent, servername: 'localhost' },
            (res) => untilLogin(res).then(resolve, reject),
          );
          req.once('error', reject);
        });
    } else {
      const sessions = [];
      let opened = 0;
      open = async () => {
        const i = Math.floor(opened / H2_STREAMS_PER_CONNECTION);
        opened += 1;
        if (!sessions[i]) {
          sessions[i] = http2.connect(`https://localhost:${port}`, { ca: tlsFiles.pem });
          closers.push(() => sessions[i].destroy());
        }
        const stream = sessions[i].request({ ':path': '/login' });
        await untilLogin(stream);
      };
    }
    const timer = sleep(OPEN_TIMEOUT_MS).then(() => {
      throw new Error(`${mode}: not all ${N} streams opened in ${OPEN_TIMEOUT_MS / 1000} s`);
    });
    await Promise.race([openAll(open), timer]);
    await sleep(SETTLE_MS);
    const after = rssKib(server.proc.pid);
    return { mode, streams: N, rss_before_kib: before, rss_after_kib: after, kib_per_stream: +((after - before) / N).toFixed(2) };
  } finally {
    for (const close of closers) close();
    await server.stop();
  }
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rt-tls-bench-'));
try {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost',
    '-keyout', key, '-out', cert,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  const tlsFiles = { cert, key, pem: fs.readFileSync(cert) };
  for (const mode of ['plain', 'tls-h1', 'tls-h2']) {
    console.log(JSON.stringify(await measure(mode, mode === 'plain' ? null : tlsFiles)));
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
