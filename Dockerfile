# Tidings server image. It uses an external PostgreSQL and Redis
# (TIDINGS_DATABASE_URL, TIDINGS_REDIS_URL): the embedded servers are not installed.
# See docker-compose.yml for a complete stack.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Only what the wheel needs (see [tool.hatch.build] in pyproject.toml; client_js/src is
# the bundled JavaScript client served by the demo page).
COPY pyproject.toml README.md ./
COPY server/ server/
COPY migrations/ migrations/
COPY client_js/src/ client_js/src/
RUN pip wheel --wheel-dir /wheels '.[fast]'

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-index --find-links /tmp/wheels 'tidings[fast]' \
    && rm -rf /tmp/wheels \
    && useradd --system --uid 10001 --create-home --home-dir /home/tidings tidings

USER tidings
WORKDIR /home/tidings
ENV TIDINGS_HOST=0.0.0.0 \
    TIDINGS_PORT=8000
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('TIDINGS_PORT', '8000'), timeout=4)" || exit 1

CMD ["tidings", "serve"]
