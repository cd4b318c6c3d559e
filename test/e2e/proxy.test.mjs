// Delegation to the team's backend: connect, publish and RPC proxies.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import WebSocket from 'ws';

import { startServer, connect, subscribe, waitUntil, withTimeout, uniqueName, recordEvents } from './harness.mjs';

// A backend written for Centrifugo's proxy protocol, on a free loopback port.
let backend;
const seen = [];

function answer(path, body, headers) {
  seen.push({ path, body, headers });
  switch (path) {
    case '/connect':
      if (headers.cookie !== 'session=abc' || headers.authorization !== 'Bearer app-session') {
        return { error: { code: 1001, message: 'no session' } };
      }
      return { result: { user: 'alice', info: { name: 'Alice' }, channels: ['feed'] } };
    case '/publish':
      return { result: { data: { text: `${body.data.text} (checked by the backend)` } } };
    case '/rpc':
      return { result: { data: { method: body.method, echo: body.data, user: body.user } } };
  }
  return { error: { code: 1000, message: 'unknown path' } };
}

let server;

before(async () => {
  backend = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const out = answer(req.url, JSON.parse(raw || '{}'), req.headers);
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify(out));
    });
  });
  await new Promise((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${backend.address().port}`;
  server = await startServer({
    client: { proxy: { connect: { enabled: true, endpoint: `${base}/connect`, http_headers: ['Cookie', 'Authorization'] } } },
    channel: {
      proxy: { publish: { enabled: true, endpoint: `${base}/publish` } },
      namespaces: [{ name: 'px', publish_proxy_enabled: true, allow_subscribe_for_client: true }],
    },
    rpc: { proxy: { enabled: true, endpoint: `${base}/rpc` } },
  });
});

after(async () => {
  await server?.stop();
  await new Promise((resolve) => backend?.close(resolve));
});

// Node clients can send headers and cookies on the upgrade; a browser would send its cookie.
class WebSocketWithSession extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols, { headers: { Cookie: 'session=abc', Authorization: 'Bearer app-session' } });
  }
}

test('the connect proxy gets the cookie and header, names the user and subscribes the client server-side', async () => {
  const client = server.client({ websocket: WebSocketWithSession });
  const pubs = recordEvents(client, ['publication']);
  const ctx = await connect(client);
  assert.equal(ctx.transport, 'websocket');
  const req = seen.find((s) => s.path === '/connect');
  assert.equal(req.body.transport, 'websocket');
  assert.equal(req.body.protocol, 'json');

  await server.apiResult('publish', { channel: 'feed', data: { n: 1 } });
  await waitUntil(() => pubs.length >= 1, { label: 'a publication on the server-side subscription' });
  assert.equal(pubs[0].ctx.channel, 'feed');
  assert.deepEqual(pubs[0].ctx.data, { n: 1 });
});

test('without the session cookie the backend refuses, and the client sees the backend error', async () => {
  const client = server.client({});
  const errors = recordEvents(client, ['error']);
  const disconnected = new Promise((resolve) => client.on('disconnected', resolve));
  client.connect();
  const ctx = await withTimeout(disconnected, 5_000, 'a disconnected event');
  assert.equal(ctx.code, 1001, 'the backend error code reaches the client');
  assert.ok(errors.length >= 1 || ctx.reason.includes('no session'), `reason ${ctx.reason}`);
});

test('the publish proxy rewrites the data, and an RPC goes round trip through the backend', async () => {
  const client = server.client({ websocket: WebSocketWithSession });
  await connect(client);
  const channel = `px:${uniqueName('room')}`;
  const sub = client.newSubscription(channel);
  await subscribe(sub);
  const pubs = recordEvents(sub, ['publication']);
  await withTimeout(sub.publish({ text: 'hello' }), 5_000, 'publish');
  await waitUntil(() => pubs.length >= 1, { label: 'the rewritten publication' });
  assert.deepEqual(pubs[0].ctx.data, { text: 'hello (checked by the backend)' });

  const res = await withTimeout(client.rpc('getPrice', { sku: 'x1' }), 5_000, 'rpc');
  assert.deepEqual(res.data, { method: 'getPrice', echo: { sku: 'x1' }, user: 'alice' });
});
