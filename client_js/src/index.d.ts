/** Connection state of a {@link TidingsClient}. */
export type State = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface Counts {
  total_notifications: number;
  read_notifications: number;
  unread_notifications: number;
}

/** A notification as the server shows it (the django-notifications-websocket shape). */
export interface Notification {
  /** null for a live-only (`persist: false`) notification */
  id: number | null;
  uid: string;
  /** per-user sequence number; null for a live-only notification */
  seq: number | null;
  user: { id: string };
  notification: {
    message: string | null;
    model: string | null;
    instance: unknown;
    method: string | null;
    changed_data: unknown;
  };
  type: string | null;
  title: string | null;
  data: unknown;
  is_read: boolean;
  custom_info: unknown;
  created_by: string | null;
  status: 'ACTIVE' | 'REMOVED';
  created_at: string;
  updated_at: string;
}

export interface Page extends Counts {
  notifications: Notification[];
  page: number;
  page_size: number;
  /** pass as `before` to get the next page; null on the last one */
  next_before: number | null;
}

export interface ActionResult extends Counts {
  updated: number;
}

export interface ListQuery {
  page?: number;
  pageSize?: number;
  isRead?: boolean;
  /** only notifications with a lower seq (cursor paging) */
  before?: number;
}

/** A push device as the server stores it (`POST /api/v1/me/devices`). */
export interface Device {
  token: string;
  platform: 'apns' | 'fcm' | 'webpush';
  app_id: string | null;
  name: string | null;
  active: boolean;
  deactivated_reason: string | null;
  created_at: string;
  updated_at: string;
  /** A Web Push subscription's endpoint; null for APNs and FCM. */
  endpoint: string | null;
}

export interface WebSocketLike {
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  onclose: ((event: { code: number }) => void) | null;
  send(data: string): void;
  close(code?: number): void;
}

export interface TidingsClientOptions {
  /** Server base URL (http or https; relative to the page in a browser). */
  url: string;
  /** A user JWT. */
  token?: string;
  /** Returns a fresh user JWT: called on start, after the server refuses one, and before expiry. */
  getToken?: () => string | Promise<string>;
  /** Last seq the app has seen: the server replays every later notification. */
  since?: number;
  /** Connect at once (default true), or wait for `connect()`. */
  autoConnect?: boolean;
  /** A WebSocket class; required on Node 20 (e.g. `WebSocket` from the ws package). */
  WebSocket?: new (url: string) => WebSocketLike;
  /** A fetch function (default: the global one). */
  fetch?: typeof fetch;
  /** Reconnect delays in ms: random in [0, min(cap, base * 2^attempt)). Default base 500, cap 30000. */
  backoff?: { base?: number; cap?: number };
  /** Milliseconds to open and authenticate a socket before trying again (default 10000). */
  connectTimeout?: number;
}

/** The effective channel preferences (`GET /api/v1/me/preferences`). */
export interface Preferences {
  channels: { push: boolean; email: boolean; web_push: boolean };
  types: Record<string, {
    title: string;
    required: boolean;
    channels: Partial<Record<'push' | 'email' | 'web_push', boolean>>;
    digest: { window: number } | null;
  }>;
  quiet_hours: { start: string; end: string } | null;
  version: number;
}

/** A change to the preferences: any part of the document. */
export interface PreferencesChange {
  channels?: Partial<Record<'push' | 'email' | 'web_push', boolean>>;
  types?: Record<string, { channels: Partial<Record<'push' | 'email' | 'web_push', boolean>> }>;
  quiet_hours?: { start: string; end: string } | null;
}

export interface TidingsEvents {
  notification: Notification;
  /** The preferences changed (on this device or another). */
  preferences: Preferences;
  counts: Counts;
  state: State;
  /** Too many notifications were missed while away: the first page, to replace the list with. */
  reset: Page;
  error: Error;
}

/** Milliseconds before reconnect attempt `attempt` (0 first): random in [0, min(cap, base * 2^attempt)). */
/** A Web Push device's token: `webpush-` and the endpoint's SHA-256 in base64url. */
export function webPushToken(endpoint: string): Promise<string>;

export function backoffDelay(attempt: number, backoff: { base: number; cap: number }, random?: () => number): number;

/** An HTTP or connection failure. */
export class TidingsError extends Error {
  constructor(status: number, code: string, message: string);
  /** HTTP status, or 0 for a WebSocket failure */
  status: number;
  /** e.g. `invalid_token`, `origin_not_allowed`, `not_found` */
  code: string;
}

/** A user's live inbox: connects when constructed (unless `autoConnect: false`), reconnects until closed. */
export class TidingsClient {
  constructor(options: TidingsClientOptions);
  /** Open the socket (once; a closed client stays closed). `since`: the last seq the app has seen. */
  connect(options?: { since?: number }): void;
  readonly state: State;
  readonly counts: Counts | null;
  readonly lastSeq: number | null;
  on<K extends keyof TidingsEvents>(type: K, listener: (value: TidingsEvents[K]) => void): () => void;
  off<K extends keyof TidingsEvents>(type: K, listener: (value: TidingsEvents[K]) => void): void;
  list(query?: ListQuery): Promise<Page>;
  markRead(uids: string[]): Promise<ActionResult>;
  markAllRead(): Promise<ActionResult>;
  remove(uids: string[]): Promise<ActionResult>;
  removeAll(): Promise<ActionResult>;
  preferences(): Promise<Preferences>;
  updatePreferences(changes: PreferencesChange): Promise<Preferences>;
  close(): void;
  /** Web Push for this browser: permission, service worker, subscription, device. */
  subscribePush(options?: {
    serviceWorker?: string;
    name?: string;
    navigator?: unknown;
    Notification?: unknown;
  }): Promise<Device>;
  /** Unsubscribe this browser and forget its device; false when it had no subscription. */
  unsubscribePush(options?: { serviceWorker?: string; navigator?: unknown }): Promise<boolean>;
}
