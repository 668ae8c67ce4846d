// The landing page in headless Chromium: it links the four apps, loads
// without errors, and fits a phone screen.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startServer } from '../lib/server.mjs';
import { launchBrowser } from '../lib/browser.mjs';

const APPS = ['/ticker/', '/draw/', '/qa/', '/editor/'];

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

/** Saves a screenshot when RT_SCREENSHOT_DIR is set (for looking at the page). */
async function snapshot(page, name) {
  const dir = process.env.RT_SCREENSHOT_DIR;
  if (dir) await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
}

/** A page that records failed requests and script errors. */
async function watchedPage() {
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`);
  });
  return { page, problems };
}

test('the landing page links each app with a line about it', async () => {
  const { page, problems } = await watchedPage();
  await page.goto(`${server.url}/`);
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
  assert.match(await page.title(), /rt/);
  assert.equal(await page.locator('h1').count(), 1);

  const cards = await page.$$eval('main nav li', (items) =>
    items.map((li) => ({
      href: li.querySelector('a')?.getAttribute('href'),
      name: li.querySelector('a')?.textContent.trim(),
      line: li.querySelector('p')?.textContent.trim(),
    })),
  );
  assert.deepEqual(
    cards.map((c) => c.href),
    APPS,
  );
  for (const c of cards) {
    assert.ok(c.name.length > 0, `link to ${c.href} has a name`);
    assert.ok(c.line.length > 10, `link to ${c.href} has a line about it`);
  }
  await snapshot(page, 'landing-wide');
  assert.deepEqual(problems, []);
  await page.close();
});

test('the ticker link opens the ticker page', async () => {
  const { page, problems } = await watchedPage();
  await page.goto(`${server.url}/`);
  await Promise.all([page.waitForURL(`${server.url}/ticker/`), page.click('a[href="/ticker/"]')]);
  await page.locator('#symbol-input').waitFor();
  assert.deepEqual(problems, []);
  await page.close();
});

test('the landing page fits a narrow screen', async () => {
  const { page, problems } = await watchedPage();
  await page.setViewportSize({ width: 320, height: 640 });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto(`${server.url}/`);
  const { scroll, inner } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    inner: window.innerWidth,
  }));
  assert.ok(scroll <= inner, `page is ${scroll}px wide on a ${inner}px screen`);
  // The cards stack: each one starts below the previous one.
  const tops = await page.$$eval('main nav li', (items) => items.map((li) => li.getBoundingClientRect().top));
  for (let i = 1; i < tops.length; i++) assert.ok(tops[i] > tops[i - 1], 'cards stack on a narrow screen');
  await snapshot(page, 'landing-narrow-dark');
  assert.deepEqual(problems, []);
  await page.close();
});

test('every app link can be reached from the keyboard', async () => {
  const { page } = await watchedPage();
  await page.goto(`${server.url}/`);
  const reached = [];
  for (let i = 0; i < 12 && reached.length < APPS.length; i++) {
    await page.keyboard.press('Tab');
    const href = await page.evaluate(() => document.activeElement?.getAttribute('href'));
    if (APPS.includes(href)) reached.push(href);
  }
  assert.deepEqual(reached, APPS);
  await page.close();
});

// Each of the other apps: its link answers 200, the page renders its heading
// and goes live against this server, without script errors, failed requests
// or error responses on the way.
const LIVE_PAGES = [
  { href: '/draw/', heading: /Drawing board/, live: /^connected/ },
  { href: '/qa/', heading: /Q&A board/, live: /^Live$/ },
  { href: '/editor/', heading: /Collaborative editor/, live: /^connected$/ },
];

for (const { href, heading, live } of LIVE_PAGES) {
  test(`the ${href} link opens a working page`, async () => {
    const { page, problems } = await watchedPage();
    await page.goto(`${server.url}/`);
    const [response] = await Promise.all([
      page.waitForResponse(`${server.url}${href}`),
      page.waitForURL(`${server.url}${href}`),
      page.click(`a[href="${href}"]`),
    ]);
    assert.equal(response.status(), 200);
    assert.match(response.headers()['content-type'], /^text\/html/);
    assert.match(await page.locator('h1').innerText(), heading);
    const status = page.locator('#status');
    await page.waitForFunction(
      ([source, flags]) => new RegExp(source, flags).test(document.getElementById('status')?.textContent.trim() ?? ''),
      [live.source, live.flags],
      { timeout: 10_000 },
    );
    assert.match((await status.innerText()).trim(), live);
    assert.deepEqual(problems, []);
    await page.close();
  });
}
