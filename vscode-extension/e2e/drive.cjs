// Drives VS Code (served by code-server) in headless Chromium for scripts/vscode-e2e.sh.
// Scenarios: "error" expects the status bar error and the fix-command notification;
// "ghost" types in a Python file, expects codeswift ghost text, accepts it with Tab and
// expects the status bar to show the last completion's speed; "real" (a real model) follows
// the plan of e2e/real_expected.py (--plan): each ghost text must equal the model's greedy
// completion there, Tab and Ctrl+Right (accept next word) must insert what they should.
'use strict';
const fs = require('node:fs');
const { chromium } = require('playwright-core');

const arg = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || i + 1 >= process.argv.length) throw new Error(`missing --${name}`);
  return process.argv[i + 1];
};
const opts = { scenario: arg('scenario'), url: arg('url'), file: arg('file'), screenshot: arg('screenshot'), profile: arg('profile') };
// Error scenarios: the text the error notification must contain.
opts.expect = process.argv.includes('--expect') ? arg('expect') : '';
// The real scenario: the JSON plan with the expected ghost texts; screenshots go next to --screenshot.
opts.plan = process.argv.includes('--plan') ? arg('plan') : '';
const norm = (s) => s.replace(/\u00a0/g, ' ');
const log = (...a) => console.log(`[drive ${opts.scenario}]`, ...a);

async function statusText(page) {
  const item = page.locator('.statusbar-item', { hasText: 'codeswift' }).first();
  return (await item.count()) > 0 ? norm(await item.innerText()) : '';
}

/** Polls fn until it returns a truthy value; throws with the last value after timeoutMs. */
async function until(what, fn, timeoutMs, intervalMs = 500) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
}

async function openFile(page, file) {
  await page.keyboard.press('Control+P');
  await page.locator('.quick-input-widget input').fill(file);
  await until('quick open result', async () => (await page.locator('.quick-input-list .monaco-list-row').count()) > 0, 15000);
  await page.keyboard.press('Enter');
  await until(`editor tab ${file}`, async () => (await page.locator('.tab', { hasText: file }).count()) > 0, 15000);
  await page.locator('.monaco-editor .view-lines').first().click();
}

/** Ghost text as plain text: the inline part (split into coloured spans) plus any lines below. */
async function ghostText(page) {
  const editor = page.locator('.monaco-editor').first();
  const inline = (await editor.locator('.ghost-text-decoration').allInnerTexts()).join('');
  const below = (await editor.locator('.ghost-text').allInnerTexts()).join('\n');
  return norm(below === '' ? inline : `${inline}\n${below}`).trimEnd();
}

async function errorScenario(page) {
  const status = await until('status bar error', async () => {
    const t = await statusText(page);
    return t.includes('codeswift: error') ? t : '';
  }, 120000);
  const toast = await until('fix-command notification', async () => {
    const texts = await page.locator('.notifications-toasts .notification-toast').allInnerTexts();
    return texts.map(norm).find((t) => t.includes(opts.expect)) ?? '';
  }, 120000);
  log('status bar:', JSON.stringify(status));
  log('notification:', JSON.stringify(toast));
  await page.screenshot({ path: opts.screenshot });
  return { status, notification: toast };
}

async function ghostScenario(page) {
  await openFile(page, opts.file);
  const ready = await until('codeswift ready', async () => {
    const t = await statusText(page);
    if (t.includes('codeswift: error')) throw new Error(`server failed: ${t}`);
    return /codeswift$|codeswift \d/.test(t.trim()) ? t : '';
  }, 240000, 1000);
  log('status when ready:', JSON.stringify(ready));
  await page.keyboard.press('Control+End');
  await page.keyboard.type('    def pop(self):\n', { delay: 60 });
  await page.keyboard.type('ret', { delay: 60 });
  let ghost = '';
  for (let attempt = 0; attempt < 4 && ghost === ''; attempt++) {
    try {
      ghost = await until('ghost text', () => ghostText(page), 20000);
    } catch (err) {
      log(`no ghost text yet (attempt ${attempt + 1}); triggering inline suggestion`);
      await page.keyboard.press('Alt+Backslash');
    }
  }
  if (ghost === '') throw new Error('no ghost text appeared');
  log('ghost text:', JSON.stringify(ghost));
  const statusAfter = await until('speed in status bar', async () => {
    const t = await statusText(page);
    return t.includes(' ms') ? t : '';
  }, 30000);
  log('status after completion:', JSON.stringify(statusAfter));
  await page.screenshot({ path: opts.screenshot });
  await page.keyboard.press('Tab');
  const expected = `ret${ghost.split('\n')[0]}`.trimEnd();
  const line = await until('accepted text in the editor', async () => {
    const lines = norm(await page.locator('.monaco-editor .view-lines').first().innerText()).split('\n');
    return (await ghostText(page)) === '' ? lines.find((l) => l.trim() === expected.trim()) : undefined;
  }, 10000);
  log('line after Tab:', JSON.stringify(line));
  const result = { ready, ghost, statusAfter, lineAfterTab: line };
  if (opts.scenario === 'stub') {
    result.acceptWord = await acceptWord(page);
    result.menu = await menuCommands(page);
  }
  return result;
}

/** Clicks the status bar item and runs a quick-pick entry by its label. */
async function runMenu(page, label) {
  await page.locator('.statusbar-item', { hasText: 'codeswift' }).first().click();
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: label }).first();
  await row.waitFor({ timeout: 10000 });
  const labels = norm((await page.locator('.quick-input-list').innerText()));
  await row.click();
  return labels;
}

/** The status bar menu: show stats, re-index, disable (server stops), enable (server back). */
async function menuCommands(page) {
  const labels = await runMenu(page, 'Show stats');
  log('menu:', JSON.stringify(labels));
  await until('stats document', async () => (await page.locator('.view-lines', { hasText: 'codeswift stats' }).count()) > 0, 10000);
  await runMenu(page, 'Re-index workspace');
  await until('re-index notification', async () =>
    (await page.locator('.notification-toast', { hasText: 're-indexing the workspace' }).count()) > 0, 10000);
  await runMenu(page, 'Disable codeswift');
  const off = await until('status off', async () => ((await statusText(page)).includes('codeswift: off') ? statusText(page) : ''), 15000);
  await runMenu(page, 'Enable codeswift');
  const on = await until('status ready again', async () => {
    const t = await statusText(page);
    return /codeswift$|codeswift \d/.test(t.trim()) ? t : '';
  }, 30000);
  log('disabled:', JSON.stringify(off), 're-enabled:', JSON.stringify(on));
  return { labels, off, on };
}

/** Ctrl+Right (VS Code's accept-next-word) on a fresh suggestion, then leave it by typing. */
async function acceptWord(page) {
  await page.keyboard.press('End');
  await page.keyboard.type('\nret', { delay: 60 });
  await until('second ghost text', () => ghostText(page), 20000);
  await page.keyboard.press('Control+ArrowRight');
  await page.keyboard.press('Escape');
  // Typing something other than the suggestion ends the partial acceptance; the script
  // checks what the server received.
  await page.keyboard.press('End');
  await page.keyboard.type('  # done', { delay: 30 });
  return 'accepted one word with Ctrl+Right';
}

/** The cursor as the status bar shows it ("Ln 12, Col 5"), 1-based. */
async function cursorAt(page) {
  const item = page.locator('.statusbar-item', { hasText: /Ln \d+, Col \d+/ }).first();
  const m = (await item.count()) > 0 ? /Ln (\d+), Col (\d+)/.exec(norm(await item.innerText())) : null;
  return m ? { line: Number(m[1]), col: Number(m[2]) } : undefined;
}

/** The editor's rendered lines (top to bottom) without ghost text. */
async function editorLines(page) {
  return page.locator('.monaco-editor .view-lines').first().evaluate((root) => {
    const rows = [...root.querySelectorAll(':scope > .view-line')].map((el) => {
      const copy = el.cloneNode(true);
      copy.querySelectorAll('[class*="ghost-text"]').forEach((g) => g.remove());
      return { top: parseFloat(el.style.top) || 0, text: copy.textContent };
    });
    return rows.sort((a, b) => a.top - b.top).map((r) => r.text.replace(/\u00a0/g, ' '));
  });
}

/** Ghost text and an expected suggestion compare line by line, trailing whitespace aside
 * (VS Code does not render it). */
const shownAs = (t) => t.split('\n').map((l) => l.trimEnd()).join('\n').trimEnd()
  // Control characters show as their Unicode pictures (U+2400...).
  .replace(/[\u0000-\u0008\u000b-\u001f]/g, (c) => String.fromCharCode(0x2400 + c.charCodeAt(0)));
const sameText = (shown, want) => shownAs(shown) === shownAs(want);

const screenshotFor = (stage) => opts.screenshot.replace(/\.png$/, `-${stage}.png`);

/** Waits for a ghost text equal to `want`; a different one fails once it has stood 30 s (VS Code
 * may first show the rest of an earlier suggestion while the server answers). */
async function expectGhost(page, want, what, alternatives = []) {
  let other = '', since = 0;
  await until(`${what}: ghost text ${JSON.stringify(want)}`, async () => {
    const shown = await ghostText(page);
    if (shown !== '' && sameText(shown, want)) return true;
    const alt = alternatives.find((a) => shown !== '' && sameText(shown, a.ghost));
    if (alt) {
      log(`${what}: the other side of a near tie at token ${alt.token} (top-2 logit gap ${alt.gap})`);
      return true;
    }
    if (shown !== other) { other = shown; since = Date.now(); }
    if (other !== '' && Date.now() - since > 30000) {
      throw new Error(`${what}: VS Code shows ${JSON.stringify(other)}, the model's greedy text is ${JSON.stringify(want)}`);
    }
    return false;
  }, 120000, 250);
  return ghostText(page);
}

async function expectCursor(page, want, what) {
  return until(`${what}: cursor at Ln ${want.line}, Col ${want.col}`, async () => {
    const at = await cursorAt(page);
    return at !== undefined && at.line === want.line && at.col === want.col ? at : undefined;
  }, 10000, 200);
}

async function expectLine(page, want, what) {
  return until(`${what}: a line ${JSON.stringify(want)} in the editor`, async () =>
    (await editorLines(page)).find((l) => sameText(l, want)), 10000, 200);
}

/** The status bar's speed of the last completion, e.g. "codeswift 850 ms · 1.4 tok/step · 1.3×". */
async function speed(page, what) {
  return until(`${what}: speed in the status bar`, async () => {
    const t = (await statusText(page)).trim();
    return /^codeswift \d+ ms/.test(t) ? t : '';
  }, 30000);
}

/** A real model: the plan's two completions, each compared with `codeswift complete`'s greedy text. */
async function realScenario(page, plan) {
  const [one, two] = plan.steps;
  await openFile(page, plan.file);
  const t0 = Date.now();
  const ready = await until('codeswift ready', async () => {
    const t = await statusText(page);
    if (t.includes('codeswift: error')) throw new Error(`server failed: ${t}`);
    return /codeswift$|codeswift \d/.test(t.trim()) ? t : '';
  }, 900000, 1000);       // a loaded 2-core machine took 6 minutes to load Qwen2.5-Coder-0.5B
  log(`status when ready (${Math.round((Date.now() - t0) / 1000)} s after opening the file):`, JSON.stringify(ready));
  // Go to the end of indent()'s docstring, open a line and start the body.
  await page.keyboard.press('Control+G');
  await page.keyboard.type(String(plan.line));
  await page.keyboard.press('Enter');
  await page.keyboard.press('End');
  await page.keyboard.press('Enter');
  await page.keyboard.type(one.type, { delay: 40 });
  await expectCursor(page, one.at, 'typed');
  const ghost1 = await expectGhost(page, one.ghost, 'single-line completion');
  log('ghost text 1 (= codeswift complete):', JSON.stringify(ghost1));
  const speed1 = await speed(page, 'completion 1');
  log('status bar:', JSON.stringify(speed1));
  await page.screenshot({ path: screenshotFor('ghost') });

  await page.keyboard.press('Tab');
  await expectCursor(page, one.at_after, 'after Tab');
  const line1 = await expectLine(page, one.line_after, 'after Tab');
  log('line after Tab:', JSON.stringify(line1));
  await page.screenshot({ path: screenshotFor('accepted') });

  await page.keyboard.press('Enter');
  await expectCursor(page, two.at, 'after Enter');
  const alternatives = two.alternatives || [];
  const ghost2 = await expectGhost(page, two.ghost, 'block-mode completion', alternatives);
  const shown2 = alternatives.find((a) => sameText(ghost2, a.ghost)) || two;
  log('ghost text 2 (= codeswift complete):', JSON.stringify(ghost2));
  const speed2 = await speed(page, 'completion 2');
  log('status bar:', JSON.stringify(speed2));
  await page.screenshot({ path: screenshotFor('ghost2') });

  await page.keyboard.press('Control+ArrowRight');
  await expectCursor(page, two.at_after, 'after Ctrl+Right');
  const line2 = await expectLine(page, two.line_after, 'after Ctrl+Right');
  log('line after Ctrl+Right:', JSON.stringify(line2), 'word:', JSON.stringify(two.word));
  // The rest of the suggestion stays; should VS Code ask again, the server's answer there (its
  // greedy text from the new cursor, 64 new tokens) starts with the same text.
  const rest = await until(`the rest of the suggestion ${JSON.stringify(shown2.rest)}`, async () => {
    const shown = await ghostText(page);
    return shown !== '' && shownAs(shown).startsWith(shownAs(shown2.rest)) ? shown : '';
  }, 10000, 200);
  log('ghost text after Ctrl+Right:', JSON.stringify(rest));
  await page.screenshot({ path: screenshotFor('word') });
  return { ready, ghost1, speed1, lineAfterTab: line1, ghost2, speed2, lineAfterWord: line2, restShown: rest };
}

(async () => {
  const context = await chromium.launchPersistentContext(opts.profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  let failed = false;
  const page = context.pages()[0] ?? await context.newPage();
  try {
    await page.goto(opts.url);
    await page.locator('.monaco-workbench').waitFor({ timeout: 90000 });
    await until('status bar', async () => (await page.locator('.part.statusbar').count()) > 0, 60000);
    const result = opts.expect !== '' ? await errorScenario(page)
      : opts.plan !== '' ? await realScenario(page, JSON.parse(fs.readFileSync(opts.plan, 'utf8')))
        : await ghostScenario(page);
    console.log(JSON.stringify({ scenario: opts.scenario, ok: true, ...result, screenshot: opts.screenshot }));
  } catch (err) {
    failed = true;
    console.error(`[drive ${opts.scenario}] FAILED: ${err.message}`);
    console.error(`[drive ${opts.scenario}] status bar: ${JSON.stringify(await statusText(page).catch(() => ''))}`);
    await page.screenshot({ path: opts.screenshot.replace(/\.png$/, '-failed.png') }).catch(() => undefined);
  } finally {
    await context.close();
  }
  process.exit(failed ? 1 : 0);
})();
