// The admin web page in a real browser (Debian's chromium driven by
// playwright-core): log in with the admin key, watch a refusal appear in the
// live feed within a second of a bad connection attempt, explain a pasted
// token, and publish from the form to a subscriber using the real
// centrifuge SDK. A screenshot of each page goes to .output/admin/ so a
// person can look at it.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

import WebSocket from 'ws';

import { E2E_DIR, startServer, connect, subscribe, waitEvent, nowSeconds, uniqueName, launchChromium } from './harness.mjs';

const ADMIN_KEY = 'e2e-admin-key-0123456789abcdef';
const OUTPUT = path.join(E2E_DIR, '.output', 'admin');

let server;
let browser;
let context;
let page;
let base;

before(async () => {
  server = await startServer({ admin: { key: ADMIN_KEY, enabled: true }, metrics: { enabled: true } });
  base = `http://127.0.0.1:${server.port}`;
  await mkdir(OUTPUT, { recursive: true });
  browser = await launchChromium({ viewport: { width: 1280, height: 860 } });
  context = browser.context;
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(10_000);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const shot = (name) => page.screenshot({ path: path.join(OUTPUT, `${name}.png`), fullPage: true });

/** Tries to connect over a raw WebSocket with token; resolves to the server's reply. */
function badConnect(token) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(server.wsURL);
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('the server did not answer the connect command'));
    }, 5_000);
    ws.on('open', () => ws.send(JSON.stringify({ id: 1, connect: { token } })));
    ws.on('message', (data) => {
      clearTimeout(timer);
      ws.close();
      resolve(JSON.parse(data.toString().split('\n')[0]));
    });
    ws.on('error', () => {});
  });
}

test('logging in with the admin key opens the overview', async () => {
  await page.goto(`${base}/admin/`);
  assert.match(page.url(), /\/admin\/login/, 'an anonymous visitor is sent to the login form');
  await page.fill('#key', 'not-the-key');
  await page.click('#login');
  assert.match(await page.textContent('#login-error'), /wrong admin key/);
  await shot('login');
  await page.fill('#key', ADMIN_KEY);
  await page.click('#login');
  await page.waitForURL(`${base}/admin/`);
  assert.equal(await page.textContent('h1'), 'Overview');
  const cookies = await context.cookies(`${base}/admin/`);
  const session = cookies.find((c) => c.name === 'herald_admin');
  assert.ok(session, 'a session cookie is set');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');
  assert.notEqual(session.value, ADMIN_KEY, 'the cookie holds a session id, not the key');
  // The page polls the counters: rates appear after two polls.
  await page.waitForFunction(() => document.querySelector('.rate').textContent !== '–', null, { timeout: 6_000 });
  await shot('overview');
});

test('a refused connection appears in the live feed within a second', async () => {
  await page.goto(`${base}/admin/refusals`);
  await page.waitForSelector('#live.on'); // the event stream is open
  const token = server.token({ sub: 'mallory', exp: nowSeconds() - 3600 });
  const started = Date.now();
  const reply = badConnect(token);
  const row = page.locator('#refusals tbody tr', { hasText: 'token_expired' }).first();
  await row.waitFor({ timeout: 1_000 });
  const elapsed = Date.now() - started;
  assert.ok(elapsed <= 1_000, `the refusal took ${elapsed} ms to appear`);
  const text = await row.textContent();
  assert.match(text, /centrifugo/, 'the door is shown');
  assert.match(text, /connect\.token/, 'the token source is shown');
  assert.match(text, /127\.0\.0\.1:/, 'the client address is shown');
  assert.match(text, /sub mallory/, 'facts about the token are shown');
  const html = await page.content();
  assert.ok(!html.includes(token.split('.')[2]), 'the token never reaches the page');
  assert.equal((await reply).error?.code, 109, 'an expired token is error 109: the SDK asks for a new one');
  await shot('refusals');
});

test('the token explainer shows every check of a pasted token', async () => {
  await page.goto(`${base}/admin/explain`);
  const expired = server.token({ sub: 'carol', exp: nowSeconds() - 60 });
  await page.fill('#token', expired);
  await page.click('#explain');
  await page.waitForSelector('#verdict');
  assert.equal(await page.textContent('#verdict'), 'Refused');
  assert.match(await page.textContent('#checks'), /token_expired/);
  assert.match(await page.textContent('#explain-text'), /FAIL {2}exp/);
  assert.match(await page.textContent('#explain-text'), /verdict: refused/);
  assert.ok(!(await page.content()).includes(expired), 'the token is not shown back');
  assert.match(await page.textContent('#keys'), /[0-9a-f]{8}/, 'the configured keys are listed by fingerprint');

  await page.fill('#token', server.token({ sub: 'carol' }));
  await page.click('#explain');
  await page.waitForSelector('#verdict.ok');
  assert.equal(await page.textContent('#verdict'), 'Accepted');
  await shot('explain');
});

test('the publish form reaches a subscriber', async () => {
  const channel = uniqueName('news');
  const client = server.client({ token: server.token({ sub: 'dave' }) });
  await connect(client);
  const sub = client.newSubscription(channel);
  await subscribe(sub);

  await page.goto(`${base}/admin/channels`);
  await page.click(`text=${channel}`);
  await page.waitForSelector('#subscribers');
  assert.match(await page.textContent('#subscribers'), /dave/);
  assert.match(await page.textContent('#subscribers'), /centrifugo/);

  const received = waitEvent(sub, 'publication', { label: 'the publication from the admin page' });
  await page.fill('#data', '{"text": "hello from the admin page"}');
  await page.click('#publish');
  await page.waitForSelector('#published');
  const ctx = await received;
  assert.deepEqual(ctx.data, { text: 'hello from the admin page' });
  assert.match(await page.textContent('#history'), /hello from the admin page/);
  await shot('channel');
  // The overview with a live subscriber and some traffic.
  await page.goto(`${base}/admin/`);
  await page.waitForSelector('#doors td:has-text("websocket")');
  await page.waitForFunction(() => document.querySelector('.rate').textContent !== '–', null, { timeout: 6_000 });
  await shot('overview-traffic');
  client.disconnect();
});
