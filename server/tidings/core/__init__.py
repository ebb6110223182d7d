"""The rules of Tidings with no I/O: shapes, limits, policy, cursors.

Nothing here opens a socket, touches a clock it was not handed, or imports an
I/O library; every function is tested without an event loop.

Modules:

- ``errors``: errors a client can be told about (code, status, message).
- ``ids``: identifier rules for user ids and device tokens.
- ``jsonvalues``: limits on decoded JSON a schema cannot state.
- ``requests``: declared request schemas and their limits.
- ``admin_schemas``: declared request schemas of the operator's console.
- ``profiles``: the declared shape of a user's profile.
- ``decoding``: request bodies and query strings into typed values.
- ``replies``: what clients see: notifications, counts, inbox pages.
- ``events``: the bus event format.
- ``protocol``: the WebSocket protocol: messages, close codes, limits.
- ``frames``: WebSocket framing (RFC 6455) and the opening handshake.
- ``session``: the delivery session of one socket, events in, actions out.
- ``origins``: which browser origins may open a socket.
- ``ratelimit``: token buckets per key.
- ``typedefs``: notification types a producer declares.
- ``templates``: notification templates, checked and rendered.
- ``preferences``: users' channel preferences over the declared types.
- ``channel_policy``: the send-time decision of one out-of-app channel.
- ``push``: push job content, policy, payloads, outcomes, backoff.
- ``push_apps``: push apps as the console shows them, secrets masked.
- ``webpush``: Web Push rules (RFC 8030, 8291, 8292).
- ``email_content``: what an e-mail says: one notification or a digest.
- ``email_message``: e-mail messages as bytes.
- ``mail_outcomes``: what became of one e-mail.
- ``smtp_url``: ``TIDINGS_SMTP_URL`` read into a target.
- ``unsubscribe``: signed one-click unsubscribe tokens.
"""
