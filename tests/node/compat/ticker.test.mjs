// The stock ticker as the classic browser client and the npm `eventsource`
// package see it: AJAX polling on `/?symbol=` and the `/ticker/stream` SSE.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import { authHeaders, startServer, withToken } from '../lib/server.mjs';

const NUMERIC = ['latestPrice', 'change', 'changePercent', 'open', 'high', 'low', 'previousClose', 'volume', 'latestUpdate'];
const POLL_MS = 200;

let server;
before(async () => {
  server = await startServer(['--tick-ms', '50', '--poll-ms', String(POLL_MS), '--seed', '7']);
});
after(async () => {
  await server?.stop();
});

async function poll(symbol) {
  const res = await fetch(`${server.url}/?symbol=${encodeURIComponent(symbol)}`, { headers: authHeaders() });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^application\/json/);
  return res.json();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test('a poll answers a quote with numeric fields and a positive callIn', async () => {
  const data = await poll('IBM');
  assert.equal(data.quote.symbol, 'IBM');
  assert.equal(typeof data.quote.companyName, 'string');
  for (const f of NUMERIC) {
    assert.equal(typeof data.quote[f], 'number', f);
    assert.ok(Number.isFinite(data.quote[f]), f);
  }
  assert.equal(data.callIn, POLL_MS);
  assert.ok(data.callIn > 0);
});

test('a later poll yields changed numbers', async () => {
  const first = await poll('IBM');
  let changed = false;
  for (let i = 0; i < 30 && !changed; i++) {
    await sleep(first.callIn);
    const next = await poll('IBM');
    changed = next.quote.latestPrice !== first.quote.latestPrice && next.quote.volume > first.quote.volume;
  }
  assert.ok(changed, 'price and volume moved');
});

/**
 * The classic page's loop: poll, and if `callIn` is truthy poll again after
 * that many ms; stop otherwise. Bounded to `limit` polls for the test.
 */
async function classicClient(symbol, limit) {
  const seen = [];
  let callIn = 1;
  while (callIn && seen.length < limit) {
    await sleep(Math.min(callIn, POLL_MS));
    const res = await fetch(`${server.url}/?symbol=${encodeURIComponent(symbol)}`, { headers: authHeaders() });
    const data = JSON.parse(await res.text());
    seen.push(data);
    callIn = data.callIn;
  }
  return seen;
}

test('an invalid symbol gets callIn null and the classic client stops', async () => {
  for (const bad of ['<script>alert(1)</script>', 'WAYTOOLONGSYMBOL', 'ÄPFEL', '']) {
    const seen = await classicClient(bad, 5);
    assert.equal(seen.length, 1, `stopped after one poll for ${JSON.stringify(bad)}`);
    assert.equal(seen[0].callIn, null);
    assert.equal(typeof seen[0].error, 'string');
    assert.equal(seen[0].quote, undefined);
  }
  const good = await classicClient('MSFT', 3);
  assert.equal(good.length, 3, 'a valid symbol keeps polling');
  assert.ok(good.every((d) => d.quote.symbol === 'MSFT' && d.callIn === POLL_MS));
});

test('the SSE stream delivers quote events to the eventsource package', async () => {
  const es = new EventSource(withToken(`${server.url}/ticker/stream?symbols=IBM,MSFT`));
  try {
    const events = await new Promise((resolve, reject) => {
      const got = [];
      const timer = setTimeout(() => reject(new Error(`only ${got.length} events in 10 s`)), 10_000);
      es.addEventListener('quote', (e) => {
        got.push(e);
        if (got.length === 6) {
          clearTimeout(timer);
          resolve(got);
        }
      });
      es.addEventListener('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`stream error: ${e.message ?? e.type}`));
      });
    });
    const ids = events.map((e) => Number(e.lastEventId));
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1], `ids increase: ${ids}`);
    const quotes = events.map((e) => JSON.parse(e.data));
    assert.deepEqual(quotes.slice(0, 2).map((q) => q.symbol), ['IBM', 'MSFT']);
    for (const q of quotes) {
      assert.ok(['IBM', 'MSFT'].includes(q.symbol));
      for (const f of NUMERIC) assert.equal(typeof q[f], 'number', f);
    }
  } finally {
    es.close();
  }
});

test('a bad stream request fails the EventSource without reconnecting', async () => {
  const res = await fetch(`${server.url}/ticker/stream?symbols=%3Cscript%3E`, { headers: authHeaders() });
  assert.equal(res.status, 400);
  assert.match((await res.json()).error, /symbol 1/);
  const es = new EventSource(withToken(`${server.url}/ticker/stream?symbols=`));
  await new Promise((resolve) => es.addEventListener('error', resolve, { once: true }));
  assert.equal(es.readyState, EventSource.CLOSED);
  es.close();
});
