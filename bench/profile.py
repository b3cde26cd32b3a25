"""Where a hedui process's CPU goes: py-spy's samples, summed by frame and by layer.

`sampling(pids, directory)` records every given process with py-spy (`py-spy record
--format raw`: one line per distinct stack, with its count) while the block runs;
`headline(path)` reads such a file back: the top frames by self time (the frame a sample was
taken in) and each layer's share, a layer being where that frame's code lives (the inbound
request, storage, partner calls, validation, logging, hedui's own code, the event loop).

Only the threads that run Python count: aiosqlite's connection threads wait in a queue,
which py-spy samples as busy (a third of all samples on SQLite), and are left out.

py-spy is not one of hedui's dependencies: `pip install py-spy` (it reads another
process's memory, as root or with `ptrace` allowed). Used by `python -m bench.fanout
--profile DIR`; on its own: `python -m bench.profile FILE...` prints the headline of files
recorded before.
"""

import argparse
import contextlib
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

RATE_HZ = 250
_RECORD = ("record", "--format", "raw", "--rate", str(RATE_HZ))

LAYERS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("logging", r"(structlog|/logging/|service/logging\.py)"),
        ("inbound (uvicorn, starlette, fastapi)", r"(uvicorn|starlette|fastapi|httptools)"),
        ("storage (sqlalchemy, drivers)", r"(sqlalchemy|aiosqlite|asyncpg|sqlite_driver|greenlet)"),
        (
            "partner calls (httpx, aiohttp)",
            r"(httpx|httpcore|aiohttp|yarl|multidict|h11|service/http\.py|connector/meter)",
        ),
        ("validation (pydantic)", r"pydantic"),
        ("crypto", r"(cryptography|service/crypto)"),
        ("connectors", r"connectors/"),
        ("hedui (service, schemas)", r"(service/|schemas/)"),
        ("event loop (asyncio, uvloop)", r"(asyncio|uvloop|runners\.py|selectors)"),
    )
)
"""First match wins: a frame of structlog's is logging, wherever it was called from."""

IDLE_THREAD = re.compile(r"_connection_worker_thread")
"""aiosqlite's connection threads, waiting on their queue (not CPU)."""


@dataclass(frozen=True)
class Headline:
    samples: int
    top: list[tuple[str, int]]
    layers: list[tuple[str, int]]

    def lines(self, top: int = 10) -> list[str]:
        shown = [f"{self.samples} samples of running Python; top {top} frames by self time:"]
        for frame, count in self.top[:top]:
            shown.append(f"  {100 * count / self.samples:5.1f} %  {frame}")
        shown.append("share per layer (the layer of the frame each sample was taken in):")
        for layer, count in self.layers:
            shown.append(f"  {100 * count / self.samples:5.1f} %  {layer}")
        return shown


def layer_of(frame: str) -> str:
    for name, pattern in LAYERS:
        if pattern.search(frame):
            return name
    return "other (json, re, stdlib)"


def _short(frame: str) -> str:
    """`function (path:line)` as `function (package/module.py)`: no line, no install path."""
    frame = re.sub(r":\d+\)$", ")", frame)
    frame = re.sub(r"\(/[^()]*?/site-packages/", "(", frame)
    return re.sub(r"\(/[^()]*?/(service|connectors|schemas|sandbox)/", r"(\1/", frame)


def headline(paths: Sequence[Path]) -> Headline:
    """The top frames by self time and each layer's share, over every file in `paths`."""
    frames: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit() or IDLE_THREAD.search(stack):
                continue
            leaf = _short(stack.rsplit(";", 1)[-1])
            frames[leaf] += int(count)
            layers[layer_of(leaf)] += int(count)
    return Headline(sum(frames.values()), frames.most_common(), layers.most_common())


def py_spy() -> str:
    """py-spy's executable: on the PATH or beside this Python's (a virtual environment's)."""
    found = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit("profiling needs py-spy: pip install py-spy")
    return found


@contextlib.contextmanager
def sampling(pids: Sequence[int], directory: Path, name: str) -> Iterator[list[Path]]:
    """py-spy on each of `pids` while the block runs; yields the files it will have written
    (`directory/name-PID.txt`) once the block has ended."""
    spy = py_spy()
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{name}-{pid}.txt" for pid in pids]
    recorders = [
        subprocess.Popen(  # noqa: S603 - py-spy, fixed arguments
            [spy, *_RECORD, "--pid", str(pid), "--output", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid, path in zip(pids, paths, strict=True)
    ]
    try:
        yield paths
    finally:
        for recorder in recorders:
            recorder.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
        for recorder in recorders:
            recorder.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="+", type=Path, help="py-spy raw files")
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    print("\n".join(headline(args.files).lines(args.top)))


if __name__ == "__main__":
    main()
