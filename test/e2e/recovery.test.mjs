// Recovery of missed publications after a server-forced reconnect.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer, connect, subscribe, waitEvent, waitUntil, withTimeout, uniqueName, recordEvents, sleep } from './harness.mjs';

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

test('publications missed during a forced reconnect are recovered in order, exactly once', async () => {
  const user = uniqueName('rec-user');
  const channel = `chat:${uniqueName('room')}`; // chat has force_recovery

  // The SDK calls getData before every connection attempt. While `hold` is set
  // the reconnect waits on it, so the publications below are certainly made
  // while the client is disconnected (bounded: released in finally).
  let hold = null;
  let release = () => {};
  const client = server.client({
    token: server.token({ sub: user }),
    getData: async () => {
      if (hold) await withTimeout(hold, 10_000, 'the test to release the reconnect');
      return null;
    },
  });
  try {
    const conn1 = await connect(client);
    const sub = client.newSubscription(channel);
    const first = await subscribe(sub);
    assert.equal(first.recoverable, true, 'chat namespace has force_recovery');
    assert.equal(first.wasRecovering, false);
    assert.equal(first.recovered, false);
    assert.equal(first.streamPosition.offset, 0);
    const epoch = first.streamPosition.epoch;
    assert.ok(epoch, 'subscribe result has an epoch');

    // One publication while connected: the position the client will recover from.
    const live = waitEvent(sub, 'publication', { label: 'the live publication' });
    const r0 = await server.apiResult('publish', { channel, data: { n: 0 } });
    assert.deepEqual(r0, { offset: 1, epoch });
    const p0 = await live;
    assert.equal(p0.offset, 1);
    assert.deepEqual(p0.data, { n: 0 });

    const events = recordEvents(sub, ['publication', 'subscribed', 'subscribing', 'unsubscribed']);
    const clientEvents = recordEvents(client, ['connecting', 'connected', 'disconnected']);

    // Force a reconnect with a 4000-4499 code.
    hold = new Promise((resolve) => {
      release = resolve;
    });
    const connecting = waitEvent(client, 'connecting', { label: 'the client to start reconnecting' });
    const disc = await server.apiResult('disconnect', {
      user,
      disconnect: { code: 4000, reason: 'reconnect please' },
    });
    assert.deepEqual(disc, {});
    const connectingCtx = await connecting;
    assert.equal(connectingCtx.code, 4000);
    assert.equal(connectingCtx.reason, 'reconnect please');
    assert.equal(client.state, 'connecting');
    await waitUntil(() => sub.state === 'subscribing', { label: 'the subscription to be subscribing' });

    // Two publications while the client is disconnected.
    const r1 = await server.apiResult('publish', { channel, data: { n: 1, text: 'missed one' } });
    const r2 = await server.apiResult('publish', { channel, data: { n: 2, text: 'missed two' } });
    assert.deepEqual(r1, { offset: 2, epoch });
    assert.deepEqual(r2, { offset: 3, epoch });

    // Let it reconnect.
    const reconnected = waitEvent(client, 'connected', { timeout: 8_000, label: 'the client to reconnect' });
    const resubscribed = waitEvent(sub, 'subscribed', { timeout: 8_000, label: 'the resubscription' });
    release();
    const conn2 = await reconnected;
    assert.notEqual(conn2.client, conn1.client, 'a new connection has a new client id');
    const ctx = await resubscribed;
    assert.equal(ctx.wasRecovering, true, 'subscribed.wasRecovering');
    assert.equal(ctx.recovered, true, 'subscribed.recovered');
    assert.equal(ctx.recoverable, true);
    assert.equal(ctx.hasRecoveredPublications, true);
    assert.equal(ctx.streamPosition?.epoch, epoch);

    await waitUntil(() => events.filter((e) => e.event === 'publication').length >= 2, {
      label: 'the two recovered publications',
    });
    // A live publication after recovery continues the stream.
    const r3 = await server.apiResult('publish', { channel, data: { n: 3 } });
    assert.deepEqual(r3, { offset: 4, epoch });
    await waitUntil(() => events.filter((e) => e.event === 'publication').length >= 3, {
      label: 'the publication after recovery',
    });
    await sleep(300); // room for any duplicate to show up

    const pubs = events.filter((e) => e.event === 'publication').map((e) => [e.ctx.offset, e.ctx.data]);
    assert.deepEqual(pubs, [
      [2, { n: 1, text: 'missed one' }],
      [3, { n: 2, text: 'missed two' }],
      [4, { n: 3 }],
    ]);
    // The recovered publications came after the subscribed event.
    assert.deepEqual(
      events.map((e) => e.event),
      ['subscribing', 'subscribed', 'publication', 'publication', 'publication'],
    );
    assert.deepEqual(
      clientEvents.map((e) => e.event),
      ['connecting', 'connected'],
      'one reconnect, never terminally disconnected',
    );
  } finally {
    release();
  }
});
