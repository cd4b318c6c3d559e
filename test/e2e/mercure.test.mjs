// The Mercure front door with the real npm `eventsource` client: a token in
// the Authorization header (custom fetch), untyped and typed events, and
// reconnection with Last-Event-ID after the server ends the stream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { EventSource } from 'eventsource';

import {
  startServer,
  signHS256,
  withTimeout,
  waitUntil,
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
    mercure: {
      publisher: { secret: PUBLISHER_SECRET },
      subscriber: { secret: SUBSCRIBER_SECRET },
      write_timeout: '1500ms',
      dispatch_timeout: '200ms',
    },
  });
  hub = `http://127.0.0.1:${server.port}/.well-known/mercure`;
});

after(async () => {
  for (const es of sources) es.close();
  await server?.stop();
});

const publish = (fields) => mercurePost(server, fields);

/** An EventSource that sends a subscriber token in the Authorization header. */
function subscribe(topics, token, onRequest = () => {}) {
  const url = new URL(hub);
  for (const t of topics) url.searchParams.append('topic', t);
  const es = new EventSource(url, {
    fetch: (input, init) => {
      onRequest(init.headers);
      return fetch(input, { ...init, headers: { ...init.headers, Authorization: `Bearer ${token}` } });
    },
  });
  sources.add(es);
  return es;
}

/** Resolves with the next event of type `type` (rejects after 5 s). */
function next(es, type = 'message') {
  return withTimeout(
    new Promise((resolve) => {
      const on = (ev) => {
        es.removeEventListener(type, on);
        resolve(ev);
      };
      es.addEventListener(type, on);
    }),
    5_000,
    `a ${type} event`,
  );
}

function opened(es) {
  return withTimeout(
    new Promise((resolve, reject) => {
      es.onopen = () => resolve();
      es.onerror = (err) => reject(new Error(`EventSource error: ${err.message ?? err.code ?? err}`));
    }),
    5_000,
    'the stream to open',
  );
}

test('a token-authenticated EventSource receives private, typed and multi-line updates', async () => {
  const topic = `https://example.com/books/${uniqueName('b')}`;
  const token = signHS256({ mercure: { subscribe: ['https://example.com/books/{id}'] } }, SUBSCRIBER_SECRET);
  const es = subscribe(['https://example.com/books/{id}'], token);
  await opened(es); // fires at once: the hub flushes a comment before any update

  const gotMessage = next(es, 'message');
  const id = await publish({ topic, data: 'line 1\nline 2', private: 'on' });
  const ev = await gotMessage;
  assert.equal(ev.data, 'line 1\nline 2');
  assert.equal(ev.lastEventId, id);
  assert.match(id, /^urn:uuid:[0-9a-f-]{36}$/);

  const gotTyped = next(es, 'book-updated');
  await publish({ topic, data: '{"title":"Dune"}', type: 'book-updated', id: 'my-id-1' });
  const typed = await gotTyped;
  assert.equal(typed.data, '{"title":"Dune"}');
  assert.equal(typed.lastEventId, 'my-id-1');
  es.close();
});

test('after the server ends the stream, the client reconnects with Last-Event-ID and gets what it missed', async () => {
  const topic = `https://example.com/rooms/${uniqueName('r')}`;
  const token = signHS256({ mercure: { subscribe: [] } }, SUBSCRIBER_SECRET);
  const requests = [];
  const es = subscribe([topic], token, (headers) => requests.push({ ...headers }));
  await opened(es);

  const first = next(es);
  // retry: the client waits 300 ms before reconnecting
  await publish({ topic, data: 'before', id: 'before-1', retry: '300' });
  assert.equal((await first).data, 'before');

  // write_timeout is 1.5 s: the server ends the stream within it; publish
  // while the client is away.
  const dropped = withTimeout(
    new Promise((resolve) => {
      es.onerror = () => resolve();
    }),
    5_000,
    'the server to end the stream',
  );
  await dropped;
  const missed = next(es);
  await publish({ topic, data: 'while away', id: 'missed-1' });
  const ev = await missed;
  assert.equal(ev.data, 'while away');
  assert.equal(ev.lastEventId, 'missed-1');
  const reconnect = requests.at(-1);
  const lastHeader = reconnect['Last-Event-ID'] ?? reconnect['last-event-id'];
  assert.equal(lastHeader, 'before-1', `the reconnect request carries Last-Event-ID: ${JSON.stringify(reconnect)}`);
  // the missed update came by replay (it was published before the reconnect)
  await waitUntil(() => server.logs.some((l) => l.msg === 'mercure: subscriber connected' && l.replayed === 1), {
    label: 'the log line of a reconnect that replayed one update',
  });
  es.close();
});

test('a subscriber with a token signed by another key is refused with a reason', async () => {
  const res = await fetch(`${hub}?topic=x`, {
    headers: { Authorization: `Bearer ${signHS256({ mercure: { subscribe: ['*'] } }, 'another-secret-0123456789abcdef')}` },
    signal: AbortSignal.timeout(5_000),
  });
  assert.equal(res.status, 401);
  assert.match(res.headers.get('www-authenticate'), /error="invalid_token", error_description="signature_invalid/);
  assert.match(await res.text(), /^signature_invalid/);
});
