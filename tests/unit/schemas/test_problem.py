"""The problem+json pieces the service and the sandbox share."""

import pytest
from pydantic import BaseModel, ValidationError, field_validator

from schemas.problem import ProblemError, field_errors, summary, unreadable_body_error


class Member(BaseModel):
    id_number: str
    age: int

    @field_validator("id_number")
    @classmethod
    def _checked(cls, value: str) -> str:
        raise ValueError("not a valid ID number")


class TestFieldErrors:
    def test_location_and_message_only_never_the_input(self) -> None:
        with pytest.raises(ValidationError) as info:
            Member.model_validate({"id_number": "110101199003070000", "age": "x"})

        errors = field_errors(info.value.errors())

        assert [e.loc for e in errors] == [["id_number"], ["age"]]
        assert errors[0].msg == "not a valid ID number"  # pydantic's "Value error, " dropped
        assert "110101199003070000" not in str([e.model_dump() for e in errors])


class TestUnreadableBodyError:
    def test_bytes_that_are_not_utf8_are_named_at_the_byte(self) -> None:
        cause = UnicodeDecodeError("utf-8", b"{\xff}", 1, 2, "invalid start byte")
        assert unreadable_body_error(cause) == ProblemError(
            loc=["body", 1], msg="not UTF-8 encoded JSON"
        )

    def test_nesting_too_deep(self) -> None:
        assert unreadable_body_error(RecursionError()).msg == "JSON nested too deeply"

    def test_anything_else_is_not_json(self) -> None:
        assert unreadable_body_error(ValueError("x")) == ProblemError(
            loc=["body"], msg="not valid JSON"
        )


class TestSummary:
    def test_where_then_why_of_the_first_error(self) -> None:
        errors = [
            ProblemError(loc=["body", "members", 0, "id_number"], msg="bad"),
            ProblemError(loc=["query"], msg="other"),
        ]
        assert summary(errors) == "body.members.0.id_number: bad"

    def test_none_without_errors(self) -> None:
        assert summary([]) is None
