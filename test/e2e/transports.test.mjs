// The npm centrifuge client over every transport Herald serves besides JSON
// over WebSocket: HTTP streaming and SSE (JSON), and its Protobuf build over
// WebSocket and HTTP streaming. Each run connects with a token, subscribes,
// publishes, reads presence and history, and recovers what it missed during
// a server-forced reconnect; delta compression is checked by the client
// itself (it applies every delta and parses the result).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { Centrifuge as CentrifugeJSON } from 'centrifuge';
import { Centrifuge as CentrifugeProtobuf } from 'centrifuge/build/protobuf';
import { EventSource } from 'eventsource';
import WebSocket from 'ws';

import { startServer, connect, subscribe, waitEvent, uniqueName, withTimeout } from './harness.mjs';

let server;

before(async () => {
  server = await startServer({
    http_stream: { enabled: true },
    sse: { enabled: true },
    channel: {
      namespaces: [
        {
          name: 'chat',
          presence: true,
          history_size: 10,
          history_ttl: '300s',
          force_recovery: true,
          allow_subscribe_for_client: true,
          allow_publish_for_subscriber: true,
          allow_presence_for_subscriber: true,
          allow_history_for_subscriber: true,
        },
        {
          name: 'delta',
          history_size: 10,
          history_ttl: '300s',
          allow_subscribe_for_client: true,
          allowed_delta_types: ['fossil'],
        },
      ],
    },
  });
});

after(async () => {
  await server?.stop();
});

const base = () => `http://127.0.0.1:${server.port}`;

/** A client of the given build over one transport, cleaned up with the server. */
function clientOver(Centrifuge, transport, options = {}) {
  const endpoint =
    transport === 'websocket' ? server.wsURL : `${base()}/connection/${transport}`;
  const c = new Centrifuge([{ transport, endpoint }], {
    websocket: WebSocket,
    fetch,
    readableStream: ReadableStream,
    eventsource: EventSource,
    emulationEndpoint: `${base()}/emulation`,
    minReconnectDelay: 100,
    maxReconnectDelay: 1_000,
    timeout: 5_000,
    ...options,
  });
  server.clients.add(c);
  return c;
}

// The Protobuf build carries data as bytes: the application encodes and
// decodes its JSON itself.
const asJSON = (tc, data) => (tc.protobuf ? JSON.parse(new TextDecoder().decode(data)) : data);
const fromJSON = (tc, v) => (tc.protobuf ? new TextEncoder().encode(JSON.stringify(v)) : v);

const cases = [
  { name: 'JSON over http_stream', build: CentrifugeJSON, transport: 'http_stream', protobuf: false },
  { name: 'JSON over sse', build: CentrifugeJSON, transport: 'sse', protobuf: false },
  { name: 'Protobuf over websocket', build: CentrifugeProtobuf, transport: 'websocket', protobuf: true },
  { name: 'Protobuf over http_stream', build: CentrifugeProtobuf, transport: 'http_stream', protobuf: true },
];

for (const tc of cases) {
  test(`${tc.name}: connect with a token, subscribe, publish, presence, history, recovery`, async () => {
    const user = uniqueName('tr-user');
    const channel = `chat:${uniqueName('room')}`;
    const client = clientOver(tc.build, tc.transport, { token: server.token({ sub: user }) });
    const ctx = await connect(client);
    assert.equal(ctx.transport, tc.transport);

    const sub = client.newSubscription(channel);
    const first = await subscribe(sub);
    assert.equal(first.recoverable, true);
    const epoch = first.streamPosition.epoch;

    // A publication through the API, and one from the client itself.
    let got = waitEvent(sub, 'publication', { label: 'the API publication' });
    await server.apiResult('publish', { channel, data: { n: 1, via: 'api' } });
    const viaAPI = await got;
    assert.deepEqual(asJSON(tc, viaAPI.data), { n: 1, via: 'api' });
    if (tc.protobuf) {
      // The API's JSON reaches a Protobuf client as its bytes, exactly.
      assert.equal(new TextDecoder().decode(viaAPI.data), '{"n":1,"via":"api"}');
    }
    got = waitEvent(sub, 'publication', { label: 'the client publication' });
    await client.publish(channel, fromJSON(tc, { n: 2, via: 'client' }));
    const own = await got;
    assert.deepEqual(asJSON(tc, own.data), { n: 2, via: 'client' });
    assert.equal(own.info.user, user);

    const presence = await sub.presence();
    assert.deepEqual(Object.values(presence.clients).map((i) => i.user), [user]);
    const stats = await sub.presenceStats();
    assert.equal(stats.numClients, 1);
    const history = await sub.history({ limit: 10 });
    assert.deepEqual(history.publications.map((p) => asJSON(tc, p.data).n), [1, 2]);
    assert.equal(history.epoch, epoch);

    // A forced reconnect; what was published meanwhile is recovered.
    const resubscribed = waitEvent(sub, 'subscribed', { timeout: 10_000, label: 'the resubscribe', filter: (c) => c.wasRecovering });
    const recovered = [];
    sub.on('publication', (p) => recovered.push(asJSON(tc, p.data).n));
    const reconnecting = waitEvent(client, 'connecting', { label: 'the reconnect' });
    await server.apiResult('disconnect', { user, disconnect: { code: 4000, reason: 'reconnect please' } });
    await reconnecting;
    await server.apiResult('publish', { channel, data: { n: 3 } });
    await server.apiResult('publish', { channel, data: { n: 4 } });
    const again = await resubscribed;
    assert.equal(again.recovered, true);
    await withTimeout(
      (async () => {
        while (recovered.length < 2) await new Promise((r) => setTimeout(r, 20));
      })(),
      5_000,
      'the recovered publications',
    );
    assert.deepEqual(recovered, [3, 4]);
    client.disconnect();
  });
}

for (const tc of cases.filter((c) => c.transport !== 'sse' || !c.protobuf)) {
  test(`${tc.name}: fossil delta compression, reconstructed by the client`, async () => {
    const channel = `delta:${uniqueName('d')}`;
    const client = clientOver(tc.build, tc.transport, { token: server.token({ sub: uniqueName('delta-user') }) });
    await connect(client);
    const sub = client.newSubscription(channel, { delta: 'fossil' });
    await subscribe(sub);
    const text = 'a long text that every publication repeats, so that deltas are small. '.repeat(6);
    const seen = [];
    sub.on('publication', (p) => seen.push(asJSON(tc, p.data)));
    for (let n = 1; n <= 4; n++) {
      await server.apiResult('publish', { channel, data: { n, text } });
    }
    await withTimeout(
      (async () => {
        while (seen.length < 4) await new Promise((r) => setTimeout(r, 20));
      })(),
      5_000,
      'four publications',
    );
    assert.deepEqual(seen, [1, 2, 3, 4].map((n) => ({ n, text })));
    const stats = sub.deltaStats();
    assert.equal(stats.numFullPayloads, 1, `first publication whole: ${JSON.stringify(stats)}`);
    assert.equal(stats.numDeltaPayloads, 3, `later ones deltas: ${JSON.stringify(stats)}`);
    assert.ok(stats.bytesReceived < stats.bytesDecoded / 2, `deltas are small: ${JSON.stringify(stats)}`);
    client.disconnect();
  });
}

test('a transport that is off answers with the setting that enables it', async () => {
  const res = await fetch(`${base()}/connection/uni_sse`);
  assert.equal(res.status, 404);
  const body = await res.json();
  assert.equal(body.error, 'transport_disabled');
  assert.match(body.hint, /uni_sse\.enabled/);
});
