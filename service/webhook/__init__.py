"""Webhooks: events recorded in a transactional outbox, delivered signed, at least once."""
