"""The `Hedui-Signature` scheme: HMAC-SHA256 over `t.body`, Stripe style."""

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.errors import InvalidRequest
from service.webhook.service import checked_url
from service.webhook.signature import sign, verify

SECRET = "whsec_0123456789abcdef"


def test_the_documented_recipe_checks_a_signature() -> None:
    body = b'{"id":"e1","type":"warning.raised"}'
    header = sign(SECRET, 1_780_000_000, body)
    t, v1 = (part.split("=", 1)[1] for part in header.split(","))
    expected = hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    assert v1 == expected


@given(st.binary(max_size=512), st.integers(1_700_000_000, 1_900_000_000))
def test_a_signature_verifies_and_any_change_breaks_it(body: bytes, timestamp: int) -> None:
    header = sign(SECRET, timestamp, body)
    assert verify(SECRET, header, body, now=timestamp)
    assert not verify(SECRET, header, body + b" ", now=timestamp)
    assert not verify("another-secret-0000", header, body, now=timestamp)
    assert not verify(SECRET, header, body, now=timestamp + 301)
    assert not verify(SECRET, "t=x,v1=00", body, now=timestamp)


def test_urls_are_checked_against_the_allow_list() -> None:
    allowed = ["cases.example.cn", "*.county.example.cn"]
    assert checked_url("https://cases.example.cn/hook", allowed)
    assert checked_url("https://a.county.example.cn/hook", allowed)
    for url in (
        "https://evil.example.com/",
        "http://169.254.169.254/",
        "file:///etc/passwd",
        "https://user:pw@cases.example.cn/",
        "https://cases.example.cn.evil.com/",
    ):
        with pytest.raises(InvalidRequest) as refused:
            checked_url(url, allowed)
        assert refused.value.errors is not None
        assert refused.value.errors[0].loc == ["body", "url"]


def test_an_allowed_host_with_a_port_admits_that_port_alone() -> None:
    """`127.0.0.1:9000`: the receiver on this machine, not every service it runs."""
    allowed = ["127.0.0.1:9000", "cases.example.cn:443"]
    assert checked_url("http://127.0.0.1:9000/hook", allowed)
    assert checked_url("https://cases.example.cn/hook", allowed)  # 443, the scheme's
    for url in ("http://127.0.0.1:6379/", "http://127.0.0.1/", "http://cases.example.cn/"):
        with pytest.raises(InvalidRequest):
            checked_url(url, allowed)


def test_with_no_host_allowed_the_refusal_says_how_to_allow_one() -> None:
    for allowed, words in (([], "sets HEDUI_WEBHOOK_HOSTS"), (["x.example.cn"], "allow-list")):
        with pytest.raises(InvalidRequest) as refused:
            checked_url("https://cases.example.cn/hook", allowed)
        assert refused.value.errors is not None
        assert words in refused.value.errors[0].msg


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1\\.county.example.cn/",
        "https://.county.example.cn/",
        "https://x..county.example.cn/",
        "https://%2e.county.example.cn/",
        "https://-x.county.example.cn/",
        "https://" + "a" * 64 + ".county.example.cn/",
    ],
)
def test_a_host_that_ends_in_an_allowed_suffix_but_is_no_name_is_refused(url: str) -> None:
    """It could never be delivered to, and would take one of the region's webhooks."""
    with pytest.raises(InvalidRequest) as refused:
        checked_url(url, ["*.county.example.cn"])
    assert refused.value.errors is not None
    assert refused.value.errors[0].msg == "its host is not a name or an address"


@pytest.mark.parametrize(
    "url",
    [
        "https://a-b.county.example.cn/",
        "https://svc_1.county.example.cn/hook",
        "http://[::1]:8080/",
        "http://10.0.0.7/",
    ],
)
def test_names_and_addresses_are_well_formed(url: str) -> None:
    assert checked_url(url, ["*.county.example.cn", "::1", "10.0.0.7"]) == url
