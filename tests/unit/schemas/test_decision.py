"""A decision's body: what each decision may carry."""

import pytest
from pydantic import ValidationError

from schemas.verification import DecisionCreate


def test_an_approval_carries_the_recheck_class() -> None:
    body = {"decision": "approve", "reason": "documents checked", "recheck_class": "regular"}
    assert DecisionCreate.model_validate(body).recheck_class == "regular"


@pytest.mark.parametrize("decision", ["reject", "return"])
def test_a_recheck_class_on_anything_but_an_approval_is_refused(decision: str) -> None:
    body = {"decision": decision, "reason": "owns a car", "recheck_class": "regular"}

    with pytest.raises(ValidationError) as refused:
        DecisionCreate.model_validate(body)

    assert refused.value.errors()[0]["loc"] == ("recheck_class",)
