"""Fake partner agencies: the outside world hedui talks to, on one machine.

Each agency speaks its own wire format (see docs/partners.md). This package imports
nothing from `service/` or `connectors/`, so it can run as its own process and behave
like a real partner; only `schemas.identity` is shared, for ID validation and masking.
"""

from sandbox.app import create_sandbox_app

__all__ = ["create_sandbox_app"]
