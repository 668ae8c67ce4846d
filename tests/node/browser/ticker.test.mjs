// The ticker page in headless Chromium, against a real rt-server with a fast
// market: quotes appear and change, a symbol the server refuses stops its
// polling, the watchlist survives a reload. A second group stubs the poll
// answers to pin down the classic client's `callIn` rule exactly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startServer } from '../lib/server.mjs';
import { launchBrowser } from '../lib/browser.mjs';

const POLL_MS = 300;
const SERVER_ARGS = ['--tick-ms', '200', '--poll-ms', String(POLL_MS)];
const LIST_KEY = 'rt.ticker.watchlist';

let server;

before(async () => {
  server = await startServer(SERVER_ARGS);
});

after(async () => {
  await server?.stop();
});

/** Saves a screenshot when RT_SCREENSHOT_DIR is set (for looking at the page). */
async function snapshot(page, name) {
  const dir = process.env.RT_SCREENSHOT_DIR;
  if (dir) await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
}

/**
 * A fresh browser (its own localStorage) on the ticker page with `symbols`
 * as the watchlist. `stub(url, route)` may answer poll requests itself.
 * Every poll request is recorded as `{symbol, at}`.
 */
async function openTicker(t, symbols, stub) {
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  t.after(() => assert.deepEqual(errors, [], 'no script errors'));
  const polls = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname === '/' && u.searchParams.has('symbol')) {
      polls.push({ symbol: u.searchParams.get('symbol'), at: Date.now() });
    }
  });
  if (stub) {
    await page.route(
      (u) => u.pathname === '/' && u.searchParams.has('symbol'),
      (route) => stub(new URL(route.request().url()).searchParams.get('symbol'), route),
    );
  }
  // Seed the watchlist before the page's scripts run, on the first load only.
  await page.addInitScript(
    ([key, list]) => {
      if (!sessionStorage.getItem('seeded')) {
        sessionStorage.setItem('seeded', '1');
        localStorage.setItem(key, JSON.stringify(list));
      }
    },
    [LIST_KEY, symbols],
  );
  await page.goto(`${server.url}/ticker/`);
  const count = (symbol) => polls.filter((p) => p.symbol === symbol).length;
  return { browser, page, polls, count };
}

/** The row of `symbol` as a locator. */
function row(page, symbol) {
  return page.locator('#rows tr').filter({ has: page.getByRole('button', { name: symbol, exact: true }) });
}

function cell(page, symbol, field) {
  return row(page, symbol).locator(`td[data-field="${field}"]`);
}

async function waitFor(what, fn, ms = 10_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// --- against the real server ----------------------------------------------

test('a quote appears, changes, flashes and is charted', async (t) => {
  const { page } = await openTicker(t, ['IBM']);
  // Record every flash, since each one lasts under a second.
  await page.evaluate(() => {
    window.flashes = [];
    new MutationObserver((records) => {
      for (const r of records) {
        for (const c of ['flash-up', 'flash-down']) {
          if (r.target.classList.contains(c)) window.flashes.push(c);
        }
      }
    }).observe(document.getElementById('rows'), { subtree: true, attributeFilter: ['class'] });
  });
  const price = cell(page, 'IBM', 'latestPrice').locator('.value');
  const first = await waitFor('a first IBM price', async () => {
    const s = await price.textContent();
    return /\d/.test(s) ? s : null;
  });
  await waitFor('the IBM price to change', async () => (await price.textContent()) !== first);
  assert.match(await cell(page, 'IBM', 'status').textContent(), /live/);
  const dir = await cell(page, 'IBM', 'latestPrice').getAttribute('data-dir');
  assert.ok(dir === 'up' || dir === 'down', `price cell has a direction, got ${dir}`);
  const mark = await cell(page, 'IBM', 'latestPrice').locator('.mark').textContent();
  assert.equal(mark, dir === 'up' ? '▲' : '▼');
  const flashes = await page.evaluate(() => window.flashes);
  assert.ok(flashes.length > 0, 'a changed field flashed');
  assert.match(await page.locator('#chart-title').textContent(), /^IBM/);
  const overflow = await page.$eval('.table-wrap', (w) => w.scrollWidth - w.clientWidth);
  assert.ok(overflow <= 0, `the table fits a ${page.viewportSize().width}px window (${overflow}px too wide)`);
  await snapshot(page, 'ticker-wide');

  // The chart is drawn at the screen's pixel density, also after it changes.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Emulation.setDeviceMetricsOverride', { width: 1000, height: 800, deviceScaleFactor: 2, mobile: false });
  await waitFor('the chart to follow devicePixelRatio 2', () =>
    page.evaluate(() => {
      const c = document.getElementById('chart');
      return window.devicePixelRatio === 2 && c.width === Math.round(c.clientWidth * 2) && c.height === Math.round(c.clientHeight * 2);
    }),
  );
  const inked = await page.evaluate(() => {
    const c = document.getElementById('chart');
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
    return n;
  });
  assert.ok(inked > 2000, `the chart has a line and axes (${inked} pixels drawn)`);
  assert.match(await page.locator('#chart').getAttribute('aria-label'), /IBM: \d+ quotes/);
});

test('a symbol the server refuses stops polling', async (t) => {
  const bad = '<B>BAD</B>';
  const { page, count } = await openTicker(t, ['IBM']);
  await page.fill('#symbol-input', '<b>bad</b>');
  await page.click('#add-form button');
  const status = cell(page, bad, 'status');
  await waitFor('the stopped status', async () => /stopped: invalid symbol/.test(await status.textContent()));
  assert.equal(count(bad), 1);
  const ibmBefore = count('IBM');
  await sleep(POLL_MS * 5);
  assert.equal(count(bad), 1, 'no poll after callIn null');
  assert.ok(count('IBM') >= ibmBefore + 3, 'the other row keeps polling');
  // The hostile symbol is shown as text, never as markup.
  assert.equal(await page.locator('#rows b').count(), 0);
  assert.equal(await row(page, bad).locator('.sym').textContent(), bad);
  assert.ok(await row(page, bad).getByRole('button', { name: `Remove ${bad}` }).isVisible());
  const overflow = await page.$eval('.table-wrap', (w) => w.scrollWidth - w.clientWidth);
  assert.ok(overflow <= 0, `the table fits the window (${overflow}px too wide)`);
  await snapshot(page, 'ticker-stopped');
});

test('the watchlist survives a reload and removing a symbol stops its polling', async (t) => {
  const { page, count } = await openTicker(t, ['IBM', 'MSFT']);
  await page.fill('#symbol-input', ' aapl ');
  await page.press('#symbol-input', 'Enter');
  await waitFor('an AAPL price', async () => /\d/.test(await cell(page, 'AAPL', 'latestPrice').textContent()));
  await page.fill('#symbol-input', 'ibm');
  await page.press('#symbol-input', 'Enter');
  assert.match(await page.locator('#form-message').textContent(), /IBM is already on the watchlist/);

  await row(page, 'MSFT').getByRole('button', { name: 'Remove MSFT' }).click();
  await row(page, 'AAPL').getByRole('button', { name: 'AAPL', exact: true }).click();
  assert.equal(await row(page, 'AAPL').locator('.sym').getAttribute('aria-pressed'), 'true');
  await sleep(POLL_MS); // a poll in flight at removal may still land
  const msft = count('MSFT');
  await sleep(POLL_MS * 4);
  assert.equal(count('MSFT'), msft, 'a removed symbol is not polled');

  await page.reload();
  const symbols = await page.$$eval('#rows .sym', (bs) => bs.map((b) => b.textContent));
  assert.deepEqual(symbols, ['IBM', 'AAPL']);
  assert.equal(await row(page, 'AAPL').locator('.sym').getAttribute('aria-pressed'), 'true');
  await waitFor('quotes after the reload', async () => /\d/.test(await cell(page, 'AAPL', 'latestPrice').textContent()));
});

test('two tabs share one watchlist', async (t) => {
  const { browser, page: a } = await openTicker(t, ['IBM', 'MSFT']);
  const b = await browser.newPage();
  const bErrors = [];
  b.on('pageerror', (e) => bErrors.push(e.message));
  const bPolls = [];
  b.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname === '/' && u.searchParams.has('symbol')) bPolls.push(u.searchParams.get('symbol'));
  });
  await b.goto(`${server.url}/ticker/`);
  const symbolsOf = (page) => page.$$eval('#rows .sym', (bs) => bs.map((x) => x.textContent));
  assert.deepEqual(await symbolsOf(b), ['IBM', 'MSFT']);

  await a.fill('#symbol-input', 'nvda');
  await a.press('#symbol-input', 'Enter');
  await waitFor('NVDA in the other tab', async () => (await symbolsOf(b)).includes('NVDA'));
  await waitFor('an NVDA price in the other tab', async () => /\d/.test(await cell(b, 'NVDA', 'latestPrice').textContent()));

  // Removing from the keyboard keeps focus in the list.
  await row(a, 'IBM').getByRole('button', { name: 'Remove IBM' }).focus();
  await a.keyboard.press('Enter');
  assert.equal(await a.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Remove MSFT');
  await waitFor('IBM gone from the other tab', async () => !(await symbolsOf(b)).includes('IBM'));
  assert.deepEqual(await symbolsOf(b), ['MSFT', 'NVDA']);
  await sleep(POLL_MS);
  const ibm = bPolls.filter((s) => s === 'IBM').length;
  await sleep(POLL_MS * 4);
  assert.equal(bPolls.filter((s) => s === 'IBM').length, ibm, 'the other tab stopped polling IBM');
  assert.deepEqual(bErrors, []);
});

test('the ticker page fits a narrow screen', async (t) => {
  const { page } = await openTicker(t, ['IBM', 'AAPL', 'BRK.B']);
  await page.setViewportSize({ width: 360, height: 740 });
  await page.emulateMedia({ colorScheme: 'dark' });
  await waitFor('prices', async () => /\d/.test(await cell(page, 'BRK.B', 'latestPrice').textContent()));
  const { scroll, inner } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    inner: window.innerWidth,
  }));
  assert.ok(scroll <= inner, `page is ${scroll}px wide on a ${inner}px screen`);
  assert.ok(await cell(page, 'IBM', 'status').isVisible(), 'status stays visible');
  assert.ok(await row(page, 'IBM').getByRole('button', { name: 'Remove IBM' }).isVisible());
  await snapshot(page, 'ticker-narrow-dark');
});

// --- stubbed answers: the classic client's callIn rule --------------------

function quote(symbol, price) {
  return { symbol, companyName: `${symbol} Inc.`, latestPrice: price, change: 0, changePercent: 0, open: 1, high: 1, low: 1, previousClose: 1, volume: 1 };
}

function json(route, body) {
  return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(body) });
}

test('callIn paces polling and a falsy callIn stops it', async (t) => {
  let price = 10;
  const answers = {
    PACE: () => ({ quote: quote('PACE', (price += 1)), callIn: 250 }),
    ZERO: () => ({ quote: quote('ZERO', 5), callIn: 0 }),
    NULL: () => ({ error: 'Unknown symbol', callIn: null }),
    NONE: () => ({ quote: quote('NONE', 5) }),
    ERR: () => ({ error: 'Received empty data set', callIn: 250 }),
  };
  const { page, polls, count } = await openTicker(t, Object.keys(answers), (symbol, route) => json(route, answers[symbol]()));
  await sleep(2000);

  // PACE: one poll per callIn, measured from the previous answer.
  const times = polls.filter((p) => p.symbol === 'PACE').map((p) => p.at);
  assert.ok(times.length >= 4 && times.length <= 9, `PACE polled ${times.length} times in 2 s at callIn 250`);
  // Times are taken when the test hears of each request, which may lag a
  // little; the browser itself never polls sooner than callIn.
  for (let i = 1; i < times.length; i++) {
    assert.ok(times[i] - times[i - 1] >= 200, `PACE polls ${times[i] - times[i - 1]} ms apart`);
  }
  assert.match(await cell(page, 'PACE', 'latestPrice').textContent(), /\d/);

  // callIn 0, null or missing: one poll, then stop; the classic client renders nothing.
  for (const s of ['ZERO', 'NULL', 'NONE']) {
    assert.equal(count(s), 1, `${s} polled once`);
    assert.match(await cell(page, s, 'status').textContent(), /stopped: invalid symbol/);
    assert.equal(await cell(page, s, 'latestPrice').locator('.value').textContent(), '—');
  }
  assert.match(await cell(page, 'NULL', 'status').textContent(), /Unknown symbol/);

  // An error with a callIn is shown, and polling goes on.
  assert.ok(count('ERR') >= 4 && count('ERR') <= 9, `ERR polled ${count('ERR')} times`);
  assert.match(await cell(page, 'ERR', 'status').textContent(), /error: Received empty data set/);
});

test('server text is shown as text and broken answers are retried with back-off', async (t) => {
  const hostile = '<img src=x onerror="window.pwned=1">';
  let broken = 0;
  const { page, count } = await openTicker(t, ['EVIL', 'DOWN'], (symbol, route) => {
    if (symbol === 'EVIL') return json(route, { quote: { ...quote('EVIL', 1), companyName: hostile }, callIn: 250 });
    broken += 1;
    return route.fulfill({ status: 200, contentType: 'text/html', body: '<html>not json</html>' });
  });
  await waitFor('the EVIL company name', async () => (await row(page, 'EVIL').locator('.company').textContent()) === hostile);
  assert.equal(await page.locator('#rows img').count(), 0);
  assert.equal(await page.evaluate(() => window.pwned), undefined);
  assert.match(await page.locator('#chart-title').textContent(), /img src=x/);
  await waitFor('the offline status', async () => /offline, retrying/.test(await cell(page, 'DOWN', 'status').textContent()));
  await sleep(2500);
  // Back-off of 1 s then 2 s: at most three tries in about 2.6 s.
  assert.ok(count('DOWN') >= 2 && count('DOWN') <= 3, `DOWN tried ${count('DOWN')} times`);
  assert.equal(broken, count('DOWN'));
});
