// Publications, presence and history through the real centrifuge SDK.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer, connect, subscribe, waitEvent, waitUntil, withTimeout, uniqueName, recordEvents } from './harness.mjs';

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

test('a publication sent through /api/publish arrives in the subscription with the same data', async () => {
  const client = server.client({ token: server.token({ sub: 'alice' }) });
  await connect(client);

  const channel = uniqueName('news');
  const sub = client.newSubscription(channel);
  const subscribed = await subscribe(sub);
  assert.equal(subscribed.channel, channel);
  assert.equal(subscribed.recoverable, true, 'without_namespace has force_recovery');
  assert.equal(subscribed.wasRecovering, false);
  assert.equal(typeof subscribed.streamPosition?.epoch, 'string');
  assert.equal(subscribed.streamPosition.offset, 0, 'a fresh channel starts at offset 0');

  const publications = recordEvents(sub, ['publication']);
  const data = { text: 'hi', n: 42, nested: { ok: true, list: [1, 'two', null] }, unicode: 'héllo ✓' };
  const result = await server.apiResult('publish', { channel, data });
  assert.equal(result.offset, 1);
  assert.equal(result.epoch, subscribed.streamPosition.epoch, 'publish epoch = subscribe epoch');

  await waitUntil(() => publications.length >= 1, { label: 'the publication event' });
  const pub = publications[0].ctx;
  assert.equal(pub.channel, channel);
  assert.deepEqual(pub.data, data);
  assert.equal(pub.offset, 1);
  assert.equal(pub.info, undefined, 'API publications carry no client info');

  // A second publication keeps counting and is delivered once.
  const result2 = await server.apiResult('publish', { channel, data: { text: 'again' } });
  assert.equal(result2.offset, 2);
  await waitUntil(() => publications.length >= 2, { label: 'the second publication event' });
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(
    publications.map((p) => [p.ctx.offset, p.ctx.data]),
    [
      [1, data],
      [2, { text: 'again' }],
    ],
  );
});

test('presence and presenceStats show the connected user and client ids', async () => {
  const channel = uniqueName('room');
  const c1 = server.client({ token: server.token({ sub: 'alice', info: { name: 'Alice' } }) });
  const c2 = server.client({ token: server.token({ sub: 'alice' }) });
  const c3 = server.client({ token: server.token({ sub: 'bob' }) });
  const conn1 = await connect(c1);
  const conn2 = await connect(c2);
  const conn3 = await connect(c3);
  assert.notEqual(conn1.client, conn2.client);

  const s1 = c1.newSubscription(channel);
  await subscribe(s1);

  // Just one subscriber.
  let presence = await withTimeout(s1.presence(), 5_000, 'sub.presence()');
  assert.deepEqual(Object.keys(presence.clients), [conn1.client]);
  const me = presence.clients[conn1.client];
  assert.equal(me.user, 'alice', 'user id comes from the token sub claim');
  assert.equal(me.client, conn1.client, 'client id equals the SDK client id from "connected"');
  assert.deepEqual(me.connInfo, { name: 'Alice' }, 'conn_info comes from the token info claim');

  let stats = await withTimeout(s1.presenceStats(), 5_000, 'sub.presenceStats()');
  assert.deepEqual(stats, { numClients: 1, numUsers: 1 });

  // Two more subscribers: the same user on another connection, and another user.
  const s2 = c2.newSubscription(channel);
  const s3 = c3.newSubscription(channel);
  await subscribe(s2);
  await subscribe(s3);

  presence = await withTimeout(c1.presence(channel), 5_000, 'centrifuge.presence()');
  assert.deepEqual(Object.keys(presence.clients).sort(), [conn1.client, conn2.client, conn3.client].sort());
  assert.equal(presence.clients[conn2.client].user, 'alice');
  assert.equal(presence.clients[conn2.client].client, conn2.client);
  assert.equal(presence.clients[conn2.client].connInfo, undefined, 'no info claim, no conn_info');
  assert.equal(presence.clients[conn3.client].user, 'bob');
  assert.equal(presence.clients[conn3.client].client, conn3.client);

  stats = await withTimeout(c3.presenceStats(channel), 5_000, 'centrifuge.presenceStats()');
  assert.deepEqual(stats, { numClients: 3, numUsers: 2 });

  // The server API agrees.
  const apiPresence = await server.apiResult('presence', { channel });
  assert.deepEqual(apiPresence.presence[conn1.client], { user: 'alice', client: conn1.client, conn_info: { name: 'Alice' } });
  assert.deepEqual(apiPresence.presence[conn3.client], { user: 'bob', client: conn3.client });
  const apiStats = await server.apiResult('presence_stats', { channel });
  assert.deepEqual(apiStats, { num_clients: 3, num_users: 2 });

  // Unsubscribing removes the client from presence.
  const unsubscribed = waitEvent(s3, 'unsubscribed');
  s3.unsubscribe();
  await unsubscribed;
  await waitUntil(
    async () => {
      const st = await withTimeout(s1.presenceStats(), 5_000, 'sub.presenceStats()');
      return st.numClients === 2 && st.numUsers === 1;
    },
    { label: 'presence_stats {2 clients, 1 user} after bob unsubscribed' },
  );
});

test('history returns the API publications in order with their offsets and epoch', async () => {
  const channel = uniqueName('hist');
  const client = server.client({ token: server.token({ sub: 'carol' }) });
  await connect(client);
  const sub = client.newSubscription(channel);
  await subscribe(sub);

  const datas = [{ n: 1, text: 'first' }, { n: 2, text: 'second' }, { n: 3, text: 'third' }];
  const results = [];
  for (const data of datas) {
    results.push(await server.apiResult('publish', { channel, data }));
  }
  assert.deepEqual(
    results.map((r) => r.offset),
    [1, 2, 3],
  );
  const epoch = results[0].epoch;
  assert.ok(epoch, 'publish result has an epoch');
  assert.ok(results.every((r) => r.epoch === epoch), 'one epoch for the stream');

  const expected = datas.map((data, i) => ({ channel, data, offset: i + 1 }));

  const h1 = await withTimeout(sub.history({ limit: 10 }), 5_000, 'sub.history()');
  assert.deepEqual(h1.publications, expected);
  assert.equal(h1.offset, 3);
  assert.equal(h1.epoch, epoch);

  const h2 = await withTimeout(client.history(channel, { limit: 10 }), 5_000, 'centrifuge.history()');
  assert.deepEqual(h2.publications, expected);
  assert.equal(h2.offset, 3);
  assert.equal(h2.epoch, epoch);

  // limit 0: only the stream position.
  const top = await withTimeout(client.history(channel, { limit: 0 }), 5_000, 'history limit 0');
  assert.deepEqual(top, { publications: [], offset: 3, epoch });

  // reverse: newest first.
  const rev = await withTimeout(client.history(channel, { limit: 10, reverse: true }), 5_000, 'history reverse');
  assert.deepEqual(rev.publications, [...expected].reverse());

  // since: publications after offset 1.
  const since = await withTimeout(
    client.history(channel, { limit: 10, since: { offset: 1, epoch } }),
    5_000,
    'history since',
  );
  assert.deepEqual(since.publications, expected.slice(1));
  assert.equal(since.offset, 3);
  assert.equal(since.epoch, epoch);
});

test('a message sent through /api/send arrives as the client "message" event, and a client publish carries its info', async () => {
  const client = server.client({ token: server.token({ sub: 'carol', info: { name: 'Carol' } }) });
  const ctx = await connect(client);
  const messages = recordEvents(client, ['message']);
  await server.apiResult('send', { user: 'carol', data: { note: 'direct' } });
  await waitUntil(() => messages.length >= 1, { label: 'the message event' });
  assert.deepEqual(messages[0].ctx.data, { note: 'direct' });

  const channel = uniqueName('talk');
  const sub = client.newSubscription(channel);
  await subscribe(sub);
  const publications = recordEvents(sub, ['publication']);
  await withTimeout(sub.publish({ text: 'from the client' }), 5_000, 'sub.publish()');
  await waitUntil(() => publications.length >= 1, { label: 'own publication' });
  const pub = publications[0].ctx;
  assert.deepEqual(pub.data, { text: 'from the client' });
  assert.equal(pub.info.user, 'carol');
  assert.equal(pub.info.client, ctx.client);
  assert.deepEqual(pub.info.connInfo, { name: 'Carol' });
});
