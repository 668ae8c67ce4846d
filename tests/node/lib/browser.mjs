// Launches Debian's Chromium headless through playwright-core. Never
// downloads a browser: a missing /usr/bin/chromium is a test failure.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

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
  return {
    context,
    newPage: () => context.newPage(),
    close: async () => {
      await context.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
