"""Batch uploads refused as a whole, over real HTTP on SQLite and PostgreSQL: each is a 422
naming the field, never a 500, and stores nothing at all (no batch, no verification).
A refused household line, by contrast, is listed in the batch's errors and the other
lines go on."""

import json
from typing import Any

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.factories import make_id_number, member, verification_body

JSON = {"content-type": "application/json"}
NDJSON = {"content-type": "application/x-ndjson"}


def household(reference: str, **changes: Any) -> dict[str, Any]:
    body = verification_body([member(make_id_number())], reference=reference)
    body.update(changes)
    return body


def text(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False)


async def batch_ids(client: httpx.AsyncClient) -> list[str]:
    page = await client.get("/v1/batches", params={"limit": 200})
    assert page.status_code == 200, page.text
    return [batch["id"] for batch in page.json()["items"]]


async def verifications_named(client: httpx.AsyncClient, reference: str) -> list[Any]:
    listed = await client.get("/v1/verifications", params={"reference": reference})
    assert listed.status_code == 200, listed.text
    items: list[Any] = listed.json()["items"]
    return items


async def refused(
    client: httpx.AsyncClient,
    body: bytes,
    loc: list[str | int],
    *,
    url: str = "/v1/batches",
    headers: dict[str, str] = JSON,
    stored_nothing_of: tuple[str, ...] = (),
) -> dict[str, Any]:
    """POST `body`: a 422 at `loc`, and no batch (nor verification of `stored_nothing_of`)."""
    before = await batch_ids(client)
    answer = await client.post(url, content=body, headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = answer.json()
    assert problem["errors"][0]["loc"] == loc, problem
    assert "location" not in answer.headers
    assert await batch_ids(client) == before
    for reference in stored_nothing_of:
        assert await verifications_named(client, reference) == []
    return problem


class TestUndecodableText:
    @pytest.mark.parametrize(
        ("body", "loc"),
        [
            (rb'{"\x": 1, "households": []}', ["body"]),
            (rb'{"households": [], "\x": 1}', ["body"]),
            (b'{"\xff": 1, "households": []}', ["body"]),
            (rb'{"reference": "a\x", "households": []}', ["body"]),
            (rb'{"reference": "\ud800", "households": []}', ["body", "reference"]),
            (rb'{"reference": "ok-\udfff", "households": []}', ["body", "reference"]),
        ],
        ids=[
            "invalid escape in a member name",
            "invalid escape in a member name after the households",
            "a member name not UTF-8",
            "invalid escape in the reference",
            "a lone surrogate as the reference",
            "a lone surrogate in the reference",
        ],
    )
    async def test_a_json_envelope_that_does_not_decode_is_422(
        self, api_client: ClientFactory, body: bytes, loc: list[str | int]
    ) -> None:
        client = await api_client(role="caseworker", region="53")
        await refused(client, body, loc)

    async def test_a_lone_surrogate_reference_before_households_stores_none_of_them(
        self, api_client: ClientFactory
    ) -> None:
        client = await api_client(role="caseworker", region="53")
        body = (
            rb'{"reference": "\ud800", "households": [' + text(household("sur-1")).encode() + b"]}"
        )
        await refused(client, body, ["body", "reference"], stored_nothing_of=("sur-1",))

    @pytest.mark.parametrize("query", ["reference=%ED%A0%80", "reference=%FF", "reference=a%C3"])
    async def test_a_query_reference_that_is_not_utf8_is_422(
        self, api_client: ClientFactory, query: str
    ) -> None:
        """Not read with replacement characters and stored so."""
        client = await api_client(role="caseworker", region="53")
        body = (text(household("q-1")) + "\n").encode()
        problem = await refused(
            client,
            body,
            ["query", "reference"],
            url=f"/v1/batches?{query}",
            headers=NDJSON,
            stored_nothing_of=("q-1",),
        )
        assert "UTF-8" in problem["errors"][0]["msg"]

    async def test_ndjson_lines_that_do_not_decode_are_refused_lines(
        self, api_client: ClientFactory
    ) -> None:
        """A lone surrogate, an invalid escape or bytes that are not UTF-8 in one line: that
        line is refused (422 at the body, listed by number), the others are stored."""
        client = await api_client(role="caseworker", region="53")
        good = text(household("nd-ok")).encode()
        lines = [
            good,
            text(household("nd-1")).replace('"nd-1"', r'"\ud800"').encode(),
            text(household("nd-2")).replace('"nd-2"', r'"nd-\x"').encode(),
            text(household("nd-3"))
            .replace('"nd-3"', '"nd-3"')
            .encode()
            .replace(b"nd-3", b"\xed\xa0\x80"),
            text(household("nd-4")).replace('"program"', r'"\ud800"').encode(),
        ]
        answer = await client.post("/v1/batches", content=b"\n".join(lines) + b"\n", headers=NDJSON)
        assert answer.status_code == 201, answer.text
        batch = answer.json()
        assert (batch["households"], batch["invalid_lines"]) == (1, 4)
        errors = (await client.get(f"/v1/batches/{batch['id']}/errors")).json()["items"]
        assert [(error["line"], error["status"]) for error in errors] == [
            (2, 422),
            (3, 422),
            (4, 422),
            (5, 422),
        ]
        assert all(error["errors"][0]["loc"][0] == "body" for error in errors)
        assert [item["reference"] for item in await verifications_named(client, "nd-ok")] == [
            "nd-ok"
        ]

    async def test_a_line_in_gbk_is_refused_as_not_utf8_and_says_to_save_as_utf8(
        self, api_client: ClientFactory
    ) -> None:
        """As a single request's body is: `not UTF-8 encoded JSON`, at the byte; it said
        `Invalid JSON: invalid unicode code point at line 1 column 214` (pydantic's)."""
        client = await api_client(role="caseworker", region="53")
        good = text(household("gbk-ok")).encode()
        gbk = text(household("gbk-1")).encode("gbk")  # its member's name, 张三, in GBK
        answer = await client.post(
            "/v1/batches", content=good + b"\n" + gbk + b"\n", headers=NDJSON
        )
        assert answer.status_code == 201, answer.text
        batch = answer.json()
        assert (batch["households"], batch["invalid_lines"]) == (1, 1)
        errors = (await client.get(f"/v1/batches/{batch['id']}/errors")).json()["items"]
        assert [error["line"] for error in errors] == [2]
        first = errors[0]["errors"][0]
        assert first["loc"] == ["body", gbk.index("张三".encode("gbk"))]
        assert first["msg"].startswith("not UTF-8 encoded JSON")
        assert "save it as UTF-8" in first["msg"]
        assert "invalid unicode" not in json.dumps(errors)


class TestAJsonBodyIsOneDocument:
    """The JSON shape is checked to its last byte before any household is stored: a fault
    after the households refuses them too (nothing stored, nothing run)."""

    @pytest.mark.parametrize(
        ("reference", "loc"),
        [
            ("530102199001011231", ["body", "reference"]),  # an ID number
            (5, ["body", "reference"]),
            ("", ["body", "reference"]),
            ("two\nlines", ["body", "reference"]),
        ],
        ids=["an ID number", "a number", "empty", "a line break"],
    )
    async def test_a_bad_reference_after_the_households_stores_none_of_them(
        self, api_client: ClientFactory, reference: object, loc: list[str | int]
    ) -> None:
        client = await api_client(role="caseworker", region="53")
        name = f"after-{make_id_number()[-6:]}"
        body = json.dumps({"households": [household(name)], "reference": reference}).encode()
        problem = await refused(client, body, loc, stored_nothing_of=(name,))
        assert "530102199001011231" not in json.dumps(problem)

    @pytest.mark.parametrize(
        "tail",
        [b', "extra": {}}', b"} trailing", b", }", b"}}", b', "reference": "x"'],
        ids=["an unknown member", "trailing text", "a trailing comma", "two ends", "no end"],
    )
    async def test_a_fault_after_the_households_stores_none_of_them(
        self, api_client: ClientFactory, tail: bytes
    ) -> None:
        client = await api_client(role="caseworker", region="53")
        name = f"tail-{make_id_number()[-6:]}"
        body = b'{"households": [' + text(household(name)).encode() + b"]" + tail
        await refused(client, body, ["body"], stored_nothing_of=(name,))

    @pytest.mark.parametrize(
        "households", [b"[{]]", b'[{"a": [1}]]', b"[[}]"], ids=["{]", "[1}", "[}"]
    )
    async def test_brackets_closed_by_the_other_kind_are_422(
        self, api_client: ClientFactory, households: bytes
    ) -> None:
        """Not JSON at all: counting brackets alone took `{]` for a household (a refused
        line in a stored batch)."""
        client = await api_client(role="caseworker", region="53")
        await refused(client, b'{"households": ' + households + b"}", ["body", "households", 0])

    async def test_a_reference_in_the_query_and_another_in_the_body_is_422(
        self, api_client: ClientFactory
    ) -> None:
        client = await api_client(role="caseworker", region="53")
        body = json.dumps({"reference": "body-ref", "households": [household("two-refs")]})
        await refused(
            client,
            body.encode(),
            ["body", "reference"],
            url="/v1/batches?reference=query-ref",
            stored_nothing_of=("two-refs",),
        )
        same = await client.post(
            "/v1/batches?reference=same-ref",
            content=json.dumps({"reference": "same-ref", "households": []}).encode(),
            headers=JSON,
        )
        assert same.status_code == 201, same.text
        assert same.json()["reference"] == "same-ref"

    async def test_a_body_larger_than_memory_keeps_is_read_from_disk(
        self, api_client: ClientFactory
    ) -> None:
        """Two households 3 MiB of blanks apart: the body is kept in a temporary file,
        read back whole, and both households are stored, the reference after them too."""
        client = await api_client(role="caseworker", region="53")
        blanks = b" \n" * (3 << 19)
        body = (
            b'{"households": ['
            + text(household("disk-1")).encode()
            + b","
            + blanks
            + text(household("disk-2")).encode()
            + b'], "reference": "from-disk"}'
        )
        answer = await client.post("/v1/batches", content=body, headers=JSON)
        assert answer.status_code == 201, answer.text
        batch = answer.json()
        assert (batch["reference"], batch["households"], batch["invalid_lines"]) == (
            "from-disk",
            2,
            0,
        )


class TestAMemberNamedTwice:
    """As for a single request: a member named twice is refused, never read as its last
    value (a proxy or an audit log before hedui may have read the first)."""

    async def test_in_an_ndjson_line_that_line_is_refused(self, api_client: ClientFactory) -> None:
        client = await api_client(role="caseworker", region="53")
        twice = '{"program": "tekun", ' + text(household("dup-1"))[1:]
        nested = text(household("dup-2")).replace('"name": ', '"name": "李四", "name": ', 1)
        body = "\n".join([text(household("dup-ok")), twice, nested]) + "\n"
        answer = await client.post("/v1/batches", content=body.encode(), headers=NDJSON)
        assert answer.status_code == 201, answer.text
        batch = answer.json()
        assert (batch["households"], batch["invalid_lines"]) == (1, 2)
        errors = (await client.get(f"/v1/batches/{batch['id']}/errors")).json()["items"]
        assert [
            (error["line"], error["status"], [(e["loc"], e["msg"]) for e in error["errors"]])
            for error in errors
        ] == [
            (2, 422, [(["body"], "a member named twice: 'program'")]),
            (3, 422, [(["body"], "a member named twice: 'name'")]),
        ]
        for reference in ("dup-1", "dup-2"):
            assert await verifications_named(client, reference) == []

    async def test_in_a_json_batchs_household_that_household_is_refused(
        self, api_client: ClientFactory
    ) -> None:
        client = await api_client(role="caseworker", region="53")
        twice = '{"area": "urban", ' + text(household("dup-3", area="rural"))[1:]
        body = '{"reference": "dup-json", "households": [' + twice + "]}"
        answer = await client.post("/v1/batches", content=body.encode(), headers=JSON)
        assert answer.status_code == 201, answer.text
        assert (answer.json()["households"], answer.json()["invalid_lines"]) == (0, 1)
        errors = (await client.get(f"/v1/batches/{answer.json()['id']}/errors")).json()["items"]
        assert [(e["loc"], e["msg"]) for e in errors[0]["errors"]] == [
            (["body"], "a member named twice: 'area'")
        ]
        assert await verifications_named(client, "dup-3") == []

    @pytest.mark.parametrize(
        ("envelope", "name"),
        [
            ('{"reference": "a", "reference": "b", "households": [%s]}', "reference"),
            ('{"households": [%s], "reference": "a", "reference": "b"}', "reference"),
            ('{"households": [%s], "households": []}', "households"),
            ('{"reference": {"x": 1, "x": 2}, "households": [%s]}', "x"),
        ],
        ids=["reference", "reference after the households", "households", "inside a member"],
    )
    async def test_in_the_json_envelope_nothing_is_stored(
        self, api_client: ClientFactory, envelope: str, name: str
    ) -> None:
        client = await api_client(role="caseworker", region="53")
        reference = f"env-{make_id_number()[-6:]}"
        body = (envelope % text(household(reference))).encode()
        problem = await refused(client, body, ["body"], stored_nothing_of=(reference,))
        assert problem["errors"][0]["msg"] == f"a member named twice: {name!r}"


async def test_appending_with_another_reference_is_422_and_adds_nothing(
    api_client: ClientFactory,
) -> None:
    """A JSON body sent to an open batch may repeat the batch's reference, not name
    another: it was silently ignored, an ID number in it too."""
    client = await api_client(role="caseworker", region="53")
    created = await client.post(
        "/v1/batches?close=false&reference=append-ref",
        content=text(household("append-1")).encode(),
        headers=NDJSON,
    )
    assert created.status_code == 201, created.text
    url = f"/v1/batches/{created.json()['id']}/households"
    for reference in ("DIFFERENT", "x 530102199001011231"):
        answer = await client.post(
            url, json={"reference": reference, "households": [household("append-2")]}
        )
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["loc"] == ["body", "reference"]
        assert "530102199001011231" not in answer.text
    assert await verifications_named(client, "append-2") == []
    same = await client.post(
        url, json={"reference": "append-ref", "households": [household("append-3")]}
    )
    assert same.status_code == 200, same.text
    assert same.json()["upload"]["accepted"] == 1


class TestALoneSurrogate:
    """As for a single request: a name that is no text (`\\ud800` in JSON) is refused at
    the name, not at the body with the decoder's words."""

    async def test_in_an_ndjson_line_and_in_a_json_batch_it_is_named(
        self, api_client: ClientFactory
    ) -> None:
        client = await api_client(role="caseworker", region="53")
        line = text(household("surrogate-1")).replace('"name": "', '"name": "\\ud800', 1)
        envelope = '{"reference": "surrogate-json", "households": [' + line + "]}"
        answers = [
            await client.post("/v1/batches", content=(line + "\n").encode(), headers=NDJSON),
            await client.post("/v1/batches", content=envelope.encode(), headers=JSON),
        ]
        for answer in answers:
            assert answer.status_code == 201, answer.text
            assert (answer.json()["households"], answer.json()["invalid_lines"]) == (0, 1)
            path = f"/v1/batches/{answer.json()['id']}/errors"
            [error] = (await client.get(path)).json()["items"]
            assert error["errors"][0]["loc"] == ["body", "members", 0, "name"], error
        assert await verifications_named(client, "surrogate-1") == []


@pytest.mark.parametrize("sent_as", ["query", "body"])
async def test_a_household_whose_member_the_batch_reference_names_is_refused(
    api_client: ClientFactory, sent_as: str
) -> None:
    """A batch's reference is shown as given (lists, webhooks), as a verification's is: a
    household with a member it names is a refused line, the others go on."""
    client = await api_client(role="caseworker", region="53")
    tag = make_id_number()[-6:]
    named = verification_body([member(make_id_number(), name="皇甫嵩")], reference=f"hf-{tag}-1")
    other = verification_body([member(make_id_number(), name="李四")], reference=f"hf-{tag}-2")
    if sent_as == "query":
        answer = await client.post(
            "/v1/batches",
            params={"reference": "皇甫 嵩的批次"},
            content=(text(named) + "\n" + text(other) + "\n").encode(),
            headers=NDJSON,
        )
    else:
        answer = await client.post(
            "/v1/batches", json={"reference": "皇甫 嵩的批次", "households": [named, other]}
        )
    assert answer.status_code == 201, answer.text
    batch = answer.json()
    assert (batch["households"], batch["invalid_lines"]) == (1, 1)
    errors = (await client.get(f"/v1/batches/{batch['id']}/errors")).json()["items"]
    assert [(error["line"], error["errors"][0]["loc"]) for error in errors] == [
        (1, ["batch", "reference"])
    ]
    assert "member 1" in errors[0]["errors"][0]["msg"]
    assert "皇甫" not in json.dumps(errors, ensure_ascii=False)
    assert await verifications_named(client, f"hf-{tag}-1") == []
    assert len(await verifications_named(client, f"hf-{tag}-2")) == 1
