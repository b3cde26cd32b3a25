"""Background work.

Each job opens its own session; job arguments carry ids only, never personal data.
"""
