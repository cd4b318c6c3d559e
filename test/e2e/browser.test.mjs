// A browser with no SDK: a plain EventSource in headless Chromium receives
// the publications of its token's channels over uni_sse, from a page on
// another origin (CORS through client.allowed_origins).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { chromium } from 'playwright-core';

import { startServer, uniqueName, withTimeout } from './harness.mjs';

const CHROMIUM = '/usr/bin/chromium';

let server;
let page;
let pageServer;
let browser;
let profile;

before(async () => {
  server = await startServer({
    uni_sse: { enabled: true },
    client: { allowed_origins: ['http://127.0.0.1:*'] },
  });
  // The page comes from its own origin, as an application's would.
  pageServer = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>uni_sse</title><p>listening</p>');
  });
  await new Promise((resolve) => pageServer.listen(0, '127.0.0.1', resolve));
  profile = await mkdtemp(path.join(tmpdir(), 'herald-chromium-'));
  // A fresh profile directory: Playwright passes it as --user-data-dir.
  browser = await withTimeout(
    chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    }),
    30_000,
    'Chromium to start',
  );
  page = browser.pages()[0] ?? (await browser.newPage());
  await page.goto(`http://127.0.0.1:${pageServer.address().port}/`);
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => (pageServer ? pageServer.close(resolve) : resolve()));
  await server?.stop();
  if (profile) await rm(profile, { recursive: true, force: true });
});

test('a plain EventSource receives the publications of its token\'s channels over uni_sse', async () => {
  const channel = uniqueName('news');
  const token = server.token({ sub: uniqueName('reader'), channels: [channel] });
  const url = `http://127.0.0.1:${server.port}/connection/uni_sse?cf_connect=${encodeURIComponent(JSON.stringify({ token }))}`;
  await page.evaluate((u) => {
    window.received = [];
    window.sse = new EventSource(u);
    window.sse.onmessage = (e) => window.received.push(JSON.parse(e.data));
  }, url);
  const connectPush = await page.waitForFunction(() => window.received.find((m) => m.connect), null, { timeout: 10_000 });
  const connect = (await connectPush.jsonValue()).connect;
  assert.ok(connect.client, 'the first push is connect');
  assert.ok(connect.subs[channel], `the token's channel is subscribed: ${JSON.stringify(connect)}`);

  await server.apiResult('publish', { channel, data: { headline: 'hello, browser' } });
  const pub = await page.waitForFunction(() => window.received.find((m) => m.pub), null, { timeout: 10_000 });
  const push = await pub.jsonValue();
  assert.equal(push.channel, channel);
  assert.deepEqual(push.pub.data, { headline: 'hello, browser' });
  await page.evaluate(() => window.sse.close());
});
