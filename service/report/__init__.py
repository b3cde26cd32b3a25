"""Scored reports: assembly from stored facts, storage, reading."""
