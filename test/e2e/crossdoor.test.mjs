// One channel, two protocols: the npm `centrifuge` client and the npm
// `eventsource` client subscribe to the same channel; publications through
// the server API and through a Mercure POST reach both, and both recover
// what they missed from the one stream after a reconnect.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { EventSource } from 'eventsource';

import {
  startServer,
  signHS256,
  connect,
  subscribe,
  waitEvent,
  waitUntil,
  withTimeout,
  uniqueName,
  mercurePost,
  MERCURE_PUBLISHER_SECRET as PUBLISHER_SECRET,
  MERCURE_SUBSCRIBER_SECRET as SUBSCRIBER_SECRET,
} from './harness.mjs';

let server;
let hub;
const sources = new Set();

before(async () => {
  server = await startServer({
    mercure: { publisher: { secret: PUBLISHER_SECRET }, subscriber: { secret: SUBSCRIBER_SECRET } },
  });
  hub = `http://127.0.0.1:${server.port}/.well-known/mercure`;
});

after(async () => {
  for (const es of sources) es.close();
  await server?.stop();
});

const mercurePublish = (topic, data) => mercurePost(server, { topic, data });

/** An EventSource on topic with a subscriber token allowed to read it. */
function eventSource(topic, lastEventID) {
  const url = new URL(hub);
  url.searchParams.append('topic', topic);
  const token = signHS256({ mercure: { subscribe: [topic] } }, SUBSCRIBER_SECRET);
  const headers = { Authorization: `Bearer ${token}` };
  if (lastEventID) headers['Last-Event-ID'] = lastEventID;
  const es = new EventSource(url, { fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, ...headers } }) });
  sources.add(es);
  return es;
}

function nextMessage(es, label = 'an event') {
  return withTimeout(
    new Promise((resolve) => {
      const on = (ev) => {
        es.removeEventListener('message', on);
        resolve(ev);
      };
      es.addEventListener('message', on);
    }),
    5_000,
    label,
  );
}

test('a publication through the API and a Mercure POST reach a centrifuge and an EventSource subscriber of one channel', async () => {
  const channel = uniqueName('news');
  const client = server.client({ token: server.token({ sub: 'reader' }) });
  await connect(client);
  const sub = client.newSubscription(channel);
  await subscribe(sub);

  const es = eventSource(channel);
  await withTimeout(new Promise((resolve) => es.addEventListener('open', resolve, { once: true })), 5_000, 'the stream to open');

  // Server API → both; the EventSource gets the JSON as its data.
  let pub = waitEvent(sub, 'publication', { label: 'the API publication' });
  let ev = nextMessage(es, 'the API publication as an event');
  const position = await server.apiResult('publish', { channel, data: { text: 'from the api' } });
  assert.deepEqual((await pub).data, { text: 'from the api' });
  const first = await ev;
  assert.deepEqual(JSON.parse(first.data), { text: 'from the api' });

  // Mercure POST → both: JSON as JSON, text as a string.
  pub = waitEvent(sub, 'publication', { label: 'the Mercure JSON update' });
  ev = nextMessage(es, 'the Mercure JSON update as an event');
  await mercurePublish(channel, '{"text":"from mercure"}');
  assert.deepEqual((await pub).data, { text: 'from mercure' });
  assert.equal((await ev).data, '{"text":"from mercure"}');

  pub = waitEvent(sub, 'publication', { label: 'the Mercure text update' });
  ev = nextMessage(es, 'the Mercure text update as an event');
  await mercurePublish(channel, 'just text');
  assert.equal((await pub).data, 'just text');
  assert.equal((await ev).data, 'just text');

  // One stream: an EventSource reconnecting after the first event replays
  // the other two, and the channel's history holds all three.
  const again = eventSource(channel, first.lastEventId);
  const replayed = [];
  again.addEventListener('message', (e) => replayed.push(e.data));
  await waitUntil(() => replayed.length === 2, { label: 'two replayed events' });
  assert.deepEqual(replayed, ['{"text":"from mercure"}', 'just text']);
  const history = await server.apiResult('history', { channel, limit: -1 });
  assert.equal(history.publications.length, 3);
  client.disconnect();

  // A centrifuge client recovering from the API publication's position
  // gets the two Mercure updates from the same stream.
  const late = server.client({ token: server.token({ sub: 'late-reader' }) });
  await connect(late);
  const lateSub = late.newSubscription(channel, { since: position });
  const recovered = [];
  lateSub.on('publication', (ctx) => recovered.push(ctx.data));
  const ctx = await subscribe(lateSub);
  assert.equal(ctx.recovered, true, 'recovered from the position of the API publication');
  assert.deepEqual(recovered, [{ text: 'from mercure' }, 'just text']);
  late.disconnect();
});
