"""Retention: raw partner records are purged after a configurable period, while reports,
decisions and the audit trail remain (docs/privacy.md)."""
