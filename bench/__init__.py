"""Benchmarks: scripts that print tables and ratios. Never run as tests."""
