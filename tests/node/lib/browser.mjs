// Launches Debian's Chromium headless through playwright-core. Never
// downloads a browser: a missing /usr/bin/chromium is a test failure.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { token } from './server.mjs';

export const CHROMIUM = process.env.RT_CHROMIUM ?? '/usr/bin/chromium';

/**
 * A fresh browser with its own throwaway profile, with `extraArgs` on its
 * command line. Close it with `close()`.
 */
export async function launchBrowser(extraArgs = []) {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install Debian's chromium (scripts/test does)`);
  }
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rt-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-quic',
      '--disable-sync',
      ...extraArgs,
    ],
  });
  // With a token (RT_TEST_TOKEN), a navigation to a server this browser has
  // no token cookie for first goes through `/?token=`, as a user would open
  // the printed URL: the server sets its cookie and redirects, and every
  // later page, stream and socket of this browser carries the cookie (a
  // test that clears cookies gets a new one on its next navigation).
  const newPage = async () => {
    const page = await context.newPage();
    if (!token) return page;
    const goto = page.goto.bind(page);
    page.goto = async (url, options) => {
      const origin = new URL(url).origin;
      const cookies = await context.cookies(origin);
      if (!cookies.some((c) => c.name.startsWith('rt_token'))) {
        const res = await goto(`${origin}/?token=${token}`);
        const landed = new URL(page.url());
        if (landed.searchParams.has('token') || !res?.ok()) {
          throw new Error(`visiting ${origin}/?token= did not set the cookie and redirect (at ${page.url()})`);
        }
      }
      return goto(url, options);
    };
    return page;
  };
  return {
    context,
    newPage,
    close: async () => {
      await context.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
