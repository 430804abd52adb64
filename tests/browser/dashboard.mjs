// The dashboard in a real browser, against a running `xla-host serve` on the
// demo's data (tests/all/dashboard.rs starts it and runs this script):
// sign-in through the form, every view of tenant `demo` (no console errors,
// failed requests or 4xx/5xx, charts drawn, no serious or critical axe
// violation, a screenshot, the page's weight), the numbers on the pages
// against the API's for the same query, the planted watermelon, tenant
// isolation, the all-tenants picker, sign-out, CSRF on the sign-in form and
// the skip link. Prints each check as it passes; exits 1 if any failed.
//
// Environment: XLA_BASE (http://127.0.0.1:PORT), XLA_TOKEN_DEMO,
// XLA_TOKEN_GLOBEX, XLA_TOKEN_ALL (read tokens), XLA_PERIOD (2026-10),
// XLA_ARTIFACTS (where the screenshots go).

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { checkAccessibility, launch, watchConsole } from './launch.mjs';

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`dashboard.mjs: ${name} is not set (tests/all/dashboard.rs sets it)`);
    process.exit(2);
  }
  return value;
}

const BASE = required('XLA_BASE').replace(/\/$/, '');
const DEMO = required('XLA_TOKEN_DEMO');
const GLOBEX = required('XLA_TOKEN_GLOBEX');
const ALL = required('XLA_TOKEN_ALL');
const PERIOD = required('XLA_PERIOD');
const ARTIFACTS = required('XLA_ARTIFACTS');

/** A page with everything it loads must stay under this many bytes. */
const PAGE_BUDGET = 500 * 1024;
/** The screenshots' viewport. */
const VIEWPORT = { width: 1400, height: 900 };
/** The planted watermelon of the demo organisation (xla-sim's WATERMELON_SERVICE). */
const WATERMELON = 'VPN';
/** What the pages show for no value (xla-dashboard's format::NONE). */
const NONE = '\u2013';
/** The session cookie (xla-dashboard's session::COOKIE). */
const COOKIE = 'xla_session';

const tenantPath = (tenant, view) => `/dashboard/tenants/${tenant}/${view}`;
const withPeriod = (path) => `${path}?period=${PERIOD}`;

// ---------------------------------------------------------------- checks --

let failed = 0;
let passed = 0;

/** Runs one named check; a failure is printed and counted, and the run goes on. */
async function check(name, body) {
  try {
    await body();
    passed += 1;
    console.log(`ok    ${name}`);
  } catch (error) {
    failed += 1;
    console.log(`FAIL  ${name}\n      ${String(error?.message ?? error).replaceAll('\n', '\n      ')}`);
  }
}

// ------------------------------------------------------------- numbers --

/**
 * `value` as Rust's `{:.1}` prints it, by way of JavaScript's toFixed(1).
 * Both round the double's exact decimal value; they differ only on an exact
 * tie (x.25, x.75: Rust rounds half to even, toFixed half up), which
 * `compare` names when it is the cause. Rust prints the sign of -0.0.
 */
function fixed(value) {
  return (Object.is(value, -0) ? '-' : '') + value.toFixed(1);
}

/** xla-dashboard's format::number. */
function number(value) {
  return value === null || value === undefined ? NONE : fixed(value);
}

/** xla-dashboard's format::signed. */
function signed(value) {
  if (value === null || value === undefined) return NONE;
  const text = fixed(value);
  return text.startsWith('-') ? text : `+${text}`;
}

/** Whether `value` is an exact tie at one decimal: 4·value is an odd integer. */
function isTie(value) {
  const quarters = value * 4; // exact: a power of two
  return typeof value === 'number' && Number.isInteger(quarters) && quarters % 2 !== 0;
}

/** Asserts the page's `shown` text is the API's `value` as `format` prints it. */
function compare(what, shown, value, format) {
  const expected = format(value);
  if (shown === expected) return;
  const tie = typeof value === 'number' && isTie(value)
    ? ` (only a rounding tie: ${value} is exactly halfway; Rust's {:.1} rounds half to even, toFixed half up)`
    : '';
  assert.fail(`${what}: the page shows ${JSON.stringify(shown)}, the API's ${value} is ${JSON.stringify(expected)}${tie}`);
}

// ----------------------------------------------------------------- API --

/** GET `path` of the API with `token`; its JSON. */
async function api(path, token = DEMO) {
  const response = await fetch(BASE + path, { headers: { authorization: `Bearer ${token}` } });
  const body = await response.text();
  assert.equal(response.status, 200, `GET ${path}: ${response.status} ${body.slice(0, 300)}`);
  return JSON.parse(body);
}

// ---------------------------------------------------------------- pages --

/**
 * Opens `path` in a new page of `context` with the browser cache off (so
 * the weight is a first visit's) and loads it; returns the page, its
 * response, the problems watchConsole collects, and a function that sums
 * the bytes of every response (body as received, and decoded).
 */
async function open(context, path) {
  const page = await context.newPage();
  await page.setViewportSize(VIEWPORT);
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  const problems = watchConsole(page);
  const sizes = [];
  page.on('requestfinished', (request) => {
    sizes.push(
      (async () => {
        const response = await request.response();
        const wire = await request.sizes();
        const body = response ? (await response.body().catch(() => Buffer.alloc(0))).length : 0;
        return { url: request.url(), wire: wire.responseBodySize + wire.responseHeadersSize, body };
      })(),
    );
  });
  const response = await page.goto(BASE + path, { waitUntil: 'load' });
  const weight = async () => {
    const all = await Promise.all(sizes);
    return {
      requests: all.length,
      wire: all.reduce((sum, s) => sum + s.wire, 0),
      body: all.reduce((sum, s) => sum + s.body, 0),
    };
  };
  return { page, response, problems, weight };
}

/** Fails with the problems watchConsole collected, if any. */
function noProblems(problems) {
  assert.deepEqual(
    problems.map((p) => `${p.kind}: ${p.text}`),
    [],
    'console errors, page errors, failed requests or error responses',
  );
}

/** Every `.chart[data-chart]` holds a drawn canvas (waits up to 10 s); their count. */
async function chartsDrawn(page) {
  const count = await page.locator('.chart[data-chart]').count();
  if (count === 0) return 0;
  await page
    .waitForFunction(
      () => [...document.querySelectorAll('.chart[data-chart]')].every((el) => el.querySelector('canvas')),
      null,
      { timeout: 10_000 },
    )
    .catch(async () => {
      const missing = await page.$$eval('.chart[data-chart]', (els) =>
        els.filter((el) => !el.querySelector('canvas')).map((el) => el.getAttribute('aria-label')?.slice(0, 80)),
      );
      assert.fail(`${missing.length} of ${count} charts have no canvas: ${JSON.stringify(missing)}`);
    });
  return count;
}

/** Signs in through the form at /dashboard/sign-in with `token`; the page after. */
async function signIn(page, token) {
  await page.goto(`${BASE}/dashboard/sign-in`);
  await page.fill('#token', token);
  await Promise.all([page.waitForURL((url) => !url.pathname.startsWith('/dashboard/sign-in')), page.click('form.sign-in button[type=submit]')]);
  return page;
}

/** Signs out with the page's button; waits for the sign-in page. */
async function signOut(page) {
  await Promise.all([page.waitForURL((url) => url.pathname === '/dashboard/sign-in'), page.click('#sign-out')]);
}

const pathOf = (page) => new URL(page.url()).pathname;

// ----------------------------------------------------------------- run --

await mkdir(ARTIFACTS, { recursive: true });
const started = Date.now();
const context = await launch();
console.log(`chromium ${context.browser()?.version() ?? '(unknown)'}, dashboard at ${BASE}, period ${PERIOD}`);

const weights = [];
const axeResults = [];

try {
  // -------------------------------------------------------- sign-in --
  const main = await context.newPage();
  await main.setViewportSize(VIEWPORT);
  const mainProblems = watchConsole(main);
  await check('signed out, a page sends to sign-in and back', async () => {
    const response = await main.goto(BASE + withPeriod(tenantPath('demo', 'scorecard')));
    assert.equal(response.status(), 200);
    assert.equal(pathOf(main), '/dashboard/sign-in');
    assert.equal(
      await main.inputValue('input[name=next]'),
      withPeriod(tenantPath('demo', 'scorecard')),
    );
  });
  await check('sign-in page: no serious/critical axe violations', async () => {
    const violations = await checkAccessibility(main);
    axeResults.push({ view: 'sign-in', violations: violations.length });
    assert.deepEqual(violations, []);
  });
  await check('sign-in through the form with the demo token lands on the scorecard', async () => {
    await signIn(main, DEMO);
    assert.equal(pathOf(main), tenantPath('demo', 'scorecard'));
    assert.equal(await main.locator('h1').first().innerText().then((t) => t.startsWith('Scorecard')), true);
    noProblems(mainProblems);
  });
  // The cookie's path is /dashboard: ask for the cookies a dashboard URL gets.
  const cookies = await context.cookies(`${BASE}/dashboard/`);
  const session = cookies.find((c) => c.name === COOKIE);
  await check('the session cookie is HttpOnly, SameSite=Strict, Path=/dashboard', async () => {
    assert.ok(session, `no ${COOKIE} cookie among ${cookies.map((c) => c.name)}`);
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(session.path, '/dashboard');
  });

  // ------------------------------------------------------ the views --
  let ticketPath = null;
  const views = [
    { name: 'scorecard', path: tenantPath('demo', 'scorecard'), charts: true },
    { name: 'xla', path: tenantPath('demo', 'xlas/incident-happiness'), charts: true },
    { name: 'sla-beside-xla', path: tenantPath('demo', 'sla-beside-xla'), charts: true },
    { name: 'lost-time', path: tenantPath('demo', 'lost-time'), charts: true },
    { name: 'xot', path: tenantPath('demo', 'xot'), charts: false },
    { name: 'follow-up', path: tenantPath('demo', 'follow-up'), charts: false },
    { name: 'ticket', path: null, charts: false },
    { name: 'sources', path: tenantPath('demo', 'sources'), charts: false },
  ];

  for (const view of views) {
    if (view.name === 'ticket') {
      if (!ticketPath) {
        await check('ticket: a ticket link on the follow-up page', () => assert.fail('the follow-up page lists no ticket'));
        continue;
      }
      view.path = ticketPath;
    }
    const path = view.name === 'ticket' ? view.path : withPeriod(view.path);
    const { page, response, problems, weight } = await open(context, path);
    try {
      await check(`${view.name}: ${path} answers 200`, async () => {
        assert.equal(response?.status(), 200, `status ${response?.status()} at ${page.url()}`);
        assert.equal(pathOf(page), path.split('?')[0]);
      });
      const charts = await page.locator('.chart[data-chart]').count();
      await check(`${view.name}: ${charts === 0 ? 'no charts' : `${charts} chart(s), each drawn on a canvas`}`, async () => {
        if (view.charts) assert.ok(charts > 0, 'the page should have charts');
        await chartsDrawn(page);
      });
      await check(`${view.name}: no serious/critical axe violations`, async () => {
        const violations = await checkAccessibility(page);
        axeResults.push({ view: view.name, violations: violations.length });
        assert.deepEqual(violations, []);
      });
      await page.screenshot({ path: join(ARTIFACTS, `${view.name}.png`), fullPage: true });

      if (view.name === 'scorecard') await scorecardChecks(page);
      if (view.name === 'xla') await detailChecks(page);
      if (view.name === 'sla-beside-xla') await slaChecks(page);
      if (view.name === 'xot') await xotChecks(page);
      if (view.name === 'follow-up') {
        const href = await page.locator('#follow-up a').first().getAttribute('href').catch(() => null);
        ticketPath = href;
      }
      if (view.name === 'ticket') {
        await check('ticket: shows its number and its observations', async () => {
          const number = decodeURIComponent(ticketPath.split('/').pop());
          assert.equal(await page.locator('#ticket-number').innerText(), number);
          assert.ok((await page.locator('tr[data-metric]').count()) > 0, 'no observations');
        });
      }

      // Late console errors and requests (htmx, charts) count too.
      await page.waitForTimeout(300);
      await check(`${view.name}: no console errors, page errors or failed requests`, () => noProblems(problems));
      const w = await weight();
      weights.push({ view: view.name, ...w });
      await check(`${view.name}: weight ${(w.body / 1024).toFixed(1)} KB in ${w.requests} requests (${(w.wire / 1024).toFixed(1)} KB on the wire) under ${PAGE_BUDGET / 1024} KB`, () => {
        assert.ok(w.requests > 1, 'the page loads its assets');
        assert.ok(w.body < PAGE_BUDGET && w.wire < PAGE_BUDGET, JSON.stringify(w));
      });
    } finally {
      await page.close();
    }
  }

  // -------------------------------------------- keyboard: skip link --
  await check('keyboard: the first Tab on the scorecard focuses "Skip to content", Enter moves to the content', async () => {
    await main.goto(BASE + withPeriod(tenantPath('demo', 'scorecard')));
    await main.keyboard.press('Tab');
    const focused = await main.evaluate(() => ({
      text: document.activeElement?.textContent?.trim(),
      href: document.activeElement?.getAttribute('href'),
    }));
    assert.deepEqual(focused, { text: 'Skip to content', href: '#main' });
    assert.ok(await main.locator('a.skip').isVisible(), 'the focused skip link is visible');
    await main.keyboard.press('Enter');
    assert.equal(await main.evaluate(() => document.activeElement?.id), 'main');
  });

  // ------------------------------- the demo report's own targets --
  await check('SLA beside XLA at the demo report\'s targets (happiness +30): VPN alone is the watermelon, and the month picker keeps the targets', async () => {
    await main.goto(BASE + tenantPath('demo', 'sla-beside-xla') + '?period=' + PERIOD + '&happiness_target=30');
    const flagged = await main.locator('#sla-beside-xla tr.watermelon').evaluateAll((rows) => rows.map((r) => r.dataset.group));
    assert.deepEqual(flagged, [WATERMELON]);
    assert.equal(await main.locator('#period-picker input[name="happiness_target"]').inputValue(), '30');
    await main.locator('#period-picker button[type="submit"]').click();
    await main.waitForLoadState('load');
    assert.match(main.url(), /happiness_target=30/);
  });

  // ------------------------------------------------ tenant isolation --
  await check('demo session: no tenant picker', async () => {
    assert.equal(await main.locator('#tenant-select').count(), 0);
  });
  for (const view of ['scorecard', 'sources', 'sla-beside-xla', 'xlas/globex-happiness']) {
    await check(`demo session: globex's ${view} is 404`, async () => {
      const response = await main.goto(BASE + tenantPath('globex', view));
      assert.equal(response.status(), 404);
      assert.doesNotMatch(await main.content(), /globex-happiness|Incident happiness/);
    });
  }
  await check('demo session: the picker URL with globex is 404', async () => {
    const response = await main.goto(`${BASE}/dashboard/tenants?tenant=globex`);
    assert.equal(response.status(), 404);
  });

  // ------------------------------------------------------------ CSRF --
  const form = (token) => new URLSearchParams({ token, next: '/dashboard' }).toString();
  await check('CSRF: a sign-in POST from another origin is 403 with no cookie', async () => {
    const response = await fetch(`${BASE}/dashboard/sign-in`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://evil.example' },
      body: form(DEMO),
    });
    assert.equal(response.status, 403);
    assert.equal(response.headers.get('set-cookie'), null);
  });
  await check('CSRF control: the same POST from this origin is 303 with a cookie', async () => {
    const response = await fetch(`${BASE}/dashboard/sign-in`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: BASE },
      body: form(DEMO),
    });
    assert.equal(response.status, 303);
    assert.match(response.headers.get('set-cookie') ?? '', new RegExp(`^${COOKIE}=[0-9a-f]{64};.*HttpOnly; SameSite=Strict`));
  });

  // -------------------------------------------------------- sign-out --
  const scorecardUrl = BASE + withPeriod(tenantPath('demo', 'scorecard'));
  const replay = () => fetch(scorecardUrl, { redirect: 'manual', headers: { cookie: `${COOKIE}=${session?.value}` } });
  await check('the session cookie, replayed outside the browser, opens the page while signed in', async () => {
    const response = await replay();
    assert.equal(response.status, 200);
  });
  await check('sign-out: #sign-out lands on the sign-in page', async () => {
    await main.goto(scorecardUrl);
    await signOut(main);
    assert.equal(pathOf(main), '/dashboard/sign-in');
    const left = await context.cookies(`${BASE}/dashboard/`);
    assert.equal(left.some((c) => c.name === COOKIE), false, 'the cookie is removed');
  });
  await check('after sign-out, the scorecard URL sends to sign-in', async () => {
    await main.goto(scorecardUrl);
    assert.equal(pathOf(main), '/dashboard/sign-in');
  });
  await check('after sign-out, the old cookie replayed is a 303 to sign-in', async () => {
    const response = await replay();
    assert.equal(response.status, 303);
    assert.match(response.headers.get('location') ?? '', /^\/dashboard\/sign-in(\?|$)/);
  });

  // ------------------------------------------------- globex's token --
  await check('globex token: signs in to its own scorecard (200)', async () => {
    await signIn(main, GLOBEX);
    assert.equal(pathOf(main), tenantPath('globex', 'scorecard'));
    const response = await main.goto(BASE + withPeriod(tenantPath('globex', 'scorecard')));
    assert.equal(response.status(), 200);
    assert.deepEqual(await main.locator('#scorecard tr[data-xla]').evaluateAll((rows) => rows.map((r) => r.dataset.xla)), ['globex-happiness']);
    assert.equal(await main.locator('#tenant-select').count(), 0);
  });
  for (const view of ['scorecard', 'sources']) {
    await check(`globex session: demo's ${view} is 404`, async () => {
      const response = await main.goto(BASE + tenantPath('demo', view));
      assert.equal(response.status(), 404);
    });
  }
  await check('globex session signs out', async () => {
    await main.goto(BASE + tenantPath('globex', 'scorecard'));
    await signOut(main);
  });

  // ----------------------------------------------- all-tenants token --
  await check('all-tenants token: a tenant picker with demo and globex', async () => {
    await signIn(main, ALL);
    assert.equal(pathOf(main), tenantPath('demo', 'scorecard'));
    const options = await main.locator('#tenant-select option').evaluateAll((os) => os.map((o) => o.value));
    assert.deepEqual(options, ['demo', 'globex']);
  });
  await check('all-tenants token: picking globex opens its scorecard', async () => {
    await main.selectOption('#tenant-select', 'globex');
    await Promise.all([main.waitForURL((url) => url.pathname === tenantPath('globex', 'scorecard')), main.click('#tenant-picker button[type=submit]')]);
    assert.equal(await main.locator('#tenant-select').inputValue(), 'globex');
    await signOut(main);
  });
  await check('no console errors, page errors or failed requests on the sign-in, isolation and sign-out pages (beyond the expected 404s)', () => {
    noProblems(mainProblems.filter((p) => !(p.kind === 'response' && / 404$/.test(p.text)) && !/404 \(Not Found\)/.test(p.text)));
  });
} catch (error) {
  failed += 1;
  console.log(`FAIL  (aborted) ${error?.stack ?? error}`);
} finally {
  await context.close();
}

// ------------------------------------------------------- the numbers --

async function scorecardChecks(page) {
  const rows = await page.locator('#scorecard tr[data-xla]').evaluateAll((trs) =>
    trs.map((tr) => ({
      id: tr.dataset.xla,
      value: tr.querySelector('td[data-field=value]').textContent.trim(),
      target: tr.querySelector('td[data-field=target] > span:first-child').textContent.trim(),
      delta: tr.querySelector('td[data-field=delta]').textContent.trim(),
    })),
  );
  await check('scorecard: one row per XLA of the tenant, as the API lists them', async () => {
    const xlas = await api('/v1/tenants/demo/xlas');
    assert.deepEqual(rows.map((r) => r.id), xlas.map((x) => x.id));
  });
  for (const row of rows) {
    await check(`scorecard: ${row.id} value ${row.value}, target ${row.target}, change ${row.delta} are the API's`, async () => {
      const report = await api(`/v1/tenants/demo/xlas/${encodeURIComponent(row.id)}/report?period=${PERIOD}`);
      compare(`${row.id} value`, row.value, report.value, number);
      compare(`${row.id} target`, row.target, report.target?.value ?? null, number);
      compare(`${row.id} change`, row.delta, report.delta, signed);
    });
  }
}

async function detailChecks(page) {
  await check('xla detail: value, target and groups are the API\'s', async () => {
    const report = await api(`/v1/tenants/demo/xlas/incident-happiness/report?period=${PERIOD}`);
    const facts = page.locator('#xla-facts');
    compare('value', (await facts.locator('dd[data-field=value]').innerText()).trim(), report.value, number);
    const target = (await facts.locator('dd[data-field=target]').innerText()).trim().split(/\s/)[0];
    compare('target', target, report.target?.value ?? null, number);
    const groups = await page.locator('#groups tbody tr').evaluateAll((trs) =>
      trs.map((tr) => [tr.querySelector('th').textContent.trim(), tr.querySelector('td').textContent.trim()]),
    );
    assert.deepEqual(groups.map((g) => g[0]), report.groups.map((g) => g.group));
    groups.forEach(([group, shown], i) => compare(`group ${group}`, shown, report.groups[i].value, number));
  });
}

async function slaChecks(page) {
  const slaTarget = await page.inputValue('#sla-target');
  const happinessTarget = await page.inputValue('#happiness-target');
  const rows = await page.locator('#sla-beside-xla tbody tr[data-group]').evaluateAll((trs) =>
    trs.map((tr) => ({
      group: tr.dataset.group,
      sla: tr.querySelector('td[data-field=sla]').textContent.trim(),
      happiness: tr.querySelector('td[data-field=happiness]').textContent.trim(),
      watermelon: tr.classList.contains('watermelon'),
      verdict: tr.querySelector('td[data-field=verdict]').textContent.trim(),
    })),
  );
  await check(`sla-beside-xla: targets from the tenant's XLAs (SLA ${slaTarget}, happiness ${happinessTarget})`, async () => {
    const xlas = await api('/v1/tenants/demo/xlas');
    const targetOf = (scorer) => xlas.find((x) => x.scorer === scorer)?.targets?.at(-1)?.value;
    assert.equal(Number(slaTarget), targetOf('sla-compliance'));
    assert.equal(Number(happinessTarget), targetOf('happiness'));
  });
  await check('sla-beside-xla: every row\'s SLA, happiness and watermelon flag are the API scorecard\'s', async () => {
    const query = new URLSearchParams({ period: PERIOD, sla_target: slaTarget, happiness_target: happinessTarget });
    const card = await api(`/v1/tenants/demo/scorecard?${query}`);
    assert.deepEqual(rows.map((r) => r.group), card.rows.map((r) => r.group));
    card.rows.forEach((expected, i) => {
      const row = rows[i];
      compare(`${row.group} SLA`, row.sla, expected.sla_compliance, number);
      compare(`${row.group} happiness`, row.happiness, expected.happiness, signed);
      assert.equal(row.watermelon, expected.watermelon, `${row.group} watermelon flag`);
      assert.equal(row.verdict.startsWith('Watermelon'), expected.watermelon, `${row.group} verdict ${row.verdict}`);
    });
  });
  await check(`sla-beside-xla: the planted watermelon ${WATERMELON} is flagged and named`, async () => {
    const row = page.locator(`#sla-beside-xla tr[data-group="${WATERMELON}"]`);
    assert.match((await row.getAttribute('class')) ?? '', /\bwatermelon\b/);
    assert.match(await row.locator('td[data-field=verdict]').innerText(), /^Watermelon/);
    const verdict = page.locator('#watermelon-verdict');
    assert.match(await verdict.innerText(), /Watermelon/);
    const named = await verdict.locator('.watermelon-name').allInnerTexts();
    assert.ok(named.includes(WATERMELON), `#watermelon-verdict names ${JSON.stringify(named)}`);
  });
}

async function xotChecks(page) {
  await check('xot: the tenant\'s measures are the API\'s X/O/T view', async () => {
    const view = await api(`/v1/tenants/demo/xot?period=${PERIOD}`);
    const fields = { happiness: 'happiness', lost_time: 'lost_time_minutes', sla: 'sla_compliance', resolution: 'resolution_hours', dex: 'dex_score' };
    for (const [field, key] of Object.entries(fields)) {
      const shown = (await page.locator(`#xot-tenant td[data-field=${field}]`).innerText()).trim();
      compare(`X/O/T ${field}`, shown, view[key][0], number);
    }
  });
}

// ------------------------------------------------------------ report --

console.log('\npage weights (decoded bytes of the page and every asset it loads, cache off):');
for (const w of weights) {
  console.log(`  ${w.view.padEnd(16)} ${(w.body / 1024).toFixed(1).padStart(7)} KB  ${String(w.requests).padStart(2)} requests  ${(w.wire / 1024).toFixed(1).padStart(7)} KB on the wire`);
}
console.log(`axe (WCAG 2 A/AA, serious+critical): ${axeResults.map((a) => `${a.view} ${a.violations}`).join(', ')}`);
console.log(`screenshots in ${ARTIFACTS}`);
console.log(`\ndashboard: ${passed} checks passed, ${failed} failed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
process.exit(failed === 0 ? 0 : 1);
