"""Registering declarative connectors over the API: what integrators send and receive.

The spec itself is `connectors.declarative.ConnectorSpec` (its JSON Schema is served at
`GET /v1/connectors/schema`); these are the envelopes around it.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from schemas.connector import Pause
from schemas.dates import IsoDate
from schemas.evidence import CONSENT_ID_MAX, CONSENT_ID_PATTERN, Record
from schemas.identity import IdNumber, hides_id_number
from schemas.request import RequestModel

TEST_MAX_PAGES = 5
TEST_MAX_RECORDS = 100
TEST_BODY_CHARS = 2000
TEST_TIMEOUT_S = 10.0
TEST_CONSENT_ID = "test-read"
"""The consent header of a test read that names no authorization."""


MAX_VERSION = 2**31 - 1
"""Versions are numbered 1, 2, ...: a 32-bit integer on every database."""


class ConnectorVersionInfo(BaseModel):
    version: int
    tested_ok: bool = Field(description="A test read of this version succeeded")
    created_at: datetime


class RegisteredConnector(BaseModel):
    """A declarative connector with its latest spec (secrets appear as references only)."""

    name: str
    title: str
    origin: Literal["declarative"] = "declarative"
    enabled: bool
    active_version: int | None = Field(description="The version new verifications use")
    latest_version: int
    versions: list[ConnectorVersionInfo]
    spec: dict[str, Any]
    updated_at: datetime
    paused: Pause | None = Field(
        default=None,
        description="An operator's pause (who, why, since when): it outlives a disable and "
        "holds again the moment the connector is enabled, until an operator resumes it",
    )


class TestMember(RequestModel):
    id_number: IdNumber
    name: str | None = Field(default=None, max_length=64)


SPEC_EXAMPLE: dict[str, Any] = {
    "name": "tax",
    "title": "个税 annual taxable income",
    "base_url": "http://127.0.0.1:8000/sandbox/tax",
    "request": {
        "method": "POST",
        "path": "/income/batch",
        "body": {
            "type": "json",
            "template": {"taxpayers": {"$each_member": {"sfzh": "{id_number}"}}},
        },
    },
    "mode": {"type": "batch", "max_items": 20, "member": "sfzh", "lists": "every_member"},
    "response": {
        "format": "json",
        "error": "retCode != '000000'",
        "records": "results[?found]",
        "answers": "results",
        "kind": "taxed_income",
        "fields": {
            "year": {"expr": "taxYear"},
            "annual_amount": {"expr": "taxableIncome", "unit": "fen"},
        },
    },
    "health": {"path": "/health", "expect": "retCode == '000000'"},
}
"""The sandbox tax agency's spec (`examples/connectors/tax.json`, docs/connectors.md): the
example of `POST /v1/connectors` and `PUT /v1/connectors/{name}`."""


class ConnectorTestRequest(RequestModel):
    """A household to test-read the partner with; nothing about it is stored."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "region_code": "530102",
                    "members": [{"id_number": "11010519491231002X", "name": "张三"}],
                    "consent_document_id": "AUTH-TEST-01",
                }
            ]
        },
    )

    region_code: str = Field(pattern=r"^[0-9]{6}$", examples=["530102"])
    as_of: IsoDate | None = Field(
        default=None, description="The day the test read is as of; default today"
    )
    members: list[TestMember] = Field(min_length=1, max_length=20)
    version: StrictInt | None = Field(
        default=None, ge=1, le=MAX_VERSION, description="Default: the latest version"
    )
    consent_document_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=CONSENT_ID_MAX,
        pattern=CONSENT_ID_PATTERN,
        description="The authorization the test read is made under, sent to the partner as "
        f"`X-Hedui-Consent-Id` (default `{TEST_CONSENT_ID}`); the purpose sent is "
        "`connector_test`",
        examples=["AUTH-TEST-01"],
    )

    @field_validator("consent_document_id")
    @classmethod
    def _carries_no_id_number(cls, document_id: str | None) -> str | None:
        if document_id is not None and hides_id_number(document_id):
            raise ValueError("must not contain an ID number or any run of 18 digits")
        return document_id


class Exchange(BaseModel):
    """One HTTP request of the test read and its answer, ID numbers and secrets masked."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str | None
    status: int | None
    response_body: str | None
    duration_ms: float


class ConnectorTestResult(BaseModel):
    name: str
    version: int
    ok: bool
    elapsed_ms: float
    records: list[Record]
    answered: int = Field(description="Members the partner's answers accounted for")
    exchanges: list[Exchange]
    error: str | None = Field(default=None, description="Why the read failed, if it did")


class ConnectorEnable(RequestModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"version": 2}]})

    version: StrictInt | None = Field(
        default=None,
        ge=1,
        le=MAX_VERSION,
        description="Version to put in force; default: the latest",
    )
    force: StrictBool = Field(
        default=False, description="Activate even though no test read of it succeeded"
    )
