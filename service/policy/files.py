"""Reading and validating policy parameter files.

One TOML file per region-code prefix: `national.toml`, `53.toml` (province), `5301.toml`
(prefecture), `530102.toml` (county). Each holds a list of versions:

    placeholder_standards = false  # true: this file's standards are placeholders (review all)

    [[versions]]
    program = "dibao"              # or a list: ["dibao", "tekun"]
    area = ["urban", "rural"]      # or one area
    effective_from = 2020-06-01    # a TOML date
    monthly_standard = 640         # any PolicyParameters figure; omitted ones are inherited

How versions combine:
- Within a file, versions are amendments: a later version changes only the figures it sets;
  the file's earlier figures stay in force. Entries with the same program, area and date are
  one version and may not set the same figure twice.
- Figures a file never sets come from the less specific level in force on the same date.

Figures are read as Decimal (never float) and validated with the same constraints as
`PolicyParameters`, so a broken file fails at load time, naming the file and the field,
instead of at the first household it would have misjudged.
"""

import re
import tomllib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from schemas.policy import PolicyParameters
from schemas.verification import Area, Program

NATIONAL = "national"
IDENTITY_FIELDS = frozenset({"region_code", "program", "area", "effective_from", "version"})
"""Fields that say which figures these are; a file sets them through its name and keys."""
DERIVED_FIELDS = frozenset({"standard_is_placeholder"})
"""Fields the catalog works out (from the file-level flag), never set per version."""
NOT_FIGURES = IDENTITY_FIELDS | DERIVED_FIELDS
TEKUN_ONLY_FIGURES = ("support_mode_standards", "care_subsidies")
"""Figures about tekun support arrangements; a version that sets one is for tekun alone."""

_FILE_NAME = re.compile(r"^(national|[0-9]{2,12})\.toml$")


class PolicyFileError(ValueError):
    """A parameter file that cannot be used; names the file and, when known, the field."""

    def __init__(self, file: str, field: str | None, problem: str) -> None:
        self.file = file
        self.field = field
        self.problem = problem
        where = f"{file}: {field}" if field else file
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class FileVersion:
    """One (program, area, effective date) version of one file: the figures it sets."""

    code: str
    """Region-code prefix the file covers; '' for national."""
    file: str
    program: Program
    area: Area
    effective_from: date
    figures: tuple[tuple[str, Any], ...]
    """Only the figures this version sets, as (field, value) pairs sorted by field."""
    placeholder: bool = False
    """The file declares its standards placeholders (`placeholder_standards = true`)."""


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


class _VersionKeys(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    program: Annotated[tuple[Program, ...], BeforeValidator(_as_list), Field(min_length=1)]
    area: Annotated[tuple[Area, ...], BeforeValidator(_as_list), Field(min_length=1)]
    effective_from: date

    @model_validator(mode="after")
    def _arrangements_are_tekun_only(self) -> "_VersionKeys":
        for name in TEKUN_ONLY_FIGURES:
            if getattr(self, name, None) is not None and set(self.program) != {"tekun"}:
                raise ValueError(f"{name} applies to tekun only; give it a tekun-only version")
        return self

    @field_validator("monthly_standard", check_fields=False)
    @classmethod
    def _standard_is_positive(cls, value: Decimal | None) -> Decimal | None:
        # A zero standard would make every household ineligible without saying why.
        if value is not None and value <= 0:
            raise ValueError("must be greater than 0")
        return value


def _figure_fields() -> dict[str, Any]:
    """Every PolicyParameters figure, optional, with the same type and constraints."""
    return {
        name: (info.rebuild_annotation() | None, None)
        for name, info in PolicyParameters.model_fields.items()
        if name not in NOT_FIGURES
    }


VersionEntry: type[_VersionKeys] = create_model(
    "VersionEntry", __base__=_VersionKeys, **_figure_fields()
)


class _FileBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = None
    placeholder_standards: bool = False
    versions: list[dict[str, Any]] = Field(min_length=1)


def code_of(path: Path) -> str:
    """The region-code prefix a file covers ('' for national), or PolicyFileError."""
    match = _FILE_NAME.match(path.name)
    if match is None:
        raise PolicyFileError(
            path.name, None, "file name must be national.toml or a 2- to 12-digit region code"
        )
    return "" if match.group(1) == NATIONAL else match.group(1)


def read_file(path: Path) -> list[FileVersion]:
    """Parse and validate one parameter file into its versions."""
    code = code_of(path)
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle, parse_float=Decimal)
    except tomllib.TOMLDecodeError as error:
        raise PolicyFileError(path.name, None, f"invalid TOML: {error}") from error
    body = _validated(_FileBody, raw, path.name, ())
    merged: dict[tuple[Program, Area, date], dict[str, Any]] = {}
    for index, entry_raw in enumerate(body.versions):
        entry = _validated(VersionEntry, entry_raw, path.name, ("versions", index))
        figures = {
            name: getattr(entry, name) for name in entry.model_fields_set if name not in NOT_FIGURES
        }
        for program in entry.program:
            for area in entry.area:
                version = merged.setdefault((program, area, entry.effective_from), {})
                if clash := sorted(figures.keys() & version.keys()):
                    raise PolicyFileError(
                        path.name,
                        f"versions[{index}].{clash[0]}",
                        f"set twice for {program}/{area} from {entry.effective_from}",
                    )
                version.update(figures)
    return [
        FileVersion(
            code=code,
            file=path.name,
            program=program,
            area=area,
            effective_from=effective_from,
            figures=tuple(sorted(figures.items())),
            placeholder=body.placeholder_standards,
        )
        for (program, area, effective_from), figures in merged.items()
    ]


_Model = TypeVar("_Model", bound=BaseModel)


def _validated(
    model: type[_Model], raw: object, file: str, prefix: tuple[str | int, ...]
) -> _Model:
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        more = error.error_count() - 1
        problem = first["msg"].removeprefix("Value error, ")
        if more:
            problem += f" (and {more} more problem(s))"
        raise PolicyFileError(file, _field_path(prefix, first), problem) from error


def _field_path(prefix: tuple[str | int, ...], error: ErrorDetails) -> str | None:
    text = ""
    for part in (*prefix, *error["loc"]):
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or None
