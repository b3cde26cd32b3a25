"""Looking a person up by ID number: the number travels in a request body, never a URL."""

from pydantic import ConfigDict, Field, StrictInt

from schemas.identity import IdNumber
from schemas.request import RequestModel


class PersonSearch(RequestModel):
    """`POST /v1/people/search`: the verifications in which this person is a member."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"id_number": "11010519491231002X", "limit": 50}]},
    )

    id_number: IdNumber
    limit: StrictInt = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=512, description="`next_cursor` of a page")
