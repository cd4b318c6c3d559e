// The Action Cable front door with the real npm clients: @rails/actioncable
// and @anycable/web in Node (with ws), and Turbo Streams
// (@hotwired/turbo-rails' <turbo-cable-stream-source>) in headless Chromium.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';

import WebSocket from 'ws';

import { startServer, signHS256, nowSeconds, waitUntil, withTimeout, uniqueName, E2E_DIR, launchChromium } from './harness.mjs';

const CABLE_SECRET = 'e2e-anycable-secret-0123456789abcdef';

// Node has no DOM: the Rails client needs a document and a window-level
// addEventListener for its visibility handling, and ws as its WebSocket.
globalThis.document ??= { visibilityState: 'visible', addEventListener() {}, removeEventListener() {} };
globalThis.addEventListener ??= () => {};
globalThis.removeEventListener ??= () => {};
const ActionCable = await import('@rails/actioncable');
ActionCable.adapters.WebSocket = WebSocket;
ActionCable.adapters.logger = { log() {} };
const { createCable } = await import('@anycable/web');

/** Signs a stream name as Rails' MessageVerifier does. */
function signStream(name, key) {
  const data = Buffer.from(JSON.stringify(name)).toString('base64');
  return `${data}--${createHmac('sha256', key).update(data).digest('hex')}`;
}

/** An AnyCable token: the connection identifiers in ext, as a string. */
function anyCableToken(identifiers, ttl = 3600) {
  return signHS256({ ext: JSON.stringify(identifiers), exp: nowSeconds() + ttl }, CABLE_SECRET);
}

function cableConfig(extra = {}) {
  return {
    actioncable: {
      enabled: true,
      jwt: { secret: CABLE_SECRET },
      streams: { secret: CABLE_SECRET },
      turbo: { verifier_key: CABLE_SECRET },
      ...extra,
    },
  };
}

async function broadcastTo(server, body) {
  const res = await fetch(`http://127.0.0.1:${server.port}/_broadcast`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${server.apiKey}` },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5_000),
  });
  assert.equal(res.status, 201, `broadcast: ${res.status} ${await res.text()}`);
}

async function freePort() {
  const srv = net.createServer();
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

test('@rails/actioncable: connect, subscribe, receive broadcasts and API publications, reconnect after a restart', async (t) => {
  const port = await freePort();
  const config = { listen: `127.0.0.1:${port}`, ...cableConfig() };
  let server = await startServer(config);
  t.after(() => server.stop());

  const token = anyCableToken({ user_id: 'rails-1' });
  const consumer = ActionCable.createConsumer(`ws://127.0.0.1:${port}/cable?jid=${token}`);
  t.after(() => consumer.disconnect());
  const stream = uniqueName('rails');
  const received = [];
  let connected = 0;
  consumer.subscriptions.create(
    { channel: '$pubsub', signed_stream_name: signStream(stream, CABLE_SECRET) },
    {
      connected() {
        connected++;
      },
      received(data) {
        received.push(data);
      },
    },
  );
  await waitUntil(() => connected === 1, { label: 'the subscription to be confirmed' });
  assert.equal(consumer.connection.getProtocol(), 'actioncable-v1-json');

  await broadcastTo(server, { stream, data: JSON.stringify({ via: 'broadcast' }) });
  await waitUntil(() => received.some((m) => m.via === 'broadcast'), { label: 'the /_broadcast message' });
  await server.apiResult('publish', { channel: stream, data: { via: 'api' } });
  await waitUntil(() => received.some((m) => m.via === 'api'), { label: 'the server API message' });

  // A restart: server_restart tells the client to reconnect; it does, and resubscribes.
  await server.stop();
  server = await startServer(config);
  await waitUntil(() => connected === 2, { timeout: 20_000, label: 'the client to reconnect and resubscribe' });
  await broadcastTo(server, { stream, data: JSON.stringify({ via: 'after restart' }) });
  await waitUntil(() => received.some((m) => m.via === 'after restart'), { label: 'a message after the restart' });
});

test('@anycable/web, extended protocol: JWT, refresh on token_expired, history after a reconnect, presence', async (t) => {
  const server = await startServer(cableConfig({ streams: { secret: CABLE_SECRET, public: true } }));
  t.after(() => server.stop());
  const url = `ws://127.0.0.1:${server.port}/cable`;

  // An expired token: the server says token_expired, the refresher gets a new one.
  let refreshed = 0;
  const cable = createCable(url, {
    protocol: 'actioncable-v1-ext-json',
    websocketImplementation: WebSocket,
    logLevel: 'error',
    auth: { token: anyCableToken({ user_id: 'web-1' }, -60) },
    tokenRefresher: async (transport) => {
      refreshed++;
      transport.setParam('jid', anyCableToken({ user_id: 'web-1' }));
    },
  });
  t.after(() => cable.disconnect());
  const stream = uniqueName('web');
  const channel = cable.streamFrom(stream);
  const got = [];
  channel.on('message', (msg) => got.push(msg));
  await withTimeout(channel.ensureSubscribed(), 10_000, 'the subscription');
  assert.equal(refreshed, 1, 'the token was refreshed once');
  assert.ok(
    server.logs.some((l) => l.reason === 'token_expired'),
    `the log names token_expired; tail:\n${server.logTail(20)}`,
  );

  await broadcastTo(server, { stream, data: JSON.stringify({ n: 1 }) });
  await waitUntil(() => got.some((m) => m.n === 1), { label: 'the first message' });

  // The network drops: messages published meanwhile arrive after the
  // reconnect, from history, through the restored session.
  const restored = new Promise((resolve) => cable.on('connect', (ev) => ev.restored && resolve(ev)));
  cable.transport.ws.terminate();
  await broadcastTo(server, { stream, data: JSON.stringify({ n: 2 }) });
  await broadcastTo(server, { stream, data: JSON.stringify({ n: 3 }) });
  await withTimeout(restored, 15_000, 'a restored session');
  await waitUntil(() => got.some((m) => m.n === 3) && got.some((m) => m.n === 2), { timeout: 10_000, label: 'the missed messages' });
  assert.ok(
    server.logs.some((l) => l.msg === 'action cable session restored'),
    'the server restored the session rather than identifying anew',
  );

  // Presence: a second client joins; the first gets the join event, then sees it in info.
  const joins = [];
  channel.on('presence', (ev) => ev.type === 'join' && joins.push(ev));
  const other = createCable(url, {
    protocol: 'actioncable-v1-ext-json',
    websocketImplementation: WebSocket,
    logLevel: 'error',
    auth: { token: anyCableToken({ user_id: 'web-2' }) },
  });
  t.after(() => other.disconnect());
  const otherChannel = other.streamFrom(stream);
  await withTimeout(otherChannel.ensureSubscribed(), 10_000, 'the second subscription');
  await withTimeout(otherChannel.presence.join('web-2', { name: 'Second' }), 10_000, 'join');
  await waitUntil(() => joins.some((j) => j.id === 'web-2'), { label: 'the join event' }).catch((err) => {
    throw new Error(`${err.message}; server log:\n${server.logTail(40)}`);
  });
  const info = await waitUntil(
    async () => {
      const state = await channel.presence.info();
      return state && state['web-2'] ? state : null;
    },
    { label: 'web-2 in presence' },
  );
  assert.deepEqual(info['web-2'], { name: 'Second' });
});

/** Serves the page and the node_modules files the browser imports. */
async function pageServer(html) {
  const srv = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(html);
      return;
    }
    if (!url.pathname.startsWith('/node_modules/')) {
      res.writeHead(404).end();
      return;
    }
    let file = path.join(E2E_DIR, path.normalize(url.pathname));
    if (!file.startsWith(path.join(E2E_DIR, 'node_modules'))) {
      res.writeHead(403).end();
      return;
    }
    // turbo-rails imports its files without the .js extension.
    if (!(await stat(file).catch(() => null))?.isFile()) file += '.js';
    try {
      res.writeHead(200, { 'Content-Type': 'text/javascript' });
      res.end(await readFile(file));
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return srv;
}

test('Turbo Streams in headless Chromium: a signed stream source receives a <turbo-stream> and the DOM changes', async (t) => {
  const stream = 'Z2lkOi8vYXBwL1Jvb20vMQ:messages';
  let pagePort = 0;
  const server = await startServer({
    ...cableConfig({ anonymous: true }),
    client: { allowed_origins: ['http://127.0.0.1:*'] },
  });
  t.after(() => server.stop());
  const html = `<!doctype html><html><head>
<meta name="action-cable-url" content="ws://127.0.0.1:${server.port}/cable">
<script type="importmap">{"imports":{
  "@hotwired/turbo": "/node_modules/@hotwired/turbo/dist/turbo.es2017-esm.js",
  "@hotwired/turbo-rails": "/node_modules/@hotwired/turbo-rails/app/javascript/turbo/index.js",
  "@rails/actioncable/src": "/node_modules/@rails/actioncable/app/assets/javascripts/actioncable.esm.js"
}}</script>
<script type="module">import "@hotwired/turbo-rails"</script>
</head><body>
<turbo-cable-stream-source channel="Turbo::StreamsChannel" signed-stream-name="${signStream(stream, CABLE_SECRET)}"></turbo-cable-stream-source>
<div id="messages"></div>
</body></html>`;
  const pages = await pageServer(html);
  t.after(() => pages.close());
  pagePort = pages.address().port;

  const { context: browser, close } = await launchChromium();
  t.after(close);
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(String(err)));
  await page.goto(`http://127.0.0.1:${pagePort}/`);
  await page.waitForSelector('turbo-cable-stream-source[connected]', { state: 'attached', timeout: 15_000 }).catch((err) => {
    throw new Error(`the stream source never connected (${err.message}); page errors: ${errors.join('; ')}\n${server.logTail(30)}`);
  });

  // What turbo-rails' broadcast_append_to publishes: the HTML as a JSON string.
  const turboStream =
    '<turbo-stream action="append" target="messages"><template><p id="m1">Hello from Herald</p></template></turbo-stream>';
  await broadcastTo(server, { stream, data: JSON.stringify(turboStream) });
  await page.waitForSelector('#messages #m1', { timeout: 10_000 });
  assert.equal(await page.textContent('#messages #m1'), 'Hello from Herald');
  assert.deepEqual(errors, []);
});
