// Graceful shutdown on SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { startServer, connect, subscribe, waitEvent, uniqueName, recordEvents, sleep } from './harness.mjs';

test('SIGTERM disconnects clients with 3001 (reconnect advised) and the server exits 0', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());

  const client = server.client({ token: server.token({ sub: 'erin' }), minReconnectDelay: 500, maxReconnectDelay: 2_000 });
  await connect(client);
  const sub = client.newSubscription(uniqueName('bye'));
  await subscribe(sub);
  const events = recordEvents(client, ['connecting', 'disconnected']);

  const connecting = waitEvent(client, 'connecting', { label: 'the client to see the shutdown disconnect' });
  const started = Date.now();
  const exit = await server.terminate({ graceMs: 5_000 }); // SIGTERM, SIGKILL after 5 s
  const ctx = await connecting;

  assert.equal(exit.killed, false, 'the server exited on SIGTERM without needing SIGKILL');
  assert.equal(exit.signal, null);
  assert.equal(exit.code, 0, 'exit status 0');
  assert.ok(Date.now() - started < 5_000, `exited within 5 s (took ${Date.now() - started} ms)`);

  assert.equal(ctx.code, 3001);
  assert.match(ctx.reason, /shut/i);
  // 3001 advises a reconnect: the SDK moves to connecting, not to disconnected.
  await sleep(200);
  assert.equal(events[0].event, 'connecting');
  assert.equal(events.filter((e) => e.event === 'disconnected').length, 0, 'no terminal disconnect');
  assert.equal(client.state, 'connecting');
  assert.ok(
    server.logs.some((l) => l.msg === 'stopped'),
    `the server logged "stopped"; log tail:\n${server.logTail(10)}`,
  );
});
