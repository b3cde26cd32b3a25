"""Policy files: loading, resolution by region prefix and date, inheritance, hashing, errors."""

import hashlib
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from schemas.policy import ResolvedPolicy
from service.policy.catalog import PolicyCatalog
from service.policy.files import PolicyFileError
from service.policy.hashing import content_hash

from .builders import CATALOG

NATIONAL = """
[[versions]]
program = ["dibao", "tekun", "linshi"]
area = ["urban", "rural"]
effective_from = 2019-01-01
asset_months = 24
housing_fund_contribution_rate = 0.24
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def resolve(
    catalog: PolicyCatalog, region: str, program: str, area: str, as_of: date
) -> ResolvedPolicy:
    resolved = catalog.resolve(region, program, area, as_of)  # type: ignore[arg-type]
    assert resolved is not None
    return resolved


class TestShippedFiles:
    @pytest.mark.parametrize(
        ("region", "program", "area", "standard", "version"),
        [
            ("530103", "dibao", "urban", "640", "53/dibao/urban@2020-06-01"),
            ("530103", "dibao", "rural", "375", "53/dibao/rural@2020-06-01"),
            ("532301", "tekun", "urban", "832", "53/tekun/urban@2020-06-01"),
            ("532301", "tekun", "rural", "832", "53/tekun/rural@2020-06-01"),
            ("530103", "linshi", "urban", "640", "53/linshi/urban@2020-06-01"),
            ("360102", "dibao", "urban", "640", "36/dibao/urban@2019-01-01"),
            ("360102", "dibao", "rural", "385", "36/dibao/rural@2019-01-01"),
            ("360102", "tekun", "urban", "835", "36/tekun/urban@2019-01-01"),
            ("360102", "tekun", "rural", "400", "36/tekun/rural@2019-01-01"),
            ("360102", "linshi", "rural", "385", "36/linshi/rural@2019-01-01"),
        ],
    )
    def test_seed_figures(
        self, region: str, program: str, area: str, standard: str, version: str
    ) -> None:
        """The seed documents' standards are what the provinces resolve to."""
        parameters = resolve(CATALOG, region, program, area, date(2026, 11, 20)).parameters
        assert parameters.monthly_standard == Decimal(standard)
        assert parameters.version == version

    def test_jiangxi_linshi_cap_and_national_defaults_are_inherited(self) -> None:
        """Rule figures the province does not set come from national.toml."""
        resolved = resolve(CATALOG, "360102", "linshi", "urban", date(2026, 1, 1))
        assert resolved.parameters.special_aid_cap == Decimal("30000")
        assert resolved.parameters.asset_months == 24
        assert resolved.parameters.housing_fund_contribution_rate == Decimal("0.24")
        assert resolved.parameters.vehicle_exempt_types == ("motorcycle", "disability")
        assert resolved.source_files == ("national.toml", "36.toml")

    def test_yunnan_has_no_linshi_cap(self) -> None:
        resolved = resolve(CATALOG, "530103", "linshi", "rural", date(2026, 1, 1))
        assert resolved.parameters.special_aid_cap is None

    def test_county_override_applies_from_its_date(self) -> None:
        """The illustrative county file raises only the urban dibao standard, from 2024-01-01."""
        after = resolve(CATALOG, "530111", "dibao", "urban", date(2024, 1, 1))
        before = resolve(CATALOG, "530111", "dibao", "urban", date(2023, 12, 31))
        rural = resolve(CATALOG, "530111", "dibao", "rural", date(2024, 6, 1))
        assert after.parameters.monthly_standard == Decimal("700")
        assert after.parameters.version == "530111/dibao/urban@2024-01-01"
        assert after.parameters.region_code == "530111"
        assert after.parameters.asset_months == 24
        assert after.source_files == ("national.toml", "53.toml", "530111.toml")
        assert before.parameters.monthly_standard == Decimal("640")
        assert before.parameters.version == "53/dibao/urban@2020-06-01"
        assert rural.parameters.monthly_standard == Decimal("375")

    def test_a_case_is_resolved_once_and_each_day_on_its_own(self) -> None:
        """Intake and scoring both resolve every verification's case: the catalog answers a
        case it has seen with the same (frozen) answer, and a day across a version's start
        with that day's own."""
        first = resolve(CATALOG, "530111", "dibao", "urban", date(2024, 1, 1))
        again = resolve(CATALOG, "530111", "dibao", "urban", date(2024, 1, 1))
        earlier = resolve(CATALOG, "530111", "dibao", "urban", date(2023, 12, 31))
        assert again is first
        assert earlier.parameters.monthly_standard != first.parameters.monthly_standard

    def test_other_counties_keep_the_provincial_standard(self) -> None:
        """530102 (the API contract's example county) stays at the provincial 640."""
        parameters = resolve(CATALOG, "530102", "dibao", "urban", date(2026, 11, 20)).parameters
        assert parameters.monthly_standard == Decimal("640")

    @pytest.mark.parametrize(
        ("region", "as_of"),
        [
            ("530103", date(2018, 12, 31)),
            ("360102", date(2018, 12, 31)),
            ("110105", date(2000, 1, 1)),
        ],
    )
    def test_date_before_any_version_is_none(self, region: str, as_of: date) -> None:
        assert CATALOG.resolve(region, "dibao", "urban", as_of) is None

    @pytest.mark.parametrize(
        ("program", "area", "standard"),
        [
            ("dibao", "urban", "640"),
            ("dibao", "rural", "375"),
            ("tekun", "urban", "832"),
            ("tekun", "rural", "400"),
            ("linshi", "urban", "640"),
            ("linshi", "rural", "375"),
        ],
    )
    def test_region_without_figures_gets_flagged_national_placeholders(
        self, program: str, area: str, standard: str
    ) -> None:
        resolved = resolve(CATALOG, "110105", program, area, date(2026, 1, 1))
        assert resolved.parameters.monthly_standard == Decimal(standard)
        assert resolved.parameters.standard_is_placeholder is True
        assert resolved.parameters.version == f"national/{program}/{area}@2019-01-01"
        assert resolved.parameters.region_code == ""
        assert resolved.source_files == ("national.toml",)

    def test_province_before_its_own_figures_falls_back_to_placeholders(self) -> None:
        """Yunnan's figures start 2020-06-01; the day before, the placeholders apply."""
        before = resolve(CATALOG, "530103", "dibao", "rural", date(2020, 5, 31)).parameters
        after = resolve(CATALOG, "530103", "dibao", "rural", date(2020, 6, 1)).parameters
        assert (before.standard_is_placeholder, after.standard_is_placeholder) == (True, False)

    def test_provincial_standards_are_not_placeholders(self) -> None:
        for region in ("530103", "360102", "530111"):
            parameters = resolve(CATALOG, region, "dibao", "urban", date(2026, 1, 1)).parameters
            assert parameters.standard_is_placeholder is False

    def test_region_code_must_be_digits(self) -> None:
        with pytest.raises(ValueError, match="digits"):
            CATALOG.resolve("53-01", "dibao", "urban", date(2026, 1, 1))


class TestResolution:
    @pytest.fixture
    def catalog(self, tmp_path: Path) -> PolicyCatalog:
        write(tmp_path, "national.toml", NATIONAL)
        write(
            tmp_path,
            "53.toml",
            """
[[versions]]
program = "dibao"
area = "urban"
effective_from = 2020-06-01
monthly_standard = 640

[[versions]]
program = "dibao"
area = "urban"
effective_from = 2022-01-01
monthly_standard = 660
asset_months = 12
""",
        )
        write(
            tmp_path,
            "5301.toml",
            """
[[versions]]
program = "dibao"
area = "urban"
effective_from = 2021-01-01
vehicle_value_threshold = 30000
""",
        )
        write(
            tmp_path,
            "530102.toml",
            """
[[versions]]
program = "dibao"
area = "urban"
effective_from = 2023-01-01
monthly_standard = 700
""",
        )
        return PolicyCatalog.load(tmp_path)

    def test_latest_version_in_force_wins(self, catalog: PolicyCatalog) -> None:
        early = resolve(catalog, "530199", "dibao", "urban", date(2021, 12, 31))
        late = resolve(catalog, "530199", "dibao", "urban", date(2022, 1, 1))
        assert early.parameters.monthly_standard == Decimal("640")
        assert late.parameters.monthly_standard == Decimal("660")

    def test_more_specific_file_inherits_unset_fields_in_force_that_day(
        self, catalog: PolicyCatalog
    ) -> None:
        """County sets the standard only; prefecture, province and national fill the rest."""
        parameters = resolve(catalog, "530102", "dibao", "urban", date(2023, 6, 1)).parameters
        assert parameters.monthly_standard == Decimal("700")
        assert parameters.vehicle_value_threshold == Decimal("30000")  # prefecture
        assert parameters.asset_months == 12  # province's 2022 version
        assert parameters.housing_fund_contribution_rate == Decimal("0.24")  # national
        assert parameters.version == "530102/dibao/urban@2023-01-01"

    def test_inheritance_follows_the_date(self, catalog: PolicyCatalog) -> None:
        """Before the province's 2022 version, the county still inherits 24 asset months."""
        parameters = resolve(catalog, "5301", "dibao", "urban", date(2021, 6, 1)).parameters
        assert parameters.monthly_standard == Decimal("640")
        assert parameters.asset_months == 24
        assert parameters.vehicle_value_threshold == Decimal("30000")

    def test_version_carries_the_latest_contributing_date(self, catalog: PolicyCatalog) -> None:
        """Prefecture 2021 + province 2022: this combination is in force from 2022-01-01."""
        parameters = resolve(catalog, "530111", "dibao", "urban", date(2022, 3, 1)).parameters
        assert parameters.version == "5301/dibao/urban@2022-01-01"
        assert parameters.effective_from == date(2022, 1, 1)
        assert parameters.region_code == "5301"

    def test_county_version_not_yet_in_force_is_ignored(self, catalog: PolicyCatalog) -> None:
        parameters = resolve(catalog, "530102", "dibao", "urban", date(2022, 12, 31)).parameters
        assert parameters.monthly_standard == Decimal("660")

    def test_program_without_a_standard_is_none(self, catalog: PolicyCatalog) -> None:
        assert catalog.resolve("530102", "tekun", "urban", date(2023, 6, 1)) is None

    def test_later_version_of_a_file_amends_the_earlier_one(self, tmp_path: Path) -> None:
        """A 2021 version that only raises the standard keeps the file's 2019 cap."""
        write(
            tmp_path,
            "36.toml",
            """
[[versions]]
program = "linshi"
area = "urban"
effective_from = 2019-01-01
monthly_standard = 640
special_aid_cap = 30000

[[versions]]
program = "linshi"
area = "urban"
effective_from = 2021-01-01
monthly_standard = 700
""",
        )
        parameters = resolve(
            PolicyCatalog.load(tmp_path), "360102", "linshi", "urban", date(2021, 6, 1)
        ).parameters
        assert parameters.monthly_standard == Decimal("700")
        assert parameters.special_aid_cap == Decimal("30000")
        assert parameters.version == "36/linshi/urban@2021-01-01"

    def test_entries_with_the_same_date_combine(self, tmp_path: Path) -> None:
        write(
            tmp_path,
            "36.toml",
            """
[[versions]]
program = ["dibao", "tekun"]
area = ["urban", "rural"]
effective_from = 2019-01-01
asset_months = 12

[[versions]]
program = "dibao"
area = "urban"
effective_from = 2019-01-01
monthly_standard = 640
""",
        )
        parameters = resolve(
            PolicyCatalog.load(tmp_path), "360102", "dibao", "urban", date(2019, 1, 1)
        ).parameters
        assert (parameters.monthly_standard, parameters.asset_months) == (Decimal("640"), 12)

    def test_placeholder_flag_follows_the_file_that_set_the_standard(self, tmp_path: Path) -> None:
        write(
            tmp_path,
            "national.toml",
            "placeholder_standards = true\n"
            + NATIONAL
            + """
[[versions]]
program = "dibao"
area = "urban"
effective_from = 2019-01-01
monthly_standard = 600
""",
        )
        write(
            tmp_path,
            "53.toml",
            """
[[versions]]
program = "dibao"
area = "urban"
effective_from = 2020-06-01
asset_months = 12
""",
        )
        write(
            tmp_path,
            "36.toml",
            """
[[versions]]
program = "dibao"
area = "urban"
effective_from = 2019-01-01
monthly_standard = 640
""",
        )
        catalog = PolicyCatalog.load(tmp_path)
        yunnan = resolve(catalog, "530103", "dibao", "urban", date(2021, 1, 1)).parameters
        jiangxi = resolve(catalog, "360102", "dibao", "urban", date(2021, 1, 1)).parameters
        assert (yunnan.monthly_standard, yunnan.asset_months) == (Decimal("600"), 12)
        assert yunnan.standard_is_placeholder is True
        assert yunnan.version == "53/dibao/urban@2020-06-01"
        assert jiangxi.standard_is_placeholder is False

    def test_missing_directory_is_an_error(self, tmp_path: Path) -> None:
        with pytest.raises(PolicyFileError, match="no-such-dir"):
            PolicyCatalog.load(tmp_path / "no-such-dir")


class TestContentHash:
    def test_stable_across_loads(self) -> None:
        first = resolve(CATALOG, "530103", "dibao", "urban", date(2026, 1, 1))
        second = resolve(PolicyCatalog.load(), "530103", "dibao", "urban", date(2026, 1, 1))
        assert first.content_hash == second.content_hash
        assert len(first.content_hash) == 64

    def test_pinned_value(self, tmp_path: Path) -> None:
        """A literal: the hash must not depend on the process, dict order or platform."""
        write(
            tmp_path,
            "53.toml",
            """
[[versions]]
program = "dibao"
area = "urban"
effective_from = 2020-06-01
monthly_standard = 640
""",
        )
        catalog = PolicyCatalog.load(tmp_path)
        resolved = resolve(catalog, "530103", "dibao", "urban", date(2021, 1, 1))
        assert resolved.content_hash == hashlib.sha256(CANONICAL.encode()).hexdigest()
        assert resolved.content_hash == (
            "5a9125256e7e0a98d49b48c478f513bae61b7bb656276c96fde843257b7fcc78"
        )

    def test_trailing_zeros_do_not_change_it(self) -> None:
        parameters = resolve(CATALOG, "530103", "dibao", "urban", date(2026, 1, 1)).parameters
        padded = parameters.model_copy(
            update={
                "housing_fund_contribution_rate": Decimal("0.2400"),
                "monthly_standard": Decimal("640.00"),
            }
        )
        assert content_hash(padded) == content_hash(parameters)

    def test_any_figure_changes_it(self) -> None:
        parameters = resolve(CATALOG, "530103", "dibao", "urban", date(2026, 1, 1)).parameters
        changed = parameters.model_copy(update={"asset_months": 23})
        assert content_hash(changed) != content_hash(parameters)

    def test_differs_between_regions(self) -> None:
        yunnan = resolve(CATALOG, "530103", "dibao", "urban", date(2026, 1, 1))
        jiangxi = resolve(CATALOG, "360102", "dibao", "urban", date(2026, 1, 1))
        assert yunnan.content_hash != jiangxi.content_hash


# The canonical JSON of the figures above with every default: sorted keys, no spaces,
# decimals without trailing zeros, ISO dates.
CANONICAL = (
    '{"area":"urban","asset_months":24,"effective_from":"2020-06-01",'
    '"housing_fund_contribution_rate":"0.24","income_gap_ratio":"0.3",'
    '"linshi_benefit_months":3,"max_dwellings":1,"monthly_standard":"640","program":"dibao",'
    '"region_code":"53","special_aid_cap":null,"standard_is_placeholder":false,'
    '"vehicle_exempt_types":["motorcycle","disability"],"vehicle_value_threshold":"0",'
    '"version":"53/dibao/urban@2020-06-01"}'
)


class TestBrokenFiles:
    def load_one(self, tmp_path: Path, name: str, text: str) -> PolicyFileError:
        write(tmp_path, name, text)
        with pytest.raises(PolicyFileError) as caught:
            PolicyCatalog.load(tmp_path)
        return caught.value

    def test_invalid_toml_names_the_file(self, tmp_path: Path) -> None:
        error = self.load_one(tmp_path, "53.toml", "[[versions]\nprogram = ")
        assert error.file == "53.toml"
        assert "53.toml" in str(error)
        assert "invalid TOML" in str(error)

    def test_negative_standard_names_file_and_field(self, tmp_path: Path) -> None:
        error = self.load_one(
            tmp_path,
            "36.toml",
            """
[[versions]]
program = "dibao"
area = "urban"
effective_from = 2019-01-01
monthly_standard = -640
""",
        )
        assert error.file == "36.toml"
        assert error.field == "versions[0].monthly_standard"
        assert str(error).startswith("36.toml: versions[0].monthly_standard: ")

    def test_zero_standard_is_refused(self, tmp_path: Path) -> None:
        error = self.load_one(
            tmp_path,
            "36.toml",
            """
[[versions]]
program = "dibao"
area = "urban"
effective_from = 2019-01-01
monthly_standard = 0
""",
        )
        assert error.field == "versions[0].monthly_standard"
        assert "greater than 0" in error.problem

    def test_unknown_field_is_named(self, tmp_path: Path) -> None:
        error = self.load_one(
            tmp_path,
            "53.toml",
            """
[[versions]]
program = "dibao"
area = "urban"
effective_from = 2020-06-01
monthly_standard = 640

[[versions]]
program = "dibao"
area = "rural"
effective_from = 2020-06-01
monthly_standrad = 375
""",
        )
        assert error.field == "versions[1].monthly_standrad"
        assert "Extra inputs" in error.problem

    def test_unknown_program_is_named(self, tmp_path: Path) -> None:
        error = self.load_one(
            tmp_path,
            "53.toml",
            """
[[versions]]
program = "dibaoo"
area = "urban"
effective_from = 2020-06-01
monthly_standard = 640
""",
        )
        assert error.field is not None
        assert error.field.startswith("versions[0].program")

    def test_bad_date_is_named(self, tmp_path: Path) -> None:
        error = self.load_one(
            tmp_path,
            "53.toml",
            """
[[versions]]
program = "dibao"
area = "urban"
effective_from = "June 2020"
monthly_standard = 640
""",
        )
        assert error.field == "versions[0].effective_from"

    def test_too_many_decimals_in_money_is_named(self, tmp_path: Path) -> None:
        error = self.load_one(
            tmp_path,
            "53.toml",
            """
[[versions]]
program = "dibao"
area = "urban"
effective_from = 2020-06-01
monthly_standard = 640.001
""",
        )
        assert error.field == "versions[0].monthly_standard"

    def test_rate_above_one_is_named(self, tmp_path: Path) -> None:
        error = self.load_one(
            tmp_path,
            "national.toml",
            """
[[versions]]
program = "dibao"
area = "urban"
effective_from = 2019-01-01
housing_fund_contribution_rate = 24
""",
        )
        assert error.file == "national.toml"
        assert error.field == "versions[0].housing_fund_contribution_rate"

    @pytest.mark.parametrize(
        ("line", "field"),
        [
            ("monthly_standard = 1000000.01", "monthly_standard"),
            ("housing_fund_contribution_rate = 1e-30", "housing_fund_contribution_rate"),
            ("housing_fund_contribution_rate = 0.009", "housing_fund_contribution_rate"),
            ("income_gap_ratio = 0.1234567", "income_gap_ratio"),
        ],
    )
    def test_a_figure_beyond_its_bounds_is_named(
        self, tmp_path: Path, line: str, field: str
    ) -> None:
        """Beyond them, the rules' amounts would not fit an amount's 16 digits."""
        error = self.load_one(
            tmp_path,
            "53.toml",
            f"""
[[versions]]
program = "dibao"
area = "urban"
effective_from = 2019-01-01
{line}
""",
        )
        assert error.field == f"versions[0].{field}"

    @pytest.mark.parametrize("field", ["asset_months", "max_dwellings", "linshi_benefit_months"])
    def test_a_boolean_count_is_named(self, tmp_path: Path, field: str) -> None:
        """TOML's `true` is not the count 1."""
        error = self.load_one(
            tmp_path,
            "53.toml",
            f"""
[[versions]]
program = "dibao"
area = "urban"
effective_from = 2019-01-01
{field} = true
""",
        )
        assert error.field == f"versions[0].{field}"
        assert error.problem.endswith("must be a whole number, not a boolean")

    def test_figure_set_twice_for_the_same_version_is_named(self, tmp_path: Path) -> None:
        error = self.load_one(
            tmp_path,
            "53.toml",
            """
[[versions]]
program = ["dibao", "tekun"]
area = "urban"
effective_from = 2020-06-01
monthly_standard = 640

[[versions]]
program = "tekun"
area = "urban"
effective_from = 2020-06-01
monthly_standard = 832
""",
        )
        assert error.field == "versions[1].monthly_standard"
        assert "tekun/urban" in error.problem

    def test_missing_versions_is_named(self, tmp_path: Path) -> None:
        error = self.load_one(tmp_path, "53.toml", 'title = "empty"\n')
        assert error.field == "versions"

    def test_bad_file_name_is_named(self, tmp_path: Path) -> None:
        error = self.load_one(tmp_path, "yunnan.toml", NATIONAL)
        assert error.file == "yunnan.toml"
        assert error.field is None

    def test_a_good_file_does_not_hide_a_broken_one(self, tmp_path: Path) -> None:
        write(tmp_path, "national.toml", NATIONAL)
        error = self.load_one(tmp_path, "5301.toml", "[[versions]]\nprogram = 'dibao'\n")
        assert error.file == "5301.toml"


class TestLocalDirectory:
    def test_local_file_named_like_a_shipped_one_replaces_it(self, tmp_path: Path) -> None:
        (tmp_path / "53.toml").write_text(
            'title = "local Yunnan"\n\n[[versions]]\nprogram = "dibao"\narea = "urban"\n'
            "effective_from = 2020-06-01\nmonthly_standard = 650\n",
            encoding="utf-8",
        )
        catalog = PolicyCatalog.load(local=tmp_path)

        urban = catalog.resolve("530103", "dibao", "urban", date(2026, 1, 1))
        rural = catalog.resolve("530103", "dibao", "rural", date(2026, 1, 1))

        assert urban is not None
        assert urban.parameters.monthly_standard == Decimal("650")
        # The shipped 53.toml is gone, so rural falls back to the national placeholder.
        assert rural is not None
        assert rural.parameters.standard_is_placeholder

    def test_shipped_catalog_has_no_illustrative_county(self) -> None:
        shipped = PolicyCatalog.load()
        county = shipped.resolve("530111", "dibao", "urban", date(2026, 1, 1))
        assert county is not None
        assert county.parameters.monthly_standard == Decimal("640")


def test_a_county_standard_below_its_province_s_is_named(tmp_path: Path) -> None:
    """各州(市)按不低于省级指导标准的原则制定: a county file at 600 under the province's 640
    loads (the law is the province's to enforce), and is named; one above it is not."""
    write(tmp_path, "national.toml", NATIONAL)
    write(
        tmp_path,
        "53.toml",
        """
[[versions]]
program = "dibao"
area = "urban"
effective_from = 2020-06-01
monthly_standard = 640
""",
    )
    for county, figure in (("530102", 600), ("530103", 700)):
        write(
            tmp_path,
            f"{county}.toml",
            f"""
[[versions]]
program = "dibao"
area = "urban"
effective_from = 2021-01-01
monthly_standard = {figure}
""",
        )
    catalog = PolicyCatalog.load(tmp_path)
    assert catalog.below_province() == [("530102/dibao/urban@2021-01-01", "600", "640")]
    assert PolicyCatalog.load().below_province() == []  # the shipped files
