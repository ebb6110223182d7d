// subscribePush / unsubscribePush against a scripted browser (permission, service worker,
// push manager) and a recording fetch; and the service worker's push and click handlers.

import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import vm from 'node:vm';

import { TidingsClient, TidingsError, webPushToken } from '../src/index.js';

const SERVER_KEY = 'BPzqA1UJS-XCveIoNG_AMvdKvOED9xeE9tV7ktRDUJX1Lsb0FMn2nRSvFNNhpN8C9lX70fNKuu-IDFN78Dd1UdY';
const keyBytes = (text) => new Uint8Array(Buffer.from(text, 'base64url'));

/** A browser's subscription: real P-256 keys, as PushSubscription.toJSON() gives them. */
function subscriptionFor(applicationServerKey, endpoint = `https://fcm.googleapis.com/fcm/send/${randomBytes(8).toString('hex')}`) {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const p256dh = publicKey.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(p256dh.x, 'base64url'), Buffer.from(p256dh.y, 'base64url')]);
  const json = {
    endpoint, expirationTime: null, keys: { p256dh: point.toString('base64url'), auth: randomBytes(16).toString('base64url') },
  };
  const sub = {
    endpoint,
    options: { applicationServerKey: applicationServerKey.buffer },
    unsubscribed: false,
    async unsubscribe() { this.unsubscribed = true; return true; },
    toJSON() { return structuredClone(json); },
  };
  return sub;
}

function fakeBrowser({ permission = 'granted', existing = null } = {}) {
  const calls = { permission: 0, register: [], subscribe: [] };
  const pushManager = {
    current: existing,
    async getSubscription() { return this.current; },
    async subscribe(options) {
      calls.subscribe.push(options);
      this.current = subscriptionFor(options.applicationServerKey);
      return this.current;
    },
  };
  const worker = { state: 'installing', listeners: [], addEventListener(_t, f) { this.listeners.push(f); } };
  const registration = { installing: worker, active: null, pushManager };
  const navigator = {
    serviceWorker: {
      async register(url) {
        calls.register.push(url);
        setTimeout(() => { worker.state = 'activated'; registration.active = worker; worker.listeners.forEach((f) => f()); }, 5);
        return registration;
      },
      async getRegistration() { return registration; },
    },
  };
  const Notification = { async requestPermission() { calls.permission += 1; return permission; } };
  return { navigator, Notification, calls, pushManager };
}

function recordingFetch(answers = {}) {
  const requests = [];
  const fetch = async (url, init) => {
    const path = new URL(url).pathname;
    requests.push({ method: init.method, path, body: init.body && JSON.parse(init.body), auth: init.headers.Authorization });
    const [status, body] = answers[`${init.method} ${path}`] ?? (
      path === '/api/v1/webpush/key' ? [200, { public_key: SERVER_KEY }]
        : init.method === 'POST' ? [201, { token: 'webpush-x', platform: 'webpush', endpoint: JSON.parse(init.body).subscription.endpoint }]
          : [204, null]);
    return { status, ok: status < 300, json: async () => { if (body === null) throw new SyntaxError('no body'); return body; } };
  };
  return { fetch, requests };
}

function client(fetch) {
  return new TidingsClient({ url: 'https://tidings.example', token: 'jwt-1', autoConnect: false, WebSocket: class {}, fetch });
}

test('subscribePush asks permission, subscribes with the server key and registers the device', async () => {
  const browser = fakeBrowser();
  const { fetch, requests } = recordingFetch();
  const device = await client(fetch).subscribePush({ ...browser, name: 'laptop' });
  assert.equal(browser.calls.permission, 1);
  assert.deepEqual(browser.calls.register, ['https://tidings.example/tidings-sw.js']);
  const [options] = browser.calls.subscribe;
  assert.equal(options.userVisibleOnly, true);
  assert.deepEqual(options.applicationServerKey, keyBytes(SERVER_KEY));
  assert.deepEqual(requests.map((r) => `${r.method} ${r.path}`), ['GET /api/v1/webpush/key', 'POST /api/v1/me/devices']);
  const posted = requests[1].body;
  assert.equal(posted.platform, 'webpush');
  assert.equal(posted.name, 'laptop');
  assert.deepEqual(posted.subscription, browser.pushManager.current.toJSON());
  assert.match(posted.subscription.keys.p256dh, /^B[A-P][A-Za-z0-9_-]{84}[AEIMQUYcgkosw048]$/);
  assert.equal(requests[1].auth, 'Bearer jwt-1');
  assert.equal(device.endpoint, posted.subscription.endpoint);
});

test('a subscription made with the same key is reused; one made with another key is replaced', async () => {
  const same = subscriptionFor(keyBytes(SERVER_KEY));
  const browser = fakeBrowser({ existing: same });
  await client(recordingFetch().fetch).subscribePush(browser);
  assert.equal(browser.calls.subscribe.length, 0);
  assert.equal(same.unsubscribed, false);

  const stale = subscriptionFor(new Uint8Array(65).fill(4));
  const other = fakeBrowser({ existing: stale });
  const { fetch, requests } = recordingFetch();
  await client(fetch).subscribePush(other);
  assert.equal(stale.unsubscribed, true);
  assert.equal(other.calls.subscribe.length, 1);
  assert.notEqual(requests[1].body.subscription.endpoint, stale.endpoint);
});

test('a refused permission stops before anything is subscribed or registered', async () => {
  const browser = fakeBrowser({ permission: 'denied' });
  const { fetch, requests } = recordingFetch();
  await assert.rejects(client(fetch).subscribePush(browser),
    (err) => err instanceof TidingsError && err.code === 'push_denied');
  assert.deepEqual(requests, []);
  assert.deepEqual(browser.calls.subscribe, []);
});

test('a server without a VAPID key says so, and nothing is subscribed', async () => {
  const browser = fakeBrowser();
  const { fetch } = recordingFetch({
    'GET /api/v1/webpush/key': [404, { error: { code: 'webpush_not_configured', message: 'no key' } }],
  });
  await assert.rejects(client(fetch).subscribePush(browser),
    (err) => err.status === 404 && err.code === 'webpush_not_configured');
  assert.deepEqual(browser.calls.subscribe, []);
});

test('a browser without service workers is told apart', async () => {
  await assert.rejects(client(recordingFetch().fetch).subscribePush({ navigator: {}, Notification: undefined }),
    (err) => err.code === 'push_unsupported');
});

test('unsubscribePush unsubscribes and deletes the device by its derived token', async () => {
  const existing = subscriptionFor(keyBytes(SERVER_KEY), 'https://fcm.googleapis.com/fcm/send/abc:def');
  const browser = fakeBrowser({ existing });
  const { fetch, requests } = recordingFetch();
  assert.equal(await client(fetch).unsubscribePush(browser), true);
  assert.equal(existing.unsubscribed, true);
  // the server's tidings.core.ids.webpush_token of the same endpoint
  assert.equal(await webPushToken(existing.endpoint), 'webpush-PcHubr-N74CO70EUIAXk-xYe1PMiR-Cyui0M1oGdm68');
  assert.deepEqual(requests.map((r) => `${r.method} ${r.path}`), [
    'DELETE /api/v1/me/devices/webpush-PcHubr-N74CO70EUIAXk-xYe1PMiR-Cyui0M1oGdm68']);
  assert.equal(await client(fetch).unsubscribePush(fakeBrowser()), false);
});

// -- the service worker -------------------------------------------------------------------

const SW = readFileSync(new URL('../../server/tidings/static/tidings-sw.js', import.meta.url), 'utf8');

function serviceWorker(windows = []) {
  const listeners = {};
  const shown = [];
  const opened = [];
  const self = {
    addEventListener(type, f) { listeners[type] = f; },
    registration: { scope: 'https://tidings.example/', async showNotification(title, options) { shown.push({ title, options }); } },
    clients: {
      async matchAll() { return windows; },
      async openWindow(url) { opened.push(url); return { url }; },
    },
  };
  vm.runInNewContext(SW, { self, URL });
  async function fire(type, event) {
    const waits = [];
    listeners[type]({ ...event, waitUntil: (p) => waits.push(p) });
    await Promise.all(waits);
  }
  return { fire, shown, opened };
}

const pushEvent = (payload) => ({ data: { json: () => payload, text: () => JSON.stringify(payload) } });

test('the service worker shows the push with its title, body and tag', async () => {
  const sw = serviceWorker();
  await sw.fire('push', pushEvent({ title: 'Orders', body: 'Shipped', uid: 'u-1', seq: 4, tag: 'thread-9', url: '/orders/42' }));
  assert.deepEqual(JSON.parse(JSON.stringify(sw.shown)), [{ title: 'Orders', options: {
    body: 'Shipped', tag: 'thread-9', data: { uid: 'u-1', seq: 4, url: 'https://tidings.example/orders/42' } } }]);
  await sw.fire('push', pushEvent({ body: 'no title', uid: 'u-2', url: 'https://elsewhere.example/x' }));
  assert.equal(sw.shown[1].title, 'New notification');
  assert.equal(sw.shown[1].options.tag, 'u-2');
  assert.equal(sw.shown[1].options.data.url, 'https://tidings.example/', 'another origin: the inbox');
});

test('a click focuses an open inbox window, else opens one', async () => {
  const focused = [];
  const inbox = { url: 'https://tidings.example/?user=alice', async focus() { focused.push(this.url); return this; } };
  const withWindow = serviceWorker([inbox]);
  const closed = [];
  const note = (url) => ({ notification: { data: { url }, close() { closed.push(url); } } });
  await withWindow.fire('notificationclick', note('https://tidings.example/'));
  assert.deepEqual(focused, ['https://tidings.example/?user=alice']);
  assert.deepEqual(withWindow.opened, []);
  const none = serviceWorker([]);
  await none.fire('notificationclick', note('https://tidings.example/orders/42'));
  assert.deepEqual(none.opened, ['https://tidings.example/orders/42']);
  assert.equal(closed.length, 2);
});
