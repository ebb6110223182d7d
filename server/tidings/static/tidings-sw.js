/*
 * Tidings service worker: shows each Web Push as a notification, and a click on it focuses
 * the inbox (a window of this worker's scope) or opens it.
 *
 * The push payload is the JSON Tidings sends: title, body, uid, seq, type, tag (the collapse
 * id: a newer push with the same tag replaces the shown one), badge, data and the producer's
 * push.extra keys. `url` (a push.extra key) names the page to open, on this origin only;
 * anything else opens the scope. Register it from a page of the same origin:
 * `navigator.serviceWorker.register('/tidings-sw.js')` (the client's subscribePush does).
 */

const DEFAULT_TITLE = 'New notification';

function parse(data) {
  if (!data) return {};
  try {
    const value = data.json();
    return value && typeof value === 'object' ? value : { body: String(value) };
  } catch {
    return { body: data.text() };
  }
}

/** The page a click opens: the payload's `url` when it is on this origin, else the scope. */
function target(url) {
  const scope = self.registration.scope;
  if (typeof url === 'string') {
    try {
      const wanted = new URL(url, scope);
      if (wanted.origin === new URL(scope).origin) return wanted.href;
    } catch {
      // not a URL: the scope
    }
  }
  return scope;
}

self.addEventListener('push', (event) => {
  const push = parse(event.data);
  const title = push.title || DEFAULT_TITLE;
  const options = {
    body: push.body || '',
    tag: push.tag || push.uid || undefined,
    data: { uid: push.uid, seq: push.seq, url: target(push.url) },
  };
  const shown = [self.registration.showNotification(title, options)];
  if (typeof push.badge === 'number' && self.navigator && 'setAppBadge' in self.navigator) {
    shown.push(self.navigator.setAppBadge(push.badge).catch(() => {}));
  }
  event.waitUntil(Promise.all(shown));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const url = event.notification.data?.url || self.registration.scope;
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    const open = windows.find((w) => w.url === url)
      ?? windows.find((w) => w.url.startsWith(self.registration.scope));
    if (open) {
      const focused = await open.focus();
      if (open.url !== url && 'navigate' in focused) await focused.navigate(url);
      return focused;
    }
    return self.clients.openWindow(url);
  })());
});
