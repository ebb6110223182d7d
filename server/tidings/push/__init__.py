"""Push providers (APNs, FCM, console) behind one interface.

``base`` states the contract, ``registry`` builds providers from settings and
sizes each app's sends in flight to its connections.
"""
