"""Push providers (APNs, FCM, Web Push, console) behind one interface.

Modules:

- ``base``: the provider contract.
- ``registry``: providers from settings, and each app's sends in flight.
- ``apns``: APNs through aioapns.
- ``fcm``: FCM HTTP v1 through aiohttp.
- ``webpush``: Web Push through aiohttp.
- ``ece``: Web Push message encryption (RFC 8291, RFC 8188).
- ``vapid``: the server's VAPID key and its tokens (RFC 8292).
- ``address_guard``: the resolver that keeps Web Push sends to allowed addresses.
- ``console``: prints each payload (for development).
- ``app_info``: what the console shows of each configured push app.
"""
