"""Hostile input, generated: schemathesis fuzzes every /v1 operation from the OpenAPI
schema (a bounded, seeded run) against a real service, and no answer may be a server
error, an undocumented status or a body of the wrong media type."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from service.auth.principal import Role
from service.auth.service import create_api_key
from service.db import create_engine, create_session_factory
from tests.conftest import running_service, service_settings

EXAMPLES_PER_OPERATION = 3
ROOT = Path(__file__).resolve().parents[2]


async def test_fuzzed_requests_get_documented_answers_never_a_server_error(
    own_database_url: str, tmp_path: Path
) -> None:
    settings = service_settings(own_database_url, tmp_path / "sandbox.db")
    engine = create_engine(own_database_url)
    async with create_session_factory(engine)() as session:
        _, token = await create_api_key(session, role=Role.admin, region="00", name="fuzzer")
        await session.commit()
    await engine.dispose()
    async with running_service(settings) as service:
        result = await asyncio.to_thread(
            subprocess.run,
            [
                str(Path(sys.executable).parent / "st"),
                "run",
                f"{service.base_url}/openapi.json",
                "--header",
                f"Authorization: Bearer {token}",
                "--include-path-regex",
                "^/v1/",
                "--max-examples",
                str(EXAMPLES_PER_OPERATION),
                "--seed",
                "20261204",
                "--phases",
                "examples,coverage,fuzzing",
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance",
                "--workers",
                "2",
                "--request-timeout",
                "30",
                "--no-color",
            ],
            cwd=tmp_path,
            env={
                **os.environ,
                "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks",
                "PYTHONPATH": str(ROOT),
            },
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
