"""The declarative connector spec: a partner's HTTP API described as data, validated fully.

`validate_spec` checks a spec before anything is stored or built: its shape (pydantic), its
jmespath expressions (compiled), its placeholders, its partner host (against the allow-list),
its secret references and the record kind its fields map to. Every problem names the bad
field with a JSON pointer into the submitted spec (`/response/fields/annual_amount/expr`).
"""

import ipaddress
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

import defusedxml.ElementTree
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from connectors.declarative.expression import check_expression, is_path
from connectors.declarative.template import (
    EACH_MEMBER,
    HOUSEHOLD_NAMES,
    MEMBER_NAMES,
    TemplateProblem,
    check_json_template,
    check_names,
    render_xml,
)
from schemas.evidence import (
    AssetRecord,
    BankAccountRecord,
    BusinessRecord,
    HousingFundRecord,
    IncomeRecord,
    PayrollRecord,
    PensionRecord,
    PropertyRecord,
    SocialInsuranceRecord,
    TaxedIncomeRecord,
    VehicleRecord,
)
from schemas.identity import FreeText, hides_id_number
from schemas.request import NUL, NUL_MESSAGE

DEFAULT_PARTNER_HOSTS = ("127.0.0.1", "localhost", "::1")
"""Hosts a spec may call when `HEDUI_PARTNER_HOSTS` is not set: this machine (the sandbox)."""

RECORD_KINDS: dict[str, type[BaseModel]] = {
    model.model_fields["kind"].default: model
    for model in (
        IncomeRecord,
        AssetRecord,
        VehicleRecord,
        PropertyRecord,
        PayrollRecord,
        PensionRecord,
        HousingFundRecord,
        BankAccountRecord,
        BusinessRecord,
        TaxedIncomeRecord,
        SocialInsuranceRecord,
    )
}
MONEY_FIELDS = frozenset(
    {
        "monthly_amount",
        "value",
        "balance",
        "monthly_deposit",
        "monthly_salary",
        "registered_capital",
        "annual_amount",
        "monthly_base",
    }
)
"""Canonical fields that hold yuan; a spec says whether its partner sends yuan or fen."""

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_HEADER = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "authorization",
        # hedui sends these itself with every request about a household (the consent
        # document and the purpose): a spec cannot replace them.
        "x-hedui-consent-id",
        "x-hedui-purpose",
        # Hop-by-hop: about one connection, not the request. `Connection` could name the
        # consent headers as its own, and a proxy on the way would drop them.
        "connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-authenticate",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        # A credential written into the spec in clear: the partner's is sent by `auth`,
        # from a secret reference, and never shown.
        "cookie",
    }
)
RESERVED_NAMES = frozenset({"schema"})
"""Names a connector cannot take: `/v1/connectors/schema` is the spec's JSON Schema."""


Expression = Annotated[str, Field(min_length=1, max_length=1000), AfterValidator(check_expression)]
"""A jmespath expression, compiled once when the spec is validated (`check_expression`)."""


class _Spec(BaseModel):
    """Numbers are strict (`strict=True` on each): a count or a limit is a JSON number, never
    a boolean or a numeric string (`"max_items": true` was taken as 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


SECRET_ENV_PREFIX = "HEDUI_SECRET_"  # noqa: S105 - a name prefix, not a secret
"""The environment variables a spec may name: the ones the operator set for connectors, not
the service's own (its database URL, its key-encryption key, ...)."""

SECRETS_DIR_ENV = "HEDUI_CONNECTOR_SECRETS_DIR"
"""The directory a spec's secret files must be in (none set: no secret files)."""


class SecretRef(_Spec):
    """Where a secret is kept: an environment variable or a file. Never the secret itself.

    Only where the operator keeps secrets for connectors: a variable named
    `HEDUI_SECRET_*`, or a file in `HEDUI_CONNECTOR_SECRETS_DIR`. Anything else (the
    service's own settings, its key files, any other file of the machine) is never read,
    whoever registered the spec, so an integrator cannot have it sent to a partner."""

    env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
    file: str | None = Field(default=None, min_length=1, max_length=1024)

    @model_validator(mode="after")
    def _exactly_one(self) -> "SecretRef":
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env or file")
        return self

    def refused(self) -> str | None:
        """Why this reference may not be read, or None."""
        if self.env is not None:
            if not self.env.startswith(SECRET_ENV_PREFIX):
                return f"a secret's environment variable must be named {SECRET_ENV_PREFIX}*"
            return None
        directory = os.environ.get(SECRETS_DIR_ENV, "").strip()
        if not directory:
            return f"secret files are read only from {SECRETS_DIR_ENV}, which is not set"
        path = Path(self.file or "")
        inside = Path(directory).resolve()
        if not path.is_absolute() or inside not in path.resolve().parents:
            return f"a secret file must be in {SECRETS_DIR_ENV}"
        return None

    def reveal(self) -> str | None:
        """The secret's current value (read at every use, so rotation needs no restart);
        None when it is not set, or may not be read (`refused`)."""
        if self.refused() is not None:
            return None
        if self.env is not None:
            return os.environ.get(self.env)
        try:
            value = Path(self.file or "").read_text(encoding="utf-8").strip() or None
        except (OSError, UnicodeDecodeError):
            return None
        return None if value is None or _is_own_key(value) else value


def _is_own_key(value: str) -> bool:
    """hedui's key-encryption key or a private key (the audit chain's signing key): never a
    partner's secret, whatever directory it was put in."""
    return value.startswith("hedui-kek-") or "PRIVATE KEY-----" in value


class NoAuth(_Spec):
    type: Literal["none"] = "none"


class ApiKeyAuth(_Spec):
    type: Literal["api_key"]
    in_: Literal["header", "query"] = Field(alias="in")
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    secret: SecretRef


class BasicAuth(_Spec):
    type: Literal["basic"]
    username: str = Field(min_length=1, max_length=128)
    password: SecretRef


class BearerAuth(_Spec):
    type: Literal["bearer"]
    token: SecretRef


class OAuth2ClientCredentials(_Spec):
    """OAuth 2.0 client credentials (RFC 6749 §4.4): a token from `token_url`, sent as a
    bearer token, kept until it expires and fetched anew when the partner answers 401."""

    type: Literal["oauth2_client_credentials"]
    token_url: str = Field(
        max_length=500, description="Absolute URL of the token endpoint; allow-listed host"
    )
    client_id: SecretRef
    client_secret: SecretRef
    scope: str | None = Field(default=None, max_length=500, pattern=r"^[\x21-\x7e ]+$")


Auth = Annotated[
    NoAuth | ApiKeyAuth | BasicAuth | BearerAuth | OAuth2ClientCredentials,
    Field(discriminator="type"),
]


MAX_TEMPLATE_DEPTH = 16
MAX_TEMPLATE_VALUES = 1000
MAX_TEMPLATE_TEXT = 20_000
"""The most characters a request body's template takes written out (a JSON template as
JSON, a form's names and values together): the XML template's bound. A JSON template
renders its per-member part once per member, so the body of a household's 30 members stays
well under a megabyte; without it, 1,000 strings of 20,000 characters made 20 MB a member."""


def _bounded_template(template: Any) -> Any:
    """A JSON body template a partner's request needs: a few levels, a few dozen values."""
    count, pending = 0, [(template, 1)]
    while pending:
        value, depth = pending.pop()
        count += 1
        if depth > MAX_TEMPLATE_DEPTH:
            raise ValueError(f"nested more than {MAX_TEMPLATE_DEPTH} deep")
        if count > MAX_TEMPLATE_VALUES:
            raise ValueError(f"more than {MAX_TEMPLATE_VALUES} values")
        children = value.values() if isinstance(value, dict) else value
        if isinstance(value, dict | list):
            pending.extend((child, depth + 1) for child in children)
    if len(json.dumps(template, ensure_ascii=False)) > MAX_TEMPLATE_TEXT:
        raise ValueError(f"more than {MAX_TEMPLATE_TEXT} characters written as JSON")
    return template


def _bounded_form(template: dict[str, str]) -> dict[str, str]:
    if sum(len(name) + len(value) for name, value in template.items()) > MAX_TEMPLATE_TEXT:
        raise ValueError(f"more than {MAX_TEMPLATE_TEXT} characters in its names and values")
    return template


class JsonBody(_Spec):
    type: Literal["json"]
    template: Annotated[Any, AfterValidator(_bounded_template)] = Field(
        description='JSON with {placeholders}; {"$each_member": T} becomes one T per member '
        f"(at most {MAX_TEMPLATE_DEPTH} deep, {MAX_TEMPLATE_VALUES} values, "
        f"{MAX_TEMPLATE_TEXT} characters written as JSON)"
    )


class FormBody(_Spec):
    type: Literal["form"]
    template: Annotated[dict[str, str], AfterValidator(_bounded_form)] = Field(
        max_length=50,
        description=f"Form fields with {{placeholders}} (at most 50, {MAX_TEMPLATE_TEXT} "
        "characters in all)",
    )


class XmlBody(_Spec):
    type: Literal["xml"]
    template: str = Field(
        min_length=1,
        max_length=20_000,
        description="XML with {placeholders}; {members} "
        "is replaced by member_template once per member",
    )
    member_template: str | None = Field(default=None, max_length=5_000)


Body = Annotated[JsonBody | FormBody | XmlBody, Field(discriminator="type")]


def _below_base_url(path: str) -> str:
    """A path is appended to base_url as text: without a leading `/`, `@evil.example/` or
    `.evil.example/` would move the request to a host outside the allow-list; with a `..`
    segment, to a path of the host outside base_url's (`/../../v1/verifications`)."""
    if not path.startswith("/"):
        raise ValueError("must start with /")
    if not URL_TEXT.fullmatch(path):
        raise ValueError("must be printable ASCII without spaces (percent-encode the rest)")
    if leaves_its_path(path):
        raise ValueError(f"must hold {_NO_DOT_SEGMENTS}: it stays below base_url")
    return path


_NO_DOT_SEGMENTS = "no dot-segment (. or .., percent-encoded or not) and no backslash"


def leaves_its_path(url_path: str) -> bool:
    """Whether a URL's path holds a `.` or `..` segment, or a backslash, as written or
    once percent-decoded (up to three times: `%2e%2e`, `%252e%252e`), as a client, a
    proxy or the partner's server would read it (a backslash is a slash to some)."""
    text = url_path
    for _ in range(3):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    if "\\" in text:
        return True
    for written in (url_path, text):
        path = written.split("?", 1)[0].split("#", 1)[0]
        # `..;x` is `..` to servers that drop a segment's parameters.
        if any(segment.split(";", 1)[0] in (".", "..") for segment in path.split("/")):
            return True
    return False


URL_TEXT = re.compile(r"[\x21-\x7e]*")
"""What a URL holds as is: visible ASCII, no space (the rest percent-encoded)."""
_HEADER_VALUE = re.compile(r"[\x20-\x7e\t]*")
"""What HTTP carries as a header value as is: visible ASCII, spaces and tabs, no line break."""


PartnerPath = Annotated[str, AfterValidator(_below_base_url)]


class RequestSpec(_Spec):
    method: Literal["GET", "POST"] = "POST"
    path: PartnerPath = Field(
        max_length=500, description="Path below base_url; placeholders: region_code, as_of"
    )
    headers: dict[str, str] = Field(default_factory=dict, max_length=20)
    query: dict[str, str] = Field(default_factory=dict, max_length=20)
    body: Body | None = None


class PerMember(_Spec):
    type: Literal["per_member"]
    member: Expression | None = Field(
        default=None,
        description="Evaluated on each record: the ID number it is about, when the partner "
        "says; given, a record about anyone but the member asked makes the answer malformed "
        "(without it, every record of an answer is taken to be the asked member's)",
    )


class Batch(_Spec):
    type: Literal["batch"]
    max_items: int = Field(ge=1, le=1000, strict=True)
    member: Expression = Field(
        description="Evaluated on each record (and each answer): the member's ID number"
    )
    lists: Literal["every_member", "hits_only"] = Field(
        description="every_member: the partner answers for each member asked (found or not), "
        "listed by response.answers; hits_only: an absent member has no record"
    )


Mode = Annotated[PerMember | Batch, Field(discriminator="type")]


class FieldMap(_Spec):
    expr: Expression | None = None
    const: str | int | Decimal | bool | None = None
    unit: Literal["yuan", "fen"] | None = Field(
        default=None, description="Money fields only: what the partner sends (default yuan)"
    )

    @model_validator(mode="after")
    def _one_source(self) -> "FieldMap":
        if (self.expr is None) == (self.const is None):
            raise ValueError("give exactly one of expr or const")
        return self


class ResponseSpec(_Spec):
    format: Literal["json", "xml"] = "json"
    records: Expression = Field(description="Evaluated on the body: the list of record items")
    answers: Expression | None = Field(
        default=None,
        description="batch/every_member: the list of answer items, one per member asked",
    )
    kind: Literal[
        "income",
        "asset",
        "vehicle",
        "property",
        "payroll",
        "pension",
        "housing_fund",
        "bank_account",
        "business",
        "taxed_income",
        "social_insurance",
    ]
    fields: dict[str, FieldMap] = Field(max_length=30)
    not_found: Expression | None = Field(
        default=None, description="True on the body: the partner holds nothing for the members"
    )
    error: Expression | None = Field(
        default=None, description="True on the body: the partner reports an error (not retried)"
    )


class ErrorRule(_Spec):
    """How to read one kind of partner answer: by status code, body predicate, or both."""

    status: list[Annotated[int, Field(ge=200, le=599, strict=True)]] | None = Field(
        default=None, min_length=1, max_length=20, description="Matches these HTTP statuses"
    )
    when: Expression | None = Field(
        default=None, description="True on the (decoded) body: matches this answer"
    )
    action: Literal["retry", "partner_error", "not_found"] = Field(
        description="retry: a transient failure, retried within the budget; partner_error: "
        "the partner reports an error, not retried (the source is `error`); not_found: "
        "the partner holds nothing for the members asked (`no_record`)"
    )

    @model_validator(mode="after")
    def _matches_something(self) -> "ErrorRule":
        if self.status is None and self.when is None:
            raise ValueError("give status, when or both")
        if self.action == "not_found" and any(map(is_unavailable, self.status or ())):
            raise ValueError(
                "not_found cannot match a status that says the partner did not look (3xx, "
                "401, 403, 407, 408, 413, 414, 429, 431, 5xx): an outage, a redirect or a "
                "refused request is never 'no record' (use retry or partner_error)"
            )
        return self


_REFUSED_UNREAD = frozenset((401, 403, 407, 408, 413, 414, 429, 431))
"""Statuses of a request the partner did not read for what it asked: not authorised, too
large, too slow, too many."""


def is_unavailable(status: int) -> bool:
    """An HTTP status that says the partner did not look for the members asked: it could
    not answer (timed out, throttled, failed), the answer is elsewhere (a redirect, which is
    never followed), or the request was refused unread (credentials, size). Never read as
    'nothing found', whatever a spec's rule says."""
    return 300 <= status < 400 or status in _REFUSED_UNREAD or status >= 500


class NoPagination(_Spec):
    type: Literal["none"] = "none"


class _Paged(_Spec):
    param: str = Field(min_length=1, max_length=64, description="Query parameter")
    size_param: str | None = Field(default=None, max_length=64)
    size: int | None = Field(default=None, ge=1, le=1000, strict=True)
    max_pages: int = Field(default=20, ge=1, le=100, strict=True)
    rows: Expression | None = Field(
        default=None,
        description="On the body: the page's rows as the partner sent them, before "
        "response.records picks from them; their count tells a short or empty page, the "
        "last. Required when response.records is more than a path to a list (a filter, a "
        "projection) and the last page is told by counting (offset; page without "
        "total_pages)",
    )

    def counts_rows(self) -> bool:
        """Is the last page told by counting the rows a page holds?"""
        return True


class PagePagination(_Paged):
    type: Literal["page"]
    start: int = Field(default=1, ge=0, strict=True)
    total_pages: Expression | None = Field(
        default=None, description="On the body: how many pages there are (else: until empty)"
    )

    def counts_rows(self) -> bool:
        return self.total_pages is None


class OffsetPagination(_Paged):
    type: Literal["offset"]
    size: int = Field(ge=1, le=1000, strict=True)  # required for offsets


class CursorPagination(_Spec):
    type: Literal["cursor"]
    param: str = Field(min_length=1, max_length=64)
    next: Expression = Field(description="On the body: the next cursor; null on the last page")
    max_pages: int = Field(default=20, ge=1, le=100, strict=True)


Pagination = Annotated[
    NoPagination | PagePagination | OffsetPagination | CursorPagination,
    Field(discriminator="type"),
]


class HealthSpec(_Spec):
    path: PartnerPath = Field(max_length=500)
    expect: Expression | None = Field(
        default=None, description="True on a healthy body; none: any 2xx answer is healthy"
    )
    format: Literal["json", "xml"] | None = Field(
        default=None,
        description="How the health answer is written, when not as response.format (an XML "
        "partner's JSON status page)",
    )


class Limits(_Spec):
    timeout_s: float = Field(default=10.0, gt=0, le=120, strict=True)
    request_timeout_s: float = Field(default=5.0, gt=0, le=60, strict=True)
    max_attempts: int = Field(default=3, ge=1, le=10, strict=True)
    rate_per_s: float | None = Field(
        default=None,
        gt=0,
        le=1000,
        strict=True,
        description="Most requests per second to the partner (pages, retries and token "
        "requests included), in total over every process sharing a PostgreSQL database, "
        "per process on SQLite; null: no limit",
    )
    max_concurrency: int = Field(
        default=32,
        ge=1,
        le=1000,
        strict=True,
        description="Most requests to the partner in flight at once, in total over every "
        "process sharing a PostgreSQL database (per process on SQLite); also each "
        "process's bound on fetches of this connector in flight",
    )


class ConnectorSpec(_Spec):
    """A declarative HTTP connector. Its JSON Schema is served at `/v1/connectors/schema`."""

    name: FreeText = Field(
        pattern=_NAME.pattern,
        description="Source name: lower-case identifier (in every report, metric and log line, "
        "so never an ID number); not `schema`",
    )
    title: FreeText = Field(min_length=1, max_length=200)

    base_url: str = Field(max_length=500, description="Partner root URL, allow-listed host")
    request: RequestSpec
    mode: Mode
    auth: Auth = Field(default_factory=NoAuth)
    response: ResponseSpec
    errors: list[ErrorRule] = Field(
        default_factory=list,
        max_length=20,
        description="Rules for reading the partner's answers, first match wins; answers "
        "no rule matches: 2xx is data, 429/5xx retried, other 4xx a rejected request",
    )
    pagination: Pagination = Field(default_factory=NoPagination)
    health: HealthSpec
    limits: Limits = Field(default_factory=Limits)


@dataclass(frozen=True)
class Problem:
    pointer: str
    message: str


class SpecInvalid(ValueError):
    """The spec cannot be registered; `problems` name each bad field by JSON pointer."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(f"{p.pointer}: {p.message}" for p in problems))
        self.problems = list(problems)


def validate_spec(
    data: object,
    *,
    partner_hosts: Iterable[str] = DEFAULT_PARTNER_HOSTS,
    check_secrets: bool = True,
) -> ConnectorSpec:
    """The spec, or `SpecInvalid` naming every problem found (nothing half-checked)."""
    problems = _document_problems(data)
    if problems:
        # Nothing more is read of a document whose text cannot be stored or sent as is: a
        # pointer naming one of its members would hold the same character.
        raise SpecInvalid(problems)
    leaks = _id_number_problems(data)
    try:
        spec = ConnectorSpec.model_validate(data)
    except ValidationError as error:
        # Every bad field at once, each once: the URLs are checked as written too, where
        # their shape let them be read.
        found = list(leaks)
        for problem in [
            *_pydantic_problems(error, data),
            *_written_url_problems(data, partner_hosts),
        ]:
            if problem.pointer not in {known.pointer for known in found}:
                found.append(problem)
        raise SpecInvalid(found) from None
    problems = [
        *leaks,
        *([Problem("/name", "is a path of hedui's own")] if spec.name in RESERVED_NAMES else []),
        *_template_problems(spec),
        *_host_problems(spec, tuple(partner_hosts)),
        *_field_problems(spec),
        *_mode_problems(spec),
        *_paging_problems(spec),
    ]
    if check_secrets:
        problems += _secret_problems(spec)
    if problems:
        raise SpecInvalid(problems)
    return spec


def uncounted_pages(spec: ConnectorSpec) -> bool:
    """Does the spec tell its last page by counting rows it cannot count? Its records
    expression may drop rows (a filter), so a full page could look short or empty, and the
    pages after it (with their records) would never be read."""
    pagination = spec.pagination
    return (
        isinstance(pagination, _Paged)
        and pagination.counts_rows()
        and pagination.rows is None
        and not is_path(spec.response.records)
    )


def _paging_problems(spec: ConnectorSpec) -> list[Problem]:
    if not uncounted_pages(spec):
        return []
    return [
        Problem(
            "/pagination/rows",
            "required: response.records is more than a path to a list (it may filter or "
            "reshape the page's rows), so counting its records cannot tell a short or empty "
            "page; give the path to the page's rows as the partner sends them",
        )
    ]


MAX_TEXT = 20_000
"""The longest text a spec holds anywhere (an XML body template's limit)."""
MAX_MEMBER_NAME = 256


def _document_problems(data: object) -> list[Problem]:
    """What the submitted JSON holds that can be neither stored nor sent as it was written,
    in every value and every member name, the JSON body template's included: a lone
    surrogate (`"\\ud800"`: no UTF-8 encodes it), a NUL character (PostgreSQL refuses it in
    text, SQLite would store it), NaN, Infinity or a number beyond a float's range (`1e400`,
    which JSON has no value for: stored as null), and text past its size."""
    problems: list[Problem] = []
    for pointer, value, is_name in _document(data):
        if isinstance(value, str):
            why = _text_problem(value, MAX_MEMBER_NAME if is_name else MAX_TEXT)
            if why is not None:
                problems.append(Problem(pointer or "/", f"its name {why}" if is_name else why))
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(
                Problem(pointer or "/", "must be a finite number (JSON has no NaN or Infinity)")
            )
    return problems


def _document(data: object) -> Iterator[tuple[str, object, bool]]:
    """Every value of a JSON document with its pointer, in the document's order, as
    (pointer, value, False); before an object's members, each member's name with the
    member's pointer, as (pointer, name, True). A name that holds an ID number is never in
    a pointer: `_HIDDEN` stands for it."""
    pending: list[tuple[str, object]] = [("", data)]
    while pending:
        pointer, value = pending.pop()
        yield pointer, value, False
        if isinstance(value, dict):
            children = []
            for key, item in value.items():
                name = str(key)
                child = f"{pointer}/{_HIDDEN if hides_id_number(name) else pointer_token(name)}"
                yield child, name, True
                children.append((child, item))
            pending.extend(reversed(children))  # in the document's order
        elif isinstance(value, list):
            pending.extend(reversed([(f"{pointer}/{i}", item) for i, item in enumerate(value)]))


ID_NUMBER_IN_SPEC = (
    "must not contain an ID number or any run of 18 digits: a spec is stored, shown and "
    "sent as written (a member's number goes through the {id_number} placeholder)"
)


def _id_number_problems(data: object) -> list[Problem]:
    """Every text of the spec, member names included, that holds an ID number (as is or
    written apart or encoded, `hides_id_number`): a URL, header or template would send it
    to the partner with every call, and the registry shows the spec to whoever reads it.
    A member name that holds one is not repeated in its pointer (`_document`)."""
    return [
        Problem(pointer or "/", f"a name {ID_NUMBER_IN_SPEC}" if is_name else ID_NUMBER_IN_SPEC)
        for pointer, value, is_name in _document(data)
        if isinstance(value, str) and hides_id_number(value)
    ]


_HIDDEN = "(a name holding an ID number)"


def _written_url_problems(data: object, allowed: Iterable[str]) -> list[Problem]:
    """`_host_problems` of a document that is not a valid spec, for the URLs it holds as
    text where a spec holds them."""
    if not isinstance(data, dict):
        return []
    hosts = tuple(allowed)
    problems = []
    if isinstance(base_url := data.get("base_url"), str):
        problems += _url_problems("/base_url", base_url, hosts)
    auth = data.get("auth")
    if isinstance(auth, dict) and isinstance(token_url := auth.get("token_url"), str):
        problems += _url_problems("/auth/token_url", token_url, hosts)
    return problems


def _text_problem(text: str, longest: int) -> str | None:
    if len(text) > longest:
        return f"must be at most {longest} characters"
    if NUL in text:
        return NUL_MESSAGE
    if any(_is_surrogate(character) for character in text):
        return "must be valid Unicode: a lone surrogate (U+D800 to U+DFFF) cannot be encoded"
    return None


def _is_surrogate(character: str) -> bool:
    return "\ud800" <= character <= "\udfff"


def pointer_token(name: str) -> str:
    """`name` as a JSON pointer token: `~` and `/` escaped, and a character no answer can
    carry (a lone surrogate, a NUL) shown as U+FFFD."""
    name = "".join("\ufffd" if c == NUL or _is_surrogate(c) else c for c in name)
    return name.replace("~", "~0").replace("/", "~1")


def _pydantic_problems(error: ValidationError, data: object) -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        problems.append(Problem(_pointer(item["loc"], data), message))
    return problems


_ABSENT = object()


def _child(data: object, part: int | str) -> object:
    if isinstance(data, dict):
        return data.get(part, _ABSENT)
    if isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
        return data[part]
    return _ABSENT


def _pointer(loc: tuple[int | str, ...], data: object) -> str:
    """The JSON pointer of a pydantic location in `data`, leaving out union tags."""
    parts: list[str] = []
    current = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        child = _child(current, part)
        if child is not _ABSENT:
            current = child
        elif not last:
            continue  # a discriminated union's tag: not part of the submitted document
        parts.append(str(part).replace("~", "~0").replace("/", "~1"))
    return "/" + "/".join(parts)


def _auth_header_problems(spec: ConnectorSpec) -> list[Problem]:
    """An API key sent as a header may be sent as `Authorization`, never as a header HTTP
    or hedui sets itself (`Host`, the length, the consent headers)."""
    if not isinstance(spec.auth, ApiKeyAuth) or spec.auth.in_ != "header":
        return []
    name = spec.auth.name.lower()
    if not _HEADER.match(name) or (name in _RESERVED_HEADERS and name != "authorization"):
        return [Problem("/auth/name", "not a header a spec may set")]
    return []


def _template_problems(spec: ConnectorSpec) -> list[Problem]:
    member_level = isinstance(spec.mode, PerMember)
    checks: list[tuple[str, str]] = [("/request/path", spec.request.path)]
    checks += [(f"/request/headers/{pointer_token(k)}", v) for k, v in spec.request.headers.items()]
    checks += [(f"/request/query/{pointer_token(k)}", v) for k, v in spec.request.query.items()]
    checks.append(("/health/path", spec.health.path))
    problems = []
    for pointer, text in checks:
        try:
            check_names(text, pointer, HOUSEHOLD_NAMES)
        except TemplateProblem as problem:
            problems.append(Problem(problem.pointer, str(problem)))
    problems += _auth_header_problems(spec)
    for header, value in spec.request.headers.items():
        pointer = f"/request/headers/{pointer_token(header)}"
        if not _HEADER.match(header) or header.lower() in _RESERVED_HEADERS:
            problems.append(Problem(pointer, "not a header a spec may set"))
        elif not _HEADER_VALUE.fullmatch(value):
            problems.append(Problem(pointer, "must be ASCII text without line breaks"))
    body = spec.request.body
    try:
        if isinstance(body, JsonBody):
            check_json_template(body.template, "/request/body/template", member_level=member_level)
        elif isinstance(body, FormBody):
            for key, value in body.template.items():
                check_names(
                    value,
                    f"/request/body/template/{pointer_token(key)}",
                    HOUSEHOLD_NAMES | (MEMBER_NAMES if member_level else frozenset()),
                )
        elif isinstance(body, XmlBody):
            problems += _xml_problems(body, member_level)
    except TemplateProblem as problem:
        problems.append(Problem(problem.pointer, str(problem)))
    if body is not None and spec.request.method == "GET":
        problems.append(Problem("/request/body", "a GET request carries no body"))
    return problems


def _xml_problems(body: XmlBody, member_level: bool) -> list[Problem]:
    outer = HOUSEHOLD_NAMES | (MEMBER_NAMES if member_level else {"members"})
    check_names(body.template, "/request/body/template", frozenset(outer))
    dummy = dict.fromkeys(HOUSEHOLD_NAMES | MEMBER_NAMES, "0")
    members = ""
    if body.member_template is not None:
        check_names(
            body.member_template,
            "/request/body/member_template",
            HOUSEHOLD_NAMES | MEMBER_NAMES,
        )
        members = render_xml(body.member_template, dummy)
    problems = []
    for pointer, text in (
        ("/request/body/template", render_xml(body.template, {**dummy, "members": members})),
    ):
        declared = _XML_ENCODING.match(text)
        if declared and declared.group(1).lower().replace("_", "-") not in ("utf-8", "utf8"):
            problems.append(
                Problem(pointer, "the XML declaration may name UTF-8 only: the body is sent so")
            )
            continue
        try:
            defusedxml.ElementTree.fromstring(text, forbid_dtd=True)
        except (
            defusedxml.DefusedXmlException,
            defusedxml.ElementTree.ParseError,
            LookupError,  # a prolog naming an encoding Python does not know
            ValueError,
        ) as error:
            reason = (
                "DTDs and entities are not allowed"
                if isinstance(error, defusedxml.DefusedXmlException)
                else "not well-formed XML"
            )
            problems.append(Problem(pointer, reason))
    return problems


_XML_ENCODING = re.compile(r"""\s*<\?xml[^>]*?\bencoding\s*=\s*["']([^"']*)["']""")
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")


def well_formed_host(host: str) -> bool:
    """An IP address, or a name of labels of letters, digits, `_` and inner hyphens: what
    could be looked up. `127.0.0.1\\.example.cn`, `x..example.cn` or `%2e.example.cn`
    end in an allowed suffix and can never be reached."""
    bare = host.lower().strip("[]")
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        name = bare.removesuffix(".")
        return 0 < len(name) <= 253 and all(_LABEL.fullmatch(part) for part in name.split("."))
    return True


DEFAULT_PORTS = {"http": 80, "https": 443}


def allow_list_entry(raw: str) -> tuple[str, int | None]:
    """An allow-list entry's host and port: `partners.example.cn`, `*.example.cn`,
    `127.0.0.1:8000`, `[::1]:8000` or a bare `::1` (no port: any port)."""
    entry = raw.strip().lower()
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":")
        return host, int(port) if port.isdigit() else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return host, int(port) if port.isdigit() else None
    return entry, None


def host_allowed(host: str, allowed: Sequence[str], port: int | None = None) -> bool:
    """Whether `host` (and `port`, the URL's own or its scheme's) is in the allow-list: an
    entry naming a port admits that port alone, one without admits any."""
    host = host.lower().strip("[]")
    for raw in allowed:
        entry, entry_port = allow_list_entry(raw)
        if not entry or (entry_port is not None and entry_port != port):
            continue
        if entry.startswith("*.") and host.endswith(entry[1:]):
            return True
        if host == entry:
            return True
    return False


def _host_problems(spec: ConnectorSpec, allowed: Sequence[str]) -> list[Problem]:
    problems = _url_problems("/base_url", spec.base_url, allowed)
    if isinstance(spec.auth, OAuth2ClientCredentials):
        problems += _url_problems("/auth/token_url", spec.auth.token_url, allowed)
    return problems


def _url_problems(  # noqa: PLR0911 - one refusal per way a URL can be wrong
    pointer: str, url: str, allowed: Sequence[str]
) -> list[Problem]:
    if not URL_TEXT.fullmatch(url):
        return [Problem(pointer, "must be printable ASCII without spaces (percent-encode)")]
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port  # a malformed port raises here
    except ValueError:
        return [Problem(pointer, "not a valid URL")]
    if parts.scheme not in ("http", "https") or not host:
        return [Problem(pointer, "must be an http:// or https:// URL with a host")]
    if parts.username or parts.password or parts.query or parts.fragment or "{" in url:
        return [Problem(pointer, "no credentials, query, fragment or placeholders here")]
    if not well_formed_host(host):
        return [Problem(pointer, "its host is not a name or an address")]
    if not host_allowed(host, allowed, parts.port or DEFAULT_PORTS[parts.scheme]):
        return [
            Problem(
                pointer,
                f"host {host} (port {parts.port or DEFAULT_PORTS[parts.scheme]}) is not in the "
                "partner allow-list (HEDUI_PARTNER_HOSTS)",
            )
        ]
    if leaves_its_path(parts.path):
        return [Problem(pointer, f"its path must hold {_NO_DOT_SEGMENTS}")]
    return []


def _field_problems(spec: ConnectorSpec) -> list[Problem]:
    model = RECORD_KINDS[spec.response.kind]
    known = set(model.model_fields) - {"kind", "id_number"}
    problems = []
    for name, mapping in spec.response.fields.items():
        pointer = f"/response/fields/{pointer_token(name)}"
        if name not in known:
            problems.append(
                Problem(
                    pointer,
                    f"unknown field of kind {spec.response.kind} "
                    f"(known: {', '.join(sorted(known))})",
                )
            )
        elif mapping.unit is not None and name not in MONEY_FIELDS:
            problems.append(Problem(f"{pointer}/unit", "only money fields have a unit"))
        elif mapping.const is not None:
            refused = _const_problem(model, name, mapping)
            if refused is not None:
                problems.append(Problem(f"{pointer}/const", refused))
    required = [
        name
        for name, field in model.model_fields.items()
        if field.is_required() and name not in ("id_number",) and name not in spec.response.fields
    ]
    if required:
        problems.append(
            Problem("/response/fields", f"missing required fields: {', '.join(required)}")
        )
    return problems


def record_kinds_schema() -> dict[str, Any]:
    """What `response.fields` may map for each record kind: the fields a spec must map,
    those it may, and which of them are amounts (they take `unit`), from the records'
    own models. Published beside the spec's JSON Schema (`x-record-kinds`)."""
    kinds: dict[str, Any] = {}
    for kind, model in RECORD_KINDS.items():
        fields = {
            name: field
            for name, field in model.model_fields.items()
            if name not in ("kind", "id_number")
        }
        kinds[kind] = {
            "required": sorted(name for name, field in fields.items() if field.is_required()),
            "optional": sorted(name for name, field in fields.items() if not field.is_required()),
            "amounts": sorted(name for name in fields if name in MONEY_FIELDS),
        }
    return kinds


def _const_problem(model: type[BaseModel], name: str, mapping: FieldMap) -> str | None:
    """Why a constant cannot be the field's value in any record (None when it can): found
    at registration, it would fail every record the partner sends, and be counted as the
    partner's malformed answers."""
    field = model.model_fields[name]
    value: object = mapping.const
    if mapping.unit == "fen" and isinstance(value, int | Decimal) and not isinstance(value, bool):
        value = Decimal(value) / 100
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(Annotated[field.annotation, field])  # type: ignore[arg-type]
        adapter.validate_python(value)
    except ValidationError as error:
        return f"not a value of {name}: {error.errors()[0]['msg']}"
    return None


def _mode_problems(spec: ConnectorSpec) -> list[Problem]:
    problems = []
    batch = isinstance(spec.mode, Batch)
    if (
        batch
        and isinstance(spec.mode, Batch)
        and spec.mode.lists == "every_member"
        and spec.response.answers is None
    ):
        problems.append(Problem("/response/answers", "required when mode.lists is every_member"))
    body = spec.request.body
    if batch and isinstance(body, JsonBody) and EACH_MEMBER not in str(body.template):
        problems.append(
            Problem("/request/body/template", f"a batch body lists members with {EACH_MEMBER}")
        )
    if batch and isinstance(body, XmlBody) and body.member_template is None:
        problems.append(Problem("/request/body/member_template", "required in batch mode"))
    if batch and isinstance(body, FormBody):
        problems.append(
            Problem("/request/body", "a form body asks about one member: use per_member")
        )
    if body is None:
        problems.append(Problem("/request/body", "the members must travel in a body, never a URL"))
    return problems


def secret_refs(spec: ConnectorSpec) -> list[tuple[str, SecretRef]]:
    """Every secret reference of the spec, with its JSON pointer."""
    auth = spec.auth
    if isinstance(auth, ApiKeyAuth):
        return [("/auth/secret", auth.secret)]
    if isinstance(auth, BasicAuth):
        return [("/auth/password", auth.password)]
    if isinstance(auth, BearerAuth):
        return [("/auth/token", auth.token)]
    if isinstance(auth, OAuth2ClientCredentials):
        return [("/auth/client_id", auth.client_id), ("/auth/client_secret", auth.client_secret)]
    return []


def _secret_problems(spec: ConnectorSpec) -> list[Problem]:
    problems = []
    for pointer, ref in secret_refs(spec):
        if (refused := ref.refused()) is not None:
            problems.append(Problem(f"{pointer}/{'env' if ref.env else 'file'}", refused))
        elif ref.reveal() is None:
            where = f"environment variable {ref.env}" if ref.env else "secret file"
            problems.append(
                Problem(f"{pointer}/{'env' if ref.env else 'file'}", f"{where} is not set or empty")
            )
    return problems


def masked(spec: ConnectorSpec) -> dict[str, Any]:
    """The spec as stored and shown: it holds only secret references, never secret values."""
    return spec.model_dump(mode="json", by_alias=True, exclude_none=True)
