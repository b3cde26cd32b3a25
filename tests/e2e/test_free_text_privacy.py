"""An ID number belongs in a sealed column: free text a caller writes (reasons, notes, an
Idempotency-Key, a webhook URL) is refused when it holds one, and a path that names a
person instead of an object leaves the audit trail masked."""

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from schemas.connector import PauseRequest, ResumeRequest
from schemas.recipient import RecipientStop
from schemas.verification import DecisionCreate
from schemas.warning import WarningNote
from schemas.webhook import WebhookCreate
from tests.conftest import ClientFactory
from tests.factories import make_id_number, member, traces_of_id_number, verification_body

PERSON = make_id_number("530102")


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (DecisionCreate, {"decision": "return", "reason": f"see {PERSON} 张三"}, "reason"),
        (RecipientStop, {"reason": f"stop {PERSON}"}, "reason"),
        (WarningNote, {"note": f"visited {PERSON.lower()}"}, "note"),
        (PauseRequest, {"reason": f"complaint about {PERSON}"}, "reason"),
        (ResumeRequest, {"reason": PERSON}, "reason"),
        (PauseRequest, {"reason": f"see {PERSON[:6]}\u200b{PERSON[6:]}"}, "reason"),
        (WarningNote, {"note": f"{PERSON[:6]} {PERSON[6:14]} {PERSON[14:]}"}, "note"),
        (
            WebhookCreate,
            {
                "url": f"https://cases.example.cn/x?id={PERSON}",
                "events": ["warning.raised"],
                "secret": "s" * 32,
            },
            "url",
        ),
    ],
)
def test_free_text_with_an_id_number_is_refused_naming_the_field(
    model: type[BaseModel], body: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(body)

    [error] = refused.value.errors()
    assert error["loc"] == (field,)
    assert "ID number" in error["msg"]


async def test_an_idempotency_key_with_an_id_number_is_refused(api_client: ClientFactory) -> None:
    caseworker = await api_client(role="caseworker", region="53")
    body = verification_body([member(make_id_number("530102"))], region_code="530102")

    answer = await caseworker.post(
        "/v1/verifications", json=body, headers={"Idempotency-Key": f"case-{PERSON}"}
    )

    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert PERSON not in answer.text


async def test_an_idempotency_key_of_bytes_beyond_ascii_is_refused(
    api_client: ClientFactory,
) -> None:
    """Read as Latin-1 guesses, stored so: another client's retry could send it otherwise."""
    caseworker = await api_client(role="caseworker", region="53")
    body = verification_body([member(make_id_number("530102"))], region_code="530102")

    answer = await caseworker.post(
        "/v1/verifications",
        json=body,
        headers=[("Idempotency-Key", "案件-0001".encode())],
    )

    assert answer.status_code == 422, answer.text
    [error] = answer.json()["errors"]
    assert error == {"loc": ["header", "Idempotency-Key"], "msg": "must be printable ASCII"}


async def test_a_person_named_in_a_path_is_not_kept_in_the_audit_trail(
    api_client: ClientFactory,
) -> None:
    caseworker = await api_client(role="caseworker", region="53")
    auditor = await api_client(role="auditor", region="53")

    looked_up = await caseworker.get(f"/v1/verifications/{PERSON}")

    assert looked_up.status_code == 404
    events = (await auditor.get("/v1/audit", params={"limit": 50})).json()["items"]
    [event] = [e for e in events if e["request_id"] == looked_up.headers["x-request-id"]]
    assert event["object_id"] == "<invalid>"  # no id of ours: not kept, even masked
    assert traces_of_id_number(PERSON, str(event)) == []
