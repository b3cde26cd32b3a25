"""Ask every planned partner source about a household, concurrently.

Each source gets its own time budget; whatever happens to one (timeout, garbage, a bug in
its connector) becomes that source's typed outcome and never disturbs the others.
"""

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog

from connectors.base import ConnectorConfig, ConnectorError, MalformedResponse, fetch_evidence
from connectors.http import attempts_var
from connectors.registry import ConnectorRegistry
from schemas.assessment import SourceOutcome as StoredOutcome
from schemas.evidence import HouseholdQuery, Record
from schemas.identity import redact_id_numbers
from schemas.verification import SourceStatus

log = structlog.get_logger(__name__)

DETAIL_LIMIT = 300


@dataclass(frozen=True)
class SourceOutcome:
    source: str
    status: SourceStatus
    records: list[Record] = field(default_factory=list)
    detail: str | None = None
    attempts: int = 0
    started_at: datetime | None = None
    fetched_at: datetime | None = None
    duration_ms: int = 0

    def row_values(self) -> dict[str, Any]:
        """Column values of the stored source row."""
        return {
            "source": self.source,
            "status": self.status.value,
            "records": [record.model_dump(mode="json") for record in self.records],
            "detail": self.detail,
            "attempts": self.attempts,
            "started_at": self.started_at,
            "fetched_at": self.fetched_at,
            "duration_ms": self.duration_ms,
        }

    def as_stored(self) -> StoredOutcome:
        """The scorer's view of this outcome."""
        return StoredOutcome(
            source=self.source,
            status=self.status,
            records=tuple(self.records),
            fetched_at=self.fetched_at,
            detail=self.detail,
        )


class FanOut:
    def __init__(
        self,
        registry: ConnectorRegistry,
        configs: dict[str, ConnectorConfig],
        client: httpx.AsyncClient,
    ) -> None:
        self.registry = registry
        self.configs = configs
        self.client = client

    async def fetch(self, source: str, household: HouseholdQuery) -> SourceOutcome:
        """One source's outcome; never raises (cancellation aside)."""
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        attempts_token = attempts_var.set(0)
        status, records, detail = SourceStatus.error, [], None
        try:
            connector = self.registry.get(source)
            config = self.configs[source]
            async with asyncio.timeout(config.timeout_s):
                evidence = await fetch_evidence(connector, household, config, self.client)
            records = list(evidence.records)
            status = SourceStatus.ok if records else SourceStatus.no_record
        except TimeoutError:
            status, detail = SourceStatus.timeout, "no answer within the source's time budget"
        except MalformedResponse as exc:
            detail = _detail("malformed response", exc)
        except ConnectorError as exc:
            detail = _detail("partner error", exc)
        except KeyError:
            detail = "no connector is registered under this name"
        except Exception as exc:
            # A connector bug must not turn into a 500 or a false answer; the message of an
            # arbitrary exception may carry personal data, so only its type is kept.
            log.exception("connector_crashed", source=source, error_type=type(exc).__name__)
            detail = f"connector failed ({type(exc).__name__})"
        finally:
            attempts = attempts_var.get()
            attempts_var.reset(attempts_token)
        duration_ms = round((time.perf_counter() - started) * 1000)
        return SourceOutcome(
            source=source,
            status=status,
            records=records,
            detail=detail,
            attempts=attempts,
            started_at=started_at,
            fetched_at=datetime.now(UTC),
            duration_ms=duration_ms,
        )


def _detail(prefix: str, exc: Exception) -> str:
    text = redact_id_numbers(f"{prefix}: {exc}")
    return text if len(text) <= DETAIL_LIMIT else text[: DETAIL_LIMIT - 1] + "…"
