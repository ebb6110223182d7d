// End to end: the demo inbox page in headless Chromium, against a real `tidings serve`.
// Chromium is Debian's (CHROMIUM_PATH, default /usr/bin/chromium); nothing is downloaded.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { TidingsServer, newUser, waitFor } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url));
const UI_TIMEOUT = 20_000;

let server;
let browser;

before(async () => {
  if (!existsSync(CHROMIUM)) return;
  server = await TidingsServer.create();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  await server?.destroy();
});

/**
 * A tab on the demo inbox of `user`; page errors are collected in `errors`. With `gate`, the
 * tab's sockets reach the server only while `gate.open`; else they are closed with 1012.
 */
async function openInbox(context, user, errors, gate) {
  const page = await context.newPage();
  page.setDefaultTimeout(UI_TIMEOUT);
  page.on('pageerror', (err) => errors.push(err));
  if (gate) {
    await page.routeWebSocket(/\/ws\/me\/notifications$/, (ws) => {
      if (gate.open) ws.connectToServer();
      else ws.close({ code: 1012, reason: 'test gate' });
    });
  }
  await page.goto(`${server.url}/?user=${encodeURIComponent(user)}`);
  await page.locator('#conn[data-state="open"]').waitFor();
  return page;
}

async function publish(user, title, message) {
  const body = await server.publish({ recipients: [user], title, message, type: 'demo' });
  return body.notifications[0].uid;
}

test('demo inbox: live notification, badge synced across tabs, catch-up after a restart',
  { skip: !existsSync(CHROMIUM) && `no Chromium at ${CHROMIUM}` }, async () => {
    const user = newUser('demo');
    const errors = [];
    const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
    // Tab one's sockets pass a gate, shut while the server restarts, so that what is published
    // meanwhile must come by the client's resume, not live.
    const gate = { open: true };
    const one = await openInbox(context, user, errors, gate);
    const two = await openInbox(context, user, errors);

    const deployed = await publish(user, 'Deploy finished', 'api v2.4.1 is live on production.');
    for (const page of [one, two]) {
      await page.locator(`li[data-uid="${deployed}"]`).waitFor();
      await waitFor(async () => (await page.locator('#badge').textContent()) === '1', { what: 'badge 1' });
    }
    assert.match(await one.locator(`li[data-uid="${deployed}"]`).innerText(), /Deploy finished/);

    await one.locator(`li[data-uid="${deployed}"] .read-one`).click();
    await two.locator('#badge').waitFor({ state: 'hidden' });
    await two.locator(`li.read[data-uid="${deployed}"]`).waitFor();

    gate.open = false;
    await server.restart();
    await one.locator('#conn[data-state="reconnecting"]').waitFor();
    const missed = [
      await publish(user, 'New comment', 'Dana replied to your review: "Looks good, ship it."'),
      await publish(user, 'Invoice paid', 'Invoice #1042 was paid.'),
    ];
    gate.open = true;
    await one.locator('#conn[data-state="open"]').waitFor();
    for (const uid of missed) await one.locator(`li[data-uid="${uid}"]`).waitFor();
    await waitFor(async () => (await one.locator('#badge').textContent()) === '2', { what: 'badge 2' });
    const uids = await one.locator('li[data-uid]').evaluateAll((items) => items.map((li) => li.dataset.uid));
    assert.deepEqual(uids, [...missed.reverse(), deployed]);

    mkdirSync(ARTIFACTS, { recursive: true });
    await one.screenshot({ path: `${ARTIFACTS}demo-inbox.png` });
    assert.deepEqual(errors, []);
    await context.close();
  });

test('demo inbox: the token\'s user, a pasted token, live-only rows, a narrow screen',
  { skip: !existsSync(CHROMIUM) && `no Chromium at ${CHROMIUM}` }, async () => {
    const [alice, bob] = [newUser('alice'), newUser('bob')];
    const errors = [];
    const context = await browser.newContext({ viewport: { width: 360, height: 700 } });
    const page = await openInbox(context, alice, errors);
    assert.equal(await page.locator('#user').textContent(), alice);
    assert.match(await page.locator('#empty code').textContent(), new RegExp(`\\["${alice}"\\]`));
    const fits = () => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
    assert.ok(await fits(), 'the page is wider than a narrow screen');

    const { notifications: [typing] } = await server.publish(
      { recipients: [alice], message: 'bob is typing…', persist: false });
    const live = page.locator(`li.live[data-uid="${typing.uid}"]`);
    await live.waitFor();
    assert.match(await live.innerText(), /live only/);
    assert.equal(await live.locator('button').count(), 0, 'a live-only row offers no actions');
    assert.equal(await page.locator('#badge').isHidden(), true, 'a live-only row is not counted');

    await page.locator('#switch').click();
    await page.locator('#token-form input[name="token"]').fill(server.token(bob));
    await page.getByRole('button', { name: 'Open inbox' }).click();
    await page.locator('#conn[data-state="open"]').waitFor();
    await waitFor(async () => (await page.locator('#user').textContent()) === bob, { what: 'bob' });
    assert.match(await page.locator('#empty code').textContent(), new RegExp(`\\["${bob}"\\]`));
    const { notifications: [hello] } = await server.publish({ recipients: [bob], message: 'Hi Bob' });
    await page.locator(`li[data-uid="${hello.uid}"] .read-one`).waitFor();
    assert.ok(await fits(), 'the page is wider than a narrow screen');

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}demo-inbox-narrow.png` });
    assert.deepEqual(errors, []);
    await context.close();
  });

test('demo inbox: the preferences panel changes a type and quiet hours, and a second tab follows',
  { skip: !existsSync(CHROMIUM) && `no Chromium at ${CHROMIUM}` }, async () => {
    const user = newUser('prefs');
    const kind = `demo-${Date.now()}`;
    await server.declareType(kind, { title: 'Comments', channels: { push: true, email: false } });
    await server.declareType(`${kind}-alert`, { title: 'Security', required: true, channels: { push: true } });
    const context = await browser.newContext();
    const errors = [];
    const one = await openInbox(context, user, errors);
    const two = await openInbox(context, user, errors);
    const box = (page, name, channel) => page.locator('#prefs-rows tr', { hasText: name })
      .first().locator(`input[data-channel="${channel}"]`);
    await box(one, `${kind}-alert`, 'push').waitFor();
    assert.equal(await box(one, `${kind}-alert`, 'push').isDisabled(), true); // required
    assert.equal(await box(one, kind, 'email').isChecked(), false);
    await box(one, kind, 'email').check();
    await waitFor(async () => box(two, kind, 'email').isChecked(), { what: 'the other tab' });
    await one.locator('#quiet-on').check();
    await waitFor(async () => two.locator('#quiet-on').isChecked(), { what: 'quiet hours' });
    assert.equal(await two.locator('#quiet-start').inputValue(), '22:00');
    assert.deepEqual(errors, []);
    await context.close();
  });
