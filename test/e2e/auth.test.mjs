// Connection and subscription tokens: refresh, invalid/missing/expired tokens,
// private channels.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import {
  startServer,
  connect,
  subscribe,
  waitEvent,
  waitOkOrFail,
  waitUntil,
  uniqueName,
  recordEvents,
  sleep,
  nowSeconds,
  signHS256,
} from './harness.mjs';

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

test('a connection token refreshed through getToken keeps the client connected past its expiry', async (t) => {
  // A short grace after expiry, so that a missed refresh would show as 3005.
  const srv = await startServer({ client: { expired_close_delay: '2s' } });
  t.after(() => srv.stop());

  const user = 'refresher';
  const exp = nowSeconds() + 3;
  const getTokenCalls = [];
  const client = srv.client({
    token: srv.token({ sub: user, exp }),
    getToken: async () => {
      getTokenCalls.push(Date.now());
      return srv.token({ sub: user, exp: nowSeconds() + 120 });
    },
  });
  const events = recordEvents(client, ['connecting', 'disconnected', 'error']);
  const conn = await connect(client);
  const channel = uniqueName('refresh');
  const sub = client.newSubscription(channel);
  await subscribe(sub);
  events.length = 0; // forget the initial connecting event

  await waitUntil(() => getTokenCalls.length >= 1, { timeout: 6_000, label: 'getToken to be called for the refresh' });
  // ttl is whole seconds rounded up, so the SDK refreshes within 1 s after exp,
  // well inside the 2 s grace.
  const lateness = getTokenCalls[0] - exp * 1000;
  assert.ok(lateness >= -100 && lateness <= 1_300, `getToken called ${lateness} ms after exp, expected 0..1000`);

  // Stay past the original expiry plus the 2 s grace, with a margin.
  const until = exp * 1000 + 2_000 + 1_500;
  await sleep(Math.max(0, until - Date.now()));

  assert.equal(getTokenCalls.length, 1, 'one refresh: the new token is valid for 2 minutes');
  assert.deepEqual(events, [], 'no connecting/disconnected/error events after the refresh');
  assert.equal(client.state, 'connected');

  // The same connection still receives publications.
  const pub = waitEvent(sub, 'publication', { label: 'a publication after the refresh' });
  await srv.apiResult('publish', { channel, data: { after: 'refresh' } });
  assert.deepEqual((await pub).data, { after: 'refresh' });
  const presence = await srv.apiResult('presence', { channel });
  assert.deepEqual(Object.keys(presence.presence), [conn.client], 'still the original connection');
});

test('a token signed with another secret ends in a terminal disconnect 3500 that names the signature', async () => {
  const client = server.client({ token: signHS256({ sub: 'mallory', exp: nowSeconds() + 3600 }, 'not-the-server-secret') });
  const events = recordEvents(client, ['connecting', 'connected', 'disconnected']);
  const disconnected = waitOkOrFail(client, 'disconnected', 'connected', { label: 'a disconnected event' });
  client.connect();
  const ctx = await disconnected;
  assert.equal(ctx.code, 3500);
  assert.match(ctx.reason, /signature/i, `reason ${JSON.stringify(ctx.reason)} should explain the signature failure`);

  // No reconnect: it stays disconnected.
  await sleep(2_000);
  assert.equal(client.state, 'disconnected');
  assert.deepEqual(
    events.map((e) => e.event),
    ['connecting', 'disconnected'],
    'one attempt only, no reconnect',
  );
});

test('no token while anonymous access is off: disconnect 3501 naming the places read', async () => {
  const client = server.client({});
  const events = recordEvents(client, ['connecting', 'connected', 'disconnected']);
  const disconnected = waitOkOrFail(client, 'disconnected', 'connected', { label: 'a disconnected event' });
  client.connect();
  const ctx = await disconnected;
  assert.equal(ctx.code, 3501);
  assert.match(ctx.reason, /token_missing: no token in connect\.token/);
  await sleep(1_000);
  assert.equal(client.state, 'disconnected');
  assert.deepEqual(
    events.map((e) => e.event),
    ['connecting', 'disconnected'],
  );
});

test('an expired token gets error 109, then getToken supplies a fresh one and the client connects', async () => {
  const user = 'late';
  let getTokenCalls = 0;
  const client = server.client({
    token: server.token({ sub: user, exp: nowSeconds() - 30 }),
    getToken: async () => {
      getTokenCalls++;
      return server.token({ sub: user, exp: nowSeconds() + 600 });
    },
  });
  const errors = recordEvents(client, ['error']);
  const events = recordEvents(client, ['connected', 'disconnected']);
  const conn = await connect(client, { timeout: 8_000 });

  assert.equal(getTokenCalls, 1);
  assert.equal(errors.length, 1, `one error event, got ${JSON.stringify(errors.map((e) => e.ctx))}`);
  assert.equal(errors[0].ctx.type, 'connect');
  assert.equal(errors[0].ctx.error.code, 109);
  assert.match(errors[0].ctx.error.message, /expired/i);
  assert.deepEqual(
    events.map((e) => e.event),
    ['connected'],
  );

  // The fresh connection is the token's user.
  const channel = uniqueName('late');
  const sub = client.newSubscription(channel);
  await subscribe(sub);
  const presence = await server.apiResult('presence', { channel });
  assert.deepEqual(presence.presence[conn.client], { user, client: conn.client });
});

test('a $private channel needs a subscription token: 103 without, subscribed with one from getToken', async () => {
  const user = 'dave';
  const channel = '$private';
  const client = server.client({ token: server.token({ sub: user }) });
  const conn = await connect(client);
  const clientEvents = recordEvents(client, ['connecting', 'disconnected']);

  // Without a token: refused with 103, not retried.
  const sub1 = client.newSubscription(channel);
  const subEvents = recordEvents(sub1, ['subscribed', 'unsubscribed', 'error']);
  const refused = waitOkOrFail(sub1, 'unsubscribed', 'subscribed', { label: 'the subscription to be refused' });
  sub1.subscribe();
  const ctx = await refused;
  assert.equal(ctx.code, 103);
  assert.equal(ctx.channel, channel);
  await sleep(300);
  assert.equal(sub1.state, 'unsubscribed');
  assert.deepEqual(
    subEvents.map((e) => e.event),
    ['unsubscribed'],
  );
  client.removeSubscription(sub1);

  // With a subscription token from the Subscription's getToken.
  const tokenRequests = [];
  const sub2 = client.newSubscription(channel, {
    getToken: async (tctx) => {
      tokenRequests.push(tctx.channel);
      return server.token({ sub: user, channel });
    },
  });
  const subscribed = await subscribe(sub2);
  assert.equal(subscribed.channel, channel);
  assert.deepEqual(tokenRequests, [channel]);

  const pub = waitEvent(sub2, 'publication', { label: 'a publication on the private channel' });
  await server.apiResult('publish', { channel, data: { secret: true } });
  assert.deepEqual((await pub).data, { secret: true });

  const presence = await server.apiResult('presence', { channel });
  assert.deepEqual(presence.presence[conn.client], { user, client: conn.client });
  assert.equal(client.state, 'connected');
  assert.deepEqual(clientEvents, [], 'the connection was never interrupted');
});

test('the refusal reason reaches the client: detail and hint in dev mode, the code only in production', async () => {
  const dev = await startServer({ dev: true, client: { reason_detail: '' } });
  const prod = await startServer({ client: { reason_detail: '' } });
  try {
    for (const [srv, full] of [[dev, true], [prod, false]]) {
      const client = srv.client({ token: signHS256({ sub: 'mallory', exp: nowSeconds() + 3600 }, 'not-the-server-secret') });
      const disconnected = waitOkOrFail(client, 'disconnected', 'connected', { label: 'a disconnected event' });
      client.connect();
      const ctx = await disconnected;
      assert.equal(ctx.code, 3500, 'invalid token stays the protocol code');
      if (full) {
        assert.match(ctx.reason, /^invalid token: signature_invalid: signature does not match key [0-9a-f]{8}/, `dev reason ${JSON.stringify(ctx.reason)}`);
      } else {
        assert.equal(ctx.reason, 'invalid token: signature_invalid', 'production shows the code only');
      }
      assert.ok(Buffer.byteLength(ctx.reason) <= 123, 'a close reason fits the WebSocket limit');
    }
  } finally {
    await dev.stop();
    await prod.stop();
  }
});
