"""The sandbox as one ASGI app: control endpoints plus one router per agency.

The service mounts it at `/sandbox`; `hedui sandbox` runs it alone. Everything it holds
(seeded people, faults, bank inquiries) belongs to the app instance, so tests can build
as many independent sandboxes as they like.
"""

from pathlib import Path

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from sandbox import (
    bank,
    business,
    control,
    housing_fund,
    pensions,
    public_payroll,
    real_estate,
    social_insurance,
    tax,
    vehicles,
)
from sandbox.clock import SandboxClock
from sandbox.consent import ConsentLog
from sandbox.faults import FaultBoard, FaultGate
from sandbox.inquiries import Inquiries
from sandbox.openapi import install_openapi
from sandbox.people import People
from sandbox.problems import install_problems
from sandbox.state import SandboxState
from sandbox.wire import WireFormat

DESCRIPTION = """
Fake partner agencies for trying and testing hedui, each with its own wire format (XML,
JSON batches, form-encoded fen amounts, pinyin keys, asynchronous bank inquiries), as
described in hedui's docs/partners.md. No authentication: never expose it.

- `POST /people` seeds what every agency knows about one ID number (sections left out mean
  "no record"); a person never seeded gets deterministic synthetic records.
- `PUT /faults/{source}` makes one agency slow, failing, hanging, answering garbage or down;
  `PUT /faults/bank {"processing_ms": N}` makes bank inquiries take N ms to be done.
- `GET /queries/consent` shows the consent document ids and purposes each agency was told
  (`X-Hedui-Consent-Id`, `X-Hedui-Purpose`) and counts the household queries without them;
  `PUT /queries/consent {"require": true}` makes the agencies refuse those.
- `POST /clock {"advance_s": N}` moves the agencies' time forward (`DELETE /clock` resets it),
  so a bank that takes minutes to answer can be tested in seconds.
"""

AGENCIES = (
    vehicles,
    pensions,
    housing_fund,
    real_estate,
    public_payroll,
    bank,
    business,
    tax,
    social_insurance,
)
WIRE_FORMATS: dict[str, WireFormat] = {agency.SOURCE: agency.WIRE for agency in AGENCIES}
SOURCES = tuple(WIRE_FORMATS)


def create_sandbox_app(data_path: str | Path | None = None, *, synthetic: bool = True) -> FastAPI:
    """A fresh sandbox; seeded people persist in SQLite at `data_path` (None: in memory).

    An ID number nobody seeded gets deterministic synthetic records, or, with
    `synthetic=False`, none: every agency answers that it knows nothing about the person.
    """
    # Docs assets are served by the sandbox itself, as by hedui: no CDN needed.
    app = FastAPIOffline(
        title="hedui sandbox agencies",
        description=DESCRIPTION,
        version="1",
        # FastAPI's own OpenTelemetry off, as in hedui's app: nobody reads a test partner's
        # spans, and the check for a configured provider was 8 % of its CPU per call
        # (py-spy, a batch's load: it reads the environment at every request).
        telemetry={"tracing": False, "metrics": False, "logs": False},
        openapi_tags=[
            {"name": "control", "description": "Seed people and inject faults (test set-up)"},
            *({"name": agency.SOURCE, "description": agency.__doc__} for agency in AGENCIES),
        ],
    )
    clock = SandboxClock()
    state = SandboxState(
        people=People(Path(data_path) if data_path is not None else None, synthetic=synthetic),
        faults=FaultBoard(SOURCES),
        inquiries=Inquiries(clock=clock.now),
        consent=ConsentLog({agency.SOURCE: agency.QUERIES for agency in AGENCIES}),
        clock=clock,
    )
    app.state.sandbox = state
    # Routes are matched in order: agencies first, as they take nearly all the traffic.
    for agency in AGENCIES:
        app.include_router(agency.router, tags=[agency.SOURCE])
    app.include_router(control.router)
    app.add_middleware(FaultGate, board=state.faults, formats=WIRE_FORMATS, consent=state.consent)
    install_problems(app)
    install_openapi(app)
    return app
