"""Structured logs for hedui and the libraries it runs on, with a last line of defence
against personal data.

Code logs ids and masked values only; still, every line (ours, uvicorn's, SQLAlchemy's)
passes `_redact`, which masks anything shaped like an ID number, so one careless field
cannot leak a full number. One handler renders everything, as JSON or for the console.
"""

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO
from urllib.parse import unquote

import structlog

from schemas.identity import redact_id_numbers


def redact_line(text: str) -> str:
    """`text` with every ID-number shape masked, percent-encoded ones included: an access
    line quotes the path, so digits outside ASCII arrive as `%EF%BC%95...`."""
    redacted = redact_id_numbers(text)
    if "%" in text:
        decoded = unquote(text)
        if redact_id_numbers(decoded) != decoded:
            return redact_id_numbers(decoded)
    return redacted


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_line(value)
    if isinstance(value, list | tuple):
        return [_redact_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _redact_value(item) for key, item in value.items()}
    return value


def _redact(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in event.items():
        event[key] = _redact_value(value)
    return event


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is at the time (test capture replaces it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


class LevelFirstLogger(structlog.stdlib.BoundLogger):
    """structlog's stdlib logger, asking the standard library's (cached) level check before
    anything else: otherwise a call below the level builds its event and raises and
    catches `DropEvent` in `filter_by_level`, a few µs for each of the dozen INFO lines a
    verification writes while the service logs at WARNING."""

    def debug(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if not self._logger.isEnabledFor(logging.DEBUG):
            return None
        return super().debug(event, *args, **kw)

    def info(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if not self._logger.isEnabledFor(logging.INFO):
            return None
        return super().info(event, *args, **kw)


def configure_logging(level: str = "INFO", fmt: str = "console") -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=LevelFirstLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        # Records from the standard library (uvicorn, sqlalchemy) get the same fields.
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact,
            renderer,
        ],
    )
    root = logging.getLogger()
    root.setLevel(level.upper())
    for handler in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    root.addHandler(handler)
    # One line per partner request is DEBUG detail: at INFO it would be ten lines per
    # household, and their cost on the hot path (outcomes and latencies are in /metrics).
    logging.getLogger("httpx").setLevel(
        logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING
    )
    # uvicorn's loggers propagate to ours instead of printing in their own format.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
