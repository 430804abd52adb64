// Self-test of the browser tooling, without the dashboard: launches Chromium,
// checks a small accessible page (no serious violations, no console errors),
// an inaccessible one (the check must find its faults, or it proves nothing)
// and a noisy one (the watcher must catch each kind of problem). Exits 0 when
// all come out as expected. Run: `node smoke.mjs`.

import { createServer } from 'node:http';
import { checkAccessibility, launch, watchConsole } from './launch.mjs';

const page = (html) => `data:text/html;charset=utf-8,${encodeURIComponent(html)}`;

const ACCESSIBLE = page(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Smoke test</title></head>
<body>
  <header><h1>XLA dashboard smoke test</h1></header>
  <main>
    <p>An accessible page: a language, a title, landmarks, labelled controls.</p>
    <form>
      <label for="tenant">Tenant</label>
      <input id="tenant" name="tenant" type="text">
      <button type="submit">Show</button>
    </form>
    <table>
      <caption>Runs</caption>
      <thead><tr><th scope="col">Run</th><th scope="col">Status</th></tr></thead>
      <tbody><tr><td>1</td><td>ok</td></tr></tbody>
    </table>
  </main>
</body>
</html>`);

// Each fault is one axe rule at serious or critical impact: an image without
// text, an unlabelled input, text below the AA contrast ratio.
const INACCESSIBLE = page(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Faults</title></head>
<body><main>
  <img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
  <input type="text">
  <p style="color:#bbb;background:#fff">Faint text</p>
</main></body>
</html>`);

const EXPECTED_FAULTS = ['image-alt', 'label', 'color-contrast'];

// A loopback server for the network half of watchConsole: /noisy loads a
// missing script (404) and fetches from a port nothing listens on.
const closedPort = await new Promise((resolve) => {
  const probe = createServer().listen(0, '127.0.0.1', () => {
    const { port } = probe.address();
    probe.close(() => resolve(port));
  });
});
const server = createServer((request, response) => {
  if (request.url === '/noisy') {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end(`<!doctype html><title>Noisy</title>
<script src="/missing.js"></script>
<script>
  console.error('boom');
  fetch('http://127.0.0.1:${closedPort}/').catch(() => {});
  setTimeout(() => { throw new Error('thrown'); });
</script>`);
  } else {
    response.writeHead(404).end();
  }
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${server.address().port}`;

const context = await launch();
let ok = true;
try {
  const browserVersion = context.browser()?.version() ?? '(unknown)';
  console.log(`chromium ${browserVersion}`);

  const good = await context.newPage();
  const problems = watchConsole(good);
  await good.goto(ACCESSIBLE);
  const violations = await checkAccessibility(good);
  console.log(`accessible page: ${violations.length} serious/critical violations, ${problems.length} console/network problems`);
  for (const v of violations) console.log(`  ${v.impact} ${v.id}: ${v.help} at ${JSON.stringify(v.targets)}`);
  for (const p of problems) console.log(`  ${p.kind}: ${p.text}`);
  ok &&= violations.length === 0 && problems.length === 0;

  const bad = await context.newPage();
  await bad.goto(INACCESSIBLE);
  const faults = await checkAccessibility(bad);
  console.log(`inaccessible page: ${faults.length} serious/critical violations`);
  for (const v of faults) console.log(`  ${v.impact} ${v.id}: ${v.help} at ${JSON.stringify(v.targets)}`);
  const found = new Set(faults.map((v) => v.id));
  const missed = EXPECTED_FAULTS.filter((id) => !found.has(id));
  if (missed.length > 0) console.log(`  missed: ${missed.join(', ')}`);
  ok &&= missed.length === 0;

  // A console error, an exception, a 404 and a refused connection: the
  // watcher must report each kind.
  const noisy = await context.newPage();
  const noise = watchConsole(noisy);
  await noisy.goto(`${origin}/noisy`);
  const kinds = ['console', 'pageerror', 'response', 'requestfailed'];
  // The fetch and the timer settle after `load`; give them up to 5 s.
  for (let waited = 0; waited < 5000 && !kinds.every((k) => noise.some((p) => p.kind === k)); waited += 50) {
    await noisy.waitForTimeout(50);
  }
  console.log(`noisy page: ${[...new Set(noise.map((p) => p.kind))].join(', ')}`);
  for (const kind of kinds) {
    if (!noise.some((p) => p.kind === kind)) {
      console.log(`  missed: ${kind}`);
      ok = false;
    }
  }
} finally {
  await context.close();
  server.close();
}

console.log(ok ? 'smoke: ok' : 'smoke: FAILED');
process.exit(ok ? 0 : 1);
