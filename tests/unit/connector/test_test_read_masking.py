"""What a connector's test read shows of the records it got: masked as its exchanges are."""

from decimal import Decimal

from schemas.evidence import PayrollRecord
from service.connector.registration_service import _Recorder, _shown
from tests.factories import make_id_number


def test_text_a_partner_wrote_is_masked_in_the_records_shown() -> None:
    person = make_id_number("530102")
    record = PayrollRecord(
        id_number=person,
        employer=f"{person} 张三丰 余额 123456.78 key-s3cret",
        monthly_salary=Decimal("3000.00"),
    )

    shown = _shown(record, _Recorder(secrets=["key-s3cret"], names=["张三丰"]).mask)

    assert isinstance(shown, PayrollRecord)
    assert shown.id_number == person[:6] + "********" + person[-4:]
    assert person not in shown.employer
    assert "张三丰" not in shown.employer
    assert "key-s3cret" not in shown.employer
    assert shown.monthly_salary == Decimal("3000.00")
