// Drives VS Code (served by code-server) in headless Chromium for scripts/vscode-e2e.sh.
// Scenarios: "error" expects the status bar error and the fix-command notification;
// "ghost" types in a Python file, expects codeswift ghost text, accepts it with Tab and
// expects the status bar to show the last completion's speed.
'use strict';
const { chromium } = require('playwright-core');

const arg = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || i + 1 >= process.argv.length) throw new Error(`missing --${name}`);
  return process.argv[i + 1];
};
const opts = { scenario: arg('scenario'), url: arg('url'), file: arg('file'), screenshot: arg('screenshot'), profile: arg('profile') };
// Error scenarios: the text the error notification must contain.
opts.expect = process.argv.includes('--expect') ? arg('expect') : '';
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
    const result = opts.expect !== '' ? await errorScenario(page) : await ghostScenario(page);
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
