/**
 * Tidings client for browsers and Node: one WebSocket for live notifications
 * and counts, and the inbox actions over HTTP. No dependencies, no build step.
 *
 * @module tidings-client
 */

const WS_PATH = '/ws/me/notifications';
const INBOX_PATH = '/api/v1/me/notifications';
const PREFERENCES_PATH = '/api/v1/me/preferences';
const DEVICES_PATH = '/api/v1/me/devices';
const WEBPUSH_KEY_PATH = '/api/v1/webpush/key';
const SERVICE_WORKER_PATH = '/tidings-sw.js';
/** Uids remembered to drop a notification delivered twice. */
const SEEN_LIMIT = 1000;
/** setTimeout's largest delay (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The delay before reconnect attempt `attempt` (0 first): "full jitter", a random time up to
 * min(cap, base * 2^attempt), so clients dropped together do not come back together.
 * @param {number} attempt
 * @param {{base: number, cap: number}} backoff milliseconds
 * @param {() => number} [random] a number in [0, 1)
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, { base, cap }, random = Math.random) {
  return random() * Math.min(cap, base * 2 ** attempt);
}

/** An HTTP or connection failure, with the server's error code when it gave one. */
export class TidingsError extends Error {
  /**
   * @param {number} status HTTP status, or 0 for a WebSocket failure
   * @param {string} code machine-readable code, e.g. `invalid_token`
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message);
    this.name = 'TidingsError';
    this.status = status;
    this.code = code;
  }
}

/**
 * A user's live inbox.
 *
 * Events (subscribe with {@link TidingsClient#on}):
 * - `notification` (notification object): a new notification, each uid once;
 * - `counts` ({total_notifications, read_notifications, unread_notifications});
 * - `state` ('connecting' | 'open' | 'reconnecting' | 'closed');
 * - `reset` (the first inbox page): too many were missed while away; replace your list with it;
 * - `preferences` (the effective preferences document): they changed, on this device or another;
 * - `error` (Error): a failure the client cannot retry (bad token, origin refused) or
 *   a failed background fetch.
 */
export class TidingsClient {
  #httpBase;
  #wsUrl;
  #getToken;
  /** @type {Promise<string> | undefined} */
  #token;
  #WebSocket;
  #fetch;
  #backoff;
  #connectTimeout;
  #listeners = new Map();
  /** @type {any} */
  #socket = null;
  #state = 'closed';
  #started = false;
  #everOpened = false;
  #stopped = false;
  #attempt = 0;
  #authRetried = false;
  /** @type {number | null} */
  #lastSeq;
  #seen = new Set();
  #counts = null;
  #connectTimer;
  #reconnectTimer;
  #refreshTimer;

  /**
   * Connects at once unless `autoConnect` is false (in a microtask, so listeners added right
   * after construction see everything).
   *
   * @param {object} options
   * @param {string} options.url server base URL, e.g. `https://tidings.example.com` (relative in a page)
   * @param {string} [options.token] a user JWT
   * @param {() => string | Promise<string>} [options.getToken] returns a fresh user JWT; called on
   *   start, when the server rejects the token (once per failure) and before it expires
   * @param {number} [options.since] the last seq the app has seen: the server replays what came after
   * @param {boolean} [options.autoConnect] connect at once (true), or wait for {@link TidingsClient#connect}
   * @param {any} [options.WebSocket] a WebSocket class (Node 20 has none: pass the `ws` package's)
   * @param {typeof fetch} [options.fetch] a fetch function (default: the global one)
   * @param {{base?: number, cap?: number}} [options.backoff] reconnect delay in ms: a random
   *   delay up to min(cap, base * 2^attempt) ("full jitter"); default base 500, cap 30000
   * @param {number} [options.connectTimeout] ms to open and authenticate a socket (10000)
   */
  constructor({
    url, token, getToken, since, autoConnect = true, WebSocket, fetch, backoff = {},
    connectTimeout = 10000,
  }) {
    if (!url) throw new TypeError('tidings: `url` is required');
    if (!token && !getToken) throw new TypeError('tidings: `token` or `getToken` is required');
    this.#WebSocket = WebSocket ?? globalThis.WebSocket;
    if (!this.#WebSocket) {
      throw new TypeError('tidings: no WebSocket here; pass one, e.g. `WebSocket` from the ws package');
    }
    const base = new URL(url, globalThis.location?.href);
    const path = base.pathname.replace(/\/+$/, '');
    this.#httpBase = `${base.origin}${path}`;
    this.#wsUrl = `${base.protocol === 'https:' ? 'wss:' : 'ws:'}//${base.host}${path}${WS_PATH}`;
    this.#getToken = getToken;
    this.#token = getToken ? undefined : Promise.resolve(token);
    this.#fetch = fetch ?? ((...args) => globalThis.fetch(...args));
    this.#backoff = { base: backoff.base ?? 500, cap: backoff.cap ?? 30000 };
    this.#connectTimeout = connectTimeout;
    this.#lastSeq = since ?? null;
    if (autoConnect) {
      this.#state = 'connecting';
      queueMicrotask(() => {
        if (this.#stopped) return;
        this.#emit('state', this.#state);
        this.connect();
      });
    }
  }

  /**
   * Open the socket (once; a closed client stays closed). With `autoConnect: false`, an app
   * can load the inbox first and then connect with the newest seq it shows, missing nothing:
   * `client.connect({ since: page.notifications[0]?.seq ?? 0 })`.
   * @param {{since?: number}} [options] the last seq the app has seen
   */
  connect({ since } = {}) {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    if (since != null) this.#lastSeq = since;
    this.#connect();
  }

  /** Connection state: 'connecting', 'open', 'reconnecting' or 'closed'. */
  get state() {
    return this.#state;
  }

  /** The latest counts from the server, or null before the first. */
  get counts() {
    return this.#counts;
  }

  /** The highest seq received: a reconnect resumes after it. */
  get lastSeq() {
    return this.#lastSeq;
  }

  /**
   * Listen to an event; returns a function that stops listening.
   * @param {string} type
   * @param {(value: any) => void} listener
   * @returns {() => void}
   */
  on(type, listener) {
    if (!this.#listeners.has(type)) this.#listeners.set(type, new Set());
    this.#listeners.get(type).add(listener);
    return () => this.off(type, listener);
  }

  /**
   * Stop listening.
   * @param {string} type
   * @param {(value: any) => void} listener
   */
  off(type, listener) {
    this.#listeners.get(type)?.delete(listener);
  }

  /**
   * One page of the inbox, newest first.
   * @param {{page?: number, pageSize?: number, isRead?: boolean, before?: number}} [query]
   *   `before`: only notifications with a lower seq (cursor paging with `next_before`)
   */
  list({ page, pageSize, isRead, before } = {}) {
    const params = new URLSearchParams();
    if (page != null) params.set('page', String(page));
    if (pageSize != null) params.set('page_size', String(pageSize));
    if (isRead != null) params.set('is_read', String(isRead));
    if (before != null) params.set('before', String(before));
    const query = params.toString();
    return this.#request('GET', INBOX_PATH + (query && `?${query}`));
  }

  /**
   * The user's effective channel preferences: `{channels, types, quiet_hours, version}`.
   * @returns {Promise<object>}
   */
  preferences() {
    return this.#request('GET', PREFERENCES_PATH);
  }

  /**
   * Change any part of the preferences, e.g. `{types: {comment: {channels: {email: false}}}}`
   * or `{quiet_hours: {start: '22:00', end: '07:00'}}` (`null` turns them off). Resolves
   * with the whole effective document; the user's other sockets get a `preferences` event.
   * @param {object} changes
   * @returns {Promise<object>}
   */
  updatePreferences(changes) {
    return this.#request('PATCH', PREFERENCES_PATH, changes);
  }

  /** Mark notifications read. @param {string[]} uids */
  markRead(uids) {
    return this.#act('MARK_AS_READ', uids);
  }

  /** Mark every notification read. */
  markAllRead() {
    return this.#act('MARK_ALL_AS_READ');
  }

  /** Remove notifications from the inbox. @param {string[]} uids */
  remove(uids) {
    return this.#act('MARK_AS_REMOVED', uids);
  }

  /** Remove every notification. */
  removeAll() {
    return this.#act('REMOVED_ALL');
  }

  /**
   * Web Push for this browser: notifications reach it while no tab has a socket open (the
   * tab is closed). Asks the user's permission, registers the service worker, subscribes with
   * the server's public VAPID key (`GET /api/v1/webpush/key`) and registers the subscription
   * as a `webpush` device of the user. Subscribing again reuses the browser's subscription.
   *
   * @param {object} [options]
   * @param {string} [options.serviceWorker] the worker script's URL, on the page's origin
   *   (default: the server's `/tidings-sw.js` when the page has the server's origin, else
   *   `/tidings-sw.js` of the page's origin: serve a copy there)
   * @param {string} [options.name] the device's name
   * @param {any} [options.navigator] the browser's `navigator` (default the global one)
   * @param {any} [options.Notification] the `Notification` class (default the global one)
   * @returns {Promise<object>} the device as the server stored it (`token`, `endpoint`, ...)
   * @throws {TidingsError} `push_unsupported`, `push_denied` (permission not granted),
   *   `webpush_not_configured` (404: the server has no VAPID key), or the server's refusal
   */
  async subscribePush({ serviceWorker, name, navigator: nav = globalThis.navigator,
    Notification: Notes = globalThis.Notification } = {}) {
    if (!nav?.serviceWorker || !Notes) {
      throw new TidingsError(0, 'push_unsupported', 'this browser has no service workers or notifications');
    }
    const permission = await Notes.requestPermission();
    if (permission !== 'granted') {
      throw new TidingsError(0, 'push_denied', `notifications are not allowed (${permission})`);
    }
    const { public_key: key } = await this.#request('GET', WEBPUSH_KEY_PATH);
    const registration = await activated(
      await nav.serviceWorker.register(serviceWorker ?? this.#serviceWorkerUrl()));
    const appKey = fromBase64Url(key);
    let subscription = await registration.pushManager.getSubscription();
    if (subscription && !sameBytes(subscription.options?.applicationServerKey, appKey)) {
      await subscription.unsubscribe(); // made for another server key: it cannot work
      subscription = null;
    }
    subscription ??= await registration.pushManager.subscribe({
      userVisibleOnly: true, applicationServerKey: appKey,
    });
    return this.#request('POST', DEVICES_PATH, {
      platform: 'webpush', subscription: subscription.toJSON(), ...(name && { name }),
    });
  }

  /**
   * Stop Web Push for this browser: unsubscribe and forget the device on the server.
   * @param {{serviceWorker?: string, navigator?: any}} [options] as for subscribePush
   * @returns {Promise<boolean>} whether there was a subscription
   */
  async unsubscribePush({ serviceWorker, navigator: nav = globalThis.navigator } = {}) {
    const registration = await nav?.serviceWorker?.getRegistration(
      serviceWorker ?? this.#serviceWorkerUrl());
    const subscription = await registration?.pushManager.getSubscription();
    if (!subscription) return false;
    const token = await webPushToken(subscription.endpoint);
    await subscription.unsubscribe();
    try {
      await this.#request('DELETE', `${DEVICES_PATH}/${token}`);
    } catch (err) {
      if (err.status !== 404) throw err;
    }
    return true;
  }

  #serviceWorkerUrl() {
    const page = globalThis.location?.origin;
    return !page || new URL(this.#httpBase).origin === page
      ? `${this.#httpBase}${SERVICE_WORKER_PATH}` : SERVICE_WORKER_PATH;
  }

  /** Close the socket for good: no reconnect after this. */
  close() {
    this.#stopped = true;
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#reconnectTimer);
    clearTimeout(this.#refreshTimer);
    const socket = this.#socket;
    this.#socket = null;
    socket?.close(1000);
    this.#setState('closed');
  }

  #act(action, uids = []) {
    return this.#request('PATCH', INBOX_PATH, { action_choice: action, notification_uids: uids });
  }

  async #request(method, path, body) {
    for (let retried = false; ; retried = true) {
      const token = await this.#currentToken();
      const res = await this.#fetch(`${this.#httpBase}${path}`, {
        method,
        headers: {
          Authorization: `Bearer ${token}`,
          ...(body && { 'Content-Type': 'application/json' }),
        },
        body: body && JSON.stringify(body),
      });
      if (res.status === 401 && this.#getToken && !retried) {
        this.#token = undefined;
        continue;
      }
      const data = await res.json().catch(() => null);
      if (!res.ok) {
        const err = data?.error ?? {};
        throw new TidingsError(res.status, err.code ?? 'http_error', err.message ?? `HTTP ${res.status}`);
      }
      return data;
    }
  }

  #currentToken() {
    if (!this.#token) {
      const pending = Promise.resolve().then(() => this.#getToken()).then((token) => {
        if (!token) throw new TidingsError(0, 'no_token', 'getToken returned no token');
        return token;
      });
      pending.catch(() => {
        if (this.#token === pending) this.#token = undefined;
      });
      this.#token = pending;
    }
    return this.#token;
  }

  async #connect() {
    if (this.#stopped) return;
    this.#setState(this.#everOpened ? 'reconnecting' : 'connecting');
    let token;
    try {
      token = await this.#currentToken();
    } catch (err) {
      this.#emit('error', err);
      this.#scheduleReconnect();
      return;
    }
    if (this.#stopped) return;
    let socket;
    try {
      socket = new this.#WebSocket(this.#wsUrl);
    } catch (err) { // e.g. a ws: URL from an https page: retrying cannot help
      this.#giveUp(err);
      return;
    }
    this.#socket = socket;
    this.#connectTimer = setTimeout(() => socket.close(), this.#connectTimeout);
    socket.onopen = () => {
      const since = this.#lastSeq == null ? {} : { since: this.#lastSeq };
      socket.send(JSON.stringify({ type: 'auth', token, ...since }));
    };
    socket.onmessage = (event) => {
      if (this.#socket === socket) this.#receive(event.data, token);
    };
    socket.onerror = () => {}; // a close event follows
    socket.onclose = (event) => {
      if (this.#socket === socket) this.#dropped(event.code);
    };
  }

  #receive(data, token) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    switch (msg?.type) {
      case 'counts':
        if (this.#state !== 'open') this.#opened(token);
        this.#setCounts(msg);
        break;
      case 'notification':
        this.#notification(msg);
        break;
      case 'reset':
        this.#reset(msg.seq);
        break;
      case 'refreshed':
        this.#scheduleRefresh(msg.expires_at);
        break;
      case 'preferences': {
        const { type, ...doc } = msg;
        this.#emit('preferences', doc);
        break;
      }
      default: // newer servers may send more: ignore
    }
  }

  #opened(token) {
    clearTimeout(this.#connectTimer);
    this.#everOpened = true;
    this.#attempt = 0;
    this.#authRetried = false;
    this.#setState('open');
    this.#scheduleRefresh(expiry(token));
  }

  #notification(msg) {
    const n = msg.notification;
    if (!n || this.#seen.has(n.uid)) return;
    this.#remember(n);
    this.#emit('notification', n);
    if ('unread_notifications' in msg) this.#setCounts(msg);
  }

  #remember(n) {
    this.#seen.add(n.uid);
    if (this.#seen.size > SEEN_LIMIT) this.#seen.delete(this.#seen.values().next().value);
    if (n.seq != null && (this.#lastSeq == null || n.seq > this.#lastSeq)) this.#lastSeq = n.seq;
  }

  /** Too many were missed to replay: live resumes after `seq`; the app gets page 1 afresh. */
  async #reset(seq) {
    if (Number.isInteger(seq)) this.#lastSeq = seq;
    try {
      const page = await this.list({ page: 1 });
      for (const n of page.notifications) this.#remember(n);
      this.#emit('reset', page);
    } catch (err) {
      this.#emit('error', err);
    }
  }

  #setCounts(msg) {
    this.#counts = {
      total_notifications: msg.total_notifications,
      read_notifications: msg.read_notifications,
      unread_notifications: msg.unread_notifications,
    };
    this.#emit('counts', this.#counts);
  }

  #dropped(code) {
    this.#socket = null;
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#refreshTimer);
    if (this.#stopped) return;
    if (code === 4003) {
      this.#giveUp(new TidingsError(0, 'origin_not_allowed', 'the server refused this origin (4003)'));
    } else if (code === 4001 && this.#getToken && !this.#authRetried) {
      this.#authRetried = true;
      this.#token = undefined;
      this.#connect();
    } else if (code === 4001) {
      this.#giveUp(new TidingsError(0, 'invalid_token', 'the server refused the token (4001)'));
    } else {
      this.#scheduleReconnect();
    }
  }

  #scheduleReconnect() {
    this.#setState('reconnecting');
    const delay = backoffDelay(this.#attempt++, this.#backoff);
    this.#reconnectTimer = setTimeout(() => this.#connect(), delay);
  }

  #giveUp(err) {
    this.#stopped = true;
    this.#setState('closed');
    this.#emit('error', err);
  }

  /** Send a fresh token before the current one expires (at 80% of its remaining life, or 60 s before). */
  #scheduleRefresh(expiresAt) {
    clearTimeout(this.#refreshTimer);
    if (!this.#getToken || !expiresAt) return;
    const left = expiresAt * 1000 - Date.now();
    const delay = Math.min(Math.max(left - Math.min(60000, left / 5), 0), MAX_TIMER_MS);
    this.#refreshTimer = setTimeout(async () => {
      this.#token = undefined;
      try {
        const token = await this.#currentToken();
        this.#socket?.send(JSON.stringify({ type: 'refresh', token }));
      } catch (err) {
        this.#emit('error', err);
      }
    }, delay);
  }

  #setState(state) {
    if (state === this.#state) return;
    this.#state = state;
    this.#emit('state', state);
  }

  #emit(type, value) {
    for (const listener of this.#listeners.get(type) ?? []) {
      try {
        listener(value);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}

/** The `exp` claim of a JWT (unix seconds), or undefined when it cannot be read. */
function expiry(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part)).exp;
  } catch {
    return undefined;
  }
}

/**
 * A Web Push device's token on the server: `webpush-` and the SHA-256 of the endpoint in
 * base64url (the server derives it the same way).
 * @param {string} endpoint
 * @returns {Promise<string>}
 */
export async function webPushToken(endpoint) {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode(endpoint));
  return `webpush-${toBase64Url(new Uint8Array(digest))}`;
}

function toBase64Url(bytes) {
  let text = '';
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text) {
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function sameBytes(buffer, bytes) {
  if (!buffer) return false;
  const other = new Uint8Array(buffer);
  return other.length === bytes.length && other.every((b, i) => b === bytes[i]);
}

/** The registration once its service worker is active (push subscriptions need one). */
async function activated(registration) {
  if (registration.active) return registration;
  const worker = registration.installing ?? registration.waiting;
  if (!worker) throw new TidingsError(0, 'push_unsupported', 'the service worker did not install');
  await new Promise((resolve, reject) => {
    const changed = () => {
      if (worker.state === 'activated') resolve();
      if (worker.state === 'redundant') {
        reject(new TidingsError(0, 'push_unsupported', 'the service worker failed to install'));
      }
    };
    worker.addEventListener('statechange', changed);
    changed();
  });
  return registration;
}
