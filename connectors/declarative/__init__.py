"""Declarative HTTP connectors: a partner described as data, served by the common contract."""

from connectors.declarative.connector import DeclarativeConnector, build_connector
from connectors.declarative.spec import (
    DEFAULT_PARTNER_HOSTS,
    ConnectorSpec,
    Problem,
    SpecInvalid,
    validate_spec,
)

__all__ = [
    "DEFAULT_PARTNER_HOSTS",
    "ConnectorSpec",
    "DeclarativeConnector",
    "Problem",
    "SpecInvalid",
    "build_connector",
    "validate_spec",
]
