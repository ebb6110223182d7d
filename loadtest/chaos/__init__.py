"""The chaos suite's driver: private servers, real node processes, faults, and a verdict.

``python -m loadtest.chaos`` runs every scenario (the full form) and writes a
markdown table of the figures; ``tests/chaos`` runs each one briefly under pytest.
"""
