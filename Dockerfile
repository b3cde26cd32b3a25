# hedui service image: slim, non-root, runs `hedui serve` (SQLite in /data by default;
# set HEDUI_DATABASE_URL=postgresql+asyncpg://... for PostgreSQL). It listens on 0.0.0.0, so
# the sandbox agencies are off unless HEDUI_SANDBOX=on; point HEDUI_PARTNER_BASE_URL at the
# partner agencies. Personal data is sealed with a key-encryption key: by default
# /data/hedui.db.key, created on first run beside the database; better mount it as a secret
# and set HEDUI_KEY_FILE (or HEDUI_KEK), so that the key is not in the data volume's backups
# (docs/privacy.md).

# Build stage: the wheel, exactly as a release publishes it (migrations included).
FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir "build>=1.2"
COPY pyproject.toml setup.py README.md ./
COPY alembic ./alembic
COPY schemas ./schemas
COPY connectors ./connectors
COPY sandbox ./sandbox
COPY service ./service
RUN python -m build --wheel --outdir /dist

# Run stage: the installed wheel and its dependencies, no source tree.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 hedui && mkdir -p /data && chown hedui /data
COPY --from=build /dist/ /tmp/dist/
RUN pip install --no-cache-dir /tmp/dist/*.whl && rm -rf /tmp/dist
USER hedui
WORKDIR /data
ENV HEDUI_HOST=0.0.0.0 \
    HEDUI_PORT=8000 \
    HEDUI_DATABASE_URL=sqlite+aiosqlite:////data/hedui.db \
    HEDUI_SANDBOX_DATA=/data/hedui-sandbox.db \
    HEDUI_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
EXPOSE 8000
# The API's own port, whatever HEDUI_PORT says. A container of this image running
# `hedui worker` serves no API: run it with --no-healthcheck (or its --metrics-port).
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HEDUI_PORT', '8000'), timeout=4)"
CMD ["hedui", "serve"]
