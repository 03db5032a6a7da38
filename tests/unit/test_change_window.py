"""Change windows (walguard.policy.change_window): what they are read as, what they refuse
in one line, and which instants are inside, across midnight and Europe/Berlin's DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from walguard.policy.change_window import (
    ChangeWindowError,
    ChangeWindows,
    parse_window,
    parse_windows,
)

BERLIN = ZoneInfo("Europe/Berlin")
LONDON = ZoneInfo("Europe/London")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def berlin(
    year: int, month: int, day: int, hour: int, minute: int, second: int = 0, *, fold: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=BERLIN, fold=fold)


# -- reading --


@pytest.mark.parametrize(
    ("text", "days", "start", "end", "zone"),
    [
        ("Sat 01:00-05:00 Europe/Berlin", {5}, 60, 300, "Europe/Berlin"),
        ("Mon-Fri 22:00-02:00 UTC", {0, 1, 2, 3, 4}, 1320, 120, "UTC"),
        ("Sat,Sun 00:00-06:00 Europe/London", {5, 6}, 0, 360, "Europe/London"),
        ("mon,WED-fri 08:30-09:15 Etc/GMT+5", {0, 2, 3, 4}, 510, 555, "Etc/GMT+5"),
        ("Fri-Mon 00:00-24:00 UTC", {4, 5, 6, 0}, 0, 1440, "UTC"),  # wraps over the weekend
        ("Sun-Sun 23:00-00:00 UTC", {6}, 1380, 0, "UTC"),
    ],
)
def test_a_window_is_read(text: str, days: set[int], start: int, end: int, zone: str) -> None:
    window = parse_window(text)
    assert (window.days, window.start, window.end, window.zone.key) == (
        frozenset(days),
        start,
        end,
        zone,
    )
    assert window.describe() == text


def test_the_text_is_kept_as_written_with_its_spaces_made_one() -> None:
    assert parse_window("  Sat   01:00-05:00\tEurope/Berlin ").text == (
        "Sat 01:00-05:00 Europe/Berlin"
    )


BAD = {
    "empty": ("", "0 parts, not 3 (days, times, zone)"),
    "no zone": ("Sat 01:00-05:00", "2 parts, not 3"),
    "spaced days": ("Sat, Sun 01:00-05:00 UTC", "4 parts, not 3"),
    "day": ("Sam 01:00-05:00 UTC", "'Sam' is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)"),
    "full day name": ("Saturday 01:00-05:00 UTC", "'Saturday' is not a day"),
    "empty day": ("Sat,,Sun 01:00-05:00 UTC", "a day is missing"),
    "open range": ("Mon- 01:00-05:00 UTC", "a day is missing"),
    "one time": ("Sat 01:00 UTC", "times '01:00' are not HH:MM-HH:MM"),
    "short hour": ("Sat 1:00-05:00 UTC", "time '1:00' is not HH:MM from 00:00 to 24:00"),
    "hour 25": ("Sat 01:00-25:00 UTC", "time '25:00' is not HH:MM"),
    "minute 60": ("Sat 01:60-05:00 UTC", "time '01:60' is not HH:MM"),
    "24:30": ("Sat 01:00-24:30 UTC", "time '24:30' is not HH:MM"),
    "seconds": ("Sat 01:00:00-05:00 UTC", "time '01:00:00' is not HH:MM"),
    "am/pm": ("Sat 1am-5am UTC", "time '1am' is not HH:MM"),
    "start 24:00": ("Sat 24:00-05:00 UTC", "a window cannot start at 24:00 (write 00:00)"),
    "empty window": ("Sat 05:00-05:00 UTC", "start and end are the same time"),
    "no region": ("Sat 01:00-05:00 Berlin", "unknown time zone 'Berlin'"),
    "a zone's directory": ("Sat 01:00-05:00 Europe", "unknown time zone 'Europe'"),
    "lower case": ("Sat 01:00-05:00 europe/berlin", "unknown time zone 'europe/berlin'"),
    "a path": ("Sat 01:00-05:00 ../../etc/passwd", "is not an IANA time zone name"),
    "absolute": ("Sat 01:00-05:00 /etc/localtime", "is not an IANA time zone name"),
    "a table": ("Sat 01:00-05:00 zone1970.tab", "is not an IANA time zone name"),
    "not a zone file": ("Sat 01:00-05:00 leapseconds", "unknown time zone 'leapseconds'"),
    "offset": ("Sat 01:00-05:00 +01:00", "is not an IANA time zone name"),
    "control chars": ("Sat 01:00-05:00 UTC\x1b[2J", "is not an IANA time zone name"),
    "long": ("Sat 01:00-05:00 " + "A" * 5000, "(5000 characters)"),
}


@pytest.mark.parametrize(("text", "fragment"), BAD.values(), ids=BAD.keys())
def test_a_bad_window_is_one_line_saying_why(text: str, fragment: str) -> None:
    with pytest.raises(ChangeWindowError) as info:
        parse_window(text)
    message = str(info.value)
    assert message.startswith("change window '")
    assert fragment in message
    assert message.endswith(
        "expected DAYS HH:MM-HH:MM ZONE, such as 'Sat 01:00-05:00 Europe/Berlin'"
    )
    assert message.isprintable() and len(message) < 300


def test_a_window_that_is_not_text_is_refused_in_one_line() -> None:
    with pytest.raises(ChangeWindowError, match=r"a int, not a string"):
        parse_window(5)  # type: ignore[arg-type]


def test_one_bad_window_among_several_is_refused() -> None:
    with pytest.raises(ChangeWindowError, match="'Xyz' is not a day"):
        parse_windows(["Sat 01:00-05:00 UTC", "Xyz 01:00-05:00 UTC"])


# -- inside or not --


def test_a_window_on_one_day() -> None:
    window = parse_window("Sat 01:00-05:00 Europe/Berlin")
    # Saturday 12 December 2026, CET (UTC+1): open from 00:00 to 04:00 UTC.
    assert not window.contains(berlin(2026, 12, 12, 0, 59, 59))
    assert window.contains(berlin(2026, 12, 12, 1, 0))
    assert window.contains(utc(2026, 12, 12, 3, 59, 59))
    assert not window.contains(berlin(2026, 12, 12, 5, 0))  # the end is not inside
    assert not window.contains(berlin(2026, 12, 13, 1, 30))  # Sunday
    assert not window.contains(berlin(2026, 12, 5, 0, 30))


def test_a_window_across_midnight_belongs_to_the_day_it_starts() -> None:
    window = parse_window("Mon-Fri 22:00-02:00 UTC")
    # Friday 11 December 2026 at 22:00 until Saturday at 02:00.
    assert window.contains(utc(2026, 12, 11, 22, 0))
    assert window.contains(utc(2026, 12, 12, 1, 59))  # Saturday, still Friday's window
    assert not window.contains(utc(2026, 12, 12, 2, 0))
    assert not window.contains(utc(2026, 12, 12, 22, 30))  # Saturday starts none
    assert not window.contains(utc(2026, 12, 14, 1, 0))  # nor does Sunday: Monday 01:00 is out
    assert window.contains(utc(2026, 12, 14, 23, 0))
    assert window.contains(utc(2026, 12, 15, 0, 30))  # Monday's window, on Tuesday
    assert not window.contains(utc(2026, 12, 11, 21, 59))


def test_an_end_at_midnight_or_24_00_is_the_next_midnight() -> None:
    for text in ("Sun 23:00-00:00 UTC", "Sun 23:00-24:00 UTC"):
        window = parse_window(text)
        assert window.contains(utc(2026, 12, 13, 23, 59, 59)), text
        assert not window.contains(utc(2026, 12, 14, 0, 0)), text
    whole = parse_window("Sat 00:00-24:00 UTC")
    assert whole.contains(utc(2026, 12, 12, 0, 0)) and whole.contains(utc(2026, 12, 12, 23, 59))
    assert not whole.contains(utc(2026, 12, 13, 0, 0))


def test_the_same_instant_is_judged_in_each_window_s_own_zone() -> None:
    window = parse_window("Sat 01:00-05:00 America/New_York")
    # 07:00 UTC on Saturday is 02:00 in New York (EST, UTC-5), and still Friday night at 22:00
    # in Los Angeles: the window's zone decides, not the controller's.
    assert window.contains(utc(2026, 12, 12, 7, 0))
    assert not parse_window("Sat 01:00-05:00 America/Los_Angeles").contains(utc(2026, 12, 12, 7))


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_window("Sat 01:00-05:00 UTC").contains(datetime(2026, 12, 12, 2, 0))


# -- Europe/Berlin's clock changes (2026: 29 March 02:00 -> 03:00, 25 October 03:00 -> 02:00) --


def test_spring_forward_keeps_the_local_hours() -> None:
    window = parse_window("Sun 01:00-05:00 Europe/Berlin")
    opens, closes = window.occurrence(datetime(2026, 3, 29).date()) or (None, None)
    # 01:00 CET is 00:00 UTC, 05:00 CEST is 03:00 UTC: three hours of real time.
    assert (opens, closes) == (utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 3, 0))
    assert window.contains(utc(2026, 3, 29, 2, 59)) and not window.contains(utc(2026, 3, 29, 3))
    # The next Sunday, CEST all day: 01:00-05:00 local is 23:00-03:00 UTC.
    assert window.contains(utc(2026, 4, 4, 23, 0))


def test_a_start_the_spring_jump_skips_opens_at_the_jump() -> None:
    window = parse_window("Sun 02:30-04:00 Europe/Berlin")
    # The clock goes from 01:59:59 CET to 03:00:00 CEST at 01:00 UTC; 02:30 never shows.
    assert window.occurrence(datetime(2026, 3, 29).date()) == (
        utc(2026, 3, 29, 1, 0),
        utc(2026, 3, 29, 2, 0),
    )
    assert not window.contains(utc(2026, 3, 29, 0, 59, 59))
    assert window.contains(berlin(2026, 3, 29, 3, 0))
    # A window wholly inside the skipped hour has nothing left that day.
    assert (
        parse_window("Sun 02:10-02:40 Europe/Berlin").occurrence(datetime(2026, 3, 29).date())
        is None
    )


def test_fall_back_keeps_the_local_hours() -> None:
    window = parse_window("Sun 01:00-05:00 Europe/Berlin")
    # 01:00 CEST is 23:00 UTC on Saturday, 05:00 CET is 04:00 UTC: five hours of real time.
    assert window.occurrence(datetime(2026, 10, 25).date()) == (
        utc(2026, 10, 24, 23, 0),
        utc(2026, 10, 25, 4, 0),
    )
    assert window.contains(berlin(2026, 10, 25, 2, 30, fold=1))  # the second 02:30
    assert not window.contains(utc(2026, 10, 25, 4, 0))


def test_an_end_in_the_repeated_hour_closes_at_its_first_pass() -> None:
    window = parse_window("Sun 00:00-02:30 Europe/Berlin")
    assert window.contains(berlin(2026, 10, 25, 2, 29, fold=0))
    assert not window.contains(berlin(2026, 10, 25, 2, 30, fold=0))
    # The clock shows 02:00-02:30 again an hour later: the window has closed and stays closed.
    assert not window.contains(berlin(2026, 10, 25, 2, 10, fold=1))


# -- several windows, and when the next one opens --


def test_any_of_several_windows_will_do() -> None:
    windows = parse_windows(["Sat,Sun 00:00-06:00 Europe/London", "Wed 12:00-13:00 Europe/Berlin"])
    assert windows.contains(datetime(2026, 12, 13, 5, 0, tzinfo=LONDON))
    assert windows.contains(berlin(2026, 12, 9, 12, 30))
    assert not windows.contains(berlin(2026, 12, 9, 13, 30))
    assert windows.describe() == (
        "Sat,Sun 00:00-06:00 Europe/London or Wed 12:00-13:00 Europe/Berlin"
    )
    assert windows.texts == ("Sat,Sun 00:00-06:00 Europe/London", "Wed 12:00-13:00 Europe/Berlin")


def test_no_window_contains_nothing() -> None:
    none = ChangeWindows()
    assert not none and not none.contains(utc(2026, 12, 12, 2))
    assert none.next_opening(utc(2026, 12, 12)) is None and none.describe() == "none"


def test_the_next_opening_is_the_soonest_in_its_own_zone() -> None:
    windows = parse_windows(["Sat 01:00-05:00 Europe/Berlin", "Wed 12:00-13:00 UTC"])
    monday = utc(2026, 12, 7, 9, 0)
    assert windows.next_opening(monday) == utc(2026, 12, 9, 12, 0)
    thursday = utc(2026, 12, 10, 9, 0)
    found = windows.next_opening(thursday)
    assert found == utc(2026, 12, 12, 0, 0)
    assert found is not None and found.isoformat() == "2026-12-12T01:00:00+01:00"


def test_the_next_opening_after_midnight_crossing_and_while_open() -> None:
    window = parse_window("Mon-Fri 22:00-02:00 UTC")
    # Inside Friday's window: the next to open is Monday's.
    assert window.next_opening(utc(2026, 12, 12, 1, 0)) == utc(2026, 12, 14, 22, 0)
    assert window.next_opening(utc(2026, 12, 14, 22, 0)) == utc(2026, 12, 15, 22, 0)


def test_the_next_opening_over_the_spring_jump() -> None:
    window = parse_window("Sun 02:30-04:00 Europe/Berlin")
    found = window.next_opening(utc(2026, 3, 28, 12, 0))
    assert found == utc(2026, 3, 29, 1, 0)  # the jump itself
    assert found is not None and found.isoformat() == "2026-03-29T03:00:00+02:00"
    skipped = parse_window("Sun 02:10-02:40 Europe/Berlin")
    assert skipped.next_opening(utc(2026, 3, 28, 12)) == berlin(2026, 4, 5, 2, 10)


def test_every_minute_of_a_week_agrees_with_the_wall_clock() -> None:
    """Away from clock changes, inside is what the local clock shows: an independent reading."""
    windows = parse_windows(["Mon-Fri 22:00-02:00 Europe/Berlin", "Sat 01:00-05:00 UTC"])
    start = utc(2026, 11, 30, 0, 0)
    for minute in range(0, 7 * 24 * 60, 7):
        at = start + timedelta(minutes=minute)
        local = at.astimezone(BERLIN)
        clock = local.hour * 60 + local.minute
        berlin_open = (local.weekday() < 5 and clock >= 22 * 60) or (
            (local.weekday() - 1) % 7 < 5 and clock < 2 * 60
        )
        utc_open = at.weekday() == 5 and 60 <= at.hour * 60 + at.minute < 300
        assert windows.contains(at) == (berlin_open or utc_open), at
