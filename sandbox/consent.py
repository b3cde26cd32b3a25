"""Why the agencies are asked: the consent and purpose headers every household query carries.

hedui sends `X-Hedui-Consent-Id` (the signed authorization, 授权书) and `X-Hedui-Purpose`
(the program) with every request about a household, as X-Road clients send their user and
issue. Each agency notes what it was told, in bounded memory: how many household queries
it received, how many came without both headers (`missing`), and the last `SEEN_MAX`
distinct consent/purpose pairs with their counts. With `require` on, an agency refuses a
query without them (`403`), as a partner enforcing its data-sharing agreement would.

Which calls are household queries is each agency's own business (`QUERIES` in its module):
health checks and token requests are about nobody and carry neither header.
"""

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

CONSENT_HEADER = b"x-hedui-consent-id"
PURPOSE_HEADER = b"x-hedui-purpose"
SEEN_MAX = 256
"""Distinct consent/purpose pairs each agency remembers (the least recent is forgotten)."""
VALUE_MAX = 256
"""A header value longer than this is kept cut to it."""

Query = tuple[str, str]
"""A household query: its method and the start of its path below the agency's root."""


class Seen(BaseModel):
    consent_id: str
    purpose: str
    calls: int


class AgencyConsent(BaseModel):
    calls: int = Field(description="Household queries received")
    missing: int = Field(description="Of them, without both headers")
    refused: int = Field(description="Of those, refused because `require` was on")
    seen: list[Seen] = Field(description="Pairs received, most recent first")


class ConsentReport(BaseModel):
    require: bool
    agencies: dict[str, AgencyConsent]


class ConsentSetting(BaseModel):
    model_config = ConfigDict(extra="forbid")

    require: bool = Field(
        description="Refuse (403) a household query that comes without both headers"
    )


@dataclass
class _Agency:
    calls: int = 0
    missing: int = 0
    refused: int = 0
    seen: OrderedDict[tuple[str, str], int] = field(default_factory=OrderedDict)


class ConsentLog:
    """What each agency was told by the household queries it received."""

    def __init__(self, queries: Mapping[str, Iterable[Query]]) -> None:
        self.queries = {source: tuple(found) for source, found in queries.items()}
        self.require = False
        self._agencies = {source: _Agency() for source in self.queries}

    def is_query(self, source: str, method: str, path: str) -> bool:
        """Whether `method path` (below the agency's root) asks about a household."""
        return any(
            method == wanted and path.startswith(prefix)
            for wanted, prefix in self.queries.get(source, ())
        )

    def record(self, source: str, headers: Iterable[tuple[bytes, bytes]]) -> bool:
        """Note one household query's headers; False when it must be refused."""
        consent = purpose = ""
        for name, value in headers:
            lowered = name.lower()
            if lowered == CONSENT_HEADER:
                consent = value.decode("latin-1").strip()[:VALUE_MAX]
            elif lowered == PURPOSE_HEADER:
                purpose = value.decode("latin-1").strip()[:VALUE_MAX]
        agency = self._agencies[source]
        agency.calls += 1
        if not consent or not purpose:
            agency.missing += 1
            if self.require:
                agency.refused += 1
                return False
            return True
        key = (consent, purpose)
        agency.seen[key] = agency.seen.pop(key, 0) + 1
        if len(agency.seen) > SEEN_MAX:
            agency.seen.popitem(last=False)
        return True

    def report(self, consent_id: str | None = None) -> ConsentReport:
        agencies = {}
        for source, agency in self._agencies.items():
            seen = [
                Seen(consent_id=consent, purpose=purpose, calls=calls)
                for (consent, purpose), calls in reversed(agency.seen.items())
                if consent_id is None or consent == consent_id
            ]
            agencies[source] = AgencyConsent(
                calls=agency.calls, missing=agency.missing, refused=agency.refused, seen=seen
            )
        return ConsentReport(require=self.require, agencies=agencies)

    def reset(self) -> None:
        self._agencies = {source: _Agency() for source in self.queries}
