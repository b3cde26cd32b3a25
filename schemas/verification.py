"""Verification requests and their read models (API contract v1)."""

import re
import unicodedata
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from functools import cache
from typing import Annotated, ClassVar, Literal, cast
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from schemas.additions import OmitWhenNone
from schemas.dates import IsoDate, IsoDateTime
from schemas.evidence import CONSENT_ID_MAX, CONSENT_ID_PATTERN
from schemas.identity import FreeText, IdNumber, OneLine, birth_date, hides_id_number
from schemas.money import GrantedMoney, Money
from schemas.request import RequestModel

# GB/T 2260 province-level codes (Hong Kong, Macao and Taiwan included). Prefectures and
# counties are renamed and merged over the years, so only the province is checked.
PROVINCE_CODES = frozenset(
    {
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
    }
)

Program = Literal["dibao", "tekun", "linshi"]
Area = Literal["urban", "rural"]
SupportMode = Literal["concentrated", "dispersed"]
"""How a tekun (特困) person is supported: in an institution (集中供养) or at home (分散供养)."""


CareGrade = Literal[1, 2, 3]
"""Self-care grade of a tekun person: 1 unable to care for themselves (全失能), 2 partly
able (半失能), 3 able (全自理). The care subsidy depends on it."""
REGION_PREFIX = r"^([0-9]{2}|[0-9]{4}|[0-9]{6})$"
"""A region filter's pattern: a province (2 digits), prefecture (4) or county (6)."""
CountyCode = Annotated[
    str,
    Field(pattern=r"^[0-9]{6}$", description="6-digit GB/T 2260 county code", examples=["530102"]),
]
TownshipCode = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{9}$",
        description="9-digit township (乡镇/街道) statistical division code; its first 6 "
        "digits are the county's region_code",
        examples=["530102001"],
    ),
]


class VerificationStatus(StrEnum):
    queued = "queued"
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"
    """Only a verification of a batch, cancelled with its batch before it started."""
    withdrawn = "withdrawn"
    """The household withdrew its consent, or the caseworker the application
    (`POST /v1/verifications/{id}/withdraw`): no partner is asked any more, the raw partner
    records are purged; a report made before stays readable."""


class SourceStatus(StrEnum):
    """Where one partner source stands.

    `pending`: not answered yet. `awaiting`: the partner accepted the question and answers
    later (a bank inquiry); it is collected in the background until the partner's own
    deadline, and the verification stays `running` meanwhile. `ok` / `no_record`: a
    reliable answer. `error` / `timeout`: no usable answer (the report is `review`).
    `withdrawn`: the verification was withdrawn before the partner answered.
    """

    pending = "pending"
    awaiting = "awaiting"
    ok = "ok"
    no_record = "no_record"
    error = "error"
    timeout = "timeout"
    withdrawn = "withdrawn"
    """The verification was withdrawn before this partner answered: it is not asked
    again, and a late answer is not stored."""

    @property
    def settled(self) -> bool:
        """A source whose answer can be relied on (ok, or a confirmed absence of records)."""
        return self in (SourceStatus.ok, SourceStatus.no_record)


Recommendation = Literal["eligible", "ineligible", "review"]
Relation = Literal[
    "applicant", "spouse", "child", "parent", "sibling", "grandparent", "grandchild", "other"
]


class _Strict(RequestModel):
    pass


class Consent(_Strict):
    """The signed authorization (授权书) allowing the partner queries."""

    document_id: str = Field(
        min_length=1,
        max_length=CONSENT_ID_MAX,
        pattern=CONSENT_ID_PATTERN,
        description="The authorization's id, as the partners are told it (header "
        "`X-Hedui-Consent-Id` of every partner request): ASCII letters and digits, then "
        "also `.` `_` `:` `/` `-`; at most 64 characters; never an ID number",
        examples=["AUTH-0001"],
    )
    signed_on: IsoDate

    @field_validator("document_id")
    @classmethod
    def _carries_no_id_number(cls, document_id: str) -> str:
        if hides_id_number(document_id):
            raise ValueError(
                "must not contain an ID number or any run of 18 digits (every partner is told it)"
            )
        return document_id


class MemberCreate(_Strict):
    id_number: IdNumber
    name: OneLine = Field(min_length=1, max_length=64, examples=["张三"])
    relation: Relation = "other"
    declared_monthly_income: Money = Field(
        default=Decimal("0"),
        examples=[800],
        description="What the application declares the member earns a month, in yuan. "
        "Omitted: 0.00, a declaration of no income, so income the partners' records show is "
        "a gap to review, never ignored",
    )


class VerificationCreate(_Strict, OmitWhenNone):
    # Fields added later stay out of the idempotency fingerprint while unset, so a request
    # repeated across an upgrade still matches the one it repeats.
    omit_when_none: ClassVar[frozenset[str]] = frozenset(
        {"support_mode", "care_grade", "township_code"}
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "reference": "case-2026-000123",
                    "program": "dibao",
                    "region_code": "530102",
                    "area": "urban",
                    "as_of": "2026-11-20",
                    "consent": {"document_id": "AUTH-0001", "signed_on": "2026-11-20"},
                    "members": [
                        {
                            "id_number": "11010519491231002X",
                            "name": "张三",
                            "relation": "applicant",
                            "declared_monthly_income": 800,
                        }
                    ],
                }
            ]
        },
    )

    reference: OneLine = Field(
        min_length=1,
        max_length=128,
        description="The caller's case reference; it is shown as given (in lists, webhooks, "
        "the audit trail), so it must not contain an ID number or a member's name (nor "
        "control characters or line breaks)",
    )
    program: Program
    region_code: CountyCode
    township_code: TownshipCode | None = Field(
        default=None,
        description="The household's township (乡镇/街道), inside region_code; keys of "
        "that township see it, keys of other townships do not",
    )
    area: Area
    as_of: IsoDate | None = Field(
        default=None,
        description="Date whose policy applies; default today. Not after today (a "
        "standard yet to take effect: POST /v1/policy/simulate)",
    )
    consent: Consent
    members: list[MemberCreate] = Field(min_length=1, max_length=30)
    support_mode: SupportMode | None = Field(
        default=None,
        description="tekun only: concentrated (in an institution) or dispersed (at home) "
        "support; picks the standard where the region's policy sets one per arrangement "
        "(Jiangxi rural: 505 concentrated, 400 dispersed). Omitted: the region's default "
        "standard. A mode the region's policy does not define is 422.",
    )
    care_grade: CareGrade | None = Field(
        default=None,
        description="tekun only, with support_mode: the supported person's self-care grade "
        "(1 unable to care for themselves, 2 partly able, 3 able). Adds the region's care "
        "subsidy for that grade to the monthly benefit (Yunnan concentrated: 835 / 418 / "
        "251). A grade the region's policy sets no subsidy for is 422.",
    )

    @field_validator("region_code")
    @classmethod
    def _known_province(cls, region_code: str) -> str:
        if region_code[:2] not in PROVINCE_CODES:
            raise ValueError("does not start with a GB/T 2260 province code")
        return region_code

    @field_validator("township_code")
    @classmethod
    def _township_in_county(cls, township_code: str | None, info: ValidationInfo) -> str | None:
        region_code = info.data.get("region_code")
        if township_code is not None and region_code and township_code[:6] != region_code:
            raise ValueError("its first 6 digits must be the region_code")
        return township_code

    @field_validator("members")
    @classmethod
    def _members_are_distinct(
        cls, members: list[MemberCreate], info: ValidationInfo
    ) -> list[MemberCreate]:
        seen: set[str] = set()
        for member in members:
            if member.id_number in seen:
                raise ValueError("the same ID number appears twice in the household")
            seen.add(member.id_number)
        if sum(member.relation == "applicant" for member in members) > 1:
            raise ValueError("a household has one applicant at most")
        as_of = info.data.get("as_of")
        for position, member in enumerate(members, start=1):
            if as_of is not None and birth_date(member.id_number) > as_of:
                # By position: an error message names no ID number, not even masked.
                raise ValueError(
                    f"member {position} was born after as_of ({as_of}): the household "
                    "assessed on that day did not include them"
                )
        return members


_NAME_SEPARATORS = re.compile(r"[\s·・.•_\-]+")
_WORD = re.compile(r"[^\W_]+")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
"""Chinese characters: a name in them is written without spaces between words."""


def _comparable(text: str) -> str:
    return _NAME_SEPARATORS.sub("", unicodedata.normalize("NFKC", text).casefold())


@cache
def _to_simplified() -> Callable[[str], str]:
    """OpenCC's traditional-to-simplified conversion (its phrase tables, loaded on first
    use: 9 ms of imports, 8 ms of tables), as a function of text: 1 µs a short text."""
    import opencc

    return cast(Callable[[str], str], opencc.OpenCC("t2s").convert)


_BETWEEN_CHARACTERS = re.compile(
    "[^\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134fA-Za-z0-9"
    ",;:!?()\\[\\]<>\"'。《》「」『』“”‘’【】〔〕]+"
)
"""What may stand between the characters of a Chinese name written apart: anything but
Chinese characters, ASCII letters and digits, and a clause's punctuation (spaces, dots,
dashes, bars and slashes of every kind, 、, other scripts' letters that look like them,
marks and selectors that show nothing; and `.`, a name's dot as often as a sentence's end).
Not a clause's punctuation (，。；：！？, brackets, quotes): a name read across it is two
words of two clauses ("收入不高，平时" is no 高平), which ordinary notes hold. (Full-width
punctuation is compared as NFKC writes it.)"""


def _han_comparable(text: str) -> str:
    """Chinese text as a name in it is compared: without what may stand between a name's
    characters ("张、三丰", "张 三丰", "张·三丰"), in simplified characters ("張三豐" is
    张三丰)."""
    plain = unicodedata.normalize("NFKC", text).casefold()
    return _to_simplified()(_BETWEEN_CHARACTERS.sub("", plain))


def _names(reference: str, name: str, han_reference: Callable[[], str]) -> bool:
    """Does `reference` hold `name`? A name in Chinese characters anywhere in it (they are
    written without spaces, so no word boundary tells them apart): "张三丰的申请", "张 三丰",
    "张、三丰", "張三豐".
    A name in any other script as whole words, written apart or together ("ZHANG-san-feng",
    "zhangsanfeng"), so that "Li Na" is not found in "carolina-2026", nor "Müller" in
    "Sammüller-7". `han_reference`: `reference` as a Chinese name in it is compared."""
    wanted = _comparable(name)
    if len(wanted) < 2:  # one character would match too much
        return False
    if _HAN.search(wanted):
        return _han_comparable(name) in han_reference()
    words = _WORD.findall(unicodedata.normalize("NFKC", reference).casefold())
    for first in range(len(words)):
        joined = ""
        for word in words[first:]:
            joined += word
            if joined == wanted:
                return True
            if len(joined) >= len(wanted):
                break
    return False


def name_in(text: str, names: Sequence[str]) -> int | None:
    """The position (from 1) of the first of `names` that `text` holds, written apart or in
    another width or case as well ("张 三丰", "ZHANG san"); None if it holds none."""
    han_text: list[str] = []

    def han_reference() -> str:  # once for every name, and only for a name in Chinese
        if not han_text:
            han_text.append(_han_comparable(text) if _HAN.search(text) else "")
        return han_text[0]

    for position, name in enumerate(names, start=1):
        if _names(text, name, han_reference):
            return position
    return None


class WithdrawalCreate(_Strict):
    """The optional body of `POST /v1/verifications/{id}/withdraw`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "授权已撤回 (consent withdrawn in writing)"}]},
    )

    reason: FreeText | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="Why, as the caseworker records it (the household withdrew its consent, "
        "the application was withdrawn). Stored as given and shown with the verification: "
        "write no names; an ID number or a member's name is refused",
    )


class Withdrawal(BaseModel):
    """Who withdrew a verification, when, and why."""

    withdrawn_at: datetime
    withdrawn_by: str = Field(
        description="Whom the withdrawing API key belongs to (its name), as it was then",
        examples=["李娜 (五华区民政局)"],
    )
    withdrawn_by_key_id: str = Field(description="The API key that withdrew it (its id)")
    reason: str | None = None
    status_before: VerificationStatus = Field(
        description="The status it had when withdrawn: `completed` (or `failed`) means its "
        "report, if any, was made before, and stays readable"
    )


class VerificationAccepted(BaseModel):
    id: str
    reference: str
    status: VerificationStatus
    created_at: datetime


class SourceState(BaseModel):
    """One partner source of a verification, as it stands."""

    source: str = Field(description="The connector asked", examples=["bank"])
    status: SourceStatus
    detail: str | None = Field(
        default=None,
        description="Why the source is not `ok` (or what it found), in words; never a "
        "person's data",
        examples=["no answer within the source's time budget"],
    )
    fetched_at: datetime | None = Field(
        default=None, description="When its answer was in (or when it was given up)"
    )
    duration_ms: int | None = Field(
        default=None,
        description="How long the exchange that settled the source took, in milliseconds: "
        "the first fetch, or for an answer given later, the collect that brought it",
    )
    attempts: int | None = Field(
        default=None,
        description="HTTP requests made to the partner in that exchange: every page of a "
        "paged answer, each poll (a bank's submit and its poll are 2) and each retry count. "
        "Not a count of failures",
        examples=[2],
    )


class Member(BaseModel):
    """A household member as shown to callers: always masked."""

    id_number: str = Field(examples=["530102********123X"])
    name: str = Field(examples=["张*"])
    relation: Relation
    declared_monthly_income: Money


class DecisionCreate(_Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"decision": "approve", "reason": "documents checked", "recheck_class": "regular"},
                {"decision": "return", "reason": "the household register page is missing"},
            ]
        },
    )

    decision: Literal["approve", "reject", "return"] = Field(
        description="approve: the household is granted the benefit (dibao and tekun join the "
        "roll); reject: it is refused; return: sent back to the caseworker without a ruling "
        "(documents missing, say). Each is the verification's one decision, never changed: "
        "after a return, the caseworker submits a new verification when the case is ready; "
        "a re-check's report returned is started again by the next re-check pass instead (a "
        "household on the roll is not verified anew), and its new verification is decided"
    )
    reason: FreeText = Field(
        min_length=1,
        max_length=2000,
        description="Why, as the approver records it; shown as written: an ID number or a "
        "member's name is refused",
    )
    recheck_class: Literal["regular", "other"] | None = Field(
        default=None,
        description="approve only: how often the recipient is re-checked. `regular` "
        "(常补对象, yearly by default) or `other` (非常补对象, half-yearly by default); the "
        "intervals are the region's policy figures. Omitted: `regular` for tekun, `other` "
        "otherwise; on a re-check, the recipient's class so far",
    )

    monthly_benefit: GrantedMoney | None = Field(
        default=None,
        description="approve only, in yuan: the monthly benefit granted when the report "
        "computed none (its recommendation `review` or `ineligible`, approved on the "
        "approver's own findings: a source checked by hand, a documented exception). "
        "Required then for dibao and tekun, which pay it every month; refused when the "
        "report computed the benefit and this differs (the report's is granted), and for "
        "linshi, which puts nobody on the roll",
        examples=["640.00"],
    )
    one_off_amount: GrantedMoney | None = Field(
        default=None,
        description="approve only, linshi only, in yuan: the one-off amount of temporary aid "
        "granted when the report computed none (approved on the approver's own findings). "
        "Required then; refused when the report computed it and this differs (the report's "
        "is granted), and for dibao and tekun, which pay a monthly benefit",
        examples=["1920.00"],
    )
    recipient_id: UUID | None = Field(
        default=None,
        description="approve only, dibao and tekun: the recipient whose household this "
        "verification found changed (a member born or married in, one who died or moved "
        "out). The approval makes this verification's household the recipient's, in place "
        "of the one approved before: its members are the ones on the roll from now on, its "
        "benefit is paid, its authorization is the one on record, and the next re-check is "
        "scheduled from today. The recipient must be on the roll in this verification's "
        "county, for its program, and one of its members at least must be in the "
        "verification (a household whose members all differ is a new application); no "
        "other recipient's member may. Without it, an approval of a household with a "
        "member on the roll is 409 (`already-on-the-roll`). A re-check begun before the "
        "change is decided no more (`recheck-superseded`).",
        examples=["3f2b1c9e-5a47-4d2e-9c1b-8e7f6a5d4c3b"],
    )

    @field_validator("recheck_class", "monthly_benefit", "one_off_amount", "recipient_id")
    @classmethod
    def _with_an_approval_only(
        cls, value: str | Decimal | UUID | None, info: ValidationInfo
    ) -> str | Decimal | UUID | None:
        # A decision that failed its own check is the one error to report.
        decision = info.data.get("decision")
        if value is not None and decision is not None and decision != "approve":
            if info.field_name == "one_off_amount":
                raise ValueError("only an approval grants temporary aid")
            if info.field_name == "recipient_id":
                raise ValueError("only an approval changes the household on the roll")
            what = "class" if info.field_name == "recheck_class" else "benefit"
            raise ValueError(f"only an approval puts a household on the roll, with its {what}")
        return value


class Decision(BaseModel):
    id: str
    verification_id: str
    decision: Literal["approve", "reject", "return"]
    reason: str
    decided_by: str = Field(
        description="Whom the deciding API key belongs to (its name), as it was when deciding",
        examples=["王芳 (五华区民政局)"],
    )
    decided_by_key_id: str = Field(description="The API key that decided (its id)")
    decided_at: datetime
    report_hash: str | None = None
    policy_version: str | None = None
    monthly_benefit: Money | None = Field(
        default=None,
        description="An approval onto the roll (dibao, tekun): the monthly benefit it "
        "granted, the report's or, when the report computed none, the approver's",
        examples=["640.00"],
    )
    one_off_amount: Money | None = Field(
        default=None,
        description="A linshi approval: the one-off amount of temporary aid it granted, the "
        "report's or, when the report computed none, the approver's",
        examples=["1920.00"],
    )
    recipient_id: str | None = Field(
        default=None,
        description="An approval of a changed household: the recipient whose household it "
        "replaced (the decision's `recipient_id`); null for any other decision",
    )


class Verification(BaseModel):
    id: str
    reference: str
    program: Program
    region_code: str
    township_code: str | None = None
    area: Area
    as_of: date
    status: VerificationStatus
    created_at: datetime
    completed_at: datetime | None = None
    support_mode: SupportMode | None = None
    care_grade: CareGrade | None = None
    members: list[Member]
    sources: list[SourceState]
    recommendation: Recommendation | None = None
    decisions: list[Decision] = Field(default_factory=list)
    withdrawal: Withdrawal | None = Field(
        default=None, description="Set once the verification is `withdrawn`"
    )


class VerificationFilter(RequestModel):
    """Query parameters of `GET /v1/verifications`; all optional, combined with AND."""

    reference: OneLine | None = Field(default=None, max_length=128)
    status: VerificationStatus | None = None
    program: Program | None = None
    area: Area | None = None
    recommendation: Recommendation | None = None
    region_code: str | None = Field(
        default=None,
        pattern=REGION_PREFIX,
        description="Region prefix, within the caller's own region",
    )
    township_code: str | None = Field(
        default=None,
        pattern=r"^[0-9]{9}$",
        description="Only households of this township, within the caller's own region",
    )
    decided: bool | None = Field(
        default=None,
        description="false: only verifications that have no decision yet (with "
        "`status=completed`, what awaits the approval step); true: only decided ones",
    )
    created_from: IsoDateTime | None = Field(
        default=None,
        description="Only those created at or after this moment (with its offset): a case "
        "system's sync since its last run",
        examples=["2026-11-20T00:00:00+08:00"],
    )
    created_before: IsoDateTime | None = Field(
        default=None, description="Only those created before this moment (with its offset)"
    )
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=512, description="`next_cursor` of a page")


class VerificationPage(BaseModel):
    items: list[Verification]
    next_cursor: str | None = None
