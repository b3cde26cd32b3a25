"""特困 (tekun) arrangements: which standard applies and which care subsidy is added.

A tekun request may name its support arrangement (`support_mode`: concentrated support in an
institution, 集中供养, or dispersed support at home, 分散供养) and the supported person's
self-care grade (`care_grade`: 1 unable to care for themselves, 2 partly able, 3 able).

- Standard: a region that sets one per arrangement (`support_mode_standards`; Jiangxi rural:
  505 concentrated, 400 dispersed) has the named arrangement's figure applied; without an
  arrangement, `monthly_standard` (the region's default) applies. A region without
  per-arrangement figures applies `monthly_standard` to every arrangement.
- Care subsidy: `care_subsidies[support_mode][care_grade]`, added once (it is the supported
  person's) to the monthly benefit with its own line in the basis. Yunnan 2020 pays 835 /
  418 / 251 for grades 1 / 2 / 3 in concentrated support. Jiangxi 2019 pays 1,200 to the
  fully disabled (失能, grade 1) and 300 to the partly disabled (半失能, grade 2) in its
  concentrated care centres, and has "made no arrangement" for those who care for
  themselves (grade 3): that combination is not defined, so it is refused, as is any grade
  under an arrangement the region sets no subsidy for (Yunnan and Jiangxi alike only name
  concentrated support).
- A combination the region's policy does not define is refused (`ArrangementError`, which
  names the request field), never guessed: a care grade needs a support mode, and both are
  for tekun only.
"""

from dataclasses import dataclass
from decimal import Decimal

from schemas.policy import PolicyParameters
from schemas.verification import CareGrade, SupportMode


class ArrangementError(ValueError):
    """A support mode or care grade the policy does not define; names the request field."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


@dataclass(frozen=True)
class Arrangement:
    support_mode: SupportMode | None
    care_grade: CareGrade | None
    monthly_standard: Decimal
    """The standard applied to this case."""
    care_subsidy: Decimal | None
    """Added to the monthly benefit; None when the request named no care grade."""


def arrangement(
    policy: PolicyParameters, support_mode: SupportMode | None, care_grade: CareGrade | None
) -> Arrangement:
    """The standard and care subsidy for this request, or ArrangementError."""
    if policy.program != "tekun":
        for field, value in (("support_mode", support_mode), ("care_grade", care_grade)):
            if value is not None:
                raise ArrangementError(field, f"applies to tekun only, not {policy.program}")
        return Arrangement(None, None, policy.monthly_standard, None)
    standard = policy.monthly_standard
    if support_mode is not None and policy.support_mode_standards is not None:
        if support_mode not in policy.support_mode_standards:
            defined = ", ".join(sorted(policy.support_mode_standards))
            raise ArrangementError(
                "support_mode",
                f"{policy.version} sets no standard for {support_mode} support "
                f"(defined: {defined})",
            )
        standard = policy.support_mode_standards[support_mode]
    subsidy = None
    if care_grade is not None:
        if support_mode is None:
            raise ArrangementError(
                "care_grade", "needs support_mode: care subsidies are set per support arrangement"
            )
        grades = (policy.care_subsidies or {}).get(support_mode, {})
        if care_grade not in grades:
            defined = ", ".join(str(grade) for grade in sorted(grades)) or "none"
            raise ArrangementError(
                "care_grade",
                f"{policy.version} sets no care subsidy for grade {care_grade} in "
                f"{support_mode} support (grades defined: {defined})",
            )
        subsidy = grades[care_grade]
    return Arrangement(support_mode, care_grade, standard, subsidy)
