"""Connectors: one module per partner source, each speaking its partner's wire format.

A connector imports `schemas/` and its own base only; it never imports `service/` or `sandbox/`.
"""
