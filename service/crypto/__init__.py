"""Encryption at rest: the keyring (AES-256-GCM data keys wrapped by a key-encryption key),
the blind index (HMAC-SHA256) for equality lookups, and sealed ORM attributes."""
