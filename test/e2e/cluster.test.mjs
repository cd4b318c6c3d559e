// Two Herald processes sharing a private redis-server, driven with the npm
// centrifuge and eventsource clients: publications cross nodes, clients that
// move from node A to node B (through a TCP proxy playing the load balancer)
// recover what they missed, presence counts both nodes, the API of one node
// acts on a connection held by the other, Redis stopped and restarted
// mid-stream tells the clients and loses nothing, and a killed node's
// clients move on while its presence entries expire.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { EventSource } from 'eventsource';

import {
  startRedis,
  startCluster,
  startProxy,
  centrifugeClient,
  connect,
  subscribe,
  waitEvent,
  waitUntil,
  withTimeout,
  uniqueName,
  recordEvents,
  signHS256,
  mercurePost,
  mercureURL,
  health,
  waitHealth,
  sleep,
  MERCURE_PUBLISHER_SECRET,
  MERCURE_SUBSCRIBER_SECRET,
} from './harness.mjs';

const overrides = {
  mercure: {
    publisher: { secret: MERCURE_PUBLISHER_SECRET },
    subscriber: { secret: MERCURE_SUBSCRIBER_SECRET },
  },
  broker: { redis: { presence_ttl: '2s' } },
};

let redis;
let a;
let b;
const closers = [];

before(async () => {
  redis = await startRedis({ persist: true });
  [a, b] = await startCluster(2, redis, overrides);
});

after(async () => {
  for (const close of closers.reverse()) await close();
  await a?.stop();
  await b?.stop();
  await redis?.close();
});

/** An SDK client of a WebSocket URL, disconnected at the end. */
function client(wsURL, options = {}) {
  const c = centrifugeClient(wsURL, options);
  closers.push(async () => c.disconnect());
  return c;
}

const wsURL = (port) => `ws://127.0.0.1:${port}/connection/websocket`;

/** An EventSource on a hub URL for topics, with a subscriber token for them. */
function eventSource(hubURL, topics) {
  const url = new URL(hubURL);
  for (const t of topics) url.searchParams.append('topic', t);
  const token = signHS256({ mercure: { subscribe: topics } }, MERCURE_SUBSCRIBER_SECRET);
  const es = new EventSource(url, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, Authorization: `Bearer ${token}` } }),
  });
  closers.push(async () => es.close());
  return es;
}

/** Collects the data of every event of an EventSource, and its opens. */
function collect(es) {
  const got = { data: [], opens: 0, ids: [] };
  es.addEventListener('message', (ev) => {
    got.data.push(JSON.parse(ev.data));
    got.ids.push(ev.lastEventId);
  });
  es.addEventListener('open', () => got.opens++);
  return got;
}

function opened(es) {
  return withTimeout(
    new Promise((resolve) => es.addEventListener('open', () => resolve(), { once: true })),
    5_000,
    'the stream to open',
  );
}

test('a publication on node A reaches SDK and EventSource subscribers on node B', async () => {
  const channel = uniqueName('cross');
  const c = client(wsURL(b.port), { token: b.token({ sub: uniqueName('u') }) });
  await connect(c);
  const sub = c.newSubscription(channel);
  await subscribe(sub);
  const es = eventSource(mercureURL(b), [channel]);
  const got = collect(es);
  await opened(es);

  const pubs = recordEvents(sub, ['publication']);
  await a.apiResult('publish', { channel, data: { n: 1 } });
  await mercurePost(a, { topic: channel, data: JSON.stringify({ n: 2 }) });
  await waitUntil(() => pubs.length === 2 && got.data.length === 2, { label: 'both publications on node B' });
  assert.deepEqual(pubs.map((e) => e.ctx.data), [{ n: 1 }, { n: 2 }]);
  assert.deepEqual(got.data, [{ n: 1 }, { n: 2 }]);
  assert.deepEqual(pubs.map((e) => e.ctx.offset), [1, 2], 'one stream, numbered in Redis');
});

test('an SDK client that moves from node A to node B recovers what it missed, once', async () => {
  const channel = uniqueName('move');
  const proxy = await startProxy(a);
  closers.push(() => proxy.close());
  const c = client(wsURL(proxy.port), { token: a.token({ sub: uniqueName('mover') }) });
  await connect(c);
  const sub = c.newSubscription(channel);
  const first = await subscribe(sub);
  assert.equal(first.recoverable, true);
  const events = recordEvents(sub, ['publication', 'subscribed']);
  await a.apiResult('publish', { channel, data: { n: 1 } });
  await waitUntil(() => events.length === 1, { label: 'the first publication' });

  // Node A leaves the balancer; the client reconnects only once two
  // publications were made, through both nodes.
  proxy.hold();
  await waitUntil(() => sub.state === 'subscribing', { label: 'the subscription to be subscribing' });
  await a.apiResult('publish', { channel, data: { n: 2 } });
  await b.apiResult('publish', { channel, data: { n: 3 } });
  const resubscribed = waitEvent(sub, 'subscribed', { timeout: 8_000, label: 'the resubscription on node B' });
  proxy.moveTo(b);
  const ctx = await resubscribed;
  assert.equal(ctx.wasRecovering, true);
  assert.equal(ctx.recovered, true, 'recovered from the stream in Redis on node B');
  await b.apiResult('publish', { channel, data: { n: 4 } });
  await waitUntil(() => events.filter((e) => e.event === 'publication').length >= 4, { label: 'four publications' });
  await sleep(200); // room for a duplicate to show up
  const pubs = events.filter((e) => e.event === 'publication').map((e) => [e.ctx.offset, e.ctx.data.n]);
  assert.deepEqual(pubs, [[1, 1], [2, 2], [3, 3], [4, 4]]);
  const info = await b.apiResult('info', {});
  const nodeB = info.nodes.find((n) => n.uid === 'node-2');
  assert.ok(nodeB.num_clients >= 1, `the client is on node B now: ${JSON.stringify(info.nodes)}`);
});

test('an EventSource that moves from node A to node B replays with Last-Event-ID', async () => {
  const topic = uniqueName('books');
  const proxy = await startProxy(a);
  closers.push(() => proxy.close());
  const es = eventSource(`http://127.0.0.1:${proxy.port}/.well-known/mercure`, [topic]);
  const got = collect(es);
  await opened(es);
  await mercurePost(a, { topic, data: JSON.stringify({ n: 1 }) });
  await waitUntil(() => got.data.length === 1, { label: 'the first update' });

  proxy.hold();
  await mercurePost(a, { topic, data: JSON.stringify({ n: 2 }) });
  await b.apiResult('publish', { channel: topic, data: { n: 3 } });
  proxy.moveTo(b);
  await waitUntil(() => got.data.length >= 3, { timeout: 10_000, label: 'the replay on node B' });
  await mercurePost(b, { topic, data: JSON.stringify({ n: 4 }) });
  await waitUntil(() => got.data.length >= 4, { label: 'the live update on node B' });
  await sleep(200);
  assert.deepEqual(got.data, [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
  assert.equal(got.opens, 2, 'one reconnection');
});

test('presence counts the clients of both nodes', async () => {
  const channel = uniqueName('room');
  const onA = client(wsURL(a.port), { token: a.token({ sub: 'alice' }) });
  const onB1 = client(wsURL(b.port), { token: b.token({ sub: 'bob' }) });
  const onB2 = client(wsURL(b.port), { token: b.token({ sub: 'bob' }) });
  const subs = [];
  for (const c of [onA, onB1, onB2]) {
    await connect(c);
    const s = c.newSubscription(channel);
    await subscribe(s);
    subs.push(s);
  }
  const stats = await subs[0].presenceStats();
  assert.deepEqual({ clients: stats.numClients, users: stats.numUsers }, { clients: 3, users: 2 });
  const p = await subs[0].presence();
  assert.deepEqual(Object.values(p.clients).map((i) => i.user).sort(), ['alice', 'bob', 'bob']);
  const viaB = await b.apiResult('presence_stats', { channel });
  assert.deepEqual(viaB, { num_clients: 3, num_users: 2 });
  onB2.disconnect();
  await waitUntil(async () => (await a.apiResult('presence_stats', { channel })).num_clients === 2, {
    label: 'the presence read on node A to drop the client that left node B',
  });
});

test('disconnect and revocation through node B act on a client of node A', async () => {
  const user = uniqueName('target');
  const c = client(wsURL(a.port), { token: a.token({ sub: user }) });
  await connect(c);
  const disconnected = waitEvent(c, 'disconnected', { label: 'the disconnect from node B' });
  await b.apiResult('disconnect', { user, disconnect: { code: 4501, reason: 'moved away' } });
  const ctx = await disconnected;
  assert.equal(ctx.code, 4501);
  assert.equal(ctx.reason, 'moved away');

  const jti = uniqueName('jti');
  const revoked = client(wsURL(a.port), { token: a.token({ sub: user, jti }) });
  await connect(revoked);
  const gone = waitEvent(revoked, 'disconnected', { label: 'the revoked connection to close' });
  await b.apiResult('revoke_token', { uid: jti });
  assert.equal((await gone).code, 3500);
});

test('Redis stopped and restarted mid-stream: refused meanwhile, clients told, nothing lost or twice', async () => {
  const channel = uniqueName('stream');
  const c = client(wsURL(b.port), { token: b.token({ sub: uniqueName('follower') }) });
  await connect(c);
  const sub = c.newSubscription(channel);
  await subscribe(sub);
  const pubs = recordEvents(sub, ['publication', 'subscribing', 'subscribed']);
  const clientEvents = recordEvents(c, ['connecting', 'disconnected']);
  const es = eventSource(mercureURL(b), [channel]);
  const got = collect(es);
  await opened(es);
  const publisher = startPublisher();
  closers.push(() => publisher.stop());

  // A publisher through node A's API, every 20 ms.
  function startPublisher() {
    const accepted = [];
    const refused = [];
    let n = 0;
    let running = true;
    const done = (async () => {
      while (running) {
        n++;
        const res = await fetch(`${a.apiURL}/publish`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'X-API-Key': a.apiKey },
          body: JSON.stringify({ channel, data: { n } }),
          signal: AbortSignal.timeout(5_000),
        }).catch((err) => ({ status: 0, text: async () => String(err) }));
        const body = await res.text();
        if (res.status === 200 && body.includes('"result"')) accepted.push(n);
        else if (res.status === 503) refused.push({ n, body });
        else throw new Error(`publication ${n}: ${res.status} ${body}`);
        await sleep(20);
      }
    })();
    return { accepted, refused, stop: async () => { running = false; await done; } };
  }

  await waitUntil(() => publisher.accepted.length >= 10, { label: 'publications before the outage' });
  await redis.stop();
  await waitUntil(() => publisher.refused.length >= 3, { label: 'publications refused while Redis is away' });
  const r = publisher.refused[0];
  const body = JSON.parse(r.body);
  assert.equal(body.error.code, 100);
  assert.equal(body.error.temporary, true);
  assert.match(body.error.message, /broker unavailable/);
  await waitHealth(a, 503);
  assert.match((await health(b)).body, /broker unavailable/);
  // A client's publish is refused with error 100, temporary; its connection stays.
  await assert.rejects(c.publish(channel, { n: -1 }), (err) => err.code === 100 && err.temporary === true);
  assert.equal(c.state, 'connected');

  await redis.restart();
  await waitHealth(a, 200);
  await waitHealth(b, 200);
  const mark = publisher.accepted.length;
  await waitUntil(() => publisher.accepted.length >= mark + 10, { timeout: 10_000, label: 'publications after the outage' });
  await publisher.stop();

  const want = publisher.accepted;
  await waitUntil(
    () => pubs.filter((e) => e.event === 'publication').length >= want.length && got.data.length >= want.length,
    { timeout: 15_000, label: `all ${want.length} accepted publications on both clients` },
  );
  await sleep(200);
  const sdk = pubs.filter((e) => e.event === 'publication').map((e) => e.ctx.data.n);
  assert.deepEqual(sdk, want, 'the SDK client got every accepted publication once, in order');
  assert.deepEqual(got.data.map((d) => d.n), want, 'the EventSource got every accepted publication once, in order');
  // Told, as the protocols say: the SDK resubscribed (unsubscribe 2500)
  // and recovered; the stream was closed and reopened with Last-Event-ID.
  const resub = pubs.filter((e) => e.event === 'subscribed').map((e) => e.ctx);
  assert.ok(resub.some((s) => s.wasRecovering && s.recovered), `recovered after the outage: ${JSON.stringify(resub)}`);
  assert.ok(pubs.some((e) => e.event === 'subscribing' && e.ctx.code === 2500), 'unsubscribe 2500 (insufficient state)');
  assert.deepEqual(clientEvents, [], 'the connection stayed up');
  assert.ok(got.opens >= 2, 'the stream was closed and reopened');
});

test('a killed node: its clients move to the other node and recover; its presence entries expire', async () => {
  const redis2 = await startRedis();
  const [x, y] = await startCluster(2, redis2, overrides);
  closers.push(async () => {
    await y.stop();
    await redis2.close();
  });
  const channel = uniqueName('survive');
  const proxy = await startProxy(x);
  closers.push(() => proxy.close());
  const c = client(wsURL(proxy.port), { token: x.token({ sub: 'mover' }) });
  const oldID = (await connect(c)).client;
  const sub = c.newSubscription(channel);
  await subscribe(sub);
  const watcher = client(wsURL(y.port), { token: y.token({ sub: 'watcher' }) });
  await connect(watcher);
  await subscribe(watcher.newSubscription(channel));
  const events = recordEvents(sub, ['publication', 'subscribed']);
  await y.apiResult('publish', { channel, data: { n: 1 } });
  await waitUntil(() => events.length === 1, { label: 'the first publication' });
  assert.equal((await y.apiResult('presence_stats', { channel })).num_clients, 2);
  const uids = async () => (await y.apiResult('info', {})).nodes.map((n) => n.uid).sort().join(',');
  await waitUntil(async () => (await uids()) === 'node-1,node-2', { label: 'node Y to list both nodes in info' });

  proxy.hold();
  x.child.kill('SIGKILL'); // no goodbye: its presence entries stay until presence_ttl
  await withTimeout(x.exited, 5_000, 'the killed node to exit');
  await x.stop();
  await y.apiResult('publish', { channel, data: { n: 2 } });
  const reconnected = waitEvent(c, 'connected', { timeout: 8_000, label: 'the reconnection to node Y' });
  const resubscribed = waitEvent(sub, 'subscribed', { timeout: 8_000, label: 'the resubscription on node Y' });
  proxy.moveTo(y);
  const newID = (await reconnected).client;
  assert.equal((await resubscribed).recovered, true);
  await waitUntil(() => events.filter((e) => e.event === 'publication').length === 2, { label: 'the missed publication' });
  // The killed node's entry for the mover expires (presence_ttl 2s); the
  // mover's new connection on Y and the watcher stay.
  let ids = [];
  await waitUntil(
    async () => {
      ids = Object.keys((await y.apiResult('presence', { channel })).presence);
      return ids.length === 2 && ids.includes(newID) && !ids.includes(oldID);
    },
    { timeout: 8_000, label: "the killed node's presence entry to expire" },
  ).catch((err) => {
    throw new Error(`${err.message}: presence ${ids}, old ${oldID}, new ${newID}`);
  });
  // A killed node sends no goodbye: it leaves info after 15 s of silence.
  await waitUntil(async () => (await uids()) === 'node-2', { timeout: 20_000, label: 'the killed node to leave info' });
});
