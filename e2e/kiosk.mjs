// Browser tests of the kiosk page against a running agent (e2e_test.go
// starts the real `bwsagent serve`). Headless Debian chromium through playwright-core; no
// browser is ever downloaded.
//
//   node kiosk.mjs --base http://127.0.0.1:8480 --scenario video|bonafide|photo|print|browser
//                  [--expect succeeded|failed] [--out DIR] [--y4m FILE] [--timeout-ms 90000]
//
// bypassCSP: Playwright's waitForFunction evaluates strings, which the
// page's CSP (script-src 'self') rightly forbids.
//
// Prints one JSON line with the measurements; exit code 0 = pass.
import { chromium } from 'playwright-core';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : 'true']);
  return acc;
}, []));
const base = (args.base || '').replace(/\/$/, '');
const scenario = args.scenario || 'video';
const out = args.out || '';
const timeout = Number(args['timeout-ms'] || 90000);
if (!base) { console.error('--base is required'); process.exit(2); }

const flags = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run',
  '--disable-dev-shm-usage'];
if (scenario === 'browser') {
  if (!args.y4m) { console.error('--y4m is required for the browser scenario'); process.exit(2); }
  flags.push('--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', `--use-file-for-fake-video-capture=${args.y4m}`);
}

const result = { scenario, ok: false };
const fail = msg => { throw new Error(msg); };
const shot = async (page, name) => {
  if (!out) return;
  mkdirSync(out, { recursive: true });
  await page.screenshot({ path: join(out, name) });
};

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: flags, headless: true });
try {
  const ctx = await browser.newContext({ viewport: { width: 900, height: 960 }, locale: 'en-US', bypassCSP: true });
  if (scenario === 'browser') await ctx.grantPermissions(['camera'], { origin: base });
  const page = await ctx.newPage();
  const logs = [];
  page.on('console', m => logs.push(m.type() + ': ' + m.text()));
  page.on('pageerror', e => logs.push('pageerror: ' + e.message));
  result.logs = logs;

  if (scenario === 'video') {
    await page.goto(base + '/?lang=en');
    await page.waitForFunction(() => window.kiosk && window.kiosk.frames > 5, null, { timeout: 20000 });
    const f0 = await page.evaluate(() => window.kiosk.frames);
    const t0 = Date.now();
    const stage = page.locator('#stage');
    // Shots until one differs from the first, for up to one demo cycle
    // (about 6.3 s): the demo head spends about half its cycle still at the
    // centre, so a few shots can all show the same frame, but a cycle
    // always turns the head. At least 2 s, to measure the frame rate.
    const a = await stage.screenshot();
    let b = a;
    for (let moved = false; (!moved || Date.now() - t0 < 2000) && Date.now() - t0 < 7000;) {
      await page.waitForTimeout(250);
      const s = await stage.screenshot();
      if (!moved && !a.equals(s)) { moved = true; b = s; }
    }
    const f1 = await page.evaluate(() => window.kiosk.frames);
    result.fps = +((f1 - f0) / ((Date.now() - t0) / 1000)).toFixed(1);
    result.framesAdvanced = f1 - f0;
    result.screenshotsDiffer = !a.equals(b);
    if (!result.screenshotsDiffer) fail('screenshots over 7 s are all identical: the video does not move');
    if (result.framesAdvanced < 10) fail(`frame counter advanced only ${result.framesAdvanced}`);
    // The overlay: a face event arrived with landmarks.
    await page.waitForFunction(() => window.kiosk.events.includes('face'), null, { timeout: 10000 });
    await shot(page, 'kiosk-preview-en.png');
    if (out) { writeFileSync(join(out, 'stage-a.png'), a); writeFileSync(join(out, 'stage-b.png'), b); }
    // German, by Accept-Language and by ?lang=.
    const de = await browser.newContext({ viewport: { width: 900, height: 960 }, locale: 'de-DE', bypassCSP: true });
    const p2 = await de.newPage();
    await p2.goto(base + '/');
    result.germanStart = await p2.locator('#start').textContent();
    if (result.germanStart !== 'Starten') fail(`German page shows ${result.germanStart}`);
    await p2.waitForFunction(() => window.kiosk.frames > 3, null, { timeout: 20000 });
    await shot(p2, 'kiosk-preview-de.png');
    // A kiosk page that works logs no errors (a missing asset shows here).
    const errors = logs.filter(l => /^(error|pageerror):/.test(l));
    if (errors.length) fail(`the page logged errors: ${errors.join('; ')}`);
    result.ok = true;
  } else {
    const url = scenario === 'browser' ? base + '/?mode=browser&lang=en' : base + '/?lang=en';
    await page.goto(url);
    await page.waitForFunction(() => window.kiosk && window.kiosk.frames > 3, null, { timeout: 20000 });
    const t0 = Date.now();
    await page.click('#start');
    // A prompt with an arrow, announced in the live region.
    // (Browser mode without challenge prompts "any" twice: no arrow.)
    await page.waitForFunction(needArrow => {
      const a = document.getElementById('arrow').textContent;
      return document.body.dataset.state === 'prompting' && (!needArrow || a !== '');
    }, scenario !== 'browser', { timeout: 20000 });
    result.firstPrompt = await page.locator('#status').textContent();
    await shot(page, `kiosk-${scenario}-prompt.png`);
    await page.waitForFunction(() => ['succeeded', 'failed'].includes(document.body.dataset.state), null, { timeout });
    result.seconds = +((Date.now() - t0) / 1000).toFixed(1);
    result.state = await page.evaluate(() => document.body.dataset.state);
    result.result = await page.evaluate(() => window.kiosk.result);
    result.resultText = await page.locator('#result').textContent();
    await shot(page, `kiosk-${scenario}-result.png`);
    const want = args.expect || (scenario === 'photo' ? 'failed' : 'succeeded');
    if (result.state !== want) fail(`session ended ${result.state} (${result.resultText}), want ${want}`);
    result.ok = true;
  }
} catch (e) {
  result.error = String(e.message || e);
  for (const p of browser.contexts().flatMap(c => c.pages())) await shot(p, `failed-${scenario}.png`).catch(() => {});
} finally {
  await browser.close();
}
if (result.ok) delete result.logs;
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
