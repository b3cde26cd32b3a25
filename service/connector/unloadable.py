"""The stand-in for a stored declarative spec version this hedui can no longer build.

A version was validated when it was registered; a newer hedui may check specs more
strictly and refuse it. An enabled connector must not then vanish from new verifications
(its source would be missing and the report could come out `eligible`): the stand-in keeps
it in the plan, and its source is settled as `error` without asking the partner.
"""

from typing import ClassVar

import httpx

from connectors.base import CheckResult, ConnectorConfig, ConnectorError
from schemas.evidence import Evidence, HouseholdQuery

UNLOADABLE_BASE_URL = "http://spec-unreadable.invalid"
"""Where a stand-in's config points: a reserved name, never asked."""


class SpecUnreadable(ConnectorError):
    """The stored spec of a declarative connector's version no longer loads."""


class UnloadableConnector:
    """Base of every stand-in built by `unloadable_connector`; one subclass per version."""

    name: ClassVar[str]
    title: ClassVar[str]
    version: ClassVar[str]
    Config: ClassVar[type[ConnectorConfig]] = ConnectorConfig
    detail: ClassVar[str]
    """Why it is not loaded and what to do, as a source's detail and the health's reason."""
    kinds: ClassVar[tuple[str, ...]]

    def default_config(self) -> ConnectorConfig:
        return ConnectorConfig(base_url=UNLOADABLE_BASE_URL)

    async def check(self, config: ConnectorConfig, client: httpx.AsyncClient) -> CheckResult:
        return CheckResult(ok=False, detail=self.detail)

    async def fetch(
        self, household: HouseholdQuery, config: ConnectorConfig, client: httpx.AsyncClient
    ) -> Evidence:
        raise SpecUnreadable(self.detail)


def unloadable_connector(
    name: str, title: str, version: int, kind: object = None
) -> UnloadableConnector:
    """A stand-in for `version` of `name`, whose stored spec failed validation; `kind` is
    the stored spec's record kind, if it names one."""
    detail = (
        f"the stored spec of version {version} no longer loads in this version of hedui; "
        f"PUT /v1/connectors/{name} a corrected spec, test-read and enable it "
        "(or disable the connector)"
    )
    cls: type[UnloadableConnector] = type(
        f"Unloadable_{name}",
        (UnloadableConnector,),
        {
            "name": name,
            "title": title,
            "version": str(version),
            "detail": detail,
            "kinds": (kind,) if isinstance(kind, str) else (),
        },
    )
    return cls()
