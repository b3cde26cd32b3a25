"""What a connector's test read shows of the records it got: masked as its exchanges are."""

import base64
import json
from datetime import date
from decimal import Decimal
from urllib.parse import quote

import pytest
import respx

from connectors.base import fetch_evidence
from connectors.declarative import ConnectorSpec, build_connector, validate_spec
from connectors.http import USER_AGENT, PartnerClient
from schemas.evidence import HouseholdQuery, MemberQuery, PayrollRecord, RequestContext
from service.connector.registration_service import _Recorder, _secrets, _shown
from tests.connectors.declarative.specs import example
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


@pytest.mark.parametrize("encode", [quote, lambda text: text], ids=["encoded", "plain"])
def test_a_form_body_shows_its_names_and_id_numbers_masked(encode: object) -> None:
    """A form body percent-encodes what it sends: the name is masked as in JSON and XML."""
    person = make_id_number("530102")
    body = f"sfzh={person}&xm={encode('欧阳娜娜')}"  # type: ignore[operator]

    shown = _Recorder(secrets=[], names=["欧阳娜娜"]).mask(body)

    assert "欧阳娜娜" not in shown
    assert quote("欧阳娜娜") not in shown
    assert "欧阳**" in shown
    assert person not in shown


def test_a_name_or_an_id_number_written_apart_by_the_partner_is_masked() -> None:
    """A partner may echo what it was asked in its own way: a name with punctuation
    between its characters, an ID number in Chinese numerals or in groups."""
    recorder = _Recorder(secrets=[], names=["吴大伟"])
    shown = recorder.mask('{"msg": "吴、大伟", "who": "吴 大伟"}')
    assert "大伟" not in shown
    assert shown.count("吴**") == 2
    for written in ("伍叁零壹零贰壹玖玖零零壹零壹壹贰叁壹", "530102-19900101-1231"):
        shown = recorder.mask(f'{{"id": "{written}", "at": "2026-12-04"}}')
        assert "零壹零" not in shown
        assert "19900101" not in shown
        assert "2026-12-04" not in shown  # every digit of a value hiding one, as in logs


TOKEN = "eyJhbGciOi.J9-x_y+z/w=="


class TestCredentialsInBodies:
    """A token endpoint's answer holds a credential no spec secret names: the token it
    issued. A test read shows such members and parameters by name, their values as ***."""

    def mask(self, text: str) -> str:
        return _Recorder(secrets=[], names=[]).mask(text)

    def test_the_issued_token_is_masked_and_the_rest_of_the_answer_kept(self) -> None:
        body = json.dumps({"access_token": TOKEN, "token_type": "Bearer", "expires_in": 600})

        shown = json.loads(self.mask(body))

        assert shown == {"access_token": "***", "token_type": "Bearer", "expires_in": 600}

    def test_every_credential_member_is_masked_whatever_its_spacing_case_or_escapes(
        self,
    ) -> None:
        body = (
            '{"data": {"Access_Token" : "a\\"b\\\\c", "refresh_token":"r1",\n'
            '  "id_token": "i1", "client_secret": "s1", "password": "p1", "code": "000000"}}'
        )

        shown = self.mask(body)

        assert json.loads(shown) == {
            "data": {
                "Access_Token": "***",
                "refresh_token": "***",
                "id_token": "***",
                "client_secret": "***",
                "password": "***",
                "code": "000000",  # a partner's status code is no credential
            }
        }

    @pytest.mark.parametrize("cut", [len('{"access_token":"'), 20, 24, len(TOKEN) + 16])
    def test_a_token_cut_off_where_the_kept_body_ends_is_masked(self, cut: int) -> None:
        body = f'{{"access_token":"{TOKEN}","expires_in":600}}'[:cut]

        shown = self.mask(body)

        assert shown == '{"access_token":"***"'
        assert TOKEN[:2] not in shown

    def test_a_token_cut_off_in_an_escape_is_masked(self) -> None:
        assert self.mask('{"access_token":"ab\\') == '{"access_token":"***"'

    def test_credentials_in_a_form_or_query_are_masked(self) -> None:
        shown = self.mask("grant_type=password&username=u&password=p%2B1&client_secret=s+1&scope=a")

        assert shown == "grant_type=password&username=u&password=***&client_secret=***&scope=a"
        assert (
            self.mask("https://p.example/a?access_token=t1&b=2#f")
            == "https://p.example/a?access_token=***&b=2#f"
        )

    def test_names_that_merely_contain_a_credential_name_are_kept(self) -> None:
        shown = self.mask('{"next_page_token_hint":"n1"}&my_password=x')

        assert shown == '{"next_page_token_hint":"n1"}&my_password=x'


CLIENT_ID, CLIENT_SECRET = "client id", "c:s3cret+/"


@pytest.fixture
def oauth_spec(monkeypatch: pytest.MonkeyPatch) -> ConnectorSpec:
    monkeypatch.setenv("HEDUI_SECRET_TEST_MASK_ID", CLIENT_ID)
    monkeypatch.setenv("HEDUI_SECRET_TEST_MASK_SECRET", CLIENT_SECRET)
    spec = example("tax", "https://tax.example")
    spec["auth"] = {
        "type": "oauth2_client_credentials",
        "token_url": "https://tax.example/oauth/token",
        "client_id": {"env": "HEDUI_SECRET_TEST_MASK_ID"},
        "client_secret": {"env": "HEDUI_SECRET_TEST_MASK_SECRET"},
    }
    return validate_spec(spec, partner_hosts=["tax.example"])


class TestTokenExchange:
    @respx.mock
    async def test_neither_the_client_credentials_nor_the_issued_token_are_shown(
        self, oauth_spec: ConnectorSpec
    ) -> None:
        """A fetch as a test read records it: the token request, its answer, the query."""
        person = make_id_number()
        respx.post("https://tax.example/oauth/token").respond(
            json={"access_token": TOKEN, "token_type": "Bearer", "expires_in": 600}
        )
        respx.post("https://tax.example/tax/income/batch").respond(
            json={"retCode": "000000", "results": [{"sfzh": person, "found": False}]}
        )
        connector = build_connector(oauth_spec, "1")
        household = HouseholdQuery(
            region_code="530102",
            as_of=date(2026, 11, 20),
            members=(MemberQuery(id_number=person),),
            context=RequestContext(consent_id="test-read", purpose="connector_test"),
        )
        recorder = _Recorder(_secrets(oauth_spec), names=[])

        async with PartnerClient(transport=recorder, context=household.context) as client:
            await fetch_evidence(connector, household, connector.default_config(), client)

        token_call, query = recorder.exchanges()
        assert token_call.url == "https://tax.example/oauth/token"
        assert token_call.request_headers["authorization"] == "***"
        assert token_call.request_body == "grant_type=client_credentials"
        assert json.loads(token_call.response_body or "") == {
            "access_token": "***",
            "token_type": "Bearer",
            "expires_in": 600,
        }
        assert query.request_headers["authorization"] == "***"
        # The partner sees hedui calling, in a test read as in a verification.
        assert {call.request_headers["user-agent"] for call in (token_call, query)} == {USER_AGENT}
        shown = json.dumps([exchange.model_dump() for exchange in (token_call, query)])
        for credential in (TOKEN, CLIENT_ID, CLIENT_SECRET, quote(CLIENT_SECRET, safe="")):
            assert credential not in shown

    def test_the_client_credentials_are_masked_in_their_basic_pair(
        self, oauth_spec: ConnectorSpec
    ) -> None:
        """As the connector sends them to the token endpoint: each URL-encoded."""
        pair = f"{quote(CLIENT_ID, safe='')}:{quote(CLIENT_SECRET, safe='')}"
        basic = base64.b64encode(pair.encode()).decode()

        shown = _Recorder(_secrets(oauth_spec), names=[]).mask(f"echo: Basic {basic}")

        assert shown == "echo: Basic ***"


class TestEscapedAndApart:
    """A partner's JSON writer escapes what is not ASCII (`\\u5f20`), a number may be written
    apart: the text shown masks them as it masks them written plainly."""

    PERSON = "11010519491231002X"

    def mask(self, text: str) -> str:
        return _Recorder(secrets=[], names=["张三"]).mask(text)

    def test_an_escaped_name_is_masked(self) -> None:
        shown = self.mask(json.dumps({"name_esc": "张三", "n": 1}))  # ensure_ascii: escaped
        assert "\\u5f20\\u4e09" not in shown
        assert "张三" not in shown
        assert json.loads(shown)["name_esc"] == "张*"

    @pytest.mark.parametrize(
        "written",
        [
            "".join(f"\\u{ord(c):04x}" for c in PERSON),  # every character escaped
            " ".join(PERSON),  # a space between every character
            PERSON[:9] + "-" + PERSON[9:],
            "".join(f"&#{ord(c)};" for c in PERSON),
        ],
    )
    def test_an_id_number_escaped_or_apart_leaves_no_digit_of_it(self, written: str) -> None:
        shown = self.mask('{"id": "' + written + '", "ok": true}')
        digits = "".join(c for c in shown if c.isdigit())
        assert "19491231" not in digits  # masked as a run (first 6, last 4) or digit by digit
        assert self.PERSON not in shown

    def test_an_answer_with_nothing_hidden_is_shown_as_sent(self) -> None:
        body = '{"title": "\\u5e74\\u62a5", "amount": 1200, "date": "2026-11-20"}'
        assert self.mask(body) == body
