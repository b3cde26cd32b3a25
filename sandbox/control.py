"""Control endpoints: seed people, inject faults, move the clock. Never faulted, never
logged in full."""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from sandbox.consent import ConsentReport, ConsentSetting
from sandbox.faults import FaultBoard, FaultSetting
from sandbox.problems import validation_problem
from sandbox.records import Person
from sandbox.state import sandbox_state
from schemas.identity import check_character, mask_id_number
from schemas.problem import ProblemError

router = APIRouter(tags=["control"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The sandbox is up (a script waiting for `hedui sandbox` to start asks this)."""
    return {"status": "ok"}


@router.post("/people")
async def seed_person(request: Request, person: Person) -> dict[str, object]:
    """Upsert one person; sections left out mean "no record" at that agency."""
    sandbox_state(request).people.upsert(person)
    return {"id_number": mask_id_number(person.id_number), "seeded": True}


def _plausible_birth(born: date) -> date:
    if born.year < 1850 or born > date.today():
        raise ValueError("must be a date from 1850 until today")
    return born


class SampleIdNumbers(BaseModel):
    id_numbers: list[str] = Field(
        description="Valid GB 11643 numbers: region, birth date, sequence, check character",
        examples=[["530102198005010012", "530102198005010020"]],
    )


@router.get("/id-numbers")
async def sample_id_numbers(
    region_code: Annotated[
        str, Query(pattern=r"^[0-9]{6}$", description="The 6-digit region the people are from")
    ] = "530102",
    born: Annotated[
        date, AfterValidator(_plausible_birth), Query(description="Their birth date")
    ] = date(1980, 5, 1),
    first: Annotated[
        int, Query(ge=1, le=999, description="The first sequence number (3 digits)")
    ] = 1,
    count: Annotated[int, Query(ge=1, le=100)] = 3,
) -> SampleIdNumbers:
    """ID numbers to make test households with: hedui refuses a number whose last
    character is not its check character (ISO 7064 MOD 11-2 of the first 17 digits), so a
    made-up one seldom passes. Numbers nobody seeded get synthetic records at every
    agency; seed them (`POST /sandbox/people`) for records of your own."""
    last = min(first + count, 1000)
    numbers = []
    for sequence in range(first, last):
        first17 = f"{region_code}{born:%Y%m%d}{sequence:03d}"
        numbers.append(first17 + check_character(first17))
    return SampleIdNumbers(id_numbers=numbers)


@router.delete("/people")
async def forget_people(request: Request) -> dict[str, int]:
    """Forget every seeded person: they fall back to synthetic records."""
    return {"deleted": sandbox_state(request).people.clear()}


def _faults(request: Request, source: str | None = None) -> FaultBoard:
    """The fault board, after checking that `source` (when given) is an agency."""
    faults = sandbox_state(request).faults
    if source is not None and source not in faults:
        raise HTTPException(404, f"unknown source; known: {', '.join(faults.sources)}")
    return faults


@router.get("/faults")
async def list_faults(request: Request) -> dict[str, FaultSetting]:
    return _faults(request).snapshot()


@router.put("/faults", response_model=None)
async def set_faults(
    request: Request, settings: Annotated[dict[str, FaultSetting], Body()]
) -> dict[str, FaultSetting] | JSONResponse:
    """Set several sources at once (the shape `GET /faults` returns); others keep theirs."""
    faults = _faults(request)
    unknown = [
        ProblemError(loc=["body", source], msg="unknown source")
        for source in settings
        if source not in faults
    ] + [
        ProblemError(loc=["body", source, "processing_ms"], msg=_PROCESSING_BANK_ONLY)
        for source, setting in settings.items()
        if setting.processing_ms is not None and source != PROCESSING_SOURCE
    ]
    if unknown:  # validate everything before changing anything
        return validation_problem(request, unknown)
    for source, setting in settings.items():
        faults.set(source, setting)
    return faults.snapshot()


PROCESSING_SOURCE = "bank"
"""The one agency that answers later (an inquiry submitted, then polled)."""
_PROCESSING_BANK_ONLY = "only the bank answers later: processing_ms is the bank's alone"


@router.delete("/faults")
async def reset_faults(request: Request) -> dict[str, FaultSetting]:
    faults = _faults(request)
    faults.reset()
    return faults.snapshot()


@router.get("/faults/{source}")
async def get_fault(request: Request, source: str) -> FaultSetting:
    return _faults(request, source).get(source)


@router.put("/faults/{source}", response_model=FaultSetting)
async def set_fault(
    request: Request, source: str, setting: FaultSetting
) -> FaultSetting | JSONResponse:
    faults = _faults(request, source)
    if setting.processing_ms is not None and source != PROCESSING_SOURCE:
        error = ProblemError(loc=["body", "processing_ms"], msg=_PROCESSING_BANK_ONLY)
        return validation_problem(request, [error])
    faults.set(source, setting)
    return setting


@router.delete("/faults/{source}")
async def reset_fault(request: Request, source: str) -> FaultSetting:
    faults = _faults(request, source)
    faults.reset(source)
    return faults.get(source)


@router.get("/queries")
async def count_queries(request: Request) -> dict[str, int]:
    """Household queries (POSTs) each agency received since the last reset."""
    return dict(_faults(request).queries)


@router.delete("/queries")
async def reset_queries(request: Request) -> dict[str, int]:
    faults = _faults(request)
    for source in faults.queries:
        faults.queries[source] = 0
    return dict(faults.queries)


@router.get("/queries/consent")
async def consent_seen(request: Request, consent_id: str | None = None) -> ConsentReport:
    """Per agency: the household queries received, how many came without the consent
    headers (`missing`) or were refused for it, and the consent document ids and purposes
    received (the last 256 distinct pairs, most recent first; `consent_id` keeps one)."""
    return sandbox_state(request).consent.report(consent_id)


@router.put("/queries/consent")
async def require_consent(request: Request, setting: ConsentSetting) -> ConsentReport:
    """`{"require": true}`: agencies refuse (403) a household query without both headers."""
    consent = sandbox_state(request).consent
    consent.require = setting.require
    return consent.report()


@router.delete("/queries/consent")
async def reset_consent(request: Request) -> ConsentReport:
    """Forget what was received (the `require` setting stays)."""
    consent = sandbox_state(request).consent
    consent.reset()
    return consent.report()


CLOCK_MAX_ADVANCE_S = 30 * 24 * 3600


class ClockAdvance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    advance_s: float = Field(
        gt=0,
        le=CLOCK_MAX_ADVANCE_S,
        description="Seconds to move the agencies' time forward",
        examples=[300],
    )


class ClockState(BaseModel):
    offset_s: float = Field(description="How far the agencies' time is ahead of real time")


@router.get("/clock")
async def get_clock(request: Request) -> ClockState:
    return ClockState(offset_s=sandbox_state(request).clock.offset_s)


@router.post("/clock")
async def advance_clock(request: Request, advance: ClockAdvance) -> ClockState:
    """Move the agencies' time forward: a bank inquiry that was to take 5 minutes is done
    after `{"advance_s": 300}`. hedui's own clock does not move."""
    return ClockState(offset_s=sandbox_state(request).clock.advance(advance.advance_s))


@router.delete("/clock")
async def reset_clock(request: Request) -> ClockState:
    """Back to real time."""
    clock = sandbox_state(request).clock
    clock.reset()
    return ClockState(offset_s=clock.offset_s)


@router.get("/traffic")
async def traffic(request: Request) -> dict[str, dict[str, int]]:
    """Every call each agency received since the last reset, as a partner enforcing an
    agreed rate and concurrency sees them: `calls`, `max_in_flight` (most handled at once)
    and `max_per_second` (most arrived within any one second)."""
    return {source: seen.summary() for source, seen in _faults(request).traffic.items()}


@router.delete("/traffic")
async def reset_traffic(request: Request) -> dict[str, dict[str, int]]:
    faults = _faults(request)
    faults.reset_traffic()
    return {source: seen.summary() for source, seen in faults.traffic.items()}
