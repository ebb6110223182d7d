#!/usr/bin/env bash
# The JavaScript client's suite: unit tests, the client against a real `tidings serve`,
# and the demo page end to end in Debian's headless Chromium.
# Uses TIDINGS_TEST_DATABASE_URL / TIDINGS_TEST_REDIS_URL when set, else the embedded servers;
# TIDINGS_BIN names the `tidings` command (default: the repo's .venv, else `tidings` on PATH).
set -euo pipefail
cd "$(dirname "$0")"

if [ -z "${TIDINGS_BIN:-}" ] && [ -x ../.venv/bin/tidings ]; then
    TIDINGS_BIN="$(cd .. && pwd)/.venv/bin/tidings"
    export TIDINGS_BIN
fi

if ! command -v chromium >/dev/null; then
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi

PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
node --test --test-timeout=90000 test/*.test.js
