"""Structured logs for hedui and the libraries it runs on, with a last line of defence
against personal data.

Code logs ids and masked values only; still, every line (ours, uvicorn's, SQLAlchemy's)
passes `_redact`, which masks anything shaped like an ID number, so one careless field
cannot leak a full number. One handler renders everything, as JSON or for the console.

An exception is logged as its traceback (where it happened) and its type, never its
message: the message of a pydantic ValidationError quotes every input it refused
(`input_value=Decimal('199999999998765.42')`, a household's income worked backwards), and
any other exception may quote an amount, a name or an ID number that no mask recognises.
"""

import logging
import re
import sys
import traceback
from collections.abc import MutableMapping
from types import TracebackType
from typing import Any, TextIO
from urllib.parse import unquote, unquote_plus

import structlog
from pydantic import ValidationError

from schemas.identity import (
    DIGIT_LIKE,
    NUMERALS,
    hides_id_number,
    hides_in_pieces,
    redact_id_numbers,
)

_DIGITS_APART = re.compile(r"\d(?:[\W_]*\d){16,}(?:[\W_]*[Xx](?![0-9A-Za-z]))?")
_NUMERAL = re.compile(f"[{NUMERALS}]")
_NUMERALS_APART = re.compile(f"(?:{DIGIT_LIKE.pattern})(?:[\\W_]*(?:{DIGIT_LIKE.pattern})){{16,}}")
"""Seventeen digits (or numerals) or more with nothing but separators between them: the
shape of an ID number written apart (`530102-1990-0101-1231`, `530102_19900101_1231`,
`五三〇一〇二…`), each such stretch checked further by `hides_id_number`. Not with words
between its pieces: free text holding one is refused before it is stored or logged, and
looking further in every line (an access line has 17 digits of its address, port,
version and status) would double a line's cost and take a time's digits after a figure's
for a number (`p99=349.005 at 2026-01-09 03:25:24`)."""
_OWN_IDENTIFIERS = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])",
    re.IGNORECASE,
)
"""Identifiers in hedui's shapes (UUIDs, request ids), of either case: a caller may make
one up whose digits, letters between them, hide an ID number (`5301a0219b8005c0…`)."""
_ESCAPED_BYTES = re.compile(r"(?:\\x[0-9a-fA-F]{2})+")
"""A run of bytes written as `\\xNN` escapes (how a `bytes` value's repr shows non-ASCII)."""


def _as_text(match: re.Match[str]) -> str:
    escaped = match.group(0)
    raw = bytes(int(escaped[index + 2 : index + 4], 16) for index in range(0, len(escaped), 4))
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return escaped


def redact_line(text: str) -> str:
    """`text` with every ID-number shape masked, percent-encoded ones included: an access
    line quotes the path, so digits outside ASCII arrive as `%EF%BC%95...`. One written
    apart has no run to mask: every digit of the text is. Bytes a line quotes as Python
    writes them (`b'\\xef\\xbc\\x95...'`, a library's debug line) are read as the UTF-8
    text they are first, so full-width digits there are masked too."""
    if "\\x" in text:
        unescaped = _ESCAPED_BYTES.sub(_as_text, text)
        if unescaped != text and (masked := redact_line(unescaped)) != unescaped:
            return masked
    redacted = redact_id_numbers(text)
    decoded = unquote(text) if "%" in text else text
    plain = redacted if decoded is text else redact_id_numbers(decoded)
    if decoded is not text and plain != decoded:
        redacted = plain
    # What is left once every run is masked may still hide one: written apart with nothing
    # but separators between its pieces, in Chinese numerals, or inside the shape of an id
    # of hedui's. Then no digit or numeral of the line is left.
    if _may_hide_one(plain):
        return DIGIT_LIKE.sub("*", plain)
    return redacted


def _may_hide_one(text: str) -> bool:
    """Whether `text` hides an ID number written apart, or inside the shape of one of
    hedui's identifiers."""
    # Digits first (one fast search), numerals only in the rare line that has one.
    stretches = _DIGITS_APART.findall(text)
    if _NUMERAL.search(text):
        stretches += _NUMERALS_APART.findall(text)
    if any(hides_id_number(stretch) for stretch in stretches):
        return True
    if "-" in text or len(text) >= 32:
        # ASCII hex and dashes: its digits as whole pieces (the letters between them as
        # text between pieces), or one random id in a few thousand would read as one.
        return any(hides_in_pieces(token) for token in _OWN_IDENTIFIERS.findall(text))
    return False


_WIRE_LOGGERS = ("httpcore", "h11", "h2", "hpack", "aiohttp.client", "aiohttp.internal")
"""Libraries whose debug lines quote raw partner traffic: WARNING and above only."""

_QUERY_PAIR = re.compile(r"(?<=[?&])([^=&#]*)=([^&#]*)")
_WITHHELD_PARAMETERS = frozenset({"reference"})
"""Query parameters whose value is the caller's own text, which may name a person."""


def _withheld(match: re.Match[str]) -> str:
    # By the name the application reads (`re%66erence` is `reference` to it).
    if unquote_plus(match.group(1)).strip() in _WITHHELD_PARAMETERS:
        return f"{match.group(1)}=***"
    return match.group(0)


_NON_ASCII = re.compile(r"(?:%[89a-fA-F][0-9a-fA-F])+|[^\x00-\x7f]+")
"""Text outside ASCII in a path, percent-encoded (`%E5%BC%A0`) or not: no path or query
value of hedui's is (ids, codes, dates), so what a caller puts there may be a name."""


class _WithheldFromAccessLines(logging.Filter):
    """An access line quotes the path with its query: a `reference=` value there (a filter
    of the list endpoints, a batch's reference) is withheld, as it is the caller's text and
    may name a person (a name cannot be told apart from other text to mask it); so is any
    text outside ASCII (`/v1/verifications/张三`, percent-encoded), which no id of hedui's
    has."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) > 2 and isinstance(args[2], str):
            path = args[2]
            if "?" in path:
                path = _QUERY_PAIR.sub(_withheld, path)
            if "%" in path or not path.isascii():
                path = _NON_ASCII.sub("***", path)
            if path is not args[2]:
                record.args = (*args[:2], path, *args[3:])
        return True


_INPUT_VALUE = re.compile(r"input_value=.*?(?=, input_type=)", re.DOTALL)


def _withheld_inputs(text: str) -> str:
    """`text` with the inputs a pydantic error's text quotes (`input_value=...`) withheld,
    wherever such text turns up: a library's message, the repr of a failed task."""
    if "input_value=" not in text:
        return text
    return _INPUT_VALUE.sub("input_value=<withheld>", text)


def describe_exception(error: BaseException) -> str:
    """What a log line may say of an exception: its type and, for a validation error, the
    place and kind of each error (`monthly_standard: less_than_equal`). Never the message."""
    kind = type(error)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    if isinstance(error, ValidationError):
        details = "; ".join(
            f"{'.'.join(map(str, detail['loc'])) or '(root)'}: {detail['type']}"
            for detail in error.errors(
                include_url=False, include_context=False, include_input=False
            )
        )
        return f"{name}: {error.error_count()} error(s) for {error.title}: {details}"
    return f"{name} (message withheld)"


_MAX_GROUP_DEPTH = 10


def format_exception(error: BaseException) -> str:
    """The traceback Python would print for `error`, causes and contexts first, with every
    exception's message replaced by `describe_exception`: the frames (file, line, function,
    source line) say where it happened, nothing says what the values were."""
    return "".join(_chain_lines(error, set(), 0))


def _chain_lines(error: BaseException, seen: set[int], depth: int) -> list[str]:
    chain: list[tuple[BaseException, str]] = []
    link = ""
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, _CONTEXT
        else:
            current = None
    lines: list[str] = []
    for exception, following in reversed(chain):
        lines.extend(_exception_lines(exception, seen, depth))
        if following:
            lines.append(following)
    return lines


_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def _exception_lines(error: BaseException, seen: set[int], depth: int) -> list[str]:
    lines: list[str] = []
    tb: TracebackType | None = error.__traceback__
    if tb is not None:
        lines.append("Traceback (most recent call last):\n")
        lines.extend(traceback.format_tb(tb))
    lines.append(describe_exception(error) + "\n")
    if isinstance(error, BaseExceptionGroup):
        if depth >= _MAX_GROUP_DEPTH:
            lines.append("  (exceptions nested deeper left out)\n")
            return lines
        for index, inner in enumerate(error.exceptions, 1):
            lines.append(f"  +---------------- {index} ----------------\n")
            nested = "".join(_chain_lines(inner, seen, depth + 1))
            lines.extend("  | " + line + "\n" for line in nested.splitlines())
    return lines


def _exception_of(exc_info: Any) -> BaseException | None:
    """The exception an `exc_info` names, as structlog and the standard library take it: an
    exception, a `sys.exc_info()` triple, or true for the one being handled."""
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple):
        return exc_info[1] if len(exc_info) == 3 else None
    if exc_info:
        return sys.exc_info()[1]
    return None


def _format_exception_info(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog's `format_exc_info`, with messages withheld (`format_exception`)."""
    error = _exception_of(event.pop("exc_info", None))
    if error is not None:
        event["exception"] = format_exception(error)
    return event


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_line(_withheld_inputs(value))
    if isinstance(value, list | tuple):
        return [_redact_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _redact_value(item) for key, item in value.items()}
    return value


_OWN_KEYS = frozenset({"timestamp", "level", "logger"})
"""Written by the pipeline itself (the time, the level, the logger's name in the code):
nothing a caller or a partner said can be in them, so they are not searched (the time alone
has twenty digits to look through)."""


def _redact(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if key not in _OWN_KEYS:
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
            _format_exception_info,
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
            _format_exception_info,
            _redact,
            renderer,
        ],
    )
    # No line says which function, thread or process wrote it: the standard library would
    # walk the stack for the caller of every line (structlog's logger class, a frame walk
    # of its own) and look the others up, for fields no renderer here prints.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
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
    # Below httpx, the wire: httpcore's, h11's and hpack's debug lines quote every header
    # and event of a partner's answer as bytes (a balance, a name in a header), which no
    # mask recognises. Nothing an operator acts on is said there.
    for name in _WIRE_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # alembic's plugin set-up says nothing an operator acts on (its migrations it runs do).
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # uvicorn's loggers propagate to ours instead of printing in their own format.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(known, _WithheldFromAccessLines) for known in access.filters):
        access.addFilter(_WithheldFromAccessLines())
