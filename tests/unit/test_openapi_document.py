"""The served OpenAPI document as a whole: every body and 2xx answer has an example, every
error answer is the problem+json the service sends with a real problem type, and every
example is valid against its schema (JSON Schema Draft 2020-12)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from service.app import create_app
from service.config import Settings
from service.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE, PROBLEM_TYPES

NOT_PROBLEMS = {("/healthz", "get", "503")}
"""Error answers that are not problems: a load balancer's probe answers its own JSON."""


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp: Path = tmp_path_factory.mktemp("openapi-document")
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp / 'unused.db'}",
        sandbox="on",
        sandbox_data=tmp / "sandbox.db",
    )
    return create_app(settings, run_migrations=False).openapi()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def media_examples(media: dict[str, Any]) -> list[Any]:
    found = [example["value"] for example in media.get("examples", {}).values()]
    return [media["example"], *found] if "example" in media else found


def component_of(schema: dict[str, Any]) -> str | None:
    for option in [schema, *schema.get("anyOf", [])]:
        if "$ref" in option:
            return str(option["$ref"]).rsplit("/", 1)[-1]
    return None


def validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """`schema` with the document's components beside it, so `#/components/...` resolves."""
    return Draft202012Validator({**schema, "components": document["components"]})


def test_every_body_and_success_answer_has_an_example(document: dict[str, Any]) -> None:
    components, missing = document["components"]["schemas"], []
    for path, method, operation in operations(document):
        for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
            name = component_of(media.get("schema", {}))
            own = components.get(name, {}).get("examples") if name else None
            if not media_examples(media) and not own:
                missing.append(f"{method.upper()} {path} request {media_type}")
        for status, response in operation["responses"].items():
            media = response.get("content", {}).get("application/json")
            if status.startswith("2") and media is not None and not media_examples(media):
                missing.append(f"{method.upper()} {path} {status}")
    assert missing == []


def test_every_error_answer_is_a_problem_with_its_own_status(document: dict[str, Any]) -> None:
    wrong = []
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if status < "400" or (path, method, status) in NOT_PROBLEMS:
                continue
            where = f"{method.upper()} {path} {status}"
            content = response.get("content", {})
            if set(content) != {PROBLEM_MEDIA_TYPE}:
                wrong.append(f"{where}: {sorted(content)}")
                continue
            media = content[PROBLEM_MEDIA_TYPE]
            assert media["schema"] == {"$ref": "#/components/schemas/Problem"}, where
            examples = media_examples(media)
            if not examples:
                wrong.append(f"{where}: no example")
            for example in examples:
                slug = example["type"].removeprefix(PROBLEM_BASE)
                if example["status"] != int(status) or slug not in PROBLEM_TYPES:
                    wrong.append(f"{where}: {example['type']} {example['status']}")
    assert wrong == []


def test_every_example_is_valid_against_its_schema(document: dict[str, Any]) -> None:
    invalid, checked = [], 0
    for name, component in document["components"]["schemas"].items():
        for example in component.get("examples", []):
            schema = {"$ref": f"#/components/schemas/{name}"}
            errors = [e.message for e in validator(document, schema).iter_errors(example)]
            invalid += [f"components/schemas/{name}: {error}" for error in errors]
            checked += 1
    for path, method, operation in operations(document):
        bodies = [("request", operation.get("requestBody", {}))]
        for status, response in [*bodies, *operation["responses"].items()]:
            for media_type, media in response.get("content", {}).items():
                check = validator(document, media.get("schema", {}))
                for example in media_examples(media):
                    errors = [e.message for e in check.iter_errors(example)]
                    where = f"{method.upper()} {path} {status} {media_type}"
                    invalid += [f"{where}: {error}" for error in errors]
                    checked += 1
    assert invalid == []
    assert checked > 200


def problem_types(document: dict[str, Any], path: str, method: str) -> dict[str, set[str]]:
    """Each documented error status of an operation, with the problem types of its examples."""
    responses = document["paths"][path][method]["responses"]
    return {
        status: {
            example["value"]["type"].removeprefix(PROBLEM_BASE)
            for example in response["content"][PROBLEM_MEDIA_TYPE]["examples"].values()
        }
        for status, response in responses.items()
        if status >= "400" and PROBLEM_MEDIA_TYPE in response.get("content", {})
    }


@pytest.mark.parametrize(
    ("path", "method", "expected"),
    [
        ("/v1/connectors", "get", {"401", "403", "422", "503"}),
        (
            "/v1/verifications",
            "post",
            {"401", "403", "408", "413", "415", "422", "429", "503"},
        ),
        ("/v1/verifications/{verification_id}", "get", {"401", "403", "404", "422", "503"}),
        (
            "/v1/verifications/{verification_id}/report",
            "get",
            {"401", "403", "404", "409", "422", "503"},
        ),
        ("/problems/{slug}", "get", {"404"}),
    ],
)
def test_operations_list_the_statuses_they_can_answer(
    document: dict[str, Any], path: str, method: str, expected: set[str]
) -> None:
    assert set(problem_types(document, path, method)) == expected


@pytest.mark.parametrize(
    ("path", "method", "status", "slug"),
    [
        ("/v1/verifications/{verification_id}/report", "get", "409", "report-not-ready"),
        ("/v1/verifications/{verification_id}/decision", "post", "409", "decision-exists"),
        ("/v1/verifications/{verification_id}/decision", "post", "409", "already-on-the-roll"),
        ("/v1/verifications/{verification_id}/withdraw", "post", "409", "verification-withdrawn"),
        ("/v1/verifications/{verification_id}/rescore", "post", "409", "records-purged"),
        ("/v1/verifications", "post", "413", "too-large"),
        ("/v1/verifications", "post", "408", "body-timeout"),
        ("/v1/verifications", "post", "429", "rate-limited"),
        ("/v1/verifications", "post", "503", "overloaded"),
        ("/v1/verifications", "post", "503", "unavailable"),
        ("/v1/batches", "post", "413", "batch-too-large"),
        ("/v1/batches/{batch_id}/close", "post", "422", "validation"),
        ("/v1/apikeys/{key_id}/revoke", "post", "409", "api-key-revoked"),
        ("/v1/connectors/{name}/pause", "post", "403", "forbidden"),
    ],
)
def test_problem_examples_name_the_real_problem_type(
    document: dict[str, Any], path: str, method: str, status: str, slug: str
) -> None:
    assert slug in problem_types(document, path, method)[status]


def test_problem_examples_name_the_path_asked(document: dict[str, Any]) -> None:
    responses = document["paths"]["/v1/verifications/{verification_id}/report"]["get"]
    examples = responses["responses"]["409"]["content"][PROBLEM_MEDIA_TYPE]["examples"]
    instance = examples["report-not-ready"]["value"]["instance"]
    assert instance.startswith("/v1/verifications/")
    assert instance.endswith("/report")
    assert "{" not in instance


def test_no_error_answer_uses_the_framework_validation_model(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert "HTTPValidationError" not in str(document["paths"])
