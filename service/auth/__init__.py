"""API keys, roles and region scoping."""
