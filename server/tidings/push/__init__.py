"""Push providers (APNs, FCM, console) behind one interface, and the enqueue entry point.

``base`` states the contract, ``registry`` builds providers from settings,
``enqueue`` is what the publish path calls after a commit.
"""
