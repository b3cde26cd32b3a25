"""`hedui connector test`: the conformance checks, run against a live partner double.

Any connector, built-in, plugin or declarative, is run against the in-process sandbox
agency that imitates its partner (or against a recorded exchange), with faults injected in
front of it: the answers it must read, the wire errors it must turn into a source `error`,
the time limit it must hold, the garbage it must refuse without raising anything else, the
members a batch must account for, the personal data its messages must leave out, the
cancellation it must survive, and the consent and purpose every request about a household
must carry. Each check says what to fix when it fails.

Unlike `connectors.testing` (a pytest suite with respx scenarios, for a connector's own test
module) this needs neither pytest nor respx: it runs in any hedui installation.
"""

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.base import (
    Connector,
    ConnectorConfig,
    ConnectorError,
    MalformedResponse,
    PartnerUnavailable,
    fetch_evidence,
)
from connectors.declarative import ConnectorSpec, build_connector
from connectors.declarative.spec import OAuth2ClientCredentials
from connectors.http import (
    CONSENT_HEADER,
    IMPERSONAL_EXTENSION,
    PURPOSE_HEADER,
    PartnerClient,
    is_testing,
    set_testing,
)
from connectors.registry import ConnectorRegistrationError, validate_connector
from schemas.evidence import (
    CONNECTOR_TEST_PURPOSE,
    Evidence,
    HouseholdQuery,
    MemberQuery,
    Record,
    RequestContext,
)
from schemas.identity import check_character, contains_id_number
from service.wording import plural

if TYPE_CHECKING:
    from service.config import Settings

PARTNER_ROOT = "http://partner.conformance"
"""Where the connector under test is pointed: every request goes to the partner double."""
AS_OF = date(2026, 11, 20)
REGION = "530102"
PEOPLE = 100
"""Synthetic people asked, five at a time, until some records come back."""
HOUSEHOLD = 5
TIME_LIMIT_S = 0.5
SLACK_S = 1.0
GARBAGE = (
    ("empty body", b""),
    ("binary", b"\x00\xff not json <nor xml"),
    ("truncated JSON", b'{"truncated": [1, 2'),
    ("HTML error page", "<html><body><h1>系统维护中</h1></body></html>".encode()),
)
NAME = "张三丰"
"""A name sent with every member; no message may carry it."""
CONTEXT = RequestContext(consent_id="conformance-check", purpose=CONNECTOR_TEST_PURPOSE)
"""Why the checks ask: sent with every request about a household (see `check_consent`)."""

Result = Literal["pass", "fail", "skip"]


@dataclass(frozen=True)
class Check:
    name: str
    result: Result
    detail: str = ""


# The partner double -------------------------------------------------------------------------


Fault = Callable[[httpx.Request], Awaitable[httpx.Response | None]]
"""Answers a request instead of the partner (None: let the partner answer)."""


class PartnerDouble(httpx.AsyncBaseTransport):
    """The partner (sandbox agency or recording) with an optional fault in front of it."""

    def __init__(self, partner: httpx.AsyncBaseTransport) -> None:
        self.partner = partner
        self.fault: Fault | None = None
        self.garbage: bytes | None = None
        self.sent = 0
        self.contexts: list[tuple[bool, str | None, str | None]] = []
        """Per request: whether it was about nobody (a token request), and the consent
        and purpose headers it carried."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        self.contexts.append(
            (
                bool(request.extensions.get(IMPERSONAL_EXTENSION)),
                request.headers.get(CONSENT_HEADER),
                request.headers.get(PURPOSE_HEADER),
            )
        )
        if self.fault is not None:
            answer = await self.fault(request)
            if answer is not None:
                return answer
        response = await self.partner.handle_async_request(request)
        if self.garbage is not None:
            await response.aread()
            return httpx.Response(
                response.status_code,
                content=self.garbage,
                headers={"Content-Type": response.headers.get("Content-Type", "text/plain")},
            )
        return response


def status(code: int, body: bytes) -> Fault:
    async def fault(request: httpx.Request) -> httpx.Response:
        return httpx.Response(code, content=body, headers={"Content-Type": "application/json"})

    return fault


async def hang(request: httpx.Request) -> httpx.Response:
    await asyncio.sleep(3600)
    raise AssertionError("unreachable")


async def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused (injected)", request=request)


class SandboxPartner(httpx.AsyncBaseTransport):
    """The in-process sandbox: `PARTNER_ROOT/{agency}/…` is the sandbox's `/{agency}/…`."""

    def __init__(self) -> None:
        from sandbox.app import create_sandbox_app

        self.app = create_sandbox_app(None, synthetic=True)
        self.inner = httpx.ASGITransport(app=self.app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.inner.handle_async_request(request)


class RecordedAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["GET", "POST"] = "POST"
    path: str = Field(description="Below the connector's base URL, query string left out")
    status: int = Field(default=200, ge=100, le=599)
    content_type: str = "application/json"
    body: Any = Field(description="The body: a string as sent, or JSON")


class Recording(BaseModel):
    """A recorded exchange with a partner: the household asked and the answers given."""

    model_config = ConfigDict(extra="forbid")

    region_code: str = REGION
    as_of: date = AS_OF
    members: list[str] = Field(min_length=1, max_length=100)
    exchanges: list[RecordedAnswer] = Field(min_length=1, max_length=1000)

    @classmethod
    def load(cls, path: Path) -> "Recording":
        return cls.model_validate_json(path.read_text(encoding="utf-8"))

    def household(self) -> HouseholdQuery:
        return HouseholdQuery(
            region_code=self.region_code,
            as_of=self.as_of,
            members=tuple(MemberQuery(id_number=member) for member in self.members),
            context=CONTEXT,
        )


class RecordedPartner(httpx.AsyncBaseTransport):
    """Answers each request with the recorded answer to the same method and path, in turn."""

    def __init__(self, recording: Recording, base_path: str) -> None:
        self.answers: dict[tuple[str, str], list[RecordedAnswer]] = {}
        for answer in recording.exchanges:
            key = (answer.method, base_path + "/" + answer.path.lstrip("/"))
            self.answers.setdefault(key, []).append(answer)
        self.turns: Counter[tuple[str, str]] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = (request.method, request.url.path.rstrip("/"))
        answers = self.answers.get(key)
        if not answers:
            return httpx.Response(404, json={"error": "nothing recorded for this request"})
        answer = answers[self.turns[key] % len(answers)]
        self.turns[key] += 1
        body = answer.body if isinstance(answer.body, str) else json.dumps(answer.body)
        return httpx.Response(
            answer.status, content=body.encode(), headers={"Content-Type": answer.content_type}
        )


# What is tested -----------------------------------------------------------------------------


@dataclass
class Subject:
    """A connector pointed at the partner double, and what it should yield."""

    connector: Connector
    config: ConnectorConfig
    kinds: tuple[str, ...]
    recording: Recording | None = None
    no_record_statuses: frozenset[int] = frozenset()
    """Statuses the spec's error rules read as "no record" (not an error to report)."""
    problems: list[str] = field(default_factory=list)
    """Why it cannot be run at all (an invalid spec, a broken connector)."""


def code_subject(connector: object, config: ConnectorConfig, agency: str) -> Subject:
    """A built-in or plugin connector, its config's base URL moved to the partner double."""
    try:
        instance = validate_connector(connector)
    except ConnectorRegistrationError as error:
        return Subject(connector, config, (), problems=[str(error)])  # type: ignore[arg-type]
    moved = config.model_copy(update={"base_url": f"{PARTNER_ROOT}/{agency}"})
    kinds = getattr(instance, "kinds", ())
    return Subject(instance, moved, tuple(kinds) if isinstance(kinds, tuple | list) else ())


def declarative_subject(spec: ConnectorSpec, version: str, agency: str) -> Subject:
    """A declarative connector whose base URL (and token URL) lead to the partner double."""
    update: dict[str, Any] = {"base_url": f"{PARTNER_ROOT}/{agency}"}
    if isinstance(spec.auth, OAuth2ClientCredentials):
        path = httpx.URL(spec.auth.token_url).path
        tail = path.split("/sandbox/", 1)[1] if "/sandbox/" in path else path.lstrip("/")
        update["auth"] = spec.auth.model_copy(update={"token_url": f"{PARTNER_ROOT}/{tail}"})
    connector = build_connector(spec.model_copy(update=update), version)
    no_record = frozenset(
        code
        for rule in spec.errors
        if rule.action == "not_found" and rule.when is None
        for code in rule.status or ()
    )
    return Subject(
        connector, connector.default_config(), (spec.response.kind,), no_record_statuses=no_record
    )


def sandbox_agency(base_url: str, name: str) -> str:
    """The sandbox agency a base URL names (`…/sandbox/tax` → tax), else the connector's name."""
    path = httpx.URL(base_url).path.rstrip("/")
    if "/sandbox/" in path + "/":
        return path.rsplit("/", 1)[-1] or name
    return name


# The checks ---------------------------------------------------------------------------------


def synthetic_people(count: int, seed: int = 0) -> list[str]:
    """Valid, never-seeded ID numbers: the sandbox gives each deterministic records."""
    people = []
    for index in range(count):
        first17 = f"{REGION}{1960 + (seed + index) % 40}0{1 + index % 9}1{index % 10}{index:03d}"
        people.append(first17 + check_character(first17))
    return people


def household(id_numbers: Sequence[str], region_code: str = REGION) -> HouseholdQuery:
    return HouseholdQuery(
        region_code=region_code,
        as_of=AS_OF,
        members=tuple(MemberQuery(id_number=number, name=NAME) for number in id_numbers),
        context=CONTEXT,
    )


@dataclass
class Run:
    evidence: Evidence | None = None
    error: ConnectorError | None = None
    crash: BaseException | None = None
    elapsed_s: float = 0.0

    def describe(self) -> str:
        if self.crash is not None:
            return f"raised {type(self.crash).__name__} ({self.crash})"
        if self.error is not None:
            return f"{type(self.error).__name__}: {self.error}"
        return "no error"


class Conformance:
    def __init__(self, subject: Subject, partner: httpx.AsyncBaseTransport) -> None:
        self.subject = subject
        self.double = PartnerDouble(partner)
        self.messages: list[str] = []

    async def fetch(self, asked: HouseholdQuery, **config: Any) -> Run:
        settings = self.subject.config.model_copy(update=config) if config else None
        started = time.perf_counter()
        run = Run()
        try:
            # As the service hands it: a client that sends the household's context.
            async with PartnerClient(transport=self.double, context=asked.context) as client:
                run.evidence = await fetch_evidence(
                    self.subject.connector, asked, settings or self.subject.config, client
                )
        except ConnectorError as error:
            run.error = error
            self.messages.append(str(error))
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except BaseException as error:  # the finding itself: anything else escaped
            run.crash = error
        run.elapsed_s = time.perf_counter() - started
        return run

    def households(self) -> list[HouseholdQuery]:
        recording = self.subject.recording
        if recording is not None:
            return [recording.household()]
        people = synthetic_people(PEOPLE)
        return [household(people[i : i + HOUSEHOLD]) for i in range(0, PEOPLE, HOUSEHOLD)]

    async def run(self) -> list[Check]:
        if self.subject.problems:
            return [Check("connector loads", "fail", "; ".join(self.subject.problems))]
        previous = is_testing()
        set_testing(True)  # retries without their waits: attempt caps still hold
        try:
            checks = [Check("connector loads", "pass", self._identity())]
            checks.append(await self.check_health())
            read, asked = await self.check_read()
            checks.append(read)
            checks.append(await self.check_batches(asked))
            checks.append(await self.check_wire_errors(asked))
            checks.append(await self.check_garbage(asked))
            checks.append(await self.check_time_limit(asked))
            checks.append(await self.check_cancellation(asked))
            checks.append(self.check_privacy(asked))
            checks.append(await self.check_consent(asked))
        finally:
            set_testing(previous)
            self.double.fault = None
            self.double.garbage = None
        return checks

    def _identity(self) -> str:
        connector = self.subject.connector
        return f"{connector.name} {connector.version}"

    async def check_health(self) -> Check:
        name = "check() against a healthy partner"
        try:
            async with httpx.AsyncClient(transport=self.double) as client:
                result = await self.subject.connector.check(self.subject.config, client)
        except Exception as error:
            return Check(name, "fail", f"check() raised {type(error).__name__}: it must return")
        if not result.ok:
            return Check(
                name,
                "fail",
                f"not ok: {result.detail}. Fix the health path and what a healthy answer "
                "looks like (a declarative spec: health.path, health.expect)",
            )
        return Check(name, "pass", f"ok in {result.latency_ms or 0:.0f} ms")

    async def check_read(self) -> tuple[Check, HouseholdQuery]:
        name = "reads the partner's answers"
        found: list[Record] = []
        households = self.households()
        for asked in households:
            run = await self.fetch(asked)
            if run.crash is not None or run.error is not None:
                return (
                    Check(
                        name,
                        "fail",
                        f"fetching a household of {len(asked.members)}: {run.describe()}. "
                        + _hint(run.error),
                    ),
                    asked,
                )
            assert run.evidence is not None  # noqa: S101 - no error means evidence
            found = run.evidence.records
            wrong = sorted({r.kind for r in found} - set(self.subject.kinds))
            if self.subject.kinds and wrong:
                return (
                    Check(
                        name,
                        "fail",
                        f"records of kind {', '.join(wrong)}, expected "
                        f"{', '.join(self.subject.kinds)}",
                    ),
                    asked,
                )
            if found:
                members = len({record.id_number for record in found})
                return (
                    Check(
                        name,
                        "pass",
                        f"{len(found)} record{'s' if len(found) != 1 else ''} for {members} of "
                        f"{len(asked.members)} members asked",
                    ),
                    asked,
                )
        return (
            Check(
                name,
                "fail",
                f"no records for any of {sum(len(h.members) for h in households)} people "
                "asked, all answered: does the record selection find the partner's list "
                "(a declarative spec: response.records, response.not_found)?",
            ),
            households[0],
        )

    async def check_batches(self, asked: HouseholdQuery) -> Check:
        name = "a household's answer equals its members' answers"
        if self.subject.recording is not None or len(asked.members) < 2:
            return Check(name, "skip", "needs the sandbox and two members or more")
        whole = await self.fetch(asked)
        if whole.evidence is None:
            return Check(name, "fail", f"the whole household: {whole.describe()}")
        alone: list[Record] = []
        for member in asked.members:
            single = await self.fetch(asked.model_copy(update={"members": (member,)}))
            if single.evidence is None:
                return Check(name, "fail", f"one member alone: {single.describe()}")
            alone += single.evidence.records
        if Counter(_key(r) for r in whole.evidence.records) != Counter(_key(r) for r in alone):
            return Check(
                name,
                "fail",
                "asking the household at once gives other records than asking each member: "
                "are answers matched back to the right member (a declarative spec: mode.member, "
                "response.answers)?",
            )
        return Check(name, "pass", f"{len(asked.members)} members, {len(alone)} records")

    async def check_wire_errors(self, asked: HouseholdQuery) -> Check:
        name = "wire errors become a source error"
        id_number = asked.members[0].id_number
        body = json.dumps({"code": 5000, "message": f"{id_number} {NAME} 余额 3000.00"}).encode()
        cases: list[tuple[str, int | None, Fault]] = [
            ("HTTP 503", 503, status(503, body)),
            ("HTTP 500", 500, status(500, body)),
            ("connection refused", None, refuse),
            ("HTTP 400", 400, status(400, body)),
        ]
        for label, code, fault in cases:
            if code in self.subject.no_record_statuses:
                continue  # the spec reads this status as "no record", on purpose
            self.double.fault = fault
            try:
                run = await self.fetch(asked, max_attempts=2)
            finally:
                self.double.fault = None
            if run.error is None:
                return Check(
                    name,
                    "fail",
                    f"{label}: {run.describe()}; it must raise a ConnectorError "
                    "(a declarative spec: check its error rules)",
                )
        return Check(name, "pass", "503, 500, a refused connection and 400 are source errors")

    async def check_garbage(self, asked: HouseholdQuery) -> Check:
        name = "malformed answers are refused, never raised"
        for label, body in GARBAGE:
            self.double.garbage = body
            try:
                run = await self.fetch(asked)
            finally:
                self.double.garbage = None
            if run.crash is not None:
                return Check(
                    name,
                    "fail",
                    f"{label}: {run.describe()}; a body that does not parse must be a "
                    "MalformedResponse",
                )
            if run.error is None:
                return Check(
                    name,
                    "fail",
                    f"{label}: read as a valid answer; refuse a body without the documented "
                    "fields (a declarative spec: response.error or an error rule)",
                )
        return Check(name, "pass", f"{len(GARBAGE)} kinds of garbage refused")

    async def check_time_limit(self, asked: HouseholdQuery) -> Check:
        name = "the time limit holds"
        self.double.fault = hang
        try:
            run = await self.fetch(asked, timeout_s=TIME_LIMIT_S)
        finally:
            self.double.fault = None
        if not isinstance(run.error, PartnerUnavailable) or not isinstance(run.error, TimeoutError):
            return Check(
                name,
                "fail",
                f"a partner that never answers: {run.describe()}; expected a PartnerTimeout "
                "(bound the whole fetch with connectors.http.budget)",
            )
        if run.elapsed_s > TIME_LIMIT_S + SLACK_S:
            return Check(name, "fail", f"took {run.elapsed_s:.2f} s with a {TIME_LIMIT_S} s budget")
        return Check(name, "pass", f"gave up after {run.elapsed_s:.2f} s ({TIME_LIMIT_S} s budget)")

    async def check_cancellation(self, asked: HouseholdQuery) -> Check:
        name = "cancellation is safe"
        before = asyncio.all_tasks()
        self.double.fault = hang
        task = asyncio.create_task(self.fetch(asked))
        await asyncio.sleep(0.05)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        else:
            self.double.fault = None
            return Check(name, "fail", "a cancelled fetch returned instead of being cancelled")
        finally:
            self.double.fault = None
        await asyncio.sleep(0)
        left = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()]
        if any(not t.done() for t in left):
            return Check(name, "fail", f"{len(left)} tasks outlived a cancelled fetch")
        again = await self.fetch(asked)
        if again.evidence is None:
            return Check(name, "fail", f"the next fetch after a cancel: {again.describe()}")
        return Check(name, "pass", "cancelled cleanly; the next fetch succeeds")

    def check_privacy(self, asked: HouseholdQuery) -> Check:
        name = "no personal data in messages"
        leaks = [
            message
            for message in self.messages
            if contains_id_number(message)
            or NAME in message
            or "3000.00" in message
            or any(member.id_number in message for member in asked.members)
        ]
        if leaks:
            return Check(
                name,
                "fail",
                f"{len(leaks)} error messages quote the partner's text; quote codes only",
            )
        return Check(name, "pass", f"{len(self.messages)} error messages checked")

    async def check_consent(self, asked: HouseholdQuery) -> Check:
        name = "every request carries the consent and purpose"
        context = RequestContext(consent_id="conformance-consent", purpose=asked.context.purpose)
        start = len(self.double.contexts)
        run = await self.fetch(asked.model_copy(update={"context": context}))
        if run.crash is not None:
            return Check(name, "fail", f"fetching the household: {run.describe()}")
        seen = self.double.contexts[start:]
        about = [(consent, purpose) for impersonal, consent, purpose in seen if not impersonal]
        if not about:
            return Check(name, "fail", "the fetch sent no request about the household")
        wrong = sum(pair != (context.consent_id, context.purpose) for pair in about)
        if wrong:
            return Check(
                name,
                "fail",
                f"{wrong} of {plural(len(about), 'request')} without the household's "
                f"{CONSENT_HEADER} and {PURPOSE_HEADER}: send every request through the client "
                "fetch() is handed (never a client of your own), and mark only requests about "
                "nobody (a token request) with about_people=False",
            )
        told = sum(
            1 for impersonal, consent, purpose in seen if impersonal and (consent or purpose)
        )
        if told:
            carried = f"{plural(told, 'request')} about nobody (token requests) carried them"
            return Check(name, "fail", carried)
        return Check(name, "pass", f"{plural(len(about), 'request')}, each with both headers")


def _key(record: Record) -> str:
    return record.model_dump_json()


def _hint(error: ConnectorError | None) -> str:
    text = str(error or "")
    if "member" in text:
        return (
            "Every member asked must be answered once (a declarative spec: mode.member, "
            "mode.lists, response.answers)"
        )
    if isinstance(error, MalformedResponse):
        return "The answer does not map to records: check the field expressions and units"
    return "Check the request the partner expects (path, body, auth)"


async def run_checks(subject: Subject, partner: httpx.AsyncBaseTransport) -> list[Check]:
    return await Conformance(subject, partner).run()


class TargetNotFound(LookupError):
    """No connector of that name: not built in, not installed, not registered."""


async def load_subject(
    name: str,
    settings: "Settings",
    *,
    spec_file: Path | None = None,
    recording_file: Path | None = None,
    agency: str | None = None,
) -> tuple[Subject, httpx.AsyncBaseTransport]:
    """The connector `name` (a spec file's, a code connector, or the registered declarative
    one in force, else its latest version) and the partner double it is run against.

    Raises `SpecInvalid` for a spec file that does not validate, `TargetNotFound` when
    nothing is called `name`, `ValueError` for unreadable files.
    """
    from connectors.declarative import validate_spec
    from connectors.registry import load_connectors
    from service.connector.wiring import build_configs

    recording = _read_recording(recording_file) if recording_file is not None else None
    subject: Subject
    if spec_file is not None:
        spec = validate_spec(_read_json(spec_file), partner_hosts=settings.partner_host_list())
        if spec.name != name:
            raise ValueError(f"{spec_file} describes {spec.name!r}, not {name!r}")
        where = agency or sandbox_agency(spec.base_url, name)
        subject = declarative_subject(spec, "file", where)
    else:
        registry = load_connectors()
        if registry.is_code(name):
            config = build_configs(registry, settings)[name]
            where = agency or sandbox_agency(config.base_url, name)
            subject = code_subject(registry.get(name), config, where)
        else:
            spec, version = await _registered_spec(name, settings)
            where = agency or sandbox_agency(spec.base_url, name)
            subject = declarative_subject(spec, version, where)
    subject.recording = recording
    if recording is None:
        from sandbox.app import SOURCES

        if where not in SOURCES:
            # Run anyway, every check would fail on the sandbox's 404s with advice about
            # the connector, which is not what is wrong.
            raise ValueError(
                f"no sandbox agency is named {where!r} (taken from a base URL under "
                "/sandbox/, else the connector's name, or --agency): name one of "
                f"{', '.join(SOURCES)} with --agency, "
                "or check the connector against a recorded exchange with its own partner "
                "(--recording FILE)"
            )
    partner: httpx.AsyncBaseTransport = (
        RecordedPartner(recording, f"/{where}") if recording is not None else SandboxPartner()
    )
    return subject, partner


async def _registered_spec(name: str, settings: "Settings") -> tuple[ConnectorSpec, str]:
    from service import db
    from service.connector.registration_repository import RegistrationRepository

    engine = db.create_engine(settings.database_url)
    try:
        try:
            await db.require_current_schema(engine)
        except db.SchemaNotCurrent as error:
            raise TargetNotFound(f"nor can registered ones be read: {error}") from None
        async with db.create_session_factory(engine)() as session:
            repository = RegistrationRepository.from_session(session)
            row = await repository.get(name)
            if row is None:
                raise TargetNotFound("nor registered in HEDUI_DATABASE_URL")
            number = row.active_version or row.latest_version
            version = await repository.version(name, number)
            if version is None:  # pragma: no cover - versions are never deleted
                raise TargetNotFound("nor registered in HEDUI_DATABASE_URL")
            return ConnectorSpec.model_validate(version.spec), str(number)
    finally:
        await engine.dispose()


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as error:
        raise ValueError(f"{path}: not a readable JSON file ({type(error).__name__})") from None


def _read_recording(path: Path) -> Recording:
    try:
        return Recording.model_validate(_read_json(path))
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        where = "/".join(str(part) for part in first["loc"])
        raise ValueError(f"{path}: not a recording ({where}: {first['msg']})") from None


__all__ = [
    "Check",
    "RecordedPartner",
    "Recording",
    "SandboxPartner",
    "Subject",
    "code_subject",
    "declarative_subject",
    "run_checks",
    "sandbox_agency",
    "synthetic_people",
]
