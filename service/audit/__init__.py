"""The audit trail: who did or read what, hash-chained and signed so an insider cannot
quietly edit it (docs/audit.md)."""
