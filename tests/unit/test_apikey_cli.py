"""What `hedui apikey create` accepts as an expiry, and what it refuses before touching
the database."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from service.auth.cli import parse_duration, parse_expiry
from service.auth.service import clean_name
from service.cli import app

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", timedelta(days=90)),
        ("90", timedelta(days=90)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        (" 2W ", timedelta(weeks=2)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "0d", "-3d", "1y", "d", "1.5d", "3 days", "123456d"])
def test_wrong_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="positive duration"):
        parse_duration(text)


def test_an_expiry_date_is_the_start_of_that_day_in_the_deployments_zone() -> None:
    assert parse_expiry("2027-03-01", SHANGHAI) == datetime(2027, 2, 28, 16, 0, tzinfo=UTC)
    assert parse_expiry("2027-03-01T18:30", SHANGHAI) == datetime(2027, 3, 1, 10, 30, tzinfo=UTC)
    assert parse_expiry("2027-03-01T18:30+00:00", SHANGHAI) == datetime(
        2027, 3, 1, 18, 30, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="ISO date"):
        parse_expiry("next tuesday", SHANGHAI)


def test_names_are_trimmed_and_must_say_something() -> None:
    assert clean_name("  Zhang   caseworker,\tWuhua ") == "Zhang caseworker, Wuhua"
    for wrong in (
        "   ",
        "x" * 129,
        "a\x07b",
        "张三 11010519491231002X",
        "李四 4405 2418 8001 0100 14",
    ):
        with pytest.raises(ValueError, match="name"):
            clean_name(wrong)


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        (["--expires-in", "1y"], "--expires-in"),
        (["--expires", "2001-01-01"], "has passed"),
        (["--expires-in", "3d", "--expires", "2099-01-01"], "not both"),
        (["--name", "   "], "--name"),
        (["--name", "张三 11010519491231002X"], "must not hold an ID number"),
        (["--expires", "9999-12-31"], "5 years at most"),
        (["--expires-in", "2000d"], "5 years at most"),
    ],
)
def test_create_refuses_a_wrong_option_before_opening_the_database(
    options: list[str], complaint: str, tmp_path: object
) -> None:
    result = CliRunner().invoke(
        app,
        ["apikey", "create", "--role", "caseworker", "--region", "53", *options],
        env={"HEDUI_DATABASE_URL": "sqlite+aiosqlite:////nonexistent/dir/hedui.db"},
        terminal_width=200,
    )
    assert result.exit_code == 2, result.output
    assert complaint in result.output


@pytest.mark.parametrize(("region", "complaint"), [("", "empty"), ("99", "province")])
def test_create_refuses_a_region_no_household_is_in(region: str, complaint: str) -> None:
    """An empty region (a script's unset variable) is not every region, and a region of
    no province is nobody's: both refused, naming the option, before the database."""
    result = CliRunner().invoke(
        app,
        ["apikey", "create", "--role", "caseworker", "--region", region],
        env={"HEDUI_DATABASE_URL": "sqlite+aiosqlite:////nonexistent/dir/hedui.db"},
        terminal_width=200,
    )
    assert result.exit_code == 2, result.output
    assert "--region" in result.output
    assert complaint in result.output
