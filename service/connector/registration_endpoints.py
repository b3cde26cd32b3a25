"""`/v1/connectors`: register declarative connectors, version, test-read and activate them."""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, status

from connectors.declarative import ConnectorSpec
from connectors.declarative.spec import record_kinds_schema
from schemas import connector_registration as wire
from schemas.connector import CodeConnector
from schemas.identity import mask_id_number
from schemas.problem import ProblemError
from service.audit.recorder import about, created
from service.connector.registration_service import DeclarativeConnectorNotFound
from service.connector.registration_service import registration as registration_service
from service.connector.service import connector as connector_service
from service.deps import (
    ConnectorOwnerDep,
    ConnectorReaderDep,
    IntegratorDep,
    RegistryDep,
    SessionDep,
    SettingsDep,
)
from service.errors import Conflict, InvalidRequest, OutsideRegion
from service.problem_docs import problems
from service.routing import JSONRoute

router = APIRouter(prefix="/v1/connectors", tags=["connectors"], route_class=JSONRoute)

SpecBody = Annotated[
    dict[str, Any],
    Body(
        description="A declarative connector spec (see `GET /v1/connectors/schema`)",
        openapi_examples={
            "tax": {
                "summary": "The sandbox tax agency: a JSON batch API, amounts in fen",
                "value": wire.SPEC_EXAMPLE,
            }
        },
    ),
]


@router.get("/schema", summary="The declarative connector spec's JSON Schema")
async def spec_schema(_: ConnectorReaderDep) -> dict[str, Any]:
    """With `x-record-kinds`: for each `response.kind`, the fields `response.fields` must
    map (`required`), may map (`optional`), and which are amounts (they take `unit`)."""
    return {
        **ConnectorSpec.model_json_schema(by_alias=True),
        "x-record-kinds": record_kinds_schema(),
    }


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=wire.RegisteredConnector,
    responses=problems(
        InvalidRequest(
            "The connector spec is invalid: /request/url must be an http or https URL",
            errors=[
                ProblemError(
                    loc=["body", "request", "url"],
                    msg="must be an http or https URL",
                    pointer="/request/url",
                )
            ],
        ),
        Conflict("'city_pensions' is registered already: PUT a new version instead"),
    ),
    summary="Register a declarative HTTP connector (version 1, not yet in force)",
)
async def register_connector(
    request: Request,
    body: SpecBody,
    session: SessionDep,
    registry: RegistryDep,
    settings: SettingsDep,
    principal: ConnectorOwnerDep,
) -> wire.RegisteredConnector:
    """Validated fully before anything is stored: a bad spec is a 422 whose `errors` name
    each bad field by JSON `pointer`. Test-read it, then enable it."""
    registered = await registration_service.register(session, principal, body, registry, settings)
    created(request, registered.name)
    return registered


@router.get(
    "/{name}",
    response_model=wire.RegisteredConnector | CodeConnector,
    responses=problems(DeclarativeConnectorNotFound("city_pensions")),
    summary="One connector: a declarative one's latest spec and versions, a built-in or "
    "plugin one's config (secrets masked)",
)
async def read_connector(
    name: str,
    session: SessionDep,
    registry: RegistryDep,
    settings: SettingsDep,
    _: ConnectorReaderDep,
) -> wire.RegisteredConnector | CodeConnector:
    """Declarative specs hold secret references only (`{"env": "HEDUI_SECRET_TAX_API_KEY"}`); a code
    connector's secret-like settings are shown as `***`."""
    if registry.is_code(name):
        return await connector_service.detail(session, registry, settings, name)
    return await registration_service.read(session, name)


@router.put(
    "/{name}",
    response_model=wire.RegisteredConnector,
    responses=problems(
        DeclarativeConnectorNotFound("city_pensions"),
        InvalidRequest.at(["body", "name"], "differs from the URL"),
        Conflict(
            "city_pensions has 50 versions, the most this deployment allows "
            "(HEDUI_MAX_CONNECTOR_VERSIONS): versions are kept, since reports name the "
            "version they used"
        ),
    ),
    summary="Store a new version of a declarative connector's spec",
)
async def new_connector_version(
    name: str,
    body: SpecBody,
    session: SessionDep,
    settings: SettingsDep,
    principal: ConnectorOwnerDep,
) -> wire.RegisteredConnector:
    """The version in force stays until the new one is test-read and enabled; reports keep
    naming the version that produced their facts."""
    return await registration_service.new_version(session, principal, name, body, settings)


@router.post(
    "/{name}/test",
    response_model=wire.ConnectorTestResult,
    responses=problems(
        DeclarativeConnectorNotFound("city_pensions"),
        OutsideRegion(),
        InvalidRequest.at(["body", "version"], "no version 3"),
        Conflict(
            "city_pensions is paused by an operator (王芳: partner maintenance): a test read "
            "would call its partner; an operator resumes it first "
            "(POST /v1/connectors/city_pensions/resume)"
        ),
    ),
    summary="Test-read the partner for a household of the key's region (at most 5 pages, "
    "100 records)",
)
async def read_partner_for_test(
    name: str,
    body: wire.ConnectorTestRequest,
    request: Request,
    session: SessionDep,
    principal: IntegratorDep,
) -> wire.ConnectorTestResult:
    """The household's `region_code` must lie inside the key's region (403 naming it
    otherwise). Nothing about the household is stored; a successful read lets the version be
    enabled. Requests and answers come back with ID numbers, names and secrets masked; the
    audit trail records the read with the household's region and the ID numbers, masked."""
    about(
        request,
        region=body.region_code,
        detail="members " + ", ".join(mask_id_number(m.id_number) for m in body.members),
    )
    return await registration_service.test_read(session, principal, name, body, datetime.now(UTC))


@router.post(
    "/{name}/enable",
    response_model=wire.RegisteredConnector,
    responses=problems(
        DeclarativeConnectorNotFound("city_pensions"),
        InvalidRequest.at(["body", "version"], "no version 3"),
        Conflict(
            "Version 2 has no successful test read: POST /v1/connectors/city_pensions/test "
            'first, or enable it untested with the body {"force": true}'
        ),
    ),
    summary="Put a version in force (it needs a successful test read, or force)",
)
async def enable_connector(
    name: str,
    session: SessionDep,
    _: ConnectorOwnerDep,
    registry: RegistryDep,
    body: Annotated[wire.ConnectorEnable | None, Body()] = None,
) -> wire.RegisteredConnector:
    """Every process uses it for new verifications within a few seconds. A name that a
    plugin installed since the registration holds is refused (409): the plugin answers
    under it."""
    return await registration_service.enable(
        session, name, body or wire.ConnectorEnable(), registry
    )


@router.post(
    "/{name}/disable",
    response_model=wire.RegisteredConnector,
    responses=problems(DeclarativeConnectorNotFound("city_pensions")),
    summary="Stop asking this partner in new verifications",
)
async def disable_connector(
    name: str, session: SessionDep, _: ConnectorOwnerDep
) -> wire.RegisteredConnector:
    return await registration_service.disable(session, name)
