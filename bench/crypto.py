"""CPU that encryption at rest costs one verification: a three-person household's ID
numbers, names and declared incomes, six sources' records, the report body and the
near-relative matches are sealed once and opened once (plus three blind indexes and the
keyed request hash).

"bare" is the same values' JSON encoding and decoding alone (what storing them in JSON
columns cost before); the ratio shows what sealing adds. CPU time (`process_time`), so
other processes on the machine inflate it less than wall time. Run:
`python -m bench.crypto [--repeat N]`.
"""

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from schemas.evidence import (
    BankAccountRecord,
    HousingFundRecord,
    PensionRecord,
    PropertyRecord,
    VehicleRecord,
)
from schemas.money import format_money
from service.crypto.keyring import DataKey, Keyring, new_key
from service.models import Member, SourceResult, Verification
from service.policy.catalog import PolicyCatalog
from service.report.service import assessment_input, build_report

PEOPLE = ("11010519491231002X", "440524188001010014", "530102199001011234")
NAMES = ("张三", "李四", "王小五")


def household() -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
    """(the members' text fields, each source's records, the report body and matches)."""
    a, b, c = PEOPLE
    records: dict[str, list[Any]] = {
        "bank": [
            BankAccountRecord(
                id_number=a, bank="中国银行", account="****1111", balance=Decimal("3200.55")
            ),
            BankAccountRecord(
                id_number=b, bank="农业银行", account="****2222", balance=Decimal("812.00")
            ),
            BankAccountRecord(
                id_number=c, bank="信用社", account="****3333", balance=Decimal("40.10")
            ),
        ],
        "vehicles": [
            VehicleRecord(
                id_number=a,
                plate="云A12345",
                type="motorcycle",
                registered_on=date(2019, 5, 1),
                value=Decimal("3000"),
            )
        ],
        "pensions": [
            PensionRecord(id_number=b, status="receiving", monthly_amount=Decimal("420.00"))
        ],
        "housing_fund": [
            HousingFundRecord(
                id_number=a,
                status="active",
                balance=Decimal("5200.00"),
                monthly_deposit=Decimal("180.00"),
            )
        ],
        "real_estate": [
            PropertyRecord(
                id_number=a,
                certificate="云(2018)昆明市不动产权第0012345号",
                usage="residential",
                area_m2=Decimal("62.5"),
                region_code="530102",
            )
        ],
        "public_payroll": [],
    }
    verification = Verification(
        id="3f0c4d0e-2b7a-4c55-9d0e-7c1f9a1b2c3d",
        program="dibao",
        area="urban",
        region_code="530102",
        as_of=date(2026, 11, 20),
        members=[
            Member(
                position=i, id_number=p, name=n, relation=r, declared_monthly_income=Decimal("300")
            )
            for i, (p, n, r) in enumerate(
                zip(PEOPLE, NAMES, ("applicant", "spouse", "child"), strict=True)
            )
        ],
        sources=[
            SourceResult(
                source=source,
                status="ok" if rows else "no_record",
                records=[row.model_dump(mode="json") for row in rows],
                fetched_at=datetime(2026, 11, 20, tzinfo=UTC),
            )
            for source, rows in records.items()
        ],
    )
    inputs = assessment_input(verification)
    policy = PolicyCatalog.load().resolve("530102", "dibao", "urban", date(2026, 11, 20))
    if policy is None:
        raise SystemExit("no dibao policy for 530102 in the shipped policy files")
    report = build_report(verification.id, "530102", inputs, policy).report
    texts = {
        f"{i}/{field}": value
        for i, (p, n) in enumerate(zip(PEOPLE, NAMES, strict=True))
        for field, value in (
            ("id_number", p),
            ("name", n),
            ("declared_monthly_income", format_money(Decimal("300"))),
        )
    }
    blobs: dict[str, Any] = {s.source: s.records for s in verification.sources}
    blobs["report"] = report.model_dump(mode="json")
    blobs["near_relatives"] = [
        {"id_number": b, "staff_position": "村委会主任", "relationship": "spouse"}
    ]
    return texts, blobs, blobs["report"]


def sealed_round(ring: Keyring, texts: dict[str, str], blobs: dict[str, Any]) -> None:
    for key, value in texts.items():
        token = ring.seal_text(value, table="verification_members", column=key, row="v/0")
        ring.open_text(token, table="verification_members", column=key, row="v/0")
    for person in PEOPLE:
        ring.blind(person)
    ring.keyed_hash("request", b"0" * 64)
    for key, value in blobs.items():
        token = ring.seal_json(value, table="source_results", column=key, row="v/s")
        ring.open_json(token, table="source_results", column=key, row="v/s")


def bare_round(_: Keyring, texts: dict[str, str], blobs: dict[str, Any]) -> None:
    for value in texts.values():
        value.encode().decode()
    for value in blobs.values():
        json.loads(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


WARNING_EVIDENCE = [
    {
        "source": "vehicles",
        "member": "530102********1234",
        "fact": "vehicle plate=云A8K123 type=car registered_on=2027-03-01 value=85000.00",
    }
]


def warning_round(ring: Keyring) -> None:
    """One warning raised and read back: its evidence before and after, two benefits."""
    for column, value in (("before", []), ("after", WARNING_EVIDENCE)):
        token = ring.seal_json(value, table="warnings", column=column, row="w")
        ring.open_json(token, table="warnings", column=column, row="w")
    for column in ("benefit_before", "benefit_after"):
        token = ring.seal_text("504.09", table="warnings", column=column, row="w")
        Decimal(ring.open_text(token, table="warnings", column=column, row="w"))


def delivery_round(ring: Keyring, token: str) -> None:
    """One webhook delivery: its secret opened to sign the body."""
    ring.open_text(token, table="webhooks", column="secret", row="h")


def cpu_per_call(work: Callable[[], None], rounds: int) -> float:
    """CPU microseconds per call of `work`, best of 5 batches of `rounds`."""
    results = []
    for _ in range(5):
        started = time.process_time()
        for _ in range(rounds):
            work()
        results.append((time.process_time() - started) / rounds * 1e6)
    return min(results)


def cpu_per_round(
    work: Callable[[Keyring, dict[str, str], dict[str, Any]], None],
    ring: Keyring,
    texts: dict[str, str],
    blobs: dict[str, Any],
    rounds: int,
) -> float:
    """CPU microseconds per verification, best of 5 batches of `rounds`."""
    results = []
    for _ in range(5):
        started = time.process_time()
        for _ in range(rounds):
            work(ring, texts, blobs)
        results.append((time.process_time() - started) / rounds * 1e6)
    return min(results)


def main(rounds: int) -> None:
    ring = Keyring([DataKey("k1", new_key())], "k1", new_key())
    texts, blobs, report = household()
    size = sum(len(json.dumps(v, ensure_ascii=False).encode()) for v in blobs.values())
    bare = cpu_per_round(bare_round, ring, texts, blobs, rounds)
    sealed = cpu_per_round(sealed_round, ring, texts, blobs, rounds)
    print(
        f"household: 3 members ({len(texts)} sealed text values), 6 sources, report body "
        f"{len(json.dumps(report, ensure_ascii=False).encode())} B, {size} B of JSON in all"
    )
    print(f"{'':<28}{'CPU µs / verification':>24}")
    print(f"{'bare (JSON only)':<28}{bare:>24.1f}")
    print(f"{'sealed + opened':<28}{sealed:>24.1f}")
    print(f"{'encryption adds':<28}{sealed - bare:>24.1f}   (ratio {sealed / bare:.2f}× bare)")
    secret = ring.seal_text("whsec_0123456789abcdef", table="webhooks", column="secret", row="h")
    warning = cpu_per_call(lambda: warning_round(ring), rounds)
    delivery = cpu_per_call(lambda: delivery_round(ring, secret), rounds)
    print(f"{'':<28}{'CPU µs / event':>24}")
    print(f"{'warning sealed + opened':<28}{warning:>24.1f}")
    print(f"{'webhook secret opened':<28}{delivery:>24.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=500, help="verifications per batch")
    main(parser.parse_args().rounds)
