"""The policy catalog: every parameter file, and the figures in force for one case.

Resolution for (region code, program, area, as_of):

1. Every file whose code is a prefix of the region code takes part, national first, then
   province (2 digits), prefecture (4), county (6); a level without a file is skipped.
2. At each level, the file's versions of that program and area with `effective_from <=
   as_of` apply in date order (each amends the one before); a level with none in force
   contributes nothing.
3. Levels are merged from national to most specific, so a county file that sets only the
   standard inherits everything else from the province (and national defaults) in force on
   that same date.
4. No monthly standard after merging → no policy in force (None).

The national file's standards are placeholders (the file says so with
`placeholder_standards = true`): a region without figures of its own still resolves, but
`standard_is_placeholder` is set and the scorer sends every such household to review.

The result is named `<code>/<program>/<area>@<date>`: the most specific level that
contributed and the latest effective date among the versions applied (from that date on,
this exact combination of figures is in force). Its content hash identifies the figures
themselves, so a report can be reproduced years later.
"""

import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from schemas.policy import PolicyParameters, ResolvedPolicy
from schemas.verification import Area, Program
from service.policy.files import NATIONAL, FileVersion, PolicyFileError, read_file
from service.policy.hashing import content_hash

PARAMS_DIR = Path(__file__).resolve().parent / "params"


def version_name(code: str, program: str, area: str, effective_from: date) -> str:
    return f"{code or NATIONAL}/{program}/{area}@{effective_from.isoformat()}"


RESOLVED_CACHE = 4096
"""Cases (county, programme, area, day) whose resolved policy a catalog remembers."""


class PolicyCatalog:
    """All loaded parameter versions, indexed by (code, program, area), oldest first."""

    def __init__(self, versions: Iterable[FileVersion]) -> None:
        index: dict[tuple[str, str, str], list[FileVersion]] = defaultdict(list)
        for version in versions:
            index[(version.code, version.program, version.area)].append(version)
        self._index = {
            key: tuple(sorted(found, key=lambda version: version.effective_from))
            for key, found in index.items()
        }
        self._codes = tuple(sorted({code for code, _, _ in self._index}, key=len))
        # The catalog never changes once loaded, and what it resolves is frozen: each case's
        # answer is worked out once (intake and scoring both ask, for every verification).
        self._resolved = functools.lru_cache(maxsize=RESOLVED_CACHE)(self._resolve)

    @classmethod
    def load(cls, directory: Path | None = None, *, local: Path | None = None) -> "PolicyCatalog":
        """Read and validate every `*.toml` file in `directory` (default: the shipped set).

        `local` is a deployment's own directory (`HEDUI_POLICY_DIR`): its files add
        regions, and a file named like a shipped one replaces it, so a county's published
        figures need no change to hedui itself.
        Raises PolicyFileError naming the file (and field) of the first broken file.
        """
        directories = [directory or PARAMS_DIR, *([local] if local else [])]
        files: dict[str, Path] = {}
        for folder in directories:
            if not folder.is_dir():
                raise PolicyFileError(folder.name, None, "no such policy directory")
            files.update({path.name: path for path in folder.glob("*.toml")})
        versions: list[FileVersion] = []
        for name in sorted(files):
            versions.extend(read_file(files[name]))
        return cls(versions)

    def below_province(self) -> list[tuple[str, str, str]]:
        """Prefecture and county versions whose monthly standard is below their province's
        in force on the same day (a province sets the least: 各州(市)按不低于省级指导标准的
        原则制定): each version's name, its standard and the province's. A loaded file is
        not refused for it (the law is the province's to enforce), but it is named."""
        found = []
        for (code, program, area), versions in self._index.items():
            if len(code) <= 2:
                continue
            for version in versions:
                standard = dict(version.figures).get("monthly_standard")
                if standard is None:
                    continue
                province = self._province_standard(code[:2], program, area, version.effective_from)
                if province is not None and Decimal(str(standard)) < province:
                    name = version_name(code, program, area, version.effective_from)
                    found.append((name, str(standard), str(province)))
        return sorted(found)

    def _province_standard(
        self, province: str, program: str, area: str, day: date
    ) -> Decimal | None:
        in_force = [
            figures["monthly_standard"]
            for version in self._index.get((province, program, area), ())
            if version.effective_from <= day
            and "monthly_standard" in (figures := dict(version.figures))
        ]
        return Decimal(str(in_force[-1])) if in_force else None

    def resolve(
        self, region_code: str, program: Program, area: Area, as_of: date
    ) -> ResolvedPolicy | None:
        """The figures in force for this case, or None when no standard is in force."""
        return self._resolved(region_code, program, area, as_of)

    def _resolve(
        self, region_code: str, program: Program, area: Area, as_of: date
    ) -> ResolvedPolicy | None:
        if not (region_code.isascii() and region_code.isdigit()):
            raise ValueError("region_code must be a GB/T 2260 code (digits only)")
        layers = [
            layer
            for code in self._codes
            if region_code.startswith(code)
            and (layer := self._layer(code, program, area, as_of)) is not None
        ]
        merged: dict[str, Any] = {}
        placeholder = False
        for layer in layers:
            figures = dict(layer.figures)
            merged.update(figures)
            if "monthly_standard" in figures:
                placeholder = layer.placeholder
        if "monthly_standard" not in merged:
            return None
        if program == "tekun" and "income_standard" not in merged:
            # The destitute's income test is the dibao one of their area, that day.
            dibao = self._resolved(region_code, "dibao", area, as_of)
            if dibao is not None:
                merged["income_standard"] = dibao.parameters.monthly_standard
        top = layers[-1]
        effective_from = max(layer.effective_from for layer in layers)
        parameters = PolicyParameters(
            region_code=top.code,
            program=program,
            area=area,
            effective_from=effective_from,
            version=version_name(top.code, program, area, effective_from),
            standard_is_placeholder=placeholder,
            **merged,
        )
        return ResolvedPolicy(
            parameters=parameters,
            content_hash=content_hash(parameters),
            source_files=tuple(layer.file for layer in layers),
        )

    def _layer(self, code: str, program: str, area: str, as_of: date) -> FileVersion | None:
        """One level's figures on `as_of`: its versions in force, each amending the last."""
        in_force = [
            version
            for version in self._index.get((code, program, area), ())
            if version.effective_from <= as_of
        ]
        if not in_force:
            return None
        figures: dict[str, Any] = {}
        for version in in_force:
            figures.update(version.figures)
        return replace(in_force[-1], figures=tuple(sorted(figures.items())))
