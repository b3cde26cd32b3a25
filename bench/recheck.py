"""Re-checks over many recipients: households/s, warnings raised, memory over the run.

Puts `--recipients` households (1–3 synthetic people each, whom the sandbox answers for
with deterministic synthetic records) on the roll as approved a year ago with a report
that found nothing, then runs the due re-checks the way `hedui recheck --due` does, in
this process, against the sandbox agencies in their own process. Prints households/s,
warnings raised, and this process's RSS after 10 %, at half way and at the end (flat
means memory does not grow with the number of recipients). For the ratio, a bare client
asks the same partners for a sample of the same households through the connectors alone
(no database, no scoring, no change detection) at the same concurrency. Wall-clock rates
move with whatever else the machine runs, so the CPU this process spends per household
(hedui's, and the bare client's) is printed too, with the load average before and after:
on a busy machine compare those.

Run: `python -m bench.recheck --recipients 100000` (default), or fewer for a quick look.
"""

import argparse
import asyncio
import os
import resource
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, insert

from bench._server import running_sandbox
from schemas.assessment import AssessmentInput, HouseholdMember, SourceOutcome
from schemas.evidence import HouseholdQuery, MemberQuery, RequestContext
from schemas.identity import check_character
from schemas.verification import SourceStatus
from service.config import Settings
from service.connector.wiring import source_plan
from service.crypto.sealed import keyring_of, seal_in
from service.logging import configure_logging
from service.models import Member, Recipient, Report, SourceResult, Verification
from service.models.api_key import ApiKey
from service.recheck.drive import run_until_done
from service.report.service import build_report, row_values
from service.runtime import build_runtime

APPROVED = date(2025, 12, 1)
AS_OF = date(2026, 12, 1)
REGION = "530102"


def person(index: int) -> str:
    birth = (date(1950, 1, 1) + timedelta(days=index // 900)).strftime("%Y%m%d")
    first17 = f"{REGION}{birth}{index % 900 + 100:03d}"
    return first17 + check_character(first17)


def cpu_s() -> float:
    """CPU seconds this process has used (user and system, every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def populate(settings: Settings, total: int) -> None:
    """The roll as a year of approvals would leave it (bulk inserts, not the API)."""
    async with build_runtime(settings, migrate_to="head", runs_here=False) as runtime:
        sources = [name for name, _ in source_plan(runtime.registry)]
        policy = runtime.catalog.resolve(REGION, "dibao", "urban", APPROVED)
        if policy is None:
            raise RuntimeError(f"no dibao/urban policy for {REGION} on {APPROVED}")
        now = datetime.now(UTC)
        async with runtime.session_factory() as session:
            session.add(
                ApiKey(
                    id="bench",
                    name="bench",
                    role="caseworker",
                    region_prefix="",
                    token_hash="bench",  # noqa: S106 - no token hashes to this
                )
            )
            await session.commit()
        async with runtime.session_factory() as session:
            keyring = keyring_of(session)
        sequence = 0
        for start in range(0, total, 500):
            verifications, members, results, reports, recipients = [], [], [], [], []
            for index in range(start, min(start + 500, total)):
                vid = f"00000000-0000-4000-8000-{index:012d}"
                size = index % 3 + 1
                people = [person(sequence + k) for k in range(size)]
                sequence += size
                verifications.append(
                    {
                        "id": vid,
                        "reference": f"bench-{index}",
                        "program": "dibao",
                        "region_code": REGION,
                        "area": "urban",
                        "as_of": APPROVED,
                        "consent_document_id": "AUTH-BENCH",
                        "consent_signed_on": APPROVED,
                        "status": "completed",
                        "recommendation": "eligible",
                        "created_by": "bench",
                        "created_at": now,
                        "completed_at": now,
                    }
                )
                members += [
                    {"verification_id": vid, "position": k}
                    | seal_in(
                        Member,
                        keyring,
                        {"verification_id": vid, "position": k},
                        {
                            "id_number": p,
                            "name": "张三",
                            "relation": "applicant" if k == 0 else "child",
                            "declared_monthly_income": Decimal(0),
                        },
                    )
                    for k, p in enumerate(people)
                ]
                results += [
                    {"verification_id": vid, "source": s}
                    | seal_in(
                        SourceResult,
                        keyring,
                        {"verification_id": vid, "source": s},
                        {"status": "no_record", "records": [], "attempts": 1, "fetched_at": now},
                    )
                    for s in sources
                ]
                inputs = AssessmentInput(
                    program="dibao",
                    area="urban",
                    as_of=APPROVED,
                    members=tuple(HouseholdMember(id_number=p, name="张三") for p in people),
                    sources=tuple(
                        SourceOutcome(source=s, status=SourceStatus.no_record) for s in sources
                    ),
                )
                built = build_report(vid, REGION, inputs, policy, generated_at=now)
                report = built.report
                values = row_values(built, policy, inputs)
                reports.append(seal_in(Report, keyring, values, values))
                recipients.append(
                    {
                        "id": f"10000000-0000-4000-8000-{index:012d}",
                        "reference": f"bench-{index}",
                        "program": "dibao",
                        "area": "urban",
                        "region_code": REGION,
                        "recheck_class": "regular",
                        "status": "active",
                        "monthly_benefit": report.benefit.monthly_amount
                        if report.benefit
                        else None,
                        "origin_verification_id": vid,
                        "approved_verification_id": vid,
                        "approved_on": APPROVED,
                        "next_recheck_on": AS_OF,
                        "consent_document_id": "AUTH-BENCH",
                        "consent_signed_on": APPROVED,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            async with runtime.session_factory() as session:
                for model, rows in (
                    (Verification, verifications),
                    (Member, members),
                    (SourceResult, results),
                    (Report, reports),
                    (Recipient, recipients),
                ):
                    await session.execute(insert(cast(Table, model.__table__)), rows)
                await session.commit()


async def recheck(settings: Settings, total: int) -> dict[str, Any]:
    samples: dict[str, float] = {}
    done = 0
    async with build_runtime(settings, runs_here=True) as runtime:
        await runtime.health.start(runtime.registry, runtime.fetcher.configs, runtime.http_client)

        def progress(n: int) -> None:
            nonlocal done
            done += n
            for mark, share in (("10%", 10), ("50%", 2)):
                if mark not in samples and done >= total // share:
                    samples[mark] = rss_mb()

        started, cpu = time.perf_counter(), cpu_s()
        tally = await run_until_done(runtime.rechecks, AS_OF, progress=progress, poll_s=0.05)
        wall, cpu = time.perf_counter() - started, cpu_s() - cpu
        samples["end"] = rss_mb()
        bare, bare_cpu = await bare_client(
            runtime, min(total, 2000), settings.recheck_max_in_flight
        )
    return {
        "wall": wall,
        "cpu": cpu,
        "tally": tally,
        "rss": samples,
        "bare": bare,
        "bare_cpu": bare_cpu,
    }


async def bare_client(runtime: Any, count: int, concurrency: int) -> tuple[float, float]:
    """Households/s when the connectors alone ask every partner for each household, and
    the CPU seconds this process spent per household meanwhile."""
    semaphore = asyncio.Semaphore(concurrency)
    plan = source_plan(runtime.registry)
    sequence = 0
    households = []
    for index in range(count):
        size = index % 3 + 1
        households.append(
            HouseholdQuery(
                region_code=REGION,
                as_of=AS_OF,
                members=tuple(
                    MemberQuery(id_number=person(sequence + k), name="张三") for k in range(size)
                ),
                context=RequestContext(consent_id="AUTH-0001", purpose="dibao"),
            )
        )
        sequence += size

    async def one(household: HouseholdQuery) -> None:
        async with semaphore:
            deadline = runtime.fetcher.run_deadline()
            await asyncio.gather(
                *(
                    runtime.fetcher.fetch(name, household, version, deadline)
                    for name, version in plan
                )
            )

    started, cpu = time.perf_counter(), cpu_s()
    await asyncio.gather(*(one(h) for h in households))
    return count / (time.perf_counter() - started), (cpu_s() - cpu) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--in-flight", type=int, default=200, help="re-checks at once")
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    args = parser.parse_args()
    configure_logging("WARNING", "console")
    with tempfile.TemporaryDirectory() as directory, running_sandbox(directory) as partners:
        settings = Settings(
            database_url=args.database_url or f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}",
            sandbox="off",
            partner_base_url=partners,
            recheck_max_in_flight=args.in_flight,
            recheck_interval_s=0,
            log_level="WARNING",
        )
        load_before = os.getloadavg()
        began = time.perf_counter()
        asyncio.run(populate(settings, args.recipients))
        populated = time.perf_counter() - began
        result = asyncio.run(recheck(settings, args.recipients))
        load_after = os.getloadavg()
    tally = result["tally"]
    rate = tally.count("queued") / result["wall"]
    cpu_ms = result["cpu"] / max(1, tally.count("queued")) * 1000
    bare_ms = result["bare_cpu"] * 1000
    print(
        f"{args.recipients} recipients (1–3 people each), {args.in_flight} re-checks at once, "
        f"{settings.database_url.split(':', 1)[0]}; roll written in {populated:.0f} s"
    )
    print(f"re-checked            {tally.count('queued'):8d} in {result['wall']:.0f} s")
    print(f"households/s          {rate:8.1f}")
    print(f"bare client           {result['bare']:8.1f} households/s (connectors alone)")
    print(f"hedui / bare          {rate / result['bare']:8.2f}x")
    print(f"CPU per household     {cpu_ms:8.1f} ms (bare client {bare_ms:.1f} ms)")
    print(f"warnings raised       {tally.warnings:8d}")
    rss = result["rss"]
    print(
        f"RSS 10% / 50% / end   {rss.get('10%', 0):8.0f} / {rss.get('50%', 0):.0f} / "
        f"{rss['end']:.0f} MB"
    )
    print(
        "load average          "
        + " ".join(f"{v:.2f}" for v in load_before)
        + " before, "
        + " ".join(f"{v:.2f}" for v in load_after)
        + " after"
    )


if __name__ == "__main__":
    main()
