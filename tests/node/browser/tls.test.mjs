// rt over HTTPS in headless Chromium: the pages and the Q&A event stream
// come over HTTP/2 (ALPN), and the editor's WebSocket works over TLS.
// The certificate is a throwaway one made with openssl; Chromium trusts it
// by its public key's hash (--ignore-certificate-errors-spki-list).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer } from '../lib/server.mjs';
import { launchBrowser } from '../lib/browser.mjs';

let dir;
let server;
let browser;

/** A self-signed P-256 certificate for 127.0.0.1 and localhost. */
function makeCert() {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', key, '-out', cert,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  return { cert, key };
}

/** base64 of the SHA-256 of the certificate's SubjectPublicKeyInfo. */
function spkiHash(certPath) {
  const x509 = new crypto.X509Certificate(fs.readFileSync(certPath));
  const spki = x509.publicKey.export({ type: 'spki', format: 'der' });
  return crypto.createHash('sha256').update(spki).digest('base64');
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rt-tls-'));
  const { cert, key } = makeCert();
  server = await startServer(['--tls-cert', cert, '--tls-key', key]);
  browser = await launchBrowser([`--ignore-certificate-errors-spki-list=${spkiHash(cert)}`]);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('the server says https and Chromium loads the Q&A page over h2', async () => {
  assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const page = await browser.newPage();
  const res = await page.goto(`${server.url}/qa/`);
  assert.equal(res.status(), 200);
  const protocol = await page.evaluate(
    () => performance.getEntriesByType('navigation')[0].nextHopProtocol,
  );
  assert.equal(protocol, 'h2');
  await page.close();
});

test('an EventSource streams Q&A events over h2', async () => {
  const page = await browser.newPage();
  await page.goto(`${server.url}/healthz`);
  const got = await page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no login event in 10 s')), 10_000);
        const es = new EventSource('/login');
        es.addEventListener('login', (e) => {
          clearTimeout(timer);
          es.close();
          resolve(e.data);
        });
      }),
  );
  // The login event names this client's new identity.
  assert.ok(got.length > 0, `login data: ${got}`);
  // Several streams at once share the one h2 connection: eight exceed
  // HTTP/1.1's six per origin, and all open.
  const opened = await page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('not all streams opened in 10 s')), 10_000);
        const streams = [];
        let n = 0;
        for (let i = 0; i < 8; i++) {
          const es = new EventSource('/login');
          streams.push(es);
          es.addEventListener('login', () => {
            n += 1;
            if (n === 8) {
              clearTimeout(timer);
              streams.forEach((s) => s.close());
              resolve(n);
            }
          });
        }
      }),
  );
  assert.equal(opened, 8);
  await page.close();
});

test('the editor WebSocket works over TLS', async () => {
  const page = await browser.newPage();
  await page.goto(`${server.url}/healthz`);
  const first = await page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no handshake reply in 10 s')), 10_000);
        const ws = new WebSocket(`wss://${location.host}/`);
        ws.onopen = () => ws.send(JSON.stringify({ a: 'hs', id: null }));
        ws.onerror = () => reject(new Error('WebSocket error'));
        ws.onmessage = (e) => {
          clearTimeout(timer);
          ws.close();
          resolve(JSON.parse(e.data));
        };
      }),
  );
  assert.equal(first.a, 'hs');
  await page.close();
});
