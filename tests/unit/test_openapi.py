"""The API documents: response examples, request headers, and the sandbox's own document."""

import copy
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from schemas import recipient as recipient_wire
from schemas import report as report_wire
from schemas import verification as wire
from schemas import warning as warning_wire
from schemas import webhook as webhook_wire
from service.app import create_app
from service.config import Settings
from service.openapi_examples import APPLICANT, CHILD

FULL_ID = re.compile(r"\d{17}[\dX]")


def app_client(tmp_path: Path, sandbox: str) -> httpx.AsyncClient:
    """The app without its lifespan: documents need neither database nor partners."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}",
        sandbox=sandbox,  # type: ignore[arg-type]
        sandbox_data=tmp_path / "sandbox.db",
    )
    app = create_app(settings, run_migrations=False)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://hedui.test")


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(tmp_path, "on") as client:
        yield client


@pytest.fixture(scope="module")
async def served_document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The document, as the app serves it: built once, as a running service builds it once
    (1-3 s of the module's time per test otherwise)."""
    async with app_client(tmp_path_factory.mktemp("openapi"), "on") as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


@pytest.fixture
def document(served_document: dict[str, Any]) -> dict[str, Any]:
    """A copy of the served document for each test: no test sees what another changed."""
    return copy.deepcopy(served_document)


def example_of(document: dict[str, Any], path: str, method: str, status: str) -> Any:
    return document["paths"][path][method]["responses"][status]["content"]["application/json"][
        "example"
    ]


@pytest.mark.parametrize(
    ("path", "method", "status", "model"),
    [
        ("/v1/verifications", "post", "202", wire.VerificationAccepted),
        ("/v1/verifications", "post", "200", wire.Verification),
        ("/v1/verifications", "get", "200", wire.VerificationPage),
        ("/v1/verifications/{verification_id}", "get", "200", wire.Verification),
        ("/v1/verifications/{verification_id}/report", "get", "200", report_wire.Report),
        ("/v1/verifications/{verification_id}/withdraw", "post", "200", wire.Verification),
        ("/v1/recipients", "get", "200", recipient_wire.RecipientPage),
        ("/v1/recipients/{recipient_id}", "get", "200", recipient_wire.Recipient),
        ("/v1/warnings", "get", "200", warning_wire.WarningPage),
        ("/v1/warnings/{warning_id}", "get", "200", warning_wire.Warning),
        ("/v1/webhooks", "post", "201", webhook_wire.Webhook),
    ],
)
def test_response_examples_are_valid_responses(
    document: dict[str, Any], path: str, method: str, status: str, model: type[BaseModel]
) -> None:
    example = example_of(document, path, method, status)
    assert example, f"{method.upper()} {path} {status} has no example"
    parsed = model.model_validate(example)
    # A valid example is also exactly what the service would send for it.
    assert parsed.model_dump(mode="json") == example


def test_the_report_example_is_what_the_scorer_computes(document: dict[str, Any]) -> None:
    """Pension 300 received + 200 declared, two members, Yunnan urban 640: (640 − 250) × 2."""
    report = example_of(document, "/v1/verifications/{verification_id}/report", "get", "200")
    assert report["recommendation"] == "eligible"
    assert report["household"]["per_capita_monthly_income"] == "250.00"
    assert report["benefit"]["monthly_amount"] == "780.00"
    assert report["score"] == 96
    assert report["policy"]["version"] == "53/dibao/urban@2020-06-01"
    assert [source["source"] for source in report["sources"]] == sorted(
        source["source"] for source in report["sources"]
    )


def test_the_list_example_holds_a_verification(document: dict[str, Any]) -> None:
    page = example_of(document, "/v1/verifications", "get", "200")
    single = example_of(document, "/v1/verifications/{verification_id}", "get", "200")
    assert page["items"] == [single]
    assert page["next_cursor"] is None


def test_no_document_carries_a_full_id_number(document: dict[str, Any]) -> None:
    text = json.dumps(document, ensure_ascii=False)
    for id_number in (APPLICANT, CHILD):
        assert id_number not in text
    assert "530102********1231" in text
    # Only request examples (what a caller sends) hold a full ID number: the documented one.
    assert set(FULL_ID.findall(text)) == {"11010519491231002X"}


def test_idempotency_key_and_prefer_are_described_where_accepted(
    document: dict[str, Any],
) -> None:
    post = document["paths"]["/v1/verifications"]["post"]
    headers = {p["name"]: p for p in post["parameters"] if p["in"] == "header"}
    assert set(headers) == {"Idempotency-Key", "Prefer"}
    assert "same body" in headers["Idempotency-Key"]["description"]
    assert "422" in headers["Idempotency-Key"]["description"]
    assert headers["Idempotency-Key"]["schema"]["anyOf"][0]["maxLength"] == 255
    assert "wait=N" in headers["Prefer"]["description"]
    assert "200" in headers["Prefer"]["description"]
    for status in ("200", "202"):
        documented = post["responses"][status]["headers"]
        assert {"Location", "Idempotent-Replayed", "Preference-Applied"} <= set(documented)
    # Accepted nowhere else (a batch takes an Idempotency-Key of its own meaning): no other
    # operation documents them.
    allowed = {("/v1/verifications", "post"): set(), ("/v1/batches", "post"): {"Idempotency-Key"}}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            names = {p["name"] for p in operation.get("parameters", [])}
            extra = names & {"Idempotency-Key", "Prefer"} - allowed.get((path, method), set())
            if (path, method) != ("/v1/verifications", "post"):
                assert not extra, (method, path)


async def test_docs_link_the_sandbox_document(client: httpx.AsyncClient) -> None:
    description = (await client.get("/openapi.json")).json()["info"]["description"]
    assert "[/sandbox/docs](/sandbox/docs)" in description

    page = await client.get("/sandbox/docs")
    assert page.status_code == 200
    assert "cdn." not in page.text
    script = page.text.split('<script src="', 1)[1].split('"', 1)[0]
    assert script.startswith("/sandbox/")
    assert (await client.get(script)).status_code == 200


async def test_the_sandbox_document_tags_control_and_each_agency(
    client: httpx.AsyncClient,
) -> None:
    sandbox = (await client.get("/sandbox/openapi.json")).json()
    tags = {tag["name"]: tag["description"] for tag in sandbox["tags"]}
    assert set(tags) == {
        "control",
        "vehicles",
        "pensions",
        "housing_fund",
        "real_estate",
        "public_payroll",
        "bank",
        "business",
        "tax",
        "social_insurance",
    }
    assert all(tags.values())
    paths = sandbox["paths"]
    assert paths["/people"]["post"]["tags"] == ["control"]
    assert paths["/faults/{source}"]["put"]["tags"] == ["control"]
    assert paths["/vehicles/query"]["post"]["tags"] == ["vehicles"]
    assert paths["/bank/inquiries/{inquiry_id}"]["get"]["tags"] == ["bank"]
    assert sandbox["servers"] == [{"url": "/sandbox"}]


async def test_without_the_sandbox_there_is_no_link(tmp_path: Path) -> None:
    async with app_client(tmp_path, "off") as client:
        description = (await client.get("/openapi.json")).json()["info"]["description"]
        assert "/sandbox/docs" not in description
        assert (await client.get("/sandbox/docs")).status_code == 404


def _body_models() -> dict[str, type[BaseModel]]:
    """Every request model of the schemas package, by the name the document gives it."""
    import importlib
    import pkgutil

    import schemas

    found: dict[str, type[BaseModel]] = {}
    for info in pkgutil.iter_modules(schemas.__path__):
        module = importlib.import_module(f"schemas.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseModel):
                found.setdefault(value.__name__, value)
    return found


def test_every_request_body_has_an_example_that_is_a_valid_request(
    document: dict[str, Any],
) -> None:
    """What Swagger fills the body with is a request hedui accepts, for every operation:
    a model's own examples, or its fields' when each required one has one."""
    from connectors.declarative import validate_spec

    components, models = document["components"]["schemas"], _body_models()
    missing, checked = [], 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is None:
                continue
            schema = body["schema"]
            ref = next((s["$ref"] for s in [schema, *schema.get("anyOf", [])] if "$ref" in s), None)
            if ref is None:  # the media type's own examples: a batch, a declarative spec
                examples = [e["value"] for e in body.get("examples", {}).values()]
                if path.startswith("/v1/connectors"):
                    for example in examples:
                        assert validate_spec(example, partner_hosts=["127.0.0.1"]).name
                        checked += 1
                if not examples and "example" not in body:
                    missing.append(f"{method.upper()} {path}")
                continue
            name = ref.rsplit("/", 1)[1]
            component, model = components[name], models[name]
            examples = list(component.get("examples", []))
            if not examples:
                fields = component.get("properties", {})
                required = component.get("required", [])
                if any("examples" not in fields[field] for field in required):
                    missing.append(f"{method.upper()} {path} ({name})")
                continue
            for example in examples:
                model.model_validate(example)
                checked += 1
    assert missing == [], missing
    assert checked >= 10
