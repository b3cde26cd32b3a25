"""Helpers shared by the sandbox tests (fixtures live in conftest.py)."""

from collections.abc import Awaitable, Callable

import httpx

from sandbox.records import Person
from schemas.identity import check_character

ALICE = "11010519491231002X"
BOB = "440524188001010014"

Seed = Callable[..., Awaitable[httpx.Response]]
"""`await seed(id_number, pension={...})`: seed one person, failing the test on a non-200."""
FindSynthetic = Callable[[Callable[[Person], bool]], str]
"""The first never-seeded ID number whose synthetic records satisfy a predicate."""


def valid_id(first17: str) -> str:
    """Complete 17 digits into a valid GB 11643 ID number."""
    return first17 + check_character(first17)
