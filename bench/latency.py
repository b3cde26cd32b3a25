"""End-to-end latency of one 3-person household against the sandbox at 0 ms and 50 ms.

hedui's own cost is the end-to-end time minus the slowest source's time (both measured per
request); the aim is under 10 ms at the median. Run: `python -m bench.latency [--requests N]`.
"""

import argparse
import statistics
import time
from typing import Any

import httpx

from bench._server import create_token, running_service
from schemas.identity import check_character

SOURCES = ("vehicles", "pensions", "housing_fund", "real_estate", "public_payroll", "bank")


def household(index: int) -> list[str]:
    ids = []
    for member in range(3):
        first17 = f"530103{1960 + member * 20}0101{(index * 3 + member) % 1000:03d}"
        ids.append(first17 + check_character(first17))
    return ids


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def request_body(reference: str, index: int) -> dict[str, Any]:
    """A 3-person dibao household in Kunming; each index is a different household."""
    return {
        "reference": reference,
        "program": "dibao",
        "region_code": "530103",
        "area": "urban",
        "consent": {"document_id": "AUTH-BENCH", "signed_on": "2026-01-01"},
        "members": [
            {"id_number": id_number, "name": "张三", "relation": "applicant" if i == 0 else "child"}
            for i, id_number in enumerate(household(index))
        ],
    }


def run(client: httpx.Client, partners: str, requests: int, latency_ms: int) -> dict[str, float]:
    for source in SOURCES:
        client.put(f"{partners}/faults/{source}", json={"mode": "ok", "latency_ms": latency_ms})
    e2e, slowest, overhead = [], [], []
    for index in range(requests):
        body = request_body(f"bench-{latency_ms}-{index}", index + latency_ms * 1000)
        started = time.perf_counter()
        response = client.post("/v1/verifications", json=body, headers={"Prefer": "wait=30"})
        elapsed_ms = (time.perf_counter() - started) * 1000
        verification = response.json()
        if response.status_code != 200 or verification["status"] != "completed":
            raise RuntimeError(f"verification did not complete: {response.status_code}")
        slowest_ms = max(source["duration_ms"] for source in verification["sources"])
        if index >= 3:  # the first requests warm connections and caches
            e2e.append(elapsed_ms)
            slowest.append(slowest_ms)
            overhead.append(elapsed_ms - slowest_ms)
    return {
        "e2e_p50": statistics.median(e2e),
        "e2e_p95": percentile(e2e, 0.95),
        "slowest_p50": statistics.median(slowest),
        "overhead_p50": statistics.median(overhead),
        "overhead_p95": percentile(overhead, 0.95),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument(
        "--in-process-sandbox",
        action="store_true",
        help="serve the partners inside hedui (the `hedui serve` default) instead of apart",
    )
    parser.add_argument(
        "--database-url",
        help="e.g. postgresql+asyncpg://postgres@127.0.0.1/test (default: a fresh SQLite file)",
    )
    args = parser.parse_args()
    database = {"HEDUI_DATABASE_URL": args.database_url} if args.database_url else {}
    with running_service(database, separate_sandbox=not args.in_process_sandbox) as (
        base_url,
        database_url,
        partners,
    ):
        token = create_token(database_url)
        with httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as client:
            rows = {latency: run(client, partners, args.requests, latency) for latency in (0, 50)}
    where = "in hedui's process" if args.in_process_sandbox else "in their own process"
    print(
        f"3-person household, {args.requests} sequential verifications per row, SQLite, "
        f"partners {where}"
    )
    print(
        f"{'sandbox':>9} {'e2e p50':>9} {'e2e p95':>9} {'slowest src p50':>16} "
        f"{'hedui p50':>10} {'hedui p95':>10} {'e2e/slowest':>12}"
    )
    for latency, row in rows.items():
        print(
            f"{latency:>7}ms {row['e2e_p50']:>7.1f}ms {row['e2e_p95']:>7.1f}ms "
            f"{row['slowest_p50']:>14.1f}ms {row['overhead_p50']:>8.1f}ms "
            f"{row['overhead_p95']:>8.1f}ms {row['e2e_p50'] / max(row['slowest_p50'], 1):>11.2f}x"
        )
    print("aim: hedui p50 (e2e minus slowest source) under 10 ms")


if __name__ == "__main__":
    main()
