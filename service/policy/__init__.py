"""Policy as versioned data and the pure scorer that applies it.

- `PolicyCatalog.load()` reads the parameter files in `params/`; `resolve()` picks the
  figures in force for a region, program, area and date.
- `apply_overrides()` derives a what-if variant of resolved figures for simulations.
- `assess()` turns one household's stored facts and the figures into an explainable result.
"""

from service.policy.catalog import PolicyCatalog
from service.policy.files import PolicyFileError
from service.policy.overrides import PolicyOverrideError, apply_overrides
from service.policy.scoring import assess

__all__ = [
    "PolicyCatalog",
    "PolicyFileError",
    "PolicyOverrideError",
    "apply_overrides",
    "assess",
]
