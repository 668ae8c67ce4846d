// The Q&A page in headless Chromium: two pages see each other's questions
// and answers within a second, hostile text stays text, votes and ordering
// work, refusals show as notifications.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { authHeaders, startServer, tuiBin } from '../lib/server.mjs';
import { launchBrowser } from '../lib/browser.mjs';

let server;
// Two browsers, so the two pages are two users (pages of one browser share
// the identity cookie, like tabs).
let browsers = [];

before(async () => {
  server = await startServer();
  browsers = [await launchBrowser(), await launchBrowser()];
});

after(async () => {
  for (const b of browsers) await b.close();
  await server?.stop();
});

async function snapshot(page, name) {
  const dir = process.env.RT_SCREENSHOT_DIR;
  if (dir) await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
}

/** A Q&A page that is connected (its login arrived), recording script errors. */
async function openBoard(which = 0) {
  const page = await browsers[which].newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    d.dismiss();
  });
  await page.goto(`${server.url}/qa/`);
  await page.locator('#status[data-state="live"]').waitFor({ timeout: 5000 });
  return { page, problems };
}

/** `rt-tui qa listen` as a third client: its JSON lines, parsed. */
function listen() {
  const proc = spawn(tuiBin(), ['qa', 'listen', '--url', server.url], { stdio: ['ignore', 'pipe', 'pipe'] });
  const events = [];
  const waiters = [];
  createInterface({ input: proc.stdout }).on('line', (line) => {
    events.push({ ...JSON.parse(line), at: Date.now() });
    for (const w of [...waiters]) w();
  });
  return {
    events,
    waitFor(pred, ms = 1000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const e = events.find(pred);
          if (e) {
            waiters.splice(waiters.indexOf(check), 1);
            clearTimeout(timer);
            resolve(e);
          }
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(check), 1);
          reject(new Error(`rt-tui qa listen saw nothing matching in ${ms} ms: ${JSON.stringify(events)}`));
        }, ms);
        waiters.push(check);
        check();
      });
    },
    stop: () => proc.kill('SIGTERM'),
  };
}

const question = (page, text) => page.locator('#questions li.question', { hasText: text });

async function ask(page, text) {
  await page.fill('#ask-input', text);
  await page.click('#ask-form button[type="submit"]');
}

test('two pages and rt-tui see each other within a second; hostile text stays inert', async () => {
  const a = await openBoard();
  const b = await openBoard(1);
  const tui = listen();
  await tui.waitFor((e) => e.event === 'login', 5000);

  let t0 = Date.now();
  await ask(a.page, 'Who reads this first?');
  await question(b.page, 'Who reads this first?').waitFor({ timeout: 1000 });
  assert.ok(Date.now() - t0 < 1000);

  t0 = Date.now();
  await ask(b.page, 'And the reply?');
  await question(a.page, 'And the reply?').waitFor({ timeout: 1000 });
  assert.ok(Date.now() - t0 < 1000);
  // The terminal client saw both questions too.
  await tui.waitFor((e) => e.data?.type === 'questions' && 'And the reply?' in e.data.questions);

  // A question from the terminal reaches both pages.
  t0 = Date.now();
  const asked = spawn(tuiBin(), ['qa', 'ask', 'From the terminal', '--url', server.url], { stdio: 'ignore' });
  const code = await new Promise((resolve) => asked.once('exit', resolve));
  assert.equal(code, 0);
  await question(a.page, 'From the terminal').waitFor({ timeout: 1000 });
  await question(b.page, 'From the terminal').waitFor({ timeout: 1000 });
  assert.ok(Date.now() - t0 < 2000);

  // Both follow the first question; B answers, A sees it.
  await question(a.page, 'Who reads this first?').locator('.question-text').click();
  await question(b.page, 'Who reads this first?').locator('.question-text').click();
  await b.page.locator('#followed', { hasText: 'Who reads this first?' }).waitFor();
  t0 = Date.now();
  await b.page.fill('#answer-input', 'B does.');
  await b.page.click('#answer-form button[type="submit"]');
  await a.page.locator('#answers li', { hasText: 'B does.' }).waitFor({ timeout: 1000 });
  assert.ok(Date.now() - t0 < 1000);
  await question(a.page, 'Who reads this first?').locator('.question-meta', { hasText: '1 answer' }).waitFor();

  // Markup in a question is shown as text and runs nothing.
  const hostile = '<img src=x onerror="window.__xss=1;alert(1)">';
  await ask(a.page, hostile);
  for (const p of [a.page, b.page]) {
    const item = question(p, hostile);
    await item.waitFor({ timeout: 1000 });
    assert.equal(await item.locator('.question-text').textContent(), hostile);
    assert.equal(await p.locator('#questions img').count(), 0);
    assert.equal(await p.evaluate(() => window.__xss), undefined);
  }
  // …and as an answer.
  await a.page.fill('#answer-input', '<script>window.__xss=2</script><b>bold</b>');
  await a.page.click('#answer-form button[type="submit"]');
  const ans = b.page.locator('#answers li', { hasText: '<b>bold</b>' });
  await ans.waitFor({ timeout: 1000 });
  assert.equal(await b.page.locator('#answers b, #answers script').count(), 0);
  assert.equal(await b.page.evaluate(() => window.__xss), undefined);

  // Three users (two pages and the terminal): each question names its
  // asker's public handle.
  const authors = await b.page.locator('#questions .question-meta').allTextContents();
  assert.equal(new Set(authors.map((t) => t.split(' · ')[0])).size, 3, authors.join(' | '));

  await snapshot(a.page, 'qa');
  // The hostile question reached the terminal client as plain data.
  await tui.waitFor((e) => e.data?.type === 'questions' && hostile in e.data.questions);
  tui.stop();

  assert.deepEqual(a.problems, []);
  assert.deepEqual(b.problems, []);
  await a.page.close();
  await b.page.close();
});

test('votes reorder the top list and reach other pages', async () => {
  const a = await openBoard();
  const b = await openBoard(1);
  await ask(a.page, 'older question');
  await question(a.page, 'older question').waitFor();
  await ask(a.page, 'newer question');
  await question(b.page, 'newer question').waitFor();
  // Newest first by default.
  const texts = async (p) => p.locator('#questions .question-text').allTextContents();
  assert.equal((await texts(b.page)).indexOf('newer question') < (await texts(b.page)).indexOf('older question'), true);
  // A votes for the older one; B sees the count, and "Top" puts it first.
  await question(a.page, 'older question').locator('.vote').click();
  await question(a.page, 'older question').locator('.vote[aria-pressed="true"]').waitFor();
  await question(b.page, 'older question').locator('.vote', { hasText: '▲ 1' }).waitFor({ timeout: 1000 });
  await b.page.click('#sort-top');
  assert.equal((await texts(b.page))[0], 'older question');
  // Voting again withdraws the vote.
  await question(a.page, 'older question').locator('.vote').click();
  await question(b.page, 'older question').locator('.vote', { hasText: '▲ 0' }).waitFor({ timeout: 1000 });
  assert.deepEqual(a.problems, []);
  assert.deepEqual(b.problems, []);
  await a.page.close();
  await b.page.close();
});

test('a refused action shows the server notification', async () => {
  const a = await openBoard();
  // Too long for the server (the input's maxlength is bypassed on purpose).
  await a.page.evaluate(() => document.getElementById('ask-input').removeAttribute('maxlength'));
  await ask(a.page, 'x'.repeat(301));
  await a.page.locator('#notice:not([hidden])', { hasText: 'too long' }).waitFor({ timeout: 2000 });
  assert.deepEqual(a.problems, []);
  await a.page.close();
});

test('the page keeps its board through a server restart and catches up', async () => {
  const fs = await import('node:fs');
  const os = await import('node:os');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rt-qa-browser-'));
  const data = path.join(dir, 'rt.db');
  const first = await startServer(['--data', data]);
  const page = await browsers[0].newPage();
  let second;
  try {
    await page.goto(`${first.url}/qa/`);
    await page.locator('#status[data-state="live"]').waitFor({ timeout: 5000 });
    await ask(page, 'asked before the restart');
    await question(page, 'asked before the restart').waitFor({ timeout: 1000 });
    await first.kill('SIGKILL');
    await page.locator('#status[data-state="reconnecting"], #status[data-state="offline"]').waitFor({ timeout: 5000 });
    // The list stays while the page is disconnected.
    assert.equal(await question(page, 'asked before the restart').count(), 1);
    second = await startServer(['--data', data, '--bind', `127.0.0.1:${first.port}`]);
    // Asked on the new server, possibly before the page is back: it arrives once.
    const res = await fetch(`${second.url}/login`, { headers: authHeaders() });
    const reader = res.body.getReader();
    let text = '';
    while (!/event: login\nid: \d+\ndata: "([0-9a-f]+)"/.test(text)) {
      const { value } = await reader.read();
      text += new TextDecoder().decode(value);
    }
    const other = /data: "([0-9a-f]+)"/.exec(text)[1];
    await reader.cancel();
    const post = await fetch(`${second.url}/askquestion/${encodeURIComponent('asked while away')}`, {
      method: 'POST',
      headers: { ...authHeaders(), _sse_user_id_: other },
    });
    assert.equal(post.status, 200);
    await question(page, 'asked while away').waitFor({ timeout: 10000 });
    await page.locator('#status[data-state="live"]').waitFor({ timeout: 5000 });
    assert.equal(await question(page, 'asked while away').count(), 1);
    assert.equal(await question(page, 'asked before the restart').count(), 1);
  } finally {
    await page.close();
    await second?.stop();
    await first.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a classic-style client (EventSource and XMLHttpRequest) works unchanged', async () => {
  // A first visit: no identity cookie from the earlier tests.
  await browsers[1].context.clearCookies();
  const page = await browsers[1].newPage();
  // Any same-origin page will do; the client below is the classic pattern.
  await page.goto(`${server.url}/healthz`);
  const result = await page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const seen = { questions: [], answers: [], notifications: [] };
        let userId = null;
        const post = (path) => {
          const xhr = new XMLHttpRequest();
          xhr.open('POST', path);
          xhr.setRequestHeader('_sse_user_id_', userId);
          xhr.send();
        };
        const es = new EventSource('/login');
        es.addEventListener('login', (e) => {
          userId = JSON.parse(e.data);
          post(`/addanswer/${encodeURIComponent('no selection yet')}`);
        });
        es.onmessage = (e) => {
          const data = JSON.parse(e.data);
          if (data.type === 'questions') {
            seen.questions.push(Object.keys(data.questions));
            if (!Object.keys(data.questions).includes('classic?')) return;
            post(`/selectquestion/${encodeURIComponent('classic?')}`);
          } else if (data.type === 'answers') {
            seen.answers.push(data.answers);
            if (data.answers.length === 0) post(`/addanswer/${encodeURIComponent('works')}`);
            else {
              es.close();
              resolve({ userId, ...seen });
            }
          } else if (data.type === 'notification') {
            seen.notifications.push(data.message);
            post(`/askquestion/${encodeURIComponent('classic?')}`);
          }
        };
        setTimeout(() => reject(new Error(`timed out: ${JSON.stringify(seen)}`)), 5000);
      }),
  );
  assert.match(result.userId, /^[0-9a-f]{32}$/);
  assert.deepEqual(result.notifications, ['Please select a question to answer']);
  assert.ok(result.questions.at(-1).includes('classic?'));
  assert.deepEqual(result.answers.at(-1), ['works']);
  await page.close();
});
