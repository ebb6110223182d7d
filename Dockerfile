# Tidings server image. It uses an external PostgreSQL and Redis
# (TIDINGS_DATABASE_URL, TIDINGS_REDIS_URL): the embedded servers are not installed.
# See docker-compose.yml for a complete stack.
#
# Reproducible: every Python dependency is pinned in constraints.txt. For a
# byte-identical base too, pin the image by digest:
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<digest> .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Only what the wheel needs (see [tool.hatch.build] in pyproject.toml; client_js/src is
# the bundled JavaScript client served by the demo page).
COPY pyproject.toml README.md LICENSE constraints.txt ./
COPY server/ server/
COPY migrations/ migrations/
COPY client_js/src/ client_js/src/
RUN pip wheel --constraint constraints.txt --wheel-dir /wheels '.[fast]'

FROM ${PYTHON_IMAGE}
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

# Ready, not merely alive: /readyz answers 503 while PostgreSQL or Redis is down.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('TIDINGS_PORT', '8000'), timeout=4)" || exit 1

CMD ["tidings", "serve"]
