"""A partner's figures are held to what a household can have: beyond, the answer is wrong."""

import pytest
from pydantic import ValidationError

from schemas.evidence import PropertyRecord
from tests.factories import make_id_number


@pytest.mark.parametrize("area", ["1E+999999", "10000001", "-1"])
def test_a_floor_area_beyond_any_dwelling_is_refused(area: str) -> None:
    with pytest.raises(ValidationError) as refused:
        PropertyRecord(
            id_number=make_id_number(),
            certificate="云(2024)昆明市不动产权第0001号",
            usage="residential",
            area_m2=area,  # type: ignore[arg-type]  # as a partner sends it
            region_code="530102",
            value="800000",  # type: ignore[arg-type]
        )
    assert refused.value.errors()[0]["loc"] == ("area_m2",)
