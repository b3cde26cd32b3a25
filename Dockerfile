# hedui service image: slim, non-root, runs `hedui serve` (SQLite in /data by default;
# set HEDUI_DATABASE_URL=postgresql+asyncpg://... for PostgreSQL).
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 hedui
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY alembic ./alembic
COPY schemas ./schemas
COPY connectors ./connectors
COPY sandbox ./sandbox
COPY service ./service
# Editable, so that the alembic/ migrations beside the packages are found at run time.
RUN pip install --no-cache-dir -e . && mkdir -p /data && chown hedui /data
USER hedui
ENV HEDUI_HOST=0.0.0.0 \
    HEDUI_PORT=8000 \
    HEDUI_DATABASE_URL=sqlite+aiosqlite:////data/hedui.db \
    HEDUI_SANDBOX_DATA=/data/hedui-sandbox.db \
    HEDUI_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["hedui", "serve"]
