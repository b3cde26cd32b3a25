"""Scheduled re-checks of recipients: which are due, starting their verifications, and
what a re-check's end does (change detection)."""
