"""Verification requests: intake, listing, the fan-out to partner sources."""
