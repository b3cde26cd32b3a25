"""Structured logs, with a last line of defence against personal data.

Code logs ids and masked values only; this processor still masks anything shaped like an
ID number in every string it is handed, so one careless field cannot leak a full number.
"""

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from schemas.identity import redact_id_numbers


def _redact(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = redact_id_numbers(value)
    return event


class _RedactingFilter(logging.Filter):
    """The same rule for stdlib log records (uvicorn, sqlalchemy, httpx)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_id_numbers(str(record.msg))
        if record.args:
            record.args = (
                tuple(
                    redact_id_numbers(arg) if isinstance(arg, str) else arg for arg in record.args
                )
                if isinstance(record.args, tuple)
                else record.args
            )
        return True


def configure_logging(level: str = "INFO", fmt: str = "console") -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.getLogger().setLevel(level.upper())
    # Logger-level filters see every record created on that logger, whoever installs handlers.
    for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access", "sqlalchemy", "httpx"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactingFilter) for f in logger.filters):
            logger.addFilter(_RedactingFilter())
