// The client's protocol logic against a scripted fake socket and fetch: no server.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { TidingsClient, TidingsError, backoffDelay } from '../src/index.js';
import { mintToken, record, waitFor } from './helpers.js';

const COUNTS = { total_notifications: 1, read_notifications: 0, unread_notifications: 1 };

/** A WebSocket class whose instances the test drives as the server would. */
function fakeSockets() {
  const sockets = [];
  class FakeSocket {
    constructor(url) {
      this.url = url;
      this.sent = [];
      this.closedWith = null;
      sockets.push(this);
      setTimeout(() => this.onopen?.({}), 0);
    }
    send(text) {
      this.sent.push(JSON.parse(text));
    }
    close(code = 1005) {
      this.closedWith = code;
      setTimeout(() => this.onclose?.({ code }), 0);
    }
    /** The server sends a message. */
    deliver(msg) {
      this.onmessage?.({ data: typeof msg === 'string' ? msg : JSON.stringify(msg) });
    }
    /** The server closes the connection. */
    drop(code) {
      this.onclose?.({ code });
    }
  }
  return { FakeSocket, sockets };
}

function note(uid, seq) {
  return { type: 'notification', notification: { uid, seq }, ...COUNTS };
}

function client(FakeSocket, options = {}) {
  return new TidingsClient({
    url: 'http://tidings.test', token: 't0', WebSocket: FakeSocket,
    backoff: { base: 1, cap: 5 }, ...options,
  });
}

async function opened(sockets, index = 0) {
  const socket = await waitFor(() => sockets[index]?.sent.length && sockets[index], { what: `socket ${index}` });
  socket.deliver({ type: 'counts', ...COUNTS });
  return socket;
}

test('derives the socket URL from the base URL and authenticates in the first message', async () => {
  for (const [url, expected] of [
    ['http://h:8000', 'ws://h:8000/ws/me/notifications'],
    ['https://h/base/', 'wss://h/base/ws/me/notifications'],
  ]) {
    const { FakeSocket, sockets } = fakeSockets();
    const c = client(FakeSocket, { url, since: 41 });
    const socket = await waitFor(() => sockets[0]?.sent.length && sockets[0]);
    assert.equal(socket.url, expected);
    assert.deepEqual(socket.sent[0], { type: 'auth', token: 't0', since: 41 });
    c.close();
  }
});

test('opens on the first counts, emits each uid once, and resumes from the last seq', async () => {
  const { FakeSocket, sockets } = fakeSockets();
  const c = client(FakeSocket);
  const seen = record(c);
  const first = await opened(sockets);
  assert.equal(first.sent[0].since, undefined);
  assert.equal(c.state, 'open');
  first.deliver(note('a', 1));
  first.deliver(note('a', 1));
  first.deliver({ type: 'notification', notification: { uid: 'live', seq: null }, ...COUNTS });
  first.deliver({ type: 'something-new', x: 1 });
  first.deliver('not json');
  first.deliver(note('b', 2));
  assert.deepEqual(seen.notification.map((n) => n.uid), ['a', 'live', 'b']);
  assert.equal(c.lastSeq, 2);
  assert.deepEqual(c.counts, COUNTS);

  first.drop(1012);
  const second = await opened(sockets, 1);
  assert.deepEqual(second.sent[0], { type: 'auth', token: 't0', since: 2 });
  second.deliver(note('b', 2));
  second.deliver(note('c', 3));
  assert.deepEqual(seen.notification.map((n) => n.uid), ['a', 'live', 'b', 'c']);
  assert.deepEqual(seen.state, ['connecting', 'open', 'reconnecting', 'open']);
  c.close();
});

test('backoff is full jitter, exponential and capped', () => {
  const backoff = { base: 100, cap: 1000 };
  assert.equal(backoffDelay(0, backoff, () => 0), 0);
  assert.equal(backoffDelay(0, backoff, () => 0.5), 50);
  assert.equal(backoffDelay(3, backoff, () => 0.5), 400);
  assert.equal(backoffDelay(4, backoff, () => 0.5), 500);
  assert.equal(backoffDelay(80, backoff, () => 0.999), 999);
});

test('on 4001 asks getToken once, and gives up when the new token is refused too', async () => {
  const { FakeSocket, sockets } = fakeSockets();
  let calls = 0;
  const c = client(FakeSocket, { token: undefined, getToken: async () => `t${++calls}` });
  const seen = record(c);
  const first = await opened(sockets);
  assert.equal(first.sent[0].token, 't1');
  first.drop(4001); // e.g. expired: an open socket's failure earns a fresh token
  const second = await opened(sockets, 1);
  assert.equal(second.sent[0].token, 't2');
  second.drop(4001);
  const third = await waitFor(() => sockets[2]?.sent.length && sockets[2]);
  assert.equal(third.sent[0].token, 't3');
  third.drop(4001); // refused before opening: no more tries
  assert.equal(c.state, 'closed');
  assert.equal(calls, 3);
  assert.equal(sockets.length, 3);
  assert.equal(seen.error.at(-1).code, 'invalid_token');
});

test('a fixed token refused with 4001 is not retried', async () => {
  const { FakeSocket, sockets } = fakeSockets();
  const c = client(FakeSocket);
  const seen = record(c);
  assert.equal(c.state, 'connecting');
  (await waitFor(() => sockets[0]?.sent.length && sockets[0])).drop(4001);
  assert.equal(c.state, 'closed');
  assert.equal(sockets.length, 1);
  assert.ok(seen.error[0] instanceof TidingsError);
});

test('no reconnect after 4003 or close()', async () => {
  const { FakeSocket, sockets } = fakeSockets();
  const refused = client(FakeSocket);
  const seen = record(refused);
  (await opened(sockets)).drop(4003);
  assert.equal(refused.state, 'closed');
  assert.equal(seen.error[0].code, 'origin_not_allowed');

  const closing = client(FakeSocket);
  const socket = await opened(sockets, 1);
  closing.close();
  assert.equal(socket.closedWith, 1000);
  assert.equal(closing.state, 'closed');
  closing.connect();
  assert.equal(sockets.length, 2);
});

test('a socket that does not authenticate in time is dropped and tried again', async () => {
  const { FakeSocket, sockets } = fakeSockets();
  const c = client(FakeSocket, { connectTimeout: 30 });
  const first = await waitFor(() => sockets[0]);
  await waitFor(() => sockets.length === 2, { what: 'a second socket' });
  assert.notEqual(first.closedWith, null);
  c.close();
});

test('reset refetches the first page and resumes after its newest seq', async () => {
  const { FakeSocket, sockets } = fakeSockets();
  const requests = [];
  const page = { ...COUNTS, notifications: [{ uid: 'z', seq: 90 }], page: 1, page_size: 20, next_before: null };
  const fetch = async (url, init) => {
    requests.push({ url, init });
    return new Response(JSON.stringify(page), { status: 200 });
  };
  const c = client(FakeSocket, { fetch, since: 3 });
  const seen = record(c);
  const socket = await opened(sockets);
  socket.deliver({ type: 'reset' });
  await waitFor(() => seen.reset.length);
  assert.deepEqual(seen.reset[0], page);
  assert.equal(requests[0].url, 'http://tidings.test/api/v1/me/notifications?page=1');
  assert.equal(c.lastSeq, 90);
  socket.deliver(note('z', 90));
  assert.equal(seen.notification.length, 0);
  c.close();
});

test('HTTP: query names, a fresh token after 401, errors as TidingsError', async () => {
  const { FakeSocket } = fakeSockets();
  const requests = [];
  let calls = 0;
  const answers = [
    [401, { error: { code: 'token_expired', message: 'token expired' } }],
    [200, { ...COUNTS, notifications: [] }],
    [400, { error: { code: 'invalid_request', message: 'bad uid' } }],
  ];
  const fetch = async (url, init) => {
    requests.push({ url, init });
    const [status, body] = answers.shift();
    return new Response(JSON.stringify(body), { status });
  };
  const c = client(FakeSocket, {
    token: undefined, getToken: () => `t${++calls}`, fetch, autoConnect: false,
  });
  await c.list({ page: 2, pageSize: 5, isRead: false, before: 9 });
  assert.equal(requests[1].url,
    'http://tidings.test/api/v1/me/notifications?page=2&page_size=5&is_read=false&before=9');
  assert.deepEqual(requests.map((r) => r.init.headers.Authorization), ['Bearer t1', 'Bearer t2']);
  await assert.rejects(c.markRead(['x']), { name: 'TidingsError', status: 400, code: 'invalid_request' });
  assert.equal(requests[2].init.method, 'PATCH');
  assert.deepEqual(JSON.parse(requests[2].init.body),
    { action_choice: 'MARK_AS_READ', notification_uids: ['x'] });
  assert.equal(c.state, 'closed');
});

test('sends a fresh token before the current one expires', async () => {
  const { FakeSocket, sockets } = fakeSockets();
  let calls = 0;
  const getToken = () => mintToken('s'.repeat(32), 'alice', ++calls === 1 ? 1 : 600);
  const c = client(FakeSocket, { token: undefined, getToken });
  const socket = await opened(sockets);
  const refresh = await waitFor(() => socket.sent.find((m) => m.type === 'refresh'),
    { timeout: 3000, what: 'a refresh message' });
  assert.equal(refresh.token.split('.').length, 3);
  assert.equal(calls, 2);
  c.close();
});
