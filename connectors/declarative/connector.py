"""A connector built from a declarative spec: the same `Connector` protocol as the built-ins.

Its requests go through `connectors.http` (retries, time budget, response byte limits) and
its answers through `fetch_evidence` (member accounting, record limits), exactly as a
hand-written connector's. Every jmespath expression is compiled once, when the connector is
built; fetching runs no code from the spec, only those expressions, and those within a
budget of steps scaled to the answer they read (`connectors.declarative.expression`).
"""

import asyncio
import base64
import re
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any, ClassVar
from urllib.parse import quote
from xml.etree.ElementTree import Element

import httpx
from jmespath.exceptions import JMESPathError
from pydantic import ValidationError

from connectors.base import (
    CheckResult,
    ConnectorConfig,
    ConnectorError,
    MalformedResponse,
    PartnerRejected,
    PartnerReportedError,
    PartnerUnavailable,
    ResponseTooLarge,
)
from connectors.declarative.expression import AnswerInterpreter, Expression, OverBudget
from connectors.declarative.spec import (
    MONEY_FIELDS,
    RECORD_KINDS,
    ApiKeyAuth,
    BasicAuth,
    Batch,
    BearerAuth,
    ConnectorSpec,
    CursorPagination,
    FormBody,
    JsonBody,
    OAuth2ClientCredentials,
    OffsetPagination,
    PagePagination,
    XmlBody,
    is_unavailable,
    uncounted_pages,
)
from connectors.declarative.template import compile_json, fill, render_xml_members, xml_escape
from connectors.http import budget, map_concurrently, request
from connectors.wire import AMOUNT_STRING, describe, load_json, parse_xml
from schemas.evidence import Evidence, HouseholdQuery, MemberQuery, Record
from schemas.identity import hides_id_number

_FEN = Decimal(100)
_LARGEST_DIGITS = 15
# An amount sent as a string: ASCII digits, a sign and a decimal point at most. Decimal would
# also read "1e3", "1_000", " 12 " and other scripts' digits ("１２"), none of which a
# partner's schema means by an amount.

TOKEN_MARGIN_S = 30.0
"""A token is fetched anew this long before it expires (or at half its life, if shorter)."""
DEFAULT_TOKEN_LIFE_S = 300.0
"""How long a token without `expires_in` is kept."""


class SecretMissing(PartnerRejected):
    """A secret the spec refers to is not set in this process."""


class _TokenRefused(PartnerRejected):
    """The partner answered 401 to a request carrying our access token."""


class _Nothing:
    """An answer an error rule reads as "the partner holds nothing for these members"."""


NOTHING = _Nothing()


XML_MAX_DEPTH = 64
"""How deep an answer's elements may nest: far beyond any partner's format, far short of
Python's recursion limit."""


def xml_data(element: Element, depth: int = 0) -> dict[str, Any]:
    """An XML element as jmespath sees it: `@attr` values, `#text`, child tags as lists."""
    if depth > XML_MAX_DEPTH:
        raise MalformedResponse(f"XML nested deeper than {XML_MAX_DEPTH} elements")
    data: dict[str, Any] = {f"@{name}": value for name, value in element.attrib.items()}
    text = (element.text or "").strip()
    if text:
        data["#text"] = text
    for child in element:
        data.setdefault(child.tag, []).append(xml_data(child, depth + 1))
    return data


OFF_LOOP_BYTES = 64 * 1024
"""Answers at least this large have the spec's expressions evaluated in a thread: their
budget of steps (`STEPS_PER_BYTE` per byte) may take seconds at its end, and the event
loop must go on serving everyone else."""


@dataclass(frozen=True, slots=True)
class _Answer:
    """A partner's answer as jmespath sees it, with the interpreter every expression
    evaluated on it shares: its budget of steps is scaled to the answer's size."""

    data: object
    interpreter: AnswerInterpreter
    size: int = 0
    """The answer's bytes."""

    @classmethod
    def of(cls, data: object, size: int) -> "_Answer":
        return cls(data, AnswerInterpreter(size), size)


class _Expr:
    """One of the spec's expressions, compiled once, and where it is in the spec: an answer
    it cannot be evaluated on (the answer's budget spent, a function given a value of the
    wrong type) is a malformed answer that names it."""

    __slots__ = ("expression", "where")

    def __init__(self, expression: str, where: str) -> None:
        self.expression = Expression(expression)
        self.where = where

    def search(self, value: object, answer: _Answer) -> Any:
        try:
            return self.expression.search(value, answer.interpreter)
        except OverBudget:
            raise MalformedResponse(
                f"{self.where}: evaluating the spec's expressions on this answer took more "
                f"than {answer.interpreter.budget} steps"
            ) from None
        except (JMESPathError, RecursionError, ArithmeticError, ValueError, TypeError) as error:
            # A function given what it cannot take (`ceil` of infinity, of NaN; a number
            # too large to convert), or jmespath's own type errors. Never the error's
            # text: it carries the value it was given.
            raise MalformedResponse(
                f"{self.where} cannot be evaluated on this answer ({type(error).__name__})"
            ) from None


class _Compiled:
    """The spec's expressions, compiled once."""

    def __init__(self, spec: ConnectorSpec) -> None:
        response = spec.response
        self.records = _Expr(response.records, "response.records")
        self.answers = _Expr(response.answers, "response.answers") if response.answers else None
        self.not_found = (
            _Expr(response.not_found, "response.not_found") if response.not_found else None
        )
        self.error = _Expr(response.error, "response.error") if response.error else None
        self.member = _Expr(spec.mode.member, "mode.member") if spec.mode.member else None
        self.fields: list[tuple[str, _Expr | None, object, str | None]] = [
            (
                name,
                (
                    _Expr(mapping.expr, f"response.fields.{name}")
                    if mapping.expr is not None
                    else None
                ),
                mapping.const,
                (mapping.unit or "yuan") if name in MONEY_FIELDS else None,
            )
            for name, mapping in response.fields.items()
        ]
        pagination = spec.pagination
        self.rows = (
            _Expr(pagination.rows, "pagination.rows")
            if isinstance(pagination, PagePagination | OffsetPagination) and pagination.rows
            else None
        )
        # A spec stored before `pagination.rows` was required where records filter: its
        # last page cannot be told, so it answers nothing rather than stop early.
        self.uncounted_pages = uncounted_pages(spec)
        self.total_pages = (
            _Expr(pagination.total_pages, "pagination.total_pages")
            if isinstance(pagination, PagePagination) and pagination.total_pages
            else None
        )
        self.next_cursor = (
            _Expr(pagination.next, "pagination.next")
            if isinstance(pagination, CursorPagination)
            else None
        )
        self.healthy = _Expr(spec.health.expect, "health.expect") if spec.health.expect else None
        body = spec.request.body
        self.json_body = compile_json(body.template) if isinstance(body, JsonBody) else None
        self.record_model = RECORD_KINDS[response.kind]
        self.rules = [
            (
                index,
                frozenset(rule.status) if rule.status is not None else None,
                _Expr(rule.when, f"errors[{index}].when") if rule.when is not None else None,
                rule.action,
            )
            for index, rule in enumerate(spec.errors)
        ]
        self.error_statuses = frozenset(
            code for _, codes, _, _ in self.rules if codes is not None for code in codes
        )
        self.body_rules = any(
            when is not None and codes is None for _, codes, when, _ in self.rules
        )

    def match(self, status: int, answer: _Answer | None) -> tuple[int, str] | None:
        """The first error rule that matches the answer: (its index, its action)."""
        for index, codes, when, action in self.rules:
            if codes is not None and status not in codes:
                continue
            if when is not None and (answer is None or not when.search(answer.data, answer)):
                continue
            return index, action
        return None


CONFIG_HAS_RATE = "rate_per_s" in ConnectorConfig.model_fields
"""Whether connector configs carry `rate_per_s`, the per-partner rate every connector's
calls are held to where they are made; else this connector spaces its own requests."""


class _RateGate:
    """Spaces one process's requests to a partner at most `rate_per_s` a second."""

    def __init__(self, rate_per_s: float) -> None:
        self.interval = 1.0 / rate_per_s
        self.next_slot = 0.0

    async def wait(self) -> None:
        now = time.monotonic()
        slot = max(now, self.next_slot)
        self.next_slot = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


class _Tokens:
    """The access token of an OAuth 2.0 client, shared by the fetches of one process."""

    def __init__(self) -> None:
        self.token: str | None = None
        self.expires_at = 0.0
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def lock(self) -> asyncio.Lock:
        return self._locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())

    def valid(self) -> str | None:
        return self.token if self.token is not None and time.monotonic() < self.expires_at else None

    def keep(self, token: str, life_s: float) -> None:
        self.token = token
        self.expires_at = time.monotonic() + max(min(life_s - TOKEN_MARGIN_S, life_s / 2), 0.0)

    def drop(self, token: str) -> None:
        if self.token == token:
            self.token = None


def _parse_token(body: bytes) -> tuple[str, float]:
    data = load_json(body)
    token = data.get("access_token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token.strip() or len(token) > 4096:
        raise MalformedResponse("token endpoint answer has no access_token")
    if not _TOKEN_TEXT.fullmatch(token.strip()):
        # It goes into an Authorization header: printable ASCII without spaces only.
        raise MalformedResponse("token endpoint answer's access_token is not header text")
    kind = data.get("token_type", "bearer") if isinstance(data, dict) else "bearer"
    if not isinstance(kind, str) or kind.lower() != "bearer":
        raise MalformedResponse("token endpoint answer is not a bearer token")
    life = data.get("expires_in", DEFAULT_TOKEN_LIFE_S) if isinstance(data, dict) else None
    if isinstance(life, bool) or not isinstance(life, int | float | Decimal) or life <= 0:
        raise MalformedResponse("token endpoint answer has no valid expires_in")
    # A lifetime of a year or more is kept a year (a 400-digit one is no float at all).
    return token.strip(), float(min(life, MAX_TOKEN_LIFE_S))


MAX_TOKEN_LIFE_S = 365 * 24 * 3600
_TOKEN_TEXT = re.compile(r"[!-~]+")


class DeclarativeConnector:
    """Base of every connector built by `build_connector`; one subclass per spec version."""

    name: ClassVar[str]
    title: ClassVar[str]
    version: ClassVar[str]
    Config: ClassVar[type[ConnectorConfig]] = ConnectorConfig
    spec: ClassVar[ConnectorSpec]
    _compiled: ClassVar[_Compiled]
    _gate: ClassVar[_RateGate | None]
    _tokens: ClassVar[_Tokens]

    def default_config(self) -> ConnectorConfig:
        """The config the spec itself describes (base URL and limits)."""
        limits = self.spec.limits
        shared = {"rate_per_s": limits.rate_per_s} if CONFIG_HAS_RATE and limits.rate_per_s else {}
        return ConnectorConfig(
            base_url=self.spec.base_url,
            timeout_s=limits.timeout_s,
            request_timeout_s=limits.request_timeout_s,
            max_attempts=limits.max_attempts,
            max_concurrency=limits.max_concurrency,
            **shared,
        )

    # check --------------------------------------------------------------------------------

    async def check(self, config: ConnectorConfig, client: httpx.AsyncClient) -> CheckResult:
        started = time.perf_counter()
        values = {"region_code": "", "as_of": "", "as_of_year": ""}
        try:
            async with budget(config):
                reply = await self._call(
                    client,
                    config,
                    "GET",
                    fill(self.spec.health.path, values),
                    {},
                    {},
                    {},
                    about_people=False,
                    decode=self._decode_health,
                )
            answer = reply if isinstance(reply, _Answer) else _Answer.of(None, 0)
            healthy = self._compiled.healthy
            if healthy is not None and not healthy.search(answer.data, answer):
                raise MalformedResponse("health answer does not match health.expect")
        except ConnectorError as error:
            return CheckResult(ok=False, detail=str(error), latency_ms=_ms_since(started))
        return CheckResult(ok=True, latency_ms=_ms_since(started))

    # fetch --------------------------------------------------------------------------------

    async def fetch(
        self, household: HouseholdQuery, config: ConnectorConfig, client: httpx.AsyncClient
    ) -> Evidence:
        if not household.members:
            return Evidence(answered=[])
        mode = self.spec.mode
        groups: list[Sequence[MemberQuery]]
        if isinstance(mode, Batch):
            members = household.members
            groups = [
                members[start : start + mode.max_items]
                for start in range(0, len(members), mode.max_items)
            ]
        else:
            groups = [(member,) for member in household.members]
        async with budget(config):
            answers = await map_concurrently(partial(self._ask, client, config, household), groups)
        return Evidence(
            records=[record for answer in answers for record in answer.records],
            answered=[id_number for answer in answers for id_number in answer.answered],
        )

    async def _ask(
        self,
        client: httpx.AsyncClient,
        config: ConnectorConfig,
        household: HouseholdQuery,
        members: Sequence[MemberQuery],
    ) -> Evidence:
        """Ask about one group of members, page after page; say whom the answers cover."""
        values = {
            "region_code": household.region_code,
            "as_of": household.as_of.isoformat(),
            "as_of_year": str(household.as_of.year),
        }
        member_values = [
            {"id_number": member.id_number, "name": member.name or ""} for member in members
        ]
        asked = {member.id_number.upper(): member.id_number for member in members}
        lists_everyone = (
            isinstance(self.spec.mode, Batch) and self.spec.mode.lists == "every_member"
        )
        records: list[Record] = []
        answered: list[str] = []
        pages = _Pages(self.spec, self._compiled)
        while (query := pages.next_query()) is not None:
            reply = await self._send(client, config, values, member_values, query)
            if not isinstance(reply, _Answer):
                # The error rules read the answer as "nothing for these members".
                if lists_everyone:
                    answered.extend(asked.values())
                break
            read = partial(
                self._read_page,
                reply,
                members,
                asked,
                lists_everyone,
                len(records),
                config.max_records,
                pages,
            )
            # A large answer's expressions run in a thread: within their budget, they may
            # take a second or more, and the event loop serves everyone else meanwhile.
            page, listed = await asyncio.to_thread(read) if reply.size > OFF_LOOP_BYTES else read()
            records += page
            answered += listed
        if not lists_everyone:
            # One answer per member asked: per member, or a format that lists only hits.
            answered.extend(asked.values())
        return Evidence(records=records, answered=answered)

    def _read_page(
        self,
        answer: "_Answer",
        members: Sequence[MemberQuery],
        asked: dict[str, str],
        lists_everyone: bool,
        held: int,
        max_records: int,
        pages: "_Pages",
    ) -> tuple[list[Record], list[str]]:
        """One page's records and the members it answers for; moves `pages` on. Only
        evaluates the spec's expressions on `answer` (no I/O): it may run in a thread."""
        compiled = self._compiled
        if compiled.error is not None and compiled.error.search(answer.data, answer):
            raise PartnerReportedError("partner reported an error in its answer (response.error)")
        nothing = compiled.not_found is not None and bool(
            compiled.not_found.search(answer.data, answer)
        )
        items: list[object] = []
        if not nothing:
            items = _list(compiled.records.search(answer.data, answer), "response.records")
        elif compiled.records.search(answer.data, answer):
            # "Nothing found" that lists records contradicts itself: not "no record".
            raise MalformedResponse("response.not_found matched an answer that lists records")
        if held + len(items) > max_records:
            # Checked as pages come, not once they are all in: a partner that pages on and
            # on must not fill the process's memory first.
            raise ResponseTooLarge.over_records(max_records)
        records = [self._record(item, index, members, answer) for index, item in enumerate(items)]
        answered: list[str] = []
        if lists_everyone and nothing:
            answered = list(asked.values())
        elif lists_everyone and compiled.answers is not None:
            listed = _list(compiled.answers.search(answer.data, answer), "response.answers")
            answered = [self._member_of(item, answer) for item in listed]
        pages.advance(answer, len(items))
        return records, answered

    async def _send(
        self,
        client: httpx.AsyncClient,
        config: ConnectorConfig,
        values: dict[str, str],
        members: list[dict[str, str]],
        paging: dict[str, str],
    ) -> _Answer | _Nothing:
        spec = self.spec.request
        query = {key: fill(value, values) for key, value in spec.query.items()} | paging
        headers = {key: fill(value, values) for key, value in spec.headers.items()}
        if isinstance(spec.body, XmlBody):
            headers.setdefault("Content-Type", "application/xml")
        path = fill(spec.path, values)
        return await self._call(
            client, config, spec.method, path, headers, query, self._body(values, members)
        )

    async def _call(
        self,
        client: httpx.AsyncClient,
        config: ConnectorConfig,
        method: str,
        path: str,
        headers: dict[str, str],
        query: dict[str, str],
        body: dict[str, Any],
        *,
        about_people: bool = True,
        decode: Callable[[bytes], "_Answer | _Nothing"] | None = None,
    ) -> _Answer | _Nothing:
        """One request with the spec's auth, pace and error rules; a refused access token
        is fetched anew once. `about_people=False`: a health check, without consent headers.
        `decode` reads a 2xx body (default: as `response.format`, with the error rules)."""
        pace = self._gate.wait if self._gate is not None else None
        decode = decode or self._decode
        if not isinstance(self.spec.auth, OAuth2ClientCredentials):
            kwargs = self._auth(headers, query) | body
            return await request(
                client,
                config,
                method,
                path,
                decode,
                on_error_status=self._on_error_status,
                pace=pace,
                about_people=about_people,
                **kwargs,
            )
        for fresh in (False, True):
            token = await self._token(client, config, fresh=fresh)
            kwargs = self._auth({**headers, "Authorization": f"Bearer {token}"}, query) | body
            try:
                return await request(
                    client,
                    config,
                    method,
                    path,
                    decode,
                    on_error_status=self._on_error_status,
                    pace=pace,
                    about_people=about_people,
                    **kwargs,
                )
            except _TokenRefused:
                self._tokens.drop(token)
                if fresh:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _token(
        self, client: httpx.AsyncClient, config: ConnectorConfig, *, fresh: bool
    ) -> str:
        """The cached access token, or a new one from the token endpoint."""
        if not fresh and (token := self._tokens.valid()) is not None:
            return token
        async with self._tokens.lock():
            if not fresh and (token := self._tokens.valid()) is not None:
                return token  # another fetch got one while this one waited
            auth = self.spec.auth
            assert isinstance(auth, OAuth2ClientCredentials)  # noqa: S101 - only caller
            client_id, secret = auth.client_id.reveal(), auth.client_secret.reveal()
            if client_id is None or secret is None:
                raise SecretMissing("a secret the connector's spec refers to is not set")
            pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
            form = {"grant_type": "client_credentials"}
            if auth.scope:
                form["scope"] = auth.scope
            try:
                issued, life = await request(
                    client,
                    config,
                    "POST",
                    "",
                    _parse_token,
                    url=auth.token_url,
                    pace=self._gate.wait if self._gate is not None else None,
                    # A token is about nobody, and serves the fetches of many households:
                    # the token endpoint is told no household's consent or purpose.
                    about_people=False,
                    data=form,
                    headers={
                        "Authorization": f"Basic {base64.b64encode(pair.encode()).decode()}",
                        "Accept": "application/json",
                    },
                )
            except PartnerRejected as error:
                raise PartnerRejected(f"token endpoint refused the client ({error})") from None
            self._tokens.keep(issued, life)
            return issued

    def _on_error_status(self, status: int, body: bytes) -> _Nothing | None:
        """A non-2xx answer read by the error rules; None: the usual mapping."""
        compiled = self._compiled
        answer: _Answer | None = None
        if status in compiled.error_statuses or compiled.body_rules:
            try:
                answer = _Answer.of(self._parse(body), len(body))
            except ConnectorError:
                answer = None
        matched = compiled.match(status, answer)
        # A spec stored before not_found was refused on such statuses (or a body-only rule
        # matching an outage's body) cannot make an unavailable partner's answer "no record".
        if matched is not None and not (matched[1] == "not_found" and is_unavailable(status)):
            return _act(*matched)
        if status == 401 and isinstance(self.spec.auth, OAuth2ClientCredentials):
            raise _TokenRefused("HTTP 401 (access token refused)")
        return None

    def _member_of(self, item: object, answer: _Answer) -> str:
        if self._compiled.member is None:
            raise MalformedResponse("no member expression")  # pragma: no cover - by validation
        value = self._compiled.member.search(item, answer)
        if not isinstance(value, str) or not value.strip():
            raise MalformedResponse("mode.member found no ID number in an answer item")
        return value.strip().upper()

    def _record(
        self,
        item: object,
        index: int,
        members: Sequence[MemberQuery],
        answer: _Answer,
    ) -> Record:
        if self._compiled.member is not None:
            id_number = self._member_of(item, answer)
            if len(members) == 1 and id_number != members[0].id_number.upper():
                # Per member (or a batch of one): the answer is about that member alone.
                raise MalformedResponse(f"record {index} is about someone not asked (mode.member)")
        else:
            id_number = members[0].id_number
        values: dict[str, object] = {"kind": self.spec.response.kind, "id_number": id_number}
        for name, expr, const, unit in self._compiled.fields:
            value = expr.search(item, answer) if expr is not None else const
            if value is None:
                continue
            values[name] = _money(value, unit, name) if unit is not None else value
        try:
            record: Record = self._compiled.record_model.model_validate(values)  # type: ignore[assignment]
            return record
        except ValidationError as error:
            raise MalformedResponse(describe(error, within=("record", index))) from None

    def _auth(self, headers: dict[str, str], query: dict[str, str]) -> dict[str, Any]:
        auth = self.spec.auth
        if isinstance(auth, ApiKeyAuth | BasicAuth | BearerAuth):
            ref = (
                auth.secret
                if isinstance(auth, ApiKeyAuth)
                else auth.password
                if isinstance(auth, BasicAuth)
                else auth.token
            )
            secret = ref.reveal()
            if secret is None:
                raise SecretMissing("a secret the connector's spec refers to is not set")
            if isinstance(auth, ApiKeyAuth) and auth.in_ == "query":
                query = {**query, auth.name: secret}
            elif isinstance(auth, ApiKeyAuth):
                headers = {**headers, auth.name: secret}
            elif isinstance(auth, BasicAuth):
                pair = base64.b64encode(f"{auth.username}:{secret}".encode()).decode()
                headers = {**headers, "Authorization": f"Basic {pair}"}
            else:
                headers = {**headers, "Authorization": f"Bearer {secret}"}
        kwargs: dict[str, Any] = {}
        if headers:
            kwargs["headers"] = headers
        if query:
            kwargs["params"] = query
        return kwargs

    def _body(self, values: dict[str, str], members: list[dict[str, str]]) -> dict[str, Any]:
        body = self.spec.request.body
        first = members[0] if members else {}
        if isinstance(body, JsonBody):
            assert self._compiled.json_body is not None  # noqa: S101 - compiled with the spec
            return {"json": self._compiled.json_body({**values, **first}, members)}
        if isinstance(body, FormBody):
            return {"data": {k: fill(v, {**values, **first}) for k, v in body.template.items()}}
        if isinstance(body, XmlBody):
            listed = (
                "".join(render_xml_members(body.member_template, values, members))
                if body.member_template is not None
                else ""
            )
            escaped = {name: xml_escape(value) for name, value in {**values, **first}.items()}
            return {"content": fill(body.template, {**escaped, "members": listed}).encode()}
        return {}

    def _decode(self, body: bytes) -> _Answer | _Nothing:
        """A 2xx body as jmespath sees it, read by the error rules (as status 200)."""
        answer = _Answer.of(self._parse(body), len(body))
        if self._compiled.rules:
            matched = self._compiled.match(200, answer)
            if matched is not None:
                return _act(*matched)
        return answer

    def _decode_health(self, body: bytes) -> _Answer | _Nothing:
        """A health answer: read as `health.format` (default: `response.format`, then with
        the error rules too); without `health.expect`, a 2xx answer is healthy unread."""
        health = self.spec.health
        if health.expect is None:
            return _Answer.of(None, 0)
        if health.format in (None, self.spec.response.format):
            return self._decode(body)
        return _Answer.of(self._parse(body, health.format), len(body))

    def _parse(self, body: bytes, format_: str | None = None) -> object:
        if (format_ or self.spec.response.format) == "xml":
            root = parse_xml(body)
            return {root.tag: xml_data(root)}
        return load_json(body)


def _act(index: int, action: str) -> _Nothing:
    """What an error rule's action means: nothing found, or an error raised."""
    if action == "not_found":
        return NOTHING
    if action == "retry":
        raise PartnerUnavailable(f"partner asked for a retry (errors/{index})")
    raise PartnerReportedError(f"partner reported an error (errors/{index})")


class _Pages:
    """Where the next page is, by the spec's pagination; at most `max_pages` of them."""

    def __init__(self, spec: ConnectorSpec, compiled: _Compiled) -> None:
        self.pagination = spec.pagination
        self.compiled = compiled
        self.max_pages = getattr(self.pagination, "max_pages", 1)
        self.fetched = 0
        self.page = self.pagination.start if isinstance(self.pagination, PagePagination) else 0
        self.cursor: str | None = None
        self.done = False

    def next_query(self) -> dict[str, str] | None:
        """Query parameters of the next page, or None when the last one was read."""
        if self.done:
            return None
        if self.fetched == self.max_pages:
            raise ResponseTooLarge(f"response too large (more than {self.max_pages} pages)")
        if self.compiled.uncounted_pages:
            # Nothing is asked: the pages could not be read to their end.
            raise MalformedResponse(
                "the spec tells its last page by counting rows its response.records may "
                "filter: set pagination.rows (PUT a new version)"
            )
        pagination = self.pagination
        query: dict[str, str] = {}
        if isinstance(pagination, PagePagination):
            query[pagination.param] = str(self.page)
        elif isinstance(pagination, OffsetPagination):
            query[pagination.param] = str(self.fetched * pagination.size)
        elif isinstance(pagination, CursorPagination) and self.cursor is not None:
            query[pagination.param] = self.cursor
        size = getattr(pagination, "size", None)
        size_param = getattr(pagination, "size_param", None)
        if size_param and size:
            query[size_param] = str(size)
        return query

    def advance(self, answer: _Answer, items: int) -> None:
        """After a page of `items` records: where the next is, or that it was the last."""
        self.fetched += 1
        pagination = self.pagination
        if self.compiled.rows is not None:
            # The page's own rows, not the records picked from them (offset and page only).
            rows = self.compiled.rows.search(answer.data, answer)
            items = len(_list(rows, "pagination.rows"))
        if isinstance(pagination, PagePagination):
            total = (
                self.compiled.total_pages.search(answer.data, answer)
                if self.compiled.total_pages
                else None
            )
            if total is None:
                self.done = items == 0
            elif isinstance(total, bool) or not isinstance(total, int | Decimal):
                raise MalformedResponse("pagination.total_pages is not a number")
            else:
                self.done = self.page - pagination.start + 1 >= total
            self.page += 1
        elif isinstance(pagination, OffsetPagination):
            self.done = items < pagination.size
        elif isinstance(pagination, CursorPagination) and self.compiled.next_cursor is not None:
            following = self.compiled.next_cursor.search(answer.data, answer)
            if isinstance(following, bool) or not isinstance(following, str | int | None):
                raise MalformedResponse("pagination.next is not a string")
            self.done = following in (None, "")
            cursor = None if self.done else str(following)
            if cursor is not None and hides_id_number(cursor):
                # The cursor goes in the next page's URL, where an ID number never goes (a
                # partner that pages by the last person's number must do it in the body).
                raise MalformedResponse(
                    "pagination.next holds an ID number: it is never sent in a URL"
                )
            self.cursor = cursor
        else:
            self.done = True


def _list(value: object, where: str) -> list[object]:
    if value is None:
        # The answer has no such list at all ({}, null, a maintenance notice): that is not
        # "nothing found", which a partner says with an empty list (or a not_found rule).
        raise MalformedResponse(f"{where} selected nothing: the answer has no such list")
    if not isinstance(value, list):
        raise MalformedResponse(f"{where} did not select a list")
    return value


def _money(value: object, unit: str, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise MalformedResponse(f"field {name} is not an amount")
    if isinstance(value, str) and not AMOUNT_STRING.fullmatch(value):
        raise MalformedResponse(f"field {name} is not an amount")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise MalformedResponse(f"field {name} is not an amount") from None
    if not amount.is_finite() or (amount and amount.adjusted() > _LARGEST_DIGITS):
        # Beyond any household's money (and beyond what decimal arithmetic takes in its
        # default context): the partner's answer is wrong, not hedui.
        raise MalformedResponse(f"field {name} is not an amount")
    if unit == "fen":
        if amount != amount.to_integral_value():
            raise MalformedResponse(f"field {name} is not a whole number of fen")
        return amount / _FEN
    return amount


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def build_connector(spec: ConnectorSpec, version: str) -> DeclarativeConnector:
    """A connector instance for one version of a spec; its expressions compiled here, once."""
    cls: type[DeclarativeConnector] = type(
        f"Declarative_{spec.name}",
        (DeclarativeConnector,),
        {
            "name": spec.name,
            "title": spec.title,
            "version": version,
            "spec": spec,
            "_compiled": _Compiled(spec),
            "_gate": (
                _RateGate(spec.limits.rate_per_s)
                if spec.limits.rate_per_s and not CONFIG_HAS_RATE
                else None
            ),
            "_tokens": _Tokens(),
        },
    )
    return cls()
