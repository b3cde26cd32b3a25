"""Fixtures the end-to-end tests share beyond one file."""

from tests.e2e.office import office  # noqa: F401 - the county office of re-checks and changes
