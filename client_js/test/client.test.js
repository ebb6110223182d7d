// The client against a real `tidings serve` (see helpers.js for how it is started).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { WebSocket } from 'ws';

import { TidingsClient } from '../src/index.js';
import { TidingsServer, mintToken, newUser, record, waitFor } from './helpers.js';

/** @type {TidingsServer} */
let server;
const clients = [];

before(async () => {
  server = await TidingsServer.create();
});

after(async () => {
  for (const c of clients) c.close();
  await server?.destroy();
});

function connect(options) {
  const c = new TidingsClient({
    url: server.url, WebSocket, backoff: { base: 50, cap: 400 }, ...options,
  });
  clients.push(c);
  return c;
}

async function send(user, fields = {}) {
  const body = await server.publish({ recipients: [user], message: 'hello', ...fields });
  return body.notifications[0];
}

const unread = (seen) => seen.counts.at(-1)?.unread_notifications;

test('connects, gets counts, receives notifications in order', async () => {
  const user = newUser('recv');
  const c = connect({ token: server.token(user) });
  const seen = record(c);
  await waitFor(() => c.state === 'open', { what: 'open' });
  assert.deepEqual(c.counts, { total_notifications: 0, read_notifications: 0, unread_notifications: 0 });
  const sent = [await send(user, { title: 'one', type: 'info' }), await send(user, { title: 'two' })];
  await waitFor(() => seen.notification.length === 2, { what: 'two notifications' });
  assert.deepEqual(seen.notification.map((n) => n.uid), sent.map((n) => n.uid));
  assert.equal(seen.notification[0].title, 'one');
  assert.equal(seen.notification[0].notification.message, 'hello');
  assert.equal(seen.notification[0].is_read, false);
  assert.equal(c.lastSeq, sent[1].seq);
  await waitFor(() => unread(seen) === 2, { what: 'two unread' });
  assert.deepEqual(seen.state, ['connecting', 'open']);
});

test('list, mark read, mark all read, remove, remove all', async () => {
  const user = newUser('act');
  const c = connect({ token: server.token(user) });
  const seen = record(c);
  await waitFor(() => c.state === 'open');
  const [a, b, d] = [await send(user, { title: 'a' }), await send(user, { title: 'b' }),
    await send(user, { title: 'd' })];

  const page = await c.list({ pageSize: 2 });
  assert.deepEqual(page.notifications.map((n) => n.uid), [d.uid, b.uid]);
  assert.equal(page.total_notifications, 3);
  const rest = await c.list({ pageSize: 2, before: page.next_before });
  assert.deepEqual(rest.notifications.map((n) => n.uid), [a.uid]);

  const marked = await c.markRead([a.uid]);
  assert.equal(marked.updated, 1);
  assert.equal(marked.unread_notifications, 2);
  await waitFor(() => unread(seen) === 2 && seen.counts.at(-1).read_notifications === 1,
    { what: 'counts after mark read' });
  assert.deepEqual((await c.list({ isRead: true })).notifications.map((n) => n.uid), [a.uid]);

  const removed = await c.remove([b.uid]);
  assert.equal(removed.total_notifications, 2);
  await waitFor(() => seen.counts.at(-1).total_notifications === 2, { what: 'counts after remove' });

  assert.equal((await c.markAllRead()).unread_notifications, 0);
  await waitFor(() => unread(seen) === 0, { what: 'counts after mark all read' });
  assert.equal((await c.removeAll()).total_notifications, 0);
  await waitFor(() => seen.counts.at(-1).total_notifications === 0, { what: 'counts after remove all' });
  assert.equal((await c.list()).notifications.length, 0);

  await assert.rejects(c.markRead(['not-a-uid']), { name: 'TidingsError', status: 400 });
});

test('reconnects after a server restart and resumes: every notification once, in order', async () => {
  const user = newUser('resume');
  // A socket class the test can keep from reaching the server, to make a gap to replay.
  let reachable = true;
  class Gated extends WebSocket {
    constructor(url) {
      super(reachable ? url : 'ws://127.0.0.1:9/');
    }
  }
  const c = connect({ token: server.token(user), WebSocket: Gated });
  const seen = record(c);
  await waitFor(() => c.state === 'open');
  const sent = [await send(user, { title: 'before' })];
  await waitFor(() => seen.notification.length === 1);

  reachable = false;
  await server.restart();
  await waitFor(() => c.state === 'reconnecting', { what: 'reconnecting' });
  sent.push(await send(user, { title: 'missed 1' }), await send(user, { title: 'missed 2' }));
  reachable = true;
  await waitFor(() => c.state === 'open', { timeout: 15_000, what: 'reopen' });
  sent.push(await send(user, { title: 'live' }));
  await waitFor(() => seen.notification.length >= 4, { what: 'four notifications' });
  assert.deepEqual(seen.notification.map((n) => n.uid), sent.map((n) => n.uid));
  assert.equal(c.lastSeq, sent[3].seq);
  assert.deepEqual(seen.state, ['connecting', 'open', 'reconnecting', 'open']);
  await waitFor(() => unread(seen) === 4, { what: 'four unread' });
});

test('on 4001 asks getToken for a fresh token and connects with it', async () => {
  const user = newUser('refresh');
  const tokens = [mintToken('x'.repeat(40), user), server.token(user)];
  let calls = 0;
  const c = connect({ getToken: async () => tokens[calls++] });
  const seen = record(c);
  await waitFor(() => c.state === 'open', { what: 'open with the second token' });
  assert.equal(calls, 2);
  assert.deepEqual(seen.error, []);
  await send(user);
  await waitFor(() => seen.notification.length === 1);
});

test('gives up when the fresh token is refused too, and on a refused origin', async () => {
  const user = newUser('refused');
  let calls = 0;
  const c = connect({ getToken: () => { calls += 1; return mintToken('y'.repeat(40), user); } });
  const seen = record(c);
  await waitFor(() => seen.error.length, { what: 'an error' });
  assert.equal(c.state, 'closed');
  assert.equal(calls, 2);
  assert.equal(seen.error[0].code, 'invalid_token');

  class Foreign extends WebSocket {
    constructor(url) {
      super(url, { origin: 'http://elsewhere.example' });
    }
  }
  const foreign = connect({ token: server.token(user), WebSocket: Foreign });
  const refused = record(foreign);
  await waitFor(() => refused.error.length, { what: 'an error' });
  assert.equal(refused.error[0].code, 'origin_not_allowed');
  assert.deepEqual(refused.state, ['connecting', 'closed']);
});

test('keeps the socket open past token expiry by sending a fresh token', async () => {
  const user = newUser('renew');
  let calls = 0;
  // Tokens live 3 s; the server's leeway does not apply to the socket's expiry close.
  const c = connect({ getToken: () => { calls += 1; return server.token(user, 3); } });
  const seen = record(c);
  await waitFor(() => c.state === 'open');
  await waitFor(() => calls >= 3, { timeout: 10_000, what: 'two refreshes' });
  await send(user);
  await waitFor(() => seen.notification.length === 1);
  assert.deepEqual(seen.state, ['connecting', 'open']);
});

test('a reset from the server refetches the first page and resumes from there', async () => {
  const user = newUser('reset');
  const sent = [await send(user, { title: 'old' }), await send(user, { title: 'new' })];
  // A seq the server never gave (as after a database restore) cannot be replayed from.
  const c = connect({ token: server.token(user), since: sent[1].seq + 100 });
  const seen = record(c);
  await waitFor(() => seen.reset.length, { what: 'a reset' });
  assert.deepEqual(seen.reset[0].notifications.map((n) => n.uid), [sent[1].uid, sent[0].uid]);
  assert.equal(c.lastSeq, sent[1].seq);
  const later = await send(user, { title: 'later' });
  await waitFor(() => seen.notification.length === 1, { what: 'the next notification' });
  assert.equal(seen.notification[0].uid, later.uid);
});

test('preferences: read, change, refused, and the other device gets the change', async () => {
  const user = newUser('prefs');
  const kind = `comment-${Date.now()}`;
  await server.declareType(kind, { title: 'Comments', channels: { push: true, email: false } });
  await server.declareType(`${kind}-alert`, { title: 'Security', required: true, channels: { push: true } });
  const phone = connect({ token: server.token(user) });
  const laptop = connect({ token: server.token(user) });
  const onLaptop = record(laptop);
  await waitFor(() => phone.state === 'open' && laptop.state === 'open', { what: 'both open' });

  const doc = await phone.preferences();
  assert.deepEqual(doc.channels, { push: true, email: true, web_push: true });
  assert.deepEqual(doc.types[kind], {
    title: 'Comments', required: false, channels: { push: true, email: false }, digest: null,
  });
  assert.equal(doc.quiet_hours, null);

  const changed = await phone.updatePreferences({
    types: { [kind]: { channels: { push: false } } },
    quiet_hours: { start: '22:00', end: '07:00' },
  });
  assert.equal(changed.types[kind].channels.push, false);
  assert.deepEqual(changed.quiet_hours, { start: '22:00', end: '07:00' });
  await waitFor(() => onLaptop.preferences.length === 1, { what: 'the preferences event' });
  assert.deepEqual(onLaptop.preferences[0], changed);

  await assert.rejects(
    phone.updatePreferences({ types: { [`${kind}-alert`]: { channels: { push: false } } } }),
    (err) => err.status === 400 && err.code === 'required_type',
  );
  assert.deepEqual(await laptop.preferences(), changed);
});
