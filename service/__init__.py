"""hedui service: API, database, background jobs; the one place that puts the parts together."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hedui")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
