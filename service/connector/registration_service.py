"""Registering, versioning, test-reading and activating declarative connectors.

A spec is validated fully before anything is stored; each `PUT` stores a new version and
never changes an older one; a version is put in force only after a successful test read of
it (or with `force`). Processes pick changes up through `service.connector.refresh`.
"""

import base64
import html
import re
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

import httpx
import structlog
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import ConnectorError, fetch_evidence
from connectors.declarative import ConnectorSpec, SpecInvalid, build_connector, validate_spec
from connectors.declarative.spec import BasicAuth, OAuth2ClientCredentials, secret_refs
from connectors.http import PartnerClient
from connectors.registry import ConnectorRegistry
from schemas import connector_registration as wire
from schemas.evidence import (
    CONNECTOR_TEST_PURPOSE,
    HouseholdQuery,
    MemberQuery,
    Record,
    RequestContext,
)
from schemas.identity import (
    hides_id_number,
    mask_account,
    mask_id_number,
    mask_name,
    redact_id_numbers,
)
from schemas.problem import ProblemError
from service.auth.principal import Principal
from service.config import Settings
from service.connector.monitor import pause_of
from service.connector.registration_repository import RegistrationRepository
from service.connector.repository import ConnectorRepository
from service.errors import Conflict, InvalidRequest, NotFound, OutsideRegion
from service.logging import redact_line
from service.models.base import utcnow
from service.models.declarative_connector import StoredConnector, StoredConnectorVersion

log = structlog.get_logger(__name__)


class DeclarativeConnectorNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"No declarative connector is registered as {name!r} (built-in and plugin "
            "connectors are not changed over the API: pause and resume apply to every "
            "connector, and `hedui connector test NAME` checks any)"
        )


def _validated(body: object, settings: Settings) -> ConnectorSpec:
    try:
        return validate_spec(body, partner_hosts=settings.partner_host_list())
    except SpecInvalid as invalid:
        raise InvalidRequest(
            f"The connector spec is invalid: {invalid.problems[0].pointer} "
            f"{invalid.problems[0].message}",
            errors=[
                ProblemError(
                    loc=["body", *_segments(problem.pointer)],
                    msg=problem.message,
                    pointer=problem.pointer,
                )
                for problem in invalid.problems
            ],
        ) from None


def _segments(pointer: str) -> list[str | int]:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    return [int(p) if p.isdigit() else p for p in parts if p]


def _stored(spec: ConnectorSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", by_alias=True, exclude_none=True)


class ConnectorRegistration:
    async def register(
        self,
        session: AsyncSession,
        principal: Principal,
        body: object,
        registry: ConnectorRegistry,
        settings: Settings,
    ) -> wire.RegisteredConnector:
        spec = _validated(body, settings)
        if registry.is_code(spec.name):
            raise Conflict(f"{spec.name!r} is a built-in or plugin connector's name")
        repository = RegistrationRepository.from_session(session)
        await repository.hold_registrations()
        if await repository.get(spec.name) is not None:
            raise Conflict(f"{spec.name!r} is registered already: PUT a new version instead")
        if await repository.count() >= settings.max_declarative_connectors:
            raise Conflict(
                f"{settings.max_declarative_connectors} declarative connectors are registered, "
                "the most this deployment allows (HEDUI_MAX_DECLARATIVE_CONNECTORS): a new "
                "partner takes a new version of one no longer used, or a higher limit"
            )
        now = utcnow()
        connector = StoredConnector(
            name=spec.name,
            title=spec.title,
            latest_version=1,
            active_version=None,
            enabled=False,
            created_at=now,
            updated_at=now,
        )
        await repository.add(connector)
        await repository.add(self._version(spec, 1, principal, now))
        return await self.read(session, spec.name)

    async def new_version(
        self,
        session: AsyncSession,
        principal: Principal,
        name: str,
        body: object,
        settings: Settings,
    ) -> wire.RegisteredConnector:
        spec = _validated(body, settings)
        if spec.name != name:
            raise InvalidRequest(
                "The spec's name must be the connector's name",
                errors=[
                    ProblemError(loc=["body", "name"], msg="differs from the URL", pointer="/name")
                ],
            )
        repository = RegistrationRepository.from_session(session)
        connector = await repository.get(name, for_update=True)
        if connector is None:
            raise DeclarativeConnectorNotFound(name)
        if connector.latest_version >= settings.max_connector_versions:
            raise Conflict(
                f"{name} has {connector.latest_version} versions, the most this deployment "
                "allows (HEDUI_MAX_CONNECTOR_VERSIONS): versions are kept, since reports "
                "name the version they used"
            )
        now = utcnow()
        connector.latest_version += 1
        connector.title = spec.title
        connector.updated_at = now
        await repository.add(self._version(spec, connector.latest_version, principal, now))
        return await self.read(session, name)

    @staticmethod
    def _version(
        spec: ConnectorSpec, version: int, principal: Principal, now: datetime
    ) -> StoredConnectorVersion:
        return StoredConnectorVersion(
            name=spec.name,
            version=version,
            spec=_stored(spec),
            tested_ok=False,
            created_by=principal.key_id,
            created_at=now,
        )

    async def read(self, session: AsyncSession, name: str) -> wire.RegisteredConnector:
        repository = RegistrationRepository.from_session(session)
        connector = await repository.get(name)
        if connector is None:
            raise DeclarativeConnectorNotFound(name)
        versions = await repository.versions(name)
        # Kept from when it was in force, and shown: an integrator enabling it sees it is
        # paused (it holds again at once) rather than wondering why nothing is asked.
        state = await ConnectorRepository.from_session(session).state(name)
        return wire.RegisteredConnector(
            name=connector.name,
            title=connector.title,
            enabled=connector.enabled,
            active_version=connector.active_version,
            latest_version=connector.latest_version,
            versions=[
                wire.ConnectorVersionInfo(
                    version=row.version, tested_ok=row.tested_ok, created_at=row.created_at
                )
                for row in versions
            ],
            # Stored specs hold secret references only; there is nothing in clear to mask.
            spec=versions[-1].spec,
            updated_at=connector.updated_at,
            paused=pause_of(state, utcnow()) if state is not None else None,
        )

    async def enable(
        self,
        session: AsyncSession,
        name: str,
        body: wire.ConnectorEnable,
        registry: ConnectorRegistry,
    ) -> wire.RegisteredConnector:
        repository = RegistrationRepository.from_session(session)
        connector = await repository.get(name, for_update=True)
        if connector is None:
            raise DeclarativeConnectorNotFound(name)
        if registry.is_code(name):
            # A plugin installed since the registration took its name: the plugin answers
            # under it, and enabling the declarative one would put nothing in force.
            raise Conflict(
                f"{name!r} is a built-in or plugin connector's name now (its package was "
                "installed after this registration): the plugin answers under it; uninstall "
                "the plugin to use this declarative connector again"
            )
        number = body.version or connector.latest_version
        version = await repository.version(name, number)
        if version is None:
            raise InvalidRequest.at(["body", "version"], f"no version {number}")
        if not version.tested_ok and not body.force:
            raise Conflict(
                f"Version {number} has no successful test read: POST "
                f"/v1/connectors/{name}/test first, or enable it untested with the body "
                '{"force": true}'
            )
        connector.active_version = number
        connector.enabled = True
        connector.updated_at = utcnow()
        await session.flush()
        return await self.read(session, name)

    async def disable(self, session: AsyncSession, name: str) -> wire.RegisteredConnector:
        repository = RegistrationRepository.from_session(session)
        connector = await repository.get(name, for_update=True)
        if connector is None:
            raise DeclarativeConnectorNotFound(name)
        connector.enabled = False
        connector.updated_at = utcnow()
        await session.flush()
        return await self.read(session, name)

    async def test_read(
        self,
        session: AsyncSession,
        principal: Principal,
        name: str,
        body: wire.ConnectorTestRequest,
        today: datetime,
    ) -> wire.ConnectorTestResult:
        """Ask the partner about the household with one version; store only the verdict.

        Only about a household of the key's own region: a test read shows what the partner
        holds about people (their records, amounts included), as a verification does."""
        if not principal.covers(body.region_code):
            # A township key names no township here: it test-reads nobody (as it registers
            # no near relative), rather than anyone of its county.
            raise OutsideRegion()
        repository = RegistrationRepository.from_session(session)
        connector_row = await repository.get(name)
        if connector_row is None:
            raise DeclarativeConnectorNotFound(name)
        state = await ConnectorRepository.from_session(session).state(name)
        if state is not None and state.paused:
            # An operator's pause stops every call to the partner: a test read too, of any
            # version (read from the database, not this process's last look at it).
            raise Conflict(
                f"{name} is paused by an operator ({state.paused_by}: {state.paused_reason}): "
                "a test read would call its partner; an operator resumes it first "
                f"(POST /v1/connectors/{name}/resume)"
            )
        number = body.version or connector_row.latest_version
        row = await repository.version(name, number)
        if row is None:
            raise InvalidRequest.at(["body", "version"], f"no version {number}")
        try:
            stored = ConnectorSpec.model_validate(row.spec)
        except ValidationError:
            # Stored when the checks were laxer (an expression that multiplies what it
            # reads, a path with dot-segments): never run again, whoever asks.
            raise Conflict(
                f"Version {number}'s spec no longer passes validation: PUT a corrected version"
            ) from None
        spec = _capped(stored)
        connector = build_connector(spec, str(number))
        household = HouseholdQuery(
            region_code=body.region_code,
            as_of=body.as_of or today.date(),
            members=tuple(MemberQuery(id_number=m.id_number, name=m.name) for m in body.members),
            context=RequestContext(
                consent_id=body.consent_document_id or wire.TEST_CONSENT_ID,
                purpose=CONNECTOR_TEST_PURPOSE,
            ),
        )
        config = connector.default_config().model_copy(
            update={"max_records": wire.TEST_MAX_RECORDS}
        )
        recorder = _Recorder(_secrets(spec), [m.name for m in body.members if m.name])
        started = time.perf_counter()
        error: str | None = None
        records, answered = [], 0
        try:
            async with PartnerClient(transport=recorder, context=household.context) as client:
                evidence = await fetch_evidence(connector, household, config, client)
            # Account numbers the records hold are shown by their last 4 digits, in the
            # records and wherever the exchanges quote them.
            recorder.accounts = sorted(
                {account for record in evidence.records if (account := _account_of(record))},
                key=len,
                reverse=True,
            )
            records = [_shown(record, recorder.mask) for record in evidence.records]
            answered = len(evidence.answered)
        except ConnectorError as failure:
            error = redact_id_numbers(f"{type(failure).__name__}: {failure}")
        except Exception as failure:
            # A connector bug a partner's answer set off: the read failed, as a verification's
            # source would ("connector failed"), never a 500; the message is not quoted.
            log.warning("test_read_crashed", connector=name, error_type=type(failure).__name__)
            error = f"connector failed ({type(failure).__name__})"
        if error is None:
            row.tested_ok = True
            await session.flush()
        return wire.ConnectorTestResult(
            name=name,
            version=number,
            ok=error is None,
            elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
            records=records,
            answered=answered,
            exchanges=recorder.exchanges(),
            error=error,
        )


def _shown(record: Record, mask: Callable[[str], str]) -> Record:
    """A record as a test read shows it: the member masked, and every text the partner
    wrote (an employer, an address) masked as the exchanges are: ID numbers, the members'
    names, the spec's secrets."""
    update: dict[str, object] = {"id_number": mask_id_number(record.id_number)}
    for field, value in record:
        if isinstance(value, str) and field not in ("id_number", "kind"):
            update[field] = mask(value)
    return record.model_copy(update=update)


def _account_of(record: Record) -> str | None:
    """The account number a record holds, unless it shows no more than its last 4."""
    account = getattr(record, "account", None)
    if isinstance(account, str) and account != mask_account(account):
        return account
    return None


def _capped(spec: ConnectorSpec) -> ConnectorSpec:
    """The spec as a test read runs it: at most 5 pages and 10 s."""
    pagination = spec.pagination
    if hasattr(pagination, "max_pages"):
        pagination = pagination.model_copy(
            update={"max_pages": min(pagination.max_pages, wire.TEST_MAX_PAGES)}
        )
    limits = spec.limits.model_copy(
        update={
            "timeout_s": min(spec.limits.timeout_s, wire.TEST_TIMEOUT_S),
            "request_timeout_s": min(spec.limits.request_timeout_s, wire.TEST_TIMEOUT_S),
        }
    )
    return spec.model_copy(update={"pagination": pagination, "limits": limits})


def _secrets(spec: ConnectorSpec) -> list[str]:
    """Every form in which the spec's secrets may appear in what a test read shows: as is,
    URL-encoded (a query parameter), and Base64 in a Basic pair."""
    values = [value for _, ref in secret_refs(spec) if (value := ref.reveal())]
    if isinstance(spec.auth, BasicAuth) and values:
        pair = f"{spec.auth.username}:{values[0]}".encode()
        values.append(base64.b64encode(pair).decode())
    if isinstance(spec.auth, OAuth2ClientCredentials) and len(values) == 2:
        # The client authenticates to the token endpoint with its URL-encoded id and secret.
        pair = ":".join(quote(value, safe="") for value in values).encode()
        values.append(base64.b64encode(pair).decode())
    forms = {form for value in values for form in (value, quote(value, safe=""), quote_plus(value))}
    return sorted(forms, key=len, reverse=True)  # the longest first: none hides in another


_CREDENTIAL_NAMES = (
    "access_token|refresh_token|id_token|subject_token|actor_token"
    "|client_secret|client_assertion|assertion|password"
)
"""The OAuth 2.0 (RFC 6749, 7523, 8693) and OpenID parameters that carry a credential: a
token endpoint answers with a token it issued, which no spec secret names."""
_CREDENTIAL_MEMBER = re.compile(
    rf'("(?:{_CREDENTIAL_NAMES})"\s*:\s*)"(?:[^"\\]|\\.)*(?:"|\\?\Z)', re.IGNORECASE
)
"""A credential as a JSON string member; its value may be cut off where the kept text ends."""
_CREDENTIAL_PARAMETER = re.compile(
    rf"(?:^|(?<=[?&]))((?:{_CREDENTIAL_NAMES})=)[^&#\s]*", re.IGNORECASE
)
"""A credential as a form or query parameter."""


def _hide_credentials(text: str) -> str:
    """The text with the value of every credential-bearing JSON member or form parameter as
    ***, the name kept: `{"access_token":"***","expires_in":600}`."""
    text = _CREDENTIAL_MEMBER.sub(r'\1"***"', text)
    return _CREDENTIAL_PARAMETER.sub(r"\1***", text)


class _Tee(httpx.AsyncByteStream):
    """Passes a response body through, keeping its first bytes for the test-read report."""

    def __init__(self, stream: httpx.AsyncByteStream, keep: bytearray) -> None:
        self.stream = stream
        self.keep = keep

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.stream:
            room = wire.TEST_BODY_CHARS - len(self.keep)
            if room > 0:
                self.keep += chunk[:room]
            yield chunk

    async def aclose(self) -> None:
        await self.stream.aclose()


class _Recorder(httpx.AsyncBaseTransport):
    """A transport that notes each exchange of a test read, masked as it is shown."""

    _HIDDEN_HEADERS = frozenset({"authorization", "cookie"})

    def __init__(self, secrets: list[str], names: list[str]) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.secrets = secrets
        self.names = names
        # A name as a partner may write it back: with anything but letters and digits
        # between its characters (`吴、大伟`, `吴 大伟`), as free text refuses it too.
        self._named = [
            (re.compile(r"[\W_]{0,3}".join(map(re.escape, name))), mask_name(name))
            for name in names
            if name
        ]
        self.accounts: list[str] = []
        """Account numbers the read's records hold (the longest first)."""
        self._log: list[tuple[httpx.Request, int | None, bytearray, float]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        keep = bytearray()
        try:
            response = await self.inner.handle_async_request(request)
        except Exception:
            self._log.append((request, None, keep, _ms(started)))
            raise
        self._log.append((request, response.status_code, keep, _ms(started)))
        assert isinstance(response.stream, httpx.AsyncByteStream)  # noqa: S101 - async transport
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_Tee(response.stream, keep),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()

    def mask(self, text: str) -> str:
        text = _hide_credentials(text)
        for secret in self.secrets:
            text = text.replace(secret, "***")
        # A name or an ID number escaped (`"\u5f20\u4e09"`, as Python's and Jackson's JSON
        # write them, or `&#24352;`) is shown unescaped, so that it is masked like any other.
        plain = _unescaped(text)
        if plain != text and (any(name in plain for name in self.names) or hides_id_number(plain)):
            text = plain
        # So is one percent-encoded (a form body, a query): `xm=%E5%BC%A0%E4%B8%89`.
        if "%" in text:
            decoded = unquote_plus(text)
            if any(name in decoded for name in self.names) or hides_id_number(decoded):
                text = decoded
        for named, masked in self._named:
            text = named.sub(masked, text)
        for account in self.accounts:
            text = text.replace(account, mask_account(account))
        # Every ID-number run masked; one written apart leaves no digit of the text.
        text = redact_line(text)
        return text if len(text) <= wire.TEST_BODY_CHARS else text[: wire.TEST_BODY_CHARS] + "…"

    def exchanges(self) -> list[wire.Exchange]:
        return [
            wire.Exchange(
                method=request.method,
                url=self.mask(str(request.url)),
                request_headers={
                    key: "***" if key.lower() in self._HIDDEN_HEADERS else self.mask(value)
                    for key, value in request.headers.items()
                },
                request_body=self.mask(request.content.decode("utf-8", "replace")) or None,
                status=status,
                response_body=self.mask(bytes(kept).decode("utf-8", "replace")) or None,
                duration_ms=duration,
            )
            for request, status, kept, duration in self._log
        ]


_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _unescaped(text: str) -> str:
    """`text` with JSON's `\\uXXXX` escapes and XML's or HTML's character references read."""
    if "\\u" in text:
        text = _JSON_ESCAPE.sub(lambda escape: chr(int(escape.group(1), 16)), text)
        # A character outside the BMP comes as two escapes (a surrogate pair): join them.
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return html.unescape(text) if "&" in text else text


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def now() -> datetime:
    return datetime.now(UTC)


registration = ConnectorRegistration()
