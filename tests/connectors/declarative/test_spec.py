"""Validating a declarative spec: every problem named by a JSON pointer to the bad field."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from connectors.declarative import SpecInvalid, validate_spec
from connectors.declarative.spec import SECRETS_DIR_ENV, Batch, ConnectorSpec, SecretRef
from tests.connectors.declarative.specs import example


def _problems(spec: dict[str, Any], **kwargs: Any) -> dict[str, str]:
    with pytest.raises(SpecInvalid) as caught:
        validate_spec(spec, **kwargs)
    return {problem.pointer: problem.message for problem in caught.value.problems}


def _with(spec: dict[str, Any], pointer: str, value: object) -> dict[str, Any]:
    changed = copy.deepcopy(spec)
    *parents, last = pointer.strip("/").split("/")
    target = changed
    for part in parents:
        target = target[part]
    target[last] = value
    return changed


TAX = example("tax")


@pytest.mark.parametrize("name", ["tax", "business"])
def test_the_examples_are_valid(name: str) -> None:
    spec = validate_spec(example(name))

    assert isinstance(spec, ConnectorSpec)
    assert spec.name == name


def test_an_unknown_field_is_named() -> None:
    problems = _problems(_with(TAX, "/response/fields/annual_amount/exp", "x"))

    assert problems == {"/response/fields/annual_amount/exp": "unknown field"}


def test_a_field_the_record_kind_lacks_is_named() -> None:
    problems = _problems(_with(TAX, "/response/fields/monthly_amount", {"expr": "x"}))

    assert list(problems) == ["/response/fields/monthly_amount"]
    assert "unknown field of kind taxed_income" in problems["/response/fields/monthly_amount"]


@pytest.mark.parametrize(
    ("field", "const", "unit", "said"),
    [
        ("year", "二〇二五", None, "valid integer"),
        ("annual_amount", -5, "fen", "greater than or equal to 0"),
        ("annual_amount", True, None, "not a boolean"),
    ],
    ids=["text for a year", "a negative amount", "a boolean amount"],
)
def test_a_constant_no_record_could_hold_is_refused(
    field: str, const: object, unit: str | None, said: str
) -> None:
    """It would fail every record the partner sends, counted as the partner's malformed
    answers: refused at registration instead, at the constant."""
    mapping = {"const": const} if unit is None else {"const": const, "unit": unit}
    problems = _problems(_with(TAX, f"/response/fields/{field}", mapping))

    assert list(problems) == [f"/response/fields/{field}/const"]
    assert problems[f"/response/fields/{field}/const"].startswith(f"not a value of {field}: ")
    assert said in problems[f"/response/fields/{field}/const"]


@pytest.mark.parametrize(
    ("field", "mapping"),
    [("year", {"const": 2025}), ("annual_amount", {"const": 120000, "unit": "fen"})],
)
def test_a_constant_a_record_can_hold_is_taken(field: str, mapping: dict[str, Any]) -> None:
    spec = validate_spec(_with(TAX, f"/response/fields/{field}", mapping))

    assert spec.response.fields[field].const == mapping["const"]


@pytest.mark.parametrize(
    ("pointer", "value"),
    [
        ("/mode/max_items", True),
        ("/mode/max_items", "20"),
        ("/mode/max_items", 20.0),
        ("/limits/max_attempts", True),
        ("/limits/rate_per_s", True),
        ("/limits/timeout_s", "5"),
        ("/limits/max_concurrency", False),
    ],
)
def test_a_number_is_never_a_boolean_or_a_string(pointer: str, value: object) -> None:
    """`"max_items": true` was stored as 1, `"20"` as 20."""
    section, name = pointer.strip("/").split("/")
    spec = (
        _with(TAX, "/limits", {name: value}) if section == "limits" else _with(TAX, pointer, value)
    )
    problems = _problems(spec)

    assert list(problems) == [pointer]


def test_numbers_as_json_writes_them_are_taken() -> None:
    spec = validate_spec(
        _with(_with(TAX, "/limits", {"rate_per_s": 5, "timeout_s": 2.5}), "/mode/max_items", 50)
    )

    assert isinstance(spec.mode, Batch)
    assert (spec.limits.rate_per_s, spec.limits.timeout_s, spec.mode.max_items) == (5.0, 2.5, 50)


def test_a_jmespath_syntax_error_is_named() -> None:
    problems = _problems(_with(TAX, "/response/fields/annual_amount/expr", "taxableIncome[?"))

    assert list(problems) == ["/response/fields/annual_amount/expr"]
    assert "jmespath" in problems["/response/fields/annual_amount/expr"]


def test_a_host_outside_the_allow_list_is_refused() -> None:
    spec = _with(TAX, "/base_url", "http://169.254.169.254/latest")

    problems = _problems(spec)

    assert problems == {
        "/base_url": "host 169.254.169.254 (port 80) is not in the partner allow-list "
        "(HEDUI_PARTNER_HOSTS)"
    }


@pytest.mark.parametrize(
    ("base_url", "allowed"),
    [
        ("http://127.0.0.1:8000/tax", True),
        ("http://127.0.0.1:6379/tax", False),  # another service of the same machine
        ("http://localhost:8000/tax", True),
        ("http://[::1]:8000/tax", True),
        ("https://tax.partners.example.cn/api", True),  # 443, the scheme's
        ("http://tax.partners.example.cn/api", False),  # 80
        ("http://10.0.0.7:9000/tax", True),  # an entry without a port: any port
    ],
)
def test_an_allow_list_entry_with_a_port_admits_that_port_alone(
    base_url: str, allowed: bool
) -> None:
    hosts = ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "*.partners.example.cn:443"]
    spec = _with(TAX, "/base_url", base_url)
    try:
        validate_spec(spec, partner_hosts=[*hosts, "10.0.0.7"])
    except SpecInvalid as refused:
        problems = {problem.pointer: problem.message for problem in refused.problems}
    else:
        problems = {}
    assert ("/base_url" not in problems) is allowed, problems


ID = "530102199001011231"  # a valid ID number (check character and birth date)


@pytest.mark.parametrize(
    ("pointer", "value"),
    [
        ("/base_url", f"http://127.0.0.1:9000/{ID}"),
        ("/request/path", f"/q/{ID}"),
        ("/request/query", {"who": ID}),
        ("/request/headers", {"X-Who": ID}),
        ("/request/headers", {"X-Who": "5301 0219 9001 0112 31"}),  # written apart
        ("/title", f"tax of {ID}"),
    ],
)
def test_an_id_number_anywhere_in_a_spec_is_refused_without_repeating_it(
    pointer: str, value: object
) -> None:
    """A spec is stored and shown as written, and its URL, query and headers go to the
    partner with every call: an ID number in it would be in every one."""
    problems = _problems(_with(TAX, pointer, value))

    [(where, why)] = [(p, m) for p, m in problems.items() if "ID number" in m]
    assert where.startswith(pointer)
    assert "{id_number} placeholder" in why
    assert ID not in json.dumps(problems)


def test_a_member_name_holding_an_id_number_is_not_repeated_in_its_pointer() -> None:
    problems = _problems(_with(TAX, "/request/headers", {f"X-{ID}": "1"}))

    assert ID not in json.dumps(problems)
    assert any(p.startswith("/request/headers/") and "ID number" in m for p, m in problems.items())


def test_a_spec_of_the_wrong_shape_names_its_url_problems_too() -> None:
    spec = _with(_with(TAX, "/bogus", 1), "/base_url", "http://evil.example.com/x")

    problems = _problems(spec)

    assert problems == {
        "/bogus": "unknown field",
        "/base_url": "host evil.example.com (port 80) is not in the partner allow-list "
        "(HEDUI_PARTNER_HOSTS)",
    }


def test_the_allow_list_admits_named_hosts_and_wildcards() -> None:
    spec = _with(TAX, "/base_url", "https://api.tax.example.gov.cn/v1")

    assert validate_spec(spec, partner_hosts=["*.example.gov.cn"]).base_url.startswith("https")
    assert _problems(spec)  # not on the default list


def test_a_missing_secret_reference_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEDUI_SECRET_TEST_TAX_KEY", raising=False)
    spec = _with(
        TAX,
        "/auth",
        {
            "type": "api_key",
            "in": "header",
            "name": "X-Api-Key",
            "secret": {"env": "HEDUI_SECRET_TEST_TAX_KEY"},
        },
    )

    problems = _problems(spec)

    assert list(problems) == ["/auth/secret/env"]
    monkeypatch.setenv("HEDUI_SECRET_TEST_TAX_KEY", "k-123")
    assert validate_spec(spec).auth.type == "api_key"


def test_a_secret_file_must_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRETS_DIR_ENV, str(tmp_path))
    spec = _with(TAX, "/auth", {"type": "bearer", "token": {"file": str(tmp_path / "none")}})

    assert _problems(spec) == {"/auth/token/file": "secret file is not set or empty"}
    (tmp_path / "none").write_text("partner-token\n")
    assert validate_spec(spec).auth.type == "bearer"


def _bearer(reference: dict[str, str]) -> dict[str, Any]:
    return _with(TAX, "/auth", {"type": "bearer", "token": reference})


@pytest.mark.parametrize("variable", ["HEDUI_DATABASE_URL", "HEDUI_KEK", "PATH", "HOME"])
def test_only_variables_set_for_connectors_are_secrets(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, "the service's own")

    problems = _problems(_bearer({"env": variable}))

    assert problems == {
        "/auth/token/env": "a secret's environment variable must be named HEDUI_SECRET_*"
    }
    assert SecretRef(env=variable).reveal() is None  # nor read at use, if stored earlier


def test_secret_files_are_read_only_from_the_operators_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets, elsewhere = tmp_path / "secrets", tmp_path / "elsewhere"
    secrets.mkdir()
    elsewhere.mkdir()
    (elsewhere / "db.key").write_text("not a partner's")
    (secrets / "escape").symlink_to(elsewhere / "db.key")
    outside = [
        str(elsewhere / "db.key"),
        str(secrets / ".." / "elsewhere" / "db.key"),
        str(secrets / "escape"),
        "relative/token",
    ]
    monkeypatch.delenv(SECRETS_DIR_ENV, raising=False)
    assert list(_problems(_bearer({"file": str(secrets / "tax")}))) == ["/auth/token/file"]

    monkeypatch.setenv(SECRETS_DIR_ENV, str(secrets))
    for path in outside:
        problems = _problems(_bearer({"file": path}))
        assert problems == {"/auth/token/file": f"a secret file must be in {SECRETS_DIR_ENV}"}
        assert SecretRef(file=path).reveal() is None


@pytest.mark.parametrize(
    "content",
    [
        "hedui-kek-v1:0+mgCz9zhZKKQw==",
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAw\n-----END PRIVATE KEY-----",
    ],
)
def test_hedui_s_own_keys_are_never_a_partner_secret(
    content: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRETS_DIR_ENV, str(tmp_path))
    (tmp_path / "hedui.key").write_text(content)

    problems = _problems(_bearer({"file": str(tmp_path / "hedui.key")}))

    assert problems == {"/auth/token/file": "secret file is not set or empty"}


def test_a_secret_given_in_clear_is_an_unknown_field() -> None:
    spec = _with(TAX, "/auth", {"type": "bearer", "token": {"value": "s3cret"}})

    problems = _problems(spec)

    assert "/auth/token/value" in problems


@pytest.mark.parametrize("encoding", ["bogus-enc", "rot13", "hex"])
def test_an_xml_body_declaring_an_unknown_encoding_is_refused(encoding: str) -> None:
    body = {
        "type": "xml",
        "template": f'<?xml version="1.0" encoding="{encoding}"?><Query>{{members}}</Query>',
        "member_template": '<P id="{id_number}"/>',
    }

    problems = _problems(_with(TAX, "/request/body", body))

    assert problems == {
        "/request/body/template": "the XML declaration may name UTF-8 only: the body is sent so"
    }


def test_an_xml_body_with_entities_is_refused() -> None:
    body = {
        "type": "xml",
        "template": '<!DOCTYPE q [<!ENTITY x "y">]><Query>&x;{members}</Query>',
        "member_template": '<P id="{id_number}"/>',
    }

    problems = _problems(_with(TAX, "/request/body", body))

    assert problems == {"/request/body/template": "DTDs and entities are not allowed"}


def test_an_id_number_placeholder_outside_the_body_is_refused() -> None:
    problems = _problems(_with(TAX, "/request/path", "/income/{id_number}"))

    assert list(problems) == ["/request/path"]
    assert "unknown placeholder {id_number}" in problems["/request/path"]


def test_stray_braces_are_refused() -> None:
    problems = _problems(_with(TAX, "/request/query", {"q": "{{x}}"}))

    assert list(problems) == ["/request/query/q"]


def test_every_problem_is_reported_at_once() -> None:
    spec = _with(TAX, "/base_url", "http://10.0.0.1")
    spec = _with(spec, "/response/fields/bogus", {"expr": "x"})

    assert set(_problems(spec)) == {"/base_url", "/response/fields/bogus"}


def test_a_missing_required_record_field_is_named() -> None:
    spec = copy.deepcopy(TAX)
    del spec["response"]["fields"]["year"]

    assert _problems(spec) == {"/response/fields": "missing required fields: year"}


def test_a_wrong_union_member_points_into_the_document() -> None:
    problems = _problems(_with(TAX, "/mode/max_items", 0))

    assert list(problems) == ["/mode/max_items"]


def test_the_json_schema_describes_the_spec() -> None:
    schema = ConnectorSpec.model_json_schema()

    assert {"name", "base_url", "request", "mode", "response", "health"} <= set(schema["required"])


def test_the_json_schema_describes_oauth_error_rules_and_rate_limits() -> None:
    schema = ConnectorSpec.model_json_schema(by_alias=True)
    definitions = schema["$defs"]

    assert "OAuth2ClientCredentials" in definitions
    assert set(definitions["ErrorRule"]["properties"]) == {"status", "when", "action"}
    assert {"rate_per_s", "max_concurrency"} <= set(definitions["Limits"]["properties"])
    assert "errors" in schema["properties"]


def test_an_error_rule_must_match_something() -> None:
    spec = example("tax")
    spec["errors"] = [{"action": "retry"}]

    with pytest.raises(SpecInvalid) as invalid:
        validate_spec(spec)

    assert [p.pointer for p in invalid.value.problems] == ["/errors/0"]


@pytest.mark.parametrize(
    "status", [301, 302, 307, 401, 403, 407, 408, 413, 414, 429, 431, 500, 503, 599]
)
def test_an_unavailable_partner_cannot_be_read_as_no_record(status: int) -> None:
    """Down, elsewhere (a redirect), or our request refused unread: it did not look."""
    spec = example("tax")
    spec["errors"] = [{"status": [404, status], "action": "not_found"}]

    with pytest.raises(SpecInvalid) as invalid:
        validate_spec(spec)

    assert [p.pointer for p in invalid.value.problems] == ["/errors/0"]
    assert "never 'no record'" in str(invalid.value.problems[0].message)


@pytest.mark.parametrize("action", ["retry", "partner_error"])
def test_an_unavailable_status_may_be_retried_or_an_error(action: str) -> None:
    spec = example("tax")
    spec["errors"] = [{"status": [404], "action": "not_found"}, {"status": [503], "action": action}]

    assert validate_spec(spec).errors[1].status == [503]


@pytest.mark.parametrize("value", ["李梅", "a\r\nX-Injected: 1", "a\nb"])
def test_a_header_value_http_cannot_carry_as_is_is_refused(value: str) -> None:
    problems = _problems(_with(TAX, "/request/headers", {"X-Agency": value}))

    assert problems == {"/request/headers/X-Agency": "must be ASCII text without line breaks"}


@pytest.mark.parametrize("path", ["/income\r\n/batch", "/income batch", "/收入"])
def test_a_path_with_spaces_controls_or_unencoded_text_is_refused(path: str) -> None:
    assert list(_problems(_with(TAX, "/request/path", path))) == ["/request/path"]


LEAVING_PATHS = [
    "/../../../v1/verifications",
    "/income/../../v1/verifications",
    "/./income",
    "/income/..",
    "/%2e%2e/%2E%2e/v1/verifications",
    "/.%2e/v1",
    "/%252e%252e/v1",
    "/income/..;x/v1",
    "/income%2f..%2fv1",
    "/income\\..\\v1",
    "/income%5c..%5cv1",
    "/income\\batch",
]


@pytest.mark.parametrize("field", ["request", "health"])
@pytest.mark.parametrize("path", LEAVING_PATHS)
def test_a_path_that_can_leave_base_url_s_path_is_refused(field: str, path: str) -> None:
    """base_url + `/../../v1/verifications` is the partner host's `/v1/verifications`,
    outside the path the spec was allowed: dot-segments, percent-encoded or not, and
    backslashes (a slash to some servers) are refused."""
    problems = _problems(_with(TAX, f"/{field}/path", path))

    assert problems == {
        f"/{field}/path": "must hold no dot-segment (. or .., percent-encoded or not) and no "
        "backslash: it stays below base_url"
    }


@pytest.mark.parametrize("path", ["/income/batch.json", "/v1..2/x", "/.../x", "/x?from=.."])
def test_dots_that_are_no_dot_segment_are_accepted(path: str) -> None:
    assert validate_spec(_with(TAX, "/request/path", path)).request.path == path


@pytest.mark.parametrize("url", ["http://127.0.0.1/a/../tax", "http://127.0.0.1/a/%2e%2e/tax"])
def test_a_base_url_with_dot_segments_is_refused(url: str) -> None:
    assert _problems(_with(TAX, "/base_url", url)) == {
        "/base_url": "its path must hold no dot-segment (. or .., percent-encoded or not) and "
        "no backslash"
    }


def test_a_name_holding_an_id_number_is_refused() -> None:
    # A source's name is in every report, metric label and log line.
    problems = _problems(_with(TAX, "/name", "p530102199001011231"))

    assert list(problems) == ["/name"]
    assert problems["/name"].startswith("must not contain an ID number or any run of 18 digits")


@pytest.mark.parametrize("url", ["http://127.0.0.1\t:9901/tax", "http://127.0.0.1/ta x"])
def test_a_base_url_http_cannot_carry_as_is_is_refused(url: str) -> None:
    assert list(_problems(_with(TAX, "/base_url", url))) == ["/base_url"]


@pytest.mark.parametrize(
    "name", ["Host", "Content-Length", "Transfer-Encoding", "X-Hedui-Consent-Id"]
)
def test_an_api_key_cannot_be_sent_as_a_header_http_or_hedui_sets(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEDUI_SECRET_TEST_KEY", "k")
    auth = {
        "type": "api_key",
        "in": "header",
        "name": name,
        "secret": {"env": "HEDUI_SECRET_TEST_KEY"},
    }

    assert _problems(_with(TAX, "/auth", auth)) == {"/auth/name": "not a header a spec may set"}

    auth["name"] = "Authorization"  # what an API key may well be sent as
    assert validate_spec(_with(TAX, "/auth", auth)).auth.type == "api_key"


@pytest.mark.parametrize(
    "name",
    ["Connection", "Proxy-Authorization", "Keep-Alive", "TE", "Upgrade", "Cookie", "Host"],
)
def test_a_hop_by_hop_or_credential_header_is_not_a_request_header_a_spec_may_set(
    name: str,
) -> None:
    """`Connection: close, X-Hedui-Consent-Id` would have a proxy drop the consent header;
    a credential written in clear would be shown in every test read."""
    headers = {**TAX["request"].get("headers", {}), name: "close, X-Hedui-Consent-Id"}
    pointer = f"/request/headers/{name}"
    assert _problems(_with(TAX, "/request/headers", headers)) == {
        pointer: "not a header a spec may set"
    }


def test_a_connector_cannot_be_named_as_a_path_of_hedui_s_own() -> None:
    """`GET /v1/connectors/schema` is the spec's JSON Schema: such a connector could never
    be read back."""
    assert _problems(_with(TAX, "/name", "schema")) == {"/name": "is a path of hedui's own"}
    assert validate_spec(_with(TAX, "/name", "schemas")).name == "schemas"


@pytest.mark.parametrize(
    "expression",
    ["(" * 490 + "x" + ")" * 490, "!" * 998 + "x", "[" * 330 + "x" + "]" * 330, "!" * 40 + "x"],
    ids=["parentheses", "negations", "brackets", "forty negations"],
)
def test_an_expression_nested_too_deep_is_named(expression: str) -> None:
    """The parser and the interpreter recurse: a deep expression is refused, not a crash."""
    problems = _problems(_with(TAX, "/response/records", expression))

    assert problems == {"/response/records": "a jmespath expression nested more than 32 deep"}


def test_an_expression_nested_32_deep_is_accepted() -> None:
    validate_spec(_with(TAX, "/response/records", "!" * 31 + "results"))


def _template(extra: dict[str, Any]) -> dict[str, Any]:
    """The tax example's JSON body template with `extra` members beside its own."""
    template = {**extra, **TAX["request"]["body"]["template"]}
    return _with(TAX, "/request/body/template", template)


def _request(part: str, extra: dict[str, str]) -> dict[str, Any]:
    return _with(TAX, f"/request/{part}", extra)


SURROGATE = "\ud800"
UNENCODABLE = "must be valid Unicode: a lone surrogate (U+D800 to U+DFFF) cannot be encoded"
NAMED_UNENCODABLE = f"its name {UNENCODABLE}"


@pytest.mark.parametrize(
    ("spec", "pointer", "message"),
    [
        (_template({"x": f"a{SURROGATE}"}), "/request/body/template/x", UNENCODABLE),
        (_template({SURROGATE: "a"}), "/request/body/template/\ufffd", NAMED_UNENCODABLE),
        (_template({"x": [{"y": SURROGATE}]}), "/request/body/template/x/0/y", UNENCODABLE),
        (_request("headers", {SURROGATE: "v"}), "/request/headers/\ufffd", NAMED_UNENCODABLE),
        (_request("query", {f"q{SURROGATE}": "v"}), "/request/query/q\ufffd", NAMED_UNENCODABLE),
        (_request("query", {"q": SURROGATE}), "/request/query/q", UNENCODABLE),
        (
            _with(TAX, f"/response/fields/year{SURROGATE}", {"expr": "taxYear"}),
            "/response/fields/year\ufffd",
            NAMED_UNENCODABLE,
        ),
        (_with(TAX, "/title", f"个税{SURROGATE}"), "/title", UNENCODABLE),
    ],
    ids=[
        "template value",
        "template key",
        "template list",
        "header name",
        "query name",
        "query value",
        "field name",
        "title",
    ],
)
def test_a_lone_surrogate_is_named_where_it_is(
    spec: dict[str, Any], pointer: str, message: str
) -> None:
    """No UTF-8 encodes `\\ud800`: it could be neither stored nor sent (nor named in an
    answer as it is: the pointer shows it as U+FFFD)."""
    assert _problems(spec) == {pointer: message}


@pytest.mark.parametrize(
    ("spec", "pointer", "message"),
    [
        (
            _template({"x": "a\x00b"}),
            "/request/body/template/x",
            "must not contain a NUL character",
        ),
        (
            _template({"x\x00": "a"}),
            "/request/body/template/x\ufffd",
            "its name must not contain a NUL character",
        ),
        (_request("query", {"q": "\x00"}), "/request/query/q", "must not contain a NUL character"),
    ],
    ids=["template value", "template key", "query value"],
)
def test_a_nul_character_is_named_on_every_database(
    spec: dict[str, Any], pointer: str, message: str
) -> None:
    """PostgreSQL refuses NUL in text and SQLite stores it: refused alike, before either."""
    assert _problems(spec) == {pointer: message}


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_a_number_json_has_no_value_for_is_named(number: float) -> None:
    """NaN, Infinity and 1e400 (read as infinity) were stored as null, silently."""
    problems = _problems(_template({"x": {"y": [1, number]}}))

    assert problems == {
        "/request/body/template/x/y/1": "must be a finite number (JSON has no NaN or Infinity)"
    }


def test_text_past_its_size_is_named() -> None:
    problems = _problems(_request("query", {"q": "v" * 20_001, "r" * 257: "v"}))

    assert problems == {
        "/request/query/q": "must be at most 20000 characters",
        f"/request/query/{'r' * 257}": "its name must be at most 256 characters",
    }


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (json.loads('{"a":' * 17 + '"x"' + "}" * 17), "nested more than 16 deep"),
        ({f"k{index}": "v" for index in range(1000)}, "more than 1000 values"),
        # Each string within its own bound, the whole far past: megabytes a member.
        ({"pad": ["y" * 19_000] * 50}, "more than 20000 characters written as JSON"),
    ],
    ids=["deep", "wide", "long"],
)
def test_a_json_body_template_is_bounded(template: dict[str, Any], message: str) -> None:
    template["taxpayers"] = TAX["request"]["body"]["template"]["taxpayers"]

    problems = _problems(_with(TAX, "/request/body/template", template))

    assert problems == {"/request/body/template": message}


def test_a_form_body_template_is_bounded() -> None:
    spec = _with(TAX, "/mode", {"type": "per_member"})
    spec["request"]["body"] = {"type": "form", "template": {f"k{i}": "v" for i in range(51)}}
    spec["response"].pop("answers")

    assert list(_problems(spec)) == ["/request/body/template"]

    spec["request"]["body"]["template"] = {f"k{i}": "v" * 1_000 for i in range(21)}
    assert _problems(spec) == {
        "/request/body/template": "more than 20000 characters in its names and values"
    }


@pytest.mark.parametrize(
    "host", ["127.0.0.1\\.partners.example.cn", "x..partners.example.cn", "%2e.partners.example.cn"]
)
def test_a_base_url_whose_host_is_no_name_is_refused(host: str) -> None:
    problems = _problems(
        _with(TAX, "/base_url", f"http://{host}/tax"), partner_hosts=["*.partners.example.cn"]
    )
    assert problems == {"/base_url": "its host is not a name or an address"}


def test_the_api_documents_example_is_the_tax_example_of_the_walk_through() -> None:
    from schemas.connector_registration import SPEC_EXAMPLE

    assert SPEC_EXAMPLE == TAX
