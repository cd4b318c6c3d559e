// Test harness for Herald's end-to-end tests: builds the herald binary once per
// test process, runs a server on a free loopback port with a temporary
// configuration, and gives the tests small helpers around it (server API calls,
// JWT minting, real centrifuge SDK clients, bounded waits).
//
// Every wait here is bounded: a broken or hung server fails the test instead of
// hanging the suite. A server is always stopped (SIGTERM, then SIGKILL after a
// bound), also when the test that started it fails.

import { spawn, execFile } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';

const execFileAsync = promisify(execFile);

export const E2E_DIR = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(E2E_DIR, '..', '..');
export const BIN_PATH = path.join(E2E_DIR, '.bin', 'herald');

export const DEFAULT_SECRET = 'e2e-hmac-secret-0123456789abcdef';
export const DEFAULT_API_KEY = 'e2e-api-key';
export const MERCURE_PUBLISHER_SECRET = 'e2e-mercure-publisher-0123456789abcdef';
export const MERCURE_SUBSCRIBER_SECRET = 'e2e-mercure-subscriber-0123456789abcdef';

const START_TIMEOUT_MS = 10_000;
const BUILD_TIMEOUT_MS = 180_000;
const API_TIMEOUT_MS = 5_000;

// ---------------------------------------------------------------------------
// Small utilities

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const nowSeconds = () => Math.floor(Date.now() / 1000);

/** A channel name that no other test uses. */
export function uniqueName(prefix) {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** Rejects after ms with a message that names what was awaited. */
export function withTimeout(promise, ms, label) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${label}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Waits for the next `event` from an event emitter (SDK client or subscription)
 * whose context satisfies `filter`. Bounded by `timeout` ms.
 */
export function waitEvent(emitter, event, { timeout = 5_000, filter = () => true, label } = {}) {
  let listener;
  const p = new Promise((resolve) => {
    listener = (ctx) => {
      if (filter(ctx)) resolve(ctx);
    };
    emitter.on(event, listener);
  });
  return withTimeout(p, timeout, label ?? `"${event}" event`).finally(() => emitter.off(event, listener));
}

/** Polls `predicate` every 20 ms until it is truthy; bounded by `timeout` ms. */
export async function waitUntil(predicate, { timeout = 5_000, label = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${label}`);
    await sleep(20);
  }
}

/** Records every emission of the given events, in order, as {event, ctx, at}. */
export function recordEvents(emitter, events) {
  const log = [];
  for (const event of events) {
    emitter.on(event, (ctx) => log.push({ event, ctx, at: Date.now() }));
  }
  return log;
}

// ---------------------------------------------------------------------------
// JWT (HS256) minting with node:crypto

/** Signs `claims` as an HS256 JWT with `secret`. */
export function signHS256(claims, secret) {
  const enc = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
  const signingInput = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc(claims)}`;
  const signature = createHmac('sha256', secret).update(signingInput).digest('base64url');
  return `${signingInput}.${signature}`;
}

// ---------------------------------------------------------------------------
// Configuration

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Deep-merges plain objects; arrays and scalars in `over` replace; undefined deletes. */
export function deepMerge(base, over) {
  if (!isPlainObject(base) || !isPlainObject(over)) return over;
  const out = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) delete out[k];
    else out[k] = isPlainObject(v) && isPlainObject(base[k]) ? deepMerge(base[k], v) : v;
  }
  return out;
}

/**
 * YAML for a config object: maps in block style, everything else (strings,
 * numbers, booleans, arrays) as JSON flow values, which YAML reads as they are.
 */
export function toYAML(obj, indent = 0) {
  const pad = '  '.repeat(indent);
  let out = '';
  for (const [k, v] of Object.entries(obj)) {
    if (isPlainObject(v) && Object.keys(v).length > 0) {
      out += `${pad}${k}:\n${toYAML(v, indent + 1)}`;
    } else {
      out += `${pad}${k}: ${JSON.stringify(v)}\n`;
    }
  }
  return out;
}

/** The suite's default server configuration (see the brief / docs/configuration.md). */
export function defaultConfig() {
  return {
    listen: '127.0.0.1:0',
    log_format: 'json',
    log_level: 'debug',
    client: {
      token: { hmac_secret_key: DEFAULT_SECRET },
      allowed_origins: [],
      allow_anonymous_connect_without_token: false,
      reason_detail: 'full',
      ping_interval: '25s',
      pong_timeout: '8s',
      expired_close_delay: '25s',
      expired_sub_close_delay: '25s',
    },
    http_api: { key: DEFAULT_API_KEY },
    channel: {
      without_namespace: {
        presence: true,
        join_leave: true,
        history_size: 100,
        history_ttl: '300s',
        force_recovery: true,
        allow_subscribe_for_client: true,
        allow_publish_for_client: true,
        allow_history_for_client: true,
        allow_presence_for_client: true,
      },
      namespaces: [
        {
          name: 'chat',
          presence: true,
          history_size: 10,
          history_ttl: '300s',
          force_recovery: true,
          allow_subscribe_for_client: true,
        },
      ],
    },
  };
}

// ---------------------------------------------------------------------------
// Building the binary

let buildPromise = null;

/**
 * Builds ./cmd/herald into test/e2e/.bin/herald, once per test process (go's
 * build cache makes repeated builds cheap). HERALD_E2E_BIN=/path/to/herald skips
 * the build and uses that binary (npm test builds once in "pretest" and sets it).
 */
export function buildHerald() {
  if (process.env.HERALD_E2E_BIN) return Promise.resolve(path.resolve(E2E_DIR, process.env.HERALD_E2E_BIN));
  buildPromise ??= execFileAsync('go', ['build', '-o', BIN_PATH, './cmd/herald'], {
    cwd: REPO_ROOT,
    timeout: BUILD_TIMEOUT_MS,
    maxBuffer: 16 * 1024 * 1024,
  }).then(
    () => BIN_PATH,
    (err) => {
      throw new Error(`go build ./cmd/herald failed:\n${err.stderr || err.message}`);
    },
  );
  return buildPromise;
}

// ---------------------------------------------------------------------------
// Running a server

const liveChildren = new Set();
process.on('exit', () => {
  // Last resort if a test process ends without stopping its servers.
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

/** Environment for the server without HERALD_* variables (they override the file). */
function serverEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('HERALD_')) env[k] = v;
  }
  return env;
}

/**
 * Starts herald with the default configuration deep-merged with `overrides`.
 * Resolves once the server logged "herald listening"; rejects (after killing
 * the process) if it does not within START_TIMEOUT_MS or exits first.
 */
export async function startServer(overrides = {}) {
  const bin = await buildHerald();
  const config = deepMerge(defaultConfig(), overrides);
  const dir = await mkdtemp(path.join(tmpdir(), 'herald-e2e-'));
  const configPath = path.join(dir, 'herald.yaml');
  await writeFile(configPath, toYAML(config));

  const child = spawn(bin, ['serve', '--config', configPath], {
    cwd: dir,
    env: serverEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  liveChildren.add(child);

  const logs = []; // parsed JSON log lines (or {raw} for other lines)
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      liveChildren.delete(child);
      resolve({ code, signal });
    });
  });
  let exitResult = null;
  exited.then((r) => {
    exitResult = r;
  });
  child.stdout.on('data', (b) => logs.push({ raw: b.toString(), stream: 'stdout' }));

  const listening = new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stderr });
    rl.on('line', (line) => {
      let entry;
      try {
        entry = JSON.parse(line);
      } catch {
        entry = { raw: line };
      }
      logs.push(entry);
      if (entry.msg === 'herald listening' && typeof entry.addr === 'string') {
        const m = /:(\d+)$/.exec(entry.addr);
        if (m) resolve(Number(m[1]));
      }
    });
    child.once('error', reject);
    exited.then(({ code, signal }) =>
      reject(new Error(`herald exited before listening (code ${code}, signal ${signal})`)),
    );
  });

  let stopPromise = null;
  const stop = ({ graceMs = 5_000 } = {}) => {
    stopPromise ??= (async () => {
      const started = Date.now();
      let killed = false;
      if (exitResult === null) {
        child.kill('SIGTERM');
        const graceful = await withTimeout(exited, graceMs, 'graceful exit').catch(() => null);
        if (graceful === null) {
          killed = true;
          child.kill('SIGKILL');
          await withTimeout(exited, 5_000, 'herald to exit after SIGKILL');
        }
      }
      const result = { ...(await exited), killed, durationMs: Date.now() - started };
      // Don't let pipes inherited by a stray grandchild keep the test process alive.
      child.stdout.destroy();
      child.stderr.destroy();
      await rm(dir, { recursive: true, force: true });
      return result;
    })();
    return stopPromise;
  };

  let port;
  try {
    port = await withTimeout(listening, START_TIMEOUT_MS, 'the "herald listening" log line');
  } catch (err) {
    await stop({ graceMs: 1_000 });
    err.message += `\nserver log:\n${formatLogs(logs)}`;
    throw err;
  }

  return new HeraldServer({ child, port, config, configPath, logs, stop, exited });
}

function formatLogs(logs, last = 60) {
  return logs
    .slice(-last)
    .map((e) => (e.raw !== undefined ? e.raw : JSON.stringify(e)))
    .join('\n');
}

export class HeraldServer {
  constructor({ child, port, config, configPath, logs, stop, exited }) {
    this.child = child;
    this.pid = child.pid;
    this.port = port;
    this.config = config;
    this.configPath = configPath;
    this.logs = logs;
    this.exited = exited;
    this.wsURL = `ws://127.0.0.1:${port}/connection/websocket`;
    this.apiURL = `http://127.0.0.1:${port}/api`;
    this.secret = config.client.token.hmac_secret_key;
    this.apiKey = config.http_api.key;
    this.clients = new Set();
    this._stop = stop;
  }

  /** POST /api/<method>; resolves to the parsed JSON body; throws on HTTP errors. */
  async api(method, body = {}) {
    const res = await fetch(`${this.apiURL}/${method}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-API-Key': this.apiKey },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(API_TIMEOUT_MS),
    });
    const text = await res.text();
    if (res.status !== 200) {
      throw new Error(`POST /api/${method} ${JSON.stringify(body)} → HTTP ${res.status}: ${text}`);
    }
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`POST /api/${method} → body is not JSON: ${text}`);
    }
  }

  /** Like api() but returns `result` and throws if the reply carries an error. */
  async apiResult(method, body = {}) {
    const reply = await this.api(method, body);
    if (reply.error) {
      throw new Error(`POST /api/${method} ${JSON.stringify(body)} → error ${JSON.stringify(reply.error)}`);
    }
    return reply.result;
  }

  /**
   * A connection (or subscription) JWT signed with this server's secret.
   * `exp` defaults to one hour from now; pass exp: undefined to leave it out.
   */
  token(claims, { secret = this.secret } = {}) {
    return signHS256({ exp: nowSeconds() + 3600, ...claims }, secret);
  }

  /**
   * A real centrifuge SDK client for this server (not connected yet). It is
   * disconnected when the server is stopped. Reconnect delays are shortened so
   * the tests run quickly.
   */
  client(options = {}) {
    const c = new Centrifuge(this.wsURL, {
      websocket: WebSocket,
      minReconnectDelay: 100,
      maxReconnectDelay: 1_000,
      timeout: 5_000,
      ...options,
    });
    this.clients.add(c);
    return c;
  }

  /** Recent server log lines, for assertion messages. */
  logTail(last = 40) {
    return formatLogs(this.logs, last);
  }

  /**
   * Disconnects every SDK client made with client(), then stops the server:
   * SIGTERM, SIGKILL after graceMs. Idempotent. Resolves to
   * {code, signal, killed, durationMs}.
   */
  async stop({ graceMs } = {}) {
    this.disconnectClients();
    return this._stop({ graceMs });
  }

  disconnectClients() {
    for (const c of this.clients) {
      try {
        c.disconnect();
      } catch {
        /* ignore */
      }
    }
    this.clients.clear();
  }

  /** Sends SIGTERM without disconnecting clients first; resolves like stop(). */
  terminate({ graceMs } = {}) {
    return this._stop({ graceMs });
  }
}

/**
 * Waits for `okEvent` from `emitter`; rejects if `failEvent` comes first or
 * nothing comes within `timeout` ms. Listeners and timers are always removed.
 */
export function waitOkOrFail(emitter, okEvent, failEvent, { timeout = 5_000, label = okEvent, describeFail } = {}) {
  let onOk;
  let onFail;
  const p = new Promise((resolve, reject) => {
    onOk = (ctx) => resolve(ctx);
    onFail = (ctx) => reject(new Error(describeFail ? describeFail(ctx) : `"${failEvent}" instead of "${okEvent}": ${JSON.stringify(ctx)}`));
    emitter.on(okEvent, onOk);
    emitter.on(failEvent, onFail);
  });
  return withTimeout(p, timeout, label).finally(() => {
    emitter.off(okEvent, onOk);
    emitter.off(failEvent, onFail);
  });
}

/** Connects `client` and resolves with the `connected` context (bounded). */
export function connect(client, { timeout = 5_000 } = {}) {
  const p = waitOkOrFail(client, 'connected', 'disconnected', {
    timeout,
    label: 'the client to connect',
    describeFail: (ctx) => `client disconnected instead of connecting: code ${ctx.code}, reason ${JSON.stringify(ctx.reason)}`,
  });
  client.connect();
  return p;
}

/** Subscribes `sub` and resolves with the `subscribed` context (bounded). */
export function subscribe(sub, { timeout = 5_000 } = {}) {
  const p = waitOkOrFail(sub, 'subscribed', 'unsubscribed', {
    timeout,
    label: `the subscription to ${sub.channel}`,
    describeFail: (ctx) => `subscription to ${sub.channel} ended instead: code ${ctx.code}, reason ${JSON.stringify(ctx.reason)}`,
  });
  sub.subscribe();
  return p;
}

// ---------------------------------------------------------------------------
// Mercure

/** The Mercure hub's URL of a server. */
export function mercureURL(server) {
  return `http://127.0.0.1:${server.port}/.well-known/mercure`;
}

/**
 * POSTs an update (fields: topic, data, id, type, private…; arrays repeat a
 * field) with a publisher token for every topic; resolves to the update id.
 */
export async function mercurePost(server, fields, token = signHS256({ mercure: { publish: ['*'] } }, MERCURE_PUBLISHER_SECRET)) {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) {
    for (const x of [].concat(v)) body.append(k, x);
  }
  const res = await fetch(mercureURL(server), {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}` },
    body, // URLSearchParams: application/x-www-form-urlencoded;charset=UTF-8
    signal: AbortSignal.timeout(5_000),
  });
  const text = await res.text();
  if (res.status !== 200) {
    throw new Error(`mercure publish ${body}: ${res.status} ${text}\n${server.logTail()}`);
  }
  return text;
}

// ---------------------------------------------------------------------------
// Headless Chromium

/** Flags of the browser tests' Chromium: headless, no sandbox (CI runs as root), nothing fetched of its own. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Launches Debian's chromium (/usr/bin/chromium; no browser is downloaded)
 * through playwright-core with a fresh profile (--user-data-dir). Resolves to
 * the browser context and close(), which ends it and removes the profile.
 */
export async function launchChromium(options = {}) {
  const { chromium } = await import('playwright-core');
  const profile = await mkdtemp(path.join(tmpdir(), 'herald-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 30_000,
    ...options,
  });
  const close = async () => {
    await context.close();
    await rm(profile, { recursive: true, force: true });
  };
  return { context, close };
}

// ---------------------------------------------------------------------------
// Several nodes: a private redis-server, nodes sharing it, and a TCP proxy
// that plays the load balancer (clients move between nodes through it).

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** One command in Redis's inline protocol; resolves to the first reply line. */
export function redisCommand(port, ...args) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1');
      let buf = '';
      sock.on('connect', () => {
        sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join('')}`);
      });
      sock.on('data', (b) => {
        buf += b.toString();
        const i = buf.indexOf('\r\n');
        if (i >= 0) {
          sock.destroy();
          resolve(buf.slice(0, i));
        }
      });
      sock.on('error', reject);
    }),
    2_000,
    `redis ${args.join(' ')}`,
  );
}

/**
 * Starts a private redis-server on a free loopback port (no persistence,
 * or an append-only file synced at every write with persist). `stop()`
 * kills it as a crash would; `restart()` starts it again on the same port
 * (with its data when persist). Tests never skip: CI installs redis-server.
 */
export async function startRedis({ persist = false } = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'herald-e2e-redis-'));
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir, '--daemonize', 'no',
    '--protected-mode', 'yes', '--loglevel', 'warning', '--appendonly', persist ? 'yes' : 'no', '--appendfsync', 'always'];
  let child = null;
  const launch = async () => {
    child = spawn('redis-server', args, { stdio: 'ignore' });
    liveChildren.add(child);
    const c = child;
    c.once('exit', () => liveChildren.delete(c));
    c.once('error', () => liveChildren.delete(c));
    await waitUntil(() => redisCommand(port, 'PING').then((l) => l === '+PONG', () => false), {
      timeout: 10_000,
      label: `redis-server on port ${port} (is redis-server installed? scripts/deps.sh installs it)`,
    });
  };
  const stop = async () => {
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await withTimeout(exited, 5_000, 'redis-server to exit');
  };
  await launch();
  return {
    port,
    address: `127.0.0.1:${port}`,
    stop,
    restart: async () => {
      await stop();
      // The port may stay taken for a moment after the kill.
      await waitUntil(() => launch().then(() => true, () => false), { timeout: 10_000, label: 'redis-server to restart' });
    },
    close: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** GET /health of a server: {status, body}. */
export async function health(server) {
  const res = await fetch(`http://127.0.0.1:${server.port}/health`, { signal: AbortSignal.timeout(API_TIMEOUT_MS) });
  return { status: res.status, body: await res.text() };
}

/** Waits until /health answers `status`. */
export function waitHealth(server, status = 200, timeout = 10_000) {
  return waitUntil(() => health(server).then((h) => h.status === status, () => false), {
    timeout,
    label: `/health ${status} on port ${server.port}`,
  });
}

/**
 * Starts n nodes (node ids node-1, node-2, …) whose broker is the Redis at
 * `redis.address`, each with the default configuration deep-merged with
 * `overrides`; resolves once every node is ready (/health 200).
 */
export async function startCluster(n, redis, overrides = {}) {
  const nodes = [];
  for (let i = 0; i < n; i++) {
    const node = await startServer(
      deepMerge({ node_id: `node-${i + 1}`, broker: { type: 'redis', redis: { address: redis.address } } }, overrides),
    );
    nodes.push(node);
  }
  await Promise.all(nodes.map((s) => waitHealth(s)));
  return nodes;
}

/**
 * A TCP proxy on a free loopback port in front of one node, as a load
 * balancer: `moveTo(server)` sends new connections to another node and cuts
 * the open ones; `hold()` keeps new connections waiting until the next
 * moveTo (a client then reconnects only once the test has published what it
 * must miss).
 */
export async function startProxy(target) {
  let port = target.port;
  let held = null;
  const open = new Set();
  const srv = net.createServer((client) => {
    const connect = () => {
      const upstream = net.connect(port, '127.0.0.1');
      open.add(client);
      open.add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        open.delete(client);
        open.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream);
      upstream.pipe(client);
    };
    if (held) held.push(connect);
    else connect();
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const cut = () => {
    for (const s of open) s.destroy();
    open.clear();
  };
  return {
    port: srv.address().port,
    hold() {
      held = [];
      cut();
    },
    moveTo(server) {
      port = server.port;
      cut();
      const waiting = held ?? [];
      held = null;
      for (const connect of waiting) connect();
    },
    close() {
      cut();
      return new Promise((resolve) => srv.close(resolve));
    },
  };
}

/** A real centrifuge SDK client for a WebSocket URL (not connected yet). */
export function centrifugeClient(wsURL, options = {}) {
  return new Centrifuge(wsURL, {
    websocket: WebSocket,
    minReconnectDelay: 100,
    maxReconnectDelay: 1_000,
    timeout: 5_000,
    ...options,
  });
}
