"""The example specs shipped in examples/connectors/, pointed at a given sandbox."""

import json
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "connectors"


def example(name: str, sandbox_url: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    if sandbox_url is not None:
        spec["base_url"] = f"{sandbox_url}/{name}"
    return spec
