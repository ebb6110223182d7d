// Test support: a real `tidings serve` process, tokens, publishing, polling.
//
// With TIDINGS_TEST_DATABASE_URL and TIDINGS_TEST_REDIS_URL set, the server uses
// them: a fresh database is created for the run (through asyncpg, with the
// Python beside the `tidings` script) and dropped after. Unset, `tidings serve`
// starts its embedded PostgreSQL and Redis in a temporary data folder, and the
// dev JWT secret and API key are read from its dev-auth.json.
// TIDINGS_BIN names the `tidings` command (default: `tidings` on PATH).

import { spawn, spawnSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

const START_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 20_000;

/** A user id no other test (or run) uses. */
export function newUser(prefix = 'u') {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

/** An HS256 user JWT with {sub, iat, exp}. */
export function mintToken(secret, sub, ttlSeconds = 600) {
  const part = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const head = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ sub, iat: now, exp: now + ttlSeconds })}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

/** Poll `probe` until it returns a truthy value (returned), or fail after `timeout` ms. */
export async function waitFor(probe, { timeout = 10_000, interval = 25, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/** Everything a client emits, in arrays. */
export function record(client) {
  const seen = { notification: [], counts: [], state: [], reset: [], error: [], preferences: [] };
  for (const type of Object.keys(seen)) client.on(type, (value) => seen[type].push(value));
  return seen;
}

function tidingsBin() {
  return process.env.TIDINGS_BIN || 'tidings';
}

/** The Python that runs `tidings` (named by its script's #! line), which has asyncpg. */
function python() {
  const bin = tidingsBin();
  const dirs = bin.includes('/') ? [''] : (process.env.PATH ?? '').split(path.delimiter);
  const script = dirs.map((dir) => path.join(dir, bin)).find((file) => existsSync(file));
  const shebang = script && readFileSync(script, 'utf8').split('\n', 1)[0].match(/^#!(\S+)$/);
  return shebang && existsSync(shebang[1]) ? shebang[1] : 'python3';
}

function runSql(url, sql) {
  const script = `import asyncio, sys, asyncpg
async def main():
    conn = await asyncpg.connect(sys.argv[1])
    try:
        await conn.execute(sys.argv[2])
    finally:
        await conn.close()
asyncio.run(main())`;
  const out = spawnSync(python(), ['-c', script, url, sql], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`SQL failed (${sql}): ${out.stderr || out.error}`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** A `tidings serve` process on a loopback port, restartable on the same data. */
export class TidingsServer {
  /** @type {import('node:child_process').ChildProcess | null} */
  #proc = null;
  #env;
  #cleanup;
  output = '';

  static async create() {
    const server = new TidingsServer();
    await server.#prepare();
    try {
      await server.start();
    } catch (err) {
      await server.destroy();
      throw err;
    }
    if (!server.jwtSecret) {
      const creds = JSON.parse(readFileSync(path.join(server.#env.TIDINGS_DATA_DIR, 'dev-auth.json'), 'utf8'));
      server.jwtSecret = creds.jwt_secret;
      server.apiKey = creds.api_key;
    }
    return server;
  }

  async #prepare() {
    this.port = await freePort();
    this.url = `http://127.0.0.1:${this.port}`;
    const env = Object.fromEntries(Object.entries(process.env).filter(
      ([k]) => !k.startsWith('TIDINGS_') && k !== 'DATABASE_URL' && k !== 'REDIS_URL'));
    Object.assign(env, {
      TIDINGS_PORT: String(this.port),
      TIDINGS_DEV: 'true',
      TIDINGS_ALLOWED_ORIGINS: this.url,
      TIDINGS_PUSH_WORKERS: 'false',
      TIDINGS_LOG_LEVEL: 'WARNING',
    });
    const dbBase = process.env.TIDINGS_TEST_DATABASE_URL;
    const redis = process.env.TIDINGS_TEST_REDIS_URL;
    if (dbBase && redis) {
      const name = `tidings_js_${randomBytes(4).toString('hex')}`;
      runSql(dbBase, `CREATE DATABASE "${name}"`);
      const dbUrl = new URL(dbBase);
      dbUrl.pathname = `/${name}`;
      this.jwtSecret = randomBytes(32).toString('hex');
      this.apiKey = `tdk_${randomBytes(16).toString('hex')}`;
      Object.assign(env, {
        TIDINGS_DATABASE_URL: dbUrl.toString(),
        TIDINGS_REDIS_URL: redis,
        TIDINGS_JWT_SECRET: this.jwtSecret,
        TIDINGS_API_KEYS: this.apiKey,
      });
      this.#cleanup = () => runSql(dbBase, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    } else {
      const dir = mkdtempSync(path.join(tmpdir(), 'tidings-js-'));
      env.TIDINGS_DATA_DIR = dir;
      this.#cleanup = () => rmSync(dir, { recursive: true, force: true });
    }
    this.#env = env;
  }

  /** Start the process; resolves once its banner says it listens. */
  start() {
    const proc = spawn(tidingsBin(), ['serve'], { env: this.#env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.#proc = proc;
    const from = this.output.length;
    const append = (chunk) => { this.output += chunk; };
    proc.stdout.setEncoding('utf8').on('data', append);
    proc.stderr.setEncoding('utf8').on('data', append);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`tidings did not start:\n${this.output}`)),
        START_TIMEOUT_MS);
      const listening = () => {
        if (!this.output.slice(from).includes('openapi.json')) return;
        clearTimeout(timer);
        proc.stdout.off('data', listening);
        resolve();
      };
      proc.stdout.on('data', listening);
      proc.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`cannot run ${tidingsBin()} (set TIDINGS_BIN): ${err.message}`));
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`tidings exited with ${code}:\n${this.output}`));
      });
    });
  }

  /** SIGINT the process and wait for it to exit (SIGKILL after a timeout). */
  async stop() {
    const proc = this.#proc;
    this.#proc = null;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGINT');
    const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  async restart() {
    await this.stop();
    await this.start();
  }

  /** Stop, and remove the run's database or data folder. */
  async destroy() {
    await this.stop();
    this.#cleanup?.();
  }

  token(user, ttlSeconds) {
    return mintToken(this.jwtSecret, user, ttlSeconds);
  }

  /** Declare a notification type through the producer API; returns the response body. */
  async declareType(name, definition) {
    const res = await fetch(`${this.url}/api/v1/types/${name}`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${this.apiKey}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(definition),
    });
    const data = await res.json();
    if (res.status !== 200 && res.status !== 201) {
      throw new Error(`declaring a type answered ${res.status}: ${JSON.stringify(data)}`);
    }
    return data;
  }

  /** Publish through the producer API; returns the response body. */
  async publish(body) {
    const res = await fetch(`${this.url}/api/v1/notifications`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${this.apiKey}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    const data = await res.json();
    if (res.status !== 201 && res.status !== 202) {
      throw new Error(`publish answered ${res.status}: ${JSON.stringify(data)}`);
    }
    return data;
  }
}
