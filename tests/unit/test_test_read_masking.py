"""What a connector's test read shows: account numbers by their last 4 digits, in the
records and in every exchange that quotes them."""

from decimal import Decimal

from schemas.evidence import BankAccountRecord
from service.connector.registration_service import _account_of, _Recorder, _shown


def test_an_account_number_is_shown_by_its_last_four_digits_everywhere() -> None:
    record = BankAccountRecord(
        id_number="530102199001011231",
        bank="某银行",
        account="6228480099991111",
        balance=Decimal("87654.32"),
    )
    recorder = _Recorder([], ["欧阳娜娜"])
    account = _account_of(record)
    assert account == "6228480099991111"
    recorder.accounts = [account]

    shown = _shown(record, recorder.mask)
    quoted = recorder.mask('{"acct": "6228480099991111", "name": "欧阳娜娜"}')

    assert shown.account == "************1111"
    assert shown.id_number == "530102********1231"
    assert "6228480099991111" not in quoted
    assert "************1111" in quoted
    assert "欧阳娜娜" not in quoted


def test_an_account_shown_masked_already_is_left_alone() -> None:
    record = BankAccountRecord(
        id_number="530102199001011231", bank="b", account="****1111", balance=Decimal(1)
    )
    assert _account_of(record) is None
