"""The profile headline `bench.fanout --profile` prints (bench/profile.py): py-spy's raw
samples summed by the frame each was taken in and by that frame's layer."""

from pathlib import Path

from bench.profile import headline, layer_of

SITE = "/opt/venv/lib/python3.11/site-packages"
SERVE = "run_cli (/src/service/cli.py:10);Runner.run (/usr/lib/python3.11/asyncio/runners.py:118)"


def test_samples_are_summed_by_leaf_frame_and_layer_and_idle_threads_left_out(
    tmp_path: Path,
) -> None:
    raw = tmp_path / "hedui.txt"
    raw.write_text(
        "\n".join(
            [
                f"{SERVE};Connection._execute_context ({SITE}/sqlalchemy/engine/base.py:1813) 30",
                f"{SERVE};_run (/src/service/sqlite_driver.py:60) 20",
                f"{SERVE};submit (/src/service/verification/intake.py:26) 25",
                f"{SERVE};ClientSession._request ({SITE}/aiohttp/client.py:900) 15",
                f"{SERVE};_log_finished (/src/service/jobs/workflow.py:90);"
                f"BoundLogger.info ({SITE}/structlog/stdlib.py:200) 10",
                "thread;Thread.run (threading.py:982);"
                f"_connection_worker_thread ({SITE}/aiosqlite/core.py:59) 500",
                "not a sample line",
            ]
        )
    )
    found = headline([raw])
    assert found.samples == 100  # the waiting aiosqlite thread is not CPU
    assert found.top[0] == ("Connection._execute_context (sqlalchemy/engine/base.py)", 30)
    assert ("submit (service/verification/intake.py)", 25) in found.top
    assert dict(found.layers) == {
        "storage (sqlalchemy, drivers)": 50,
        "hedui (service, schemas)": 25,
        "partner calls (httpx, aiohttp)": 15,
        "logging": 10,
    }
    lines = found.lines(top=2)
    assert lines[1] == "   30.0 %  Connection._execute_context (sqlalchemy/engine/base.py)"
    assert "   50.0 %  storage (sqlalchemy, drivers)" in lines


def test_a_frame_s_layer_is_where_its_code_lives() -> None:
    assert layer_of(f"HttpToolsProtocol.data_received ({SITE}/uvicorn/protocols/h.py)") == (
        "inbound (uvicorn, starlette, fastapi)"
    )
    assert layer_of("PartnerTransport.send (service/http.py)") == "partner calls (httpx, aiohttp)"
    assert layer_of("request (connectors/http.py)") == "connectors"
    assert layer_of("loads (json/decoder.py)") == "other (json, re, stdlib)"
