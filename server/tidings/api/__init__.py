"""The HTTP API: thin aiohttp handlers that validate, authenticate and call services."""
