// The dashboard's browser tests drive Debian's Chromium (not a browser
// Playwright downloads: playwright-core fetches nothing, so the tests need no
// network beyond the npm registry) and check each page with axe-core.
// `cargo xtask test` installs both: Chromium with apt, this directory's
// pinned packages with `npm ci`.

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);

/** The axe-core build injected into pages, from this directory's node_modules. */
const AXE_PATH = require.resolve('axe-core/axe.min.js');

/** Its source, read once. */
let axeSource;

/** The WCAG levels checked: A and AA of WCAG 2.0. */
const AXE_TAGS = ['wcag2a', 'wcag2aa'];

/** Violations at these impacts fail a test; 'minor' and 'moderate' do not. */
const FAILING_IMPACTS = new Set(['serious', 'critical']);

/** How many node targets a reported violation lists. */
const TARGETS_SHOWN = 5;

/**
 * Starts Chromium headless with a fresh profile in a temporary directory
 * (`XLA_CHROMIUM` names another executable than /usr/bin/chromium). A
 * persistent context is the one way to hand Chromium its own profile
 * directory, so no run sees another's cookies or cache; the directory is
 * removed when the context closes. Background networking, component updates
 * and sync are off, so the browser makes no requests of its own.
 *
 * @returns {Promise<import('playwright-core').BrowserContext>}
 */
export async function launch() {
  const userDataDir = await mkdtemp(join(tmpdir(), 'xla-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: process.env.XLA_CHROMIUM || '/usr/bin/chromium',
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  } catch (error) {
    await rm(userDataDir, { recursive: true, force: true });
    throw error;
  }
  context.on('close', () => rm(userDataDir, { recursive: true, force: true }).catch(() => {}));
  // `close` resolves before the listener's removal finishes; wrap it so a
  // caller that awaits close() finds the directory gone.
  const close = context.close.bind(context);
  context.close = async (...args) => {
    await close(...args);
    await rm(userDataDir, { recursive: true, force: true });
  };
  return context;
}

/**
 * Runs axe-core's WCAG 2 A and AA rules on `page` and returns the serious
 * and critical violations, each as { id, impact, help, targets } with the
 * first few offending nodes' selectors; an empty array means the page passes.
 *
 * axe is evaluated through the DevTools protocol, not added as a <script>:
 * the dashboard's content security policy (`script-src 'self'`) blocks an
 * inline script, as it should, while the protocol's evaluation is not the
 * page's script. The page's policy stays on (no bypassCSP), so a violation
 * by the page itself still reaches the console.
 *
 * @param {import('playwright-core').Page} page
 */
export async function checkAccessibility(page) {
  axeSource ??= await readFile(AXE_PATH, 'utf8');
  if (!(await page.evaluate(() => typeof globalThis.axe === 'object'))) {
    await page.evaluate(axeSource);
  }
  const violations = await page.evaluate(
    async (tags) => (await globalThis.axe.run(document, { runOnly: tags })).violations,
    AXE_TAGS,
  );
  return violations
    .filter((v) => FAILING_IMPACTS.has(v.impact))
    .map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.slice(0, TARGETS_SHOWN).map((n) => n.target),
    }));
}

/**
 * Collects what should never happen on a dashboard page: console errors,
 * uncaught exceptions, failed requests and responses of status 400 or more.
 * Returns the array it appends to (each entry a { kind, text }), so a test
 * attaches it before navigating and asserts it is empty at the end.
 *
 * @param {import('playwright-core').Page} page
 */
export function watchConsole(page) {
  const problems = [];
  page.on('console', (message) => {
    if (message.type() === 'error') {
      problems.push({ kind: 'console', text: message.text() });
    }
  });
  page.on('pageerror', (error) => {
    problems.push({ kind: 'pageerror', text: String(error?.stack || error) });
  });
  page.on('requestfailed', (request) => {
    const reason = request.failure()?.errorText ?? 'failed';
    problems.push({ kind: 'requestfailed', text: `${request.method()} ${request.url()}: ${reason}` });
  });
  page.on('response', (response) => {
    if (response.status() >= 400) {
      const request = response.request();
      problems.push({ kind: 'response', text: `${request.method()} ${response.url()}: ${response.status()}` });
    }
  });
  return problems;
}
