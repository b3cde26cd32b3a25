"""Rewriting the audit chain from scratch: checkpoints deleted, an event edited and every
link recomputed, or an event inserted back-dated. `hedui audit verify` must say so, and
neither it nor the chainer may sign over what it has not checked."""

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.audit.chain import GENESIS, link_hash
from service.audit.chainer import AuditChainer
from service.audit.service import Actor, CheckpointPolicy, audit
from service.audit.signing import Signer, create_key_file, load_verifier
from service.db import create_engine, create_session_factory
from service.models import AuditChainLink, AuditCheckpoint, AuditEvent
from service.models.base import utcnow

ACTOR = Actor(key_id=None, name="甲", role="approver", region="5301")


@pytest.fixture
async def sessions(own_database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine: AsyncEngine = create_engine(own_database_url)
    yield create_session_factory(engine)
    await engine.dispose()


async def _record(
    sessions: async_sessionmaker[AsyncSession], ages: list[timedelta], action: str = "report.read"
) -> list[int]:
    """Events recorded `ages` ago (one each, in this order); their ids."""
    ids = []
    async with sessions() as session:
        for index, age in enumerate(ages):
            await audit.record(
                session, ACTOR, action, object_type="verification", object_id=f"v-{index}"
            )
            newest = await session.scalar(select(func.max(AuditEvent.id)))
            await session.execute(
                update(AuditEvent).where(AuditEvent.id == newest).values(at=utcnow() - age)
            )
            ids.append(int(newest or 0))
        await session.commit()
    return ids


async def _chain(
    sessions: async_sessionmaker[AsyncSession],
    signer: Signer | None,
    policy: CheckpointPolicy | None = None,
) -> int:
    return await AuditChainer(
        sessions, signer, interval_s=0, policy=policy or CheckpointPolicy()
    ).run_once()


async def _checkpoints(sessions: async_sessionmaker[AsyncSession]) -> list[int]:
    async with sessions() as session:
        return list(await session.scalars(select(AuditCheckpoint.seq).order_by("seq")))


async def _linked(sessions: async_sessionmaker[AsyncSession]) -> set[int]:
    async with sessions() as session:
        return set(await session.scalars(select(AuditChainLink.event_id)))


async def _rewrite(sessions: async_sessionmaker[AsyncSession], event_id: int) -> None:
    """The attack: every checkpoint deleted, an event's actor changed, every link
    recomputed as the chainer would."""
    async with sessions() as session:
        await session.execute(delete(AuditCheckpoint))
        events = {event.id: event for event in await session.scalars(select(AuditEvent))}
        events[event_id].actor_name = "乙"
        prev = GENESIS
        for link in await session.scalars(select(AuditChainLink).order_by(AuditChainLink.seq)):
            link.prev_hash = prev
            link.hash = prev = link_hash(prev, events[link.event_id])
        await session.commit()


async def _cli(database_url: str, key_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HEDUI_DATABASE_URL": database_url,
        "HEDUI_AUDIT_SIGNING_KEY_FILE": str(key_file),
    }
    command = [sys.executable, "-m", "service.cli", "audit", "verify", *args]
    return await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True)


async def test_a_chain_rewritten_after_deleting_its_checkpoints_is_found_and_never_signed(
    own_database_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    key_file = tmp_path / "audit.key"
    signer = create_key_file(key_file)
    public = tmp_path / "audit.pub"
    public.write_text(signer.verifier.public_pem())
    ids = await _record(sessions, [timedelta(hours=2, seconds=-i) for i in range(12)])
    await _chain(sessions, signer, CheckpointPolicy(every_links=5))
    assert await _checkpoints(sessions) == [5, 10, 12]
    await _rewrite(sessions, ids[6])

    auditor = await _cli(
        own_database_url, key_file, "--public-key", str(public), "--no-chain-first"
    )
    await _chain(sessions, signer)  # the running service's next round
    holder = await _cli(own_database_url, key_file)  # chain first, key beside the database

    assert auditor.returncode == 1, auditor.stdout + auditor.stderr
    assert "no signed checkpoint covers links 1–12, recorded" in auditor.stderr
    assert holder.returncode == 1, holder.stdout + holder.stderr
    assert "no signed checkpoint covers links 1–12" in holder.stderr
    assert "nothing was linked or signed" in holder.stderr
    assert await _checkpoints(sessions) == []  # nobody signed the forged chain
    async with sessions() as session:
        report = await audit.verify(session, verifiers=[signer.verifier])
    assert report.uncovered
    assert report.first_bad_seq == 1


async def test_a_forged_tail_after_the_last_checkpoint_is_not_signed_by_the_chainer(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """Links after the last checkpoint are recomputed before a checkpoint signs them: an
    event edited there (links left alone) is never signed over."""
    signer = create_key_file(tmp_path / "audit.key")
    await _record(sessions, [timedelta(seconds=30)] * 3)
    await _chain(sessions, signer)
    ids = await _record(sessions, [timedelta(seconds=20)] * 2)
    await _chain(sessions, None)  # linked, then the process stopped before signing
    async with sessions() as session:
        await session.execute(
            update(AuditEvent).where(AuditEvent.id == ids[0]).values(actor_name="乙")
        )
        await session.commit()

    await _chain(sessions, signer, CheckpointPolicy(every=timedelta(0)))

    assert await _checkpoints(sessions) == [3]


async def test_a_tail_left_unsigned_by_a_crash_is_signed_at_the_next_start(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    signer = create_key_file(tmp_path / "audit.key")
    await _record(sessions, [timedelta(seconds=40)] * 3)
    await _chain(sessions, signer)
    await _record(sessions, [timedelta(seconds=30), timedelta(seconds=29)])
    await _chain(sessions, None)  # the crash: linked, not signed
    async with sessions() as session:
        stale = await audit.verify(
            session,
            verifiers=[signer.verifier],
            policy=CheckpointPolicy(every=timedelta(seconds=5)),
            stray_after=timedelta(seconds=5),
        )
    assert stale.uncovered, stale.problems
    assert "no signed checkpoint covers links 4–5" in stale.problems[0]

    await _chain(sessions, signer, CheckpointPolicy(every=timedelta(0)))  # restarted

    assert await _checkpoints(sessions) == [3, 5]
    async with sessions() as session:
        report = await audit.verify(session, verifiers=[signer.verifier])
    assert report.ok, report.problems


async def test_events_recorded_while_no_chainer_ran_are_signed_in_stretches(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """Commands record events while the service is down: linked at its next start, they
    get a checkpoint every five minutes of recording time, so that no stretch of unsigned
    links is wider than the policy allows."""
    signer = create_key_file(tmp_path / "audit.key")
    await _record(sessions, [timedelta(minutes=minutes) for minutes in (60, 50, 40, 30, 3, 2)])

    await _chain(sessions, signer)

    assert await _checkpoints(sessions) == [1, 2, 3, 4, 6]
    async with sessions() as session:
        report = await audit.verify(session, verifiers=[signer.verifier])
    assert report.ok, report.problems


async def test_a_chain_kept_without_a_key_is_signed_once_checked_on_request(
    own_database_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """A deployment that ran without its signing key: the chainer does not sign its old
    links of its own accord; `hedui audit verify --sign-unsigned` does, after checking."""
    key_file = tmp_path / "audit.key"
    await _record(sessions, [timedelta(hours=3), timedelta(hours=2), timedelta(hours=1)])
    await _chain(sessions, None)
    signer = create_key_file(key_file)
    await _chain(sessions, signer)
    assert await _checkpoints(sessions) == []

    plain = await _cli(own_database_url, key_file)
    adopted = await _cli(own_database_url, key_file, "--sign-unsigned")

    assert plain.returncode == 1, plain.stdout + plain.stderr
    assert "no signed checkpoint covers links 1–3" in plain.stderr
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert "audit trail intact: 3 links, 1 signed checkpoints verified" in adopted.stdout
    assert await _checkpoints(sessions) == [3]
    assert load_verifier(key_file).key_id == signer.key_id


async def test_a_back_dated_event_is_not_linked_and_verify_reports_it(
    own_database_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    key_file = tmp_path / "audit.key"
    signer = create_key_file(key_file)
    await _record(sessions, [timedelta(seconds=10)] * 3)
    await _chain(sessions, signer)
    [forged] = await _record(sessions, [timedelta(days=400)], action="decision.record")
    # Written just after the newest linked event, but within the clocks' tolerance of it;
    # and newer: both are linked (a crash recovery's events are in order and newer).
    late, newer = await _record(sessions, [timedelta(seconds=40), timedelta(seconds=1)])

    await _chain(sessions, signer)
    run = await _cli(own_database_url, key_file)

    linked = await _linked(sessions)
    assert forged not in linked
    assert {late, newer} <= linked
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"event {forged} is not on the chain 300 s after it was recorded" in run.stderr
    assert forged not in await _linked(sessions)  # verify's own round left it too
