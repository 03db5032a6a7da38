"""Change windows: when a remediation that restarts PostgreSQL may run.

A window is written ``DAYS HH:MM-HH:MM ZONE``, for example ``Sat 01:00-05:00 Europe/Berlin``,
``Mon-Fri 22:00-02:00 UTC`` or ``Sat,Sun 00:00-06:00 Europe/London``:

- DAYS: Mon, Tue, Wed, Thu, Fri, Sat, Sun (any case), a range (``Mon-Fri``; ``Fri-Mon`` wraps
  over the weekend) or a comma list of either (``Mon,Wed-Fri``), without spaces;
- HH:MM-HH:MM: 24-hour local times; an end at or before the start crosses midnight and the
  window belongs to the day it starts on (``Fri 22:00-02:00`` ends on Saturday at 02:00); an end
  of ``24:00`` is the next midnight; a start equal to the end is refused (empty or a whole day:
  write ``00:00-24:00`` for the latter);
- ZONE: an IANA time zone name read with zoneinfo, such as ``Europe/Berlin`` or ``UTC``.

The times are wall-clock times in that zone, so a window keeps its local hours across daylight
saving changes. On the days the clock jumps, a window opens the first time the local clock
reaches its start and closes the first time it reaches its end: a start the spring jump skips
opens at the jump, and an end in the autumn's repeated hour closes at its first pass (never the
later one: a window is permission to disrupt, and it never grows by the repeated hour).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from walguard.errors import one_line

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
EXAMPLE = "Sat 01:00-05:00 Europe/Berlin"
FORM = f"DAYS HH:MM-HH:MM ZONE, such as '{EXAMPLE}'"

_DAY = {name.lower(): number for number, name in enumerate(DAY_NAMES)}
_TIME = re.compile(r"([01][0-9]|2[0-4]):([0-5][0-9])")
# What an IANA name looks like (Europe/Berlin, Etc/GMT+5, America/Port-au-Prince): checked before
# zoneinfo reads a file of that name under its TZPATH, so no other path ever gets that far.
_ZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*")
_MINUTES_PER_DAY = 24 * 60
# How far ahead the next opening is looked for: a week, and another for a week whose only
# opening a daylight-saving jump swallowed.
_LOOK_AHEAD_DAYS = 16


class ChangeWindowError(ValueError):
    """A change window that cannot be read, in one line: the text (shortened) and why."""

    def __init__(self, text: str, problem: str) -> None:
        super().__init__(one_line(f"change window {_shown(text, 80)}: {problem}; expected {FORM}"))


def _shown(text: str, limit: int = 40) -> str:
    """`text` quoted for a message, shortened when long (a message stays a readable line)."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[: limit - 20]!r}... ({len(text)} characters)"


@dataclass(frozen=True)
class ChangeWindow:
    """One weekly window: the days it starts on, its local start and end, its zone."""

    text: str  # as written (whitespace collapsed)
    days: frozenset[int]  # the weekdays it starts on, Monday 0
    start: int  # minutes after local midnight, 0-1439
    end: int  # minutes after local midnight, 0-1440; at or before `start`: the next day's
    zone: ZoneInfo

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def describe(self) -> str:
        return self.text

    def occurrence(self, day: date) -> tuple[datetime, datetime] | None:
        """The window that starts on local `day`, as [opens, closes) in UTC; None when it does
        not start that day, or a daylight-saving jump leaves nothing of it."""
        if day.weekday() not in self.days:
            return None
        midnight = datetime(day.year, day.month, day.day)
        end = self.end + (_MINUTES_PER_DAY if self.crosses_midnight else 0)
        opens = _first_instant(midnight + timedelta(minutes=self.start), self.zone)
        closes = _first_instant(midnight + timedelta(minutes=end), self.zone)
        return (opens, closes) if opens < closes else None

    def contains(self, instant: datetime) -> bool:
        """Whether `instant` (timezone-aware) is inside one of the window's occurrences."""
        at = _aware(instant)
        today = at.astimezone(self.zone).date()
        # Yesterday's window may cross into today; tomorrow's is there for a zone whose clock
        # goes back over midnight (the local date then repeats an hour of the day before).
        for day in (today - timedelta(days=1), today, today + timedelta(days=1)):
            span = self.occurrence(day)
            if span is not None and span[0] <= at < span[1]:
                return True
        return False

    def next_opening(self, after: datetime) -> datetime | None:
        """When the window next opens after `after`, in the window's zone (None: not within
        two weeks, which only a window the clock always jumps over can be)."""
        at = _aware(after)
        first = at.astimezone(self.zone).date() - timedelta(days=1)
        for offset in range(_LOOK_AHEAD_DAYS):
            span = self.occurrence(first + timedelta(days=offset))
            if span is not None and span[0] > at:
                return span[0].astimezone(self.zone)
        return None


@dataclass(frozen=True)
class ChangeWindows:
    """The windows in force for one host (any one of them will do)."""

    windows: tuple[ChangeWindow, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.windows)

    @property
    def texts(self) -> tuple[str, ...]:
        return tuple(w.text for w in self.windows)

    def describe(self) -> str:
        return " or ".join(w.describe() for w in self.windows) or "none"

    def contains(self, instant: datetime) -> bool:
        return any(w.contains(instant) for w in self.windows)

    def next_opening(self, after: datetime) -> datetime | None:
        """The soonest opening of any window after `after`, in that window's zone."""
        found = [t for w in self.windows if (t := w.next_opening(after)) is not None]
        return min(found, default=None)


def parse_window(text: str) -> ChangeWindow:
    """One window from its text; ChangeWindowError (one line) when it cannot be read."""
    if not isinstance(text, str):
        raise ChangeWindowError(str(text), f"a {type(text).__name__}, not a string")
    fields = text.split()
    if len(fields) != 3:
        raise ChangeWindowError(text, f"{len(fields)} parts, not 3 (days, times, zone)")
    days_text, times_text, zone_text = fields
    days = _days(text, days_text)
    start_text, dash, end_text = times_text.partition("-")
    if not dash:
        raise ChangeWindowError(text, f"times {_shown(times_text)} are not HH:MM-HH:MM")
    start = _minutes(text, start_text)
    end = _minutes(text, end_text)
    if start == _MINUTES_PER_DAY:
        raise ChangeWindowError(text, "a window cannot start at 24:00 (write 00:00)")
    if start == end:
        raise ChangeWindowError(text, "start and end are the same time")
    return ChangeWindow(" ".join(fields), days, start, end, _zone(text, zone_text))


def parse_windows(texts: Iterable[str]) -> ChangeWindows:
    return ChangeWindows(tuple(parse_window(t) for t in texts))


def _days(text: str, days_text: str) -> frozenset[int]:
    days: set[int] = set()
    for part in days_text.split(","):
        first, dash, last = part.partition("-")
        a = _day(text, first)
        b = _day(text, last) if dash else a
        # A range that runs past Sunday wraps round to Monday (Fri-Mon: the long weekend).
        days.update((a + i) % 7 for i in range((b - a) % 7 + 1))
    return frozenset(days)


def _day(text: str, name: str) -> int:
    number = _DAY.get(name.lower())
    if number is None:
        shown = f"{_shown(name)} is not a day" if name else "a day is missing"
        raise ChangeWindowError(text, f"{shown} ({', '.join(DAY_NAMES)})")
    return number


def _minutes(text: str, hhmm: str) -> int:
    match = _TIME.fullmatch(hhmm)
    if match is None or (match.group(1) == "24" and match.group(2) != "00"):
        raise ChangeWindowError(text, f"time {_shown(hhmm)} is not HH:MM from 00:00 to 24:00")
    return int(match.group(1)) * 60 + int(match.group(2))


def _zone(text: str, name: str) -> ZoneInfo:
    if _ZONE.fullmatch(name) is None:
        raise ChangeWindowError(text, f"{_shown(name)} is not an IANA time zone name")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # Not found, or a file under the zoneinfo directory that is not a zone (a table).
        raise ChangeWindowError(text, f"unknown time zone {_shown(name)}") from None


def _aware(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"a change window is compared with a timezone-aware time, not {instant}")
    return instant.astimezone(UTC)


def _local(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _first_instant(local: datetime, zone: ZoneInfo) -> datetime:
    """The first instant (UTC) at which the clock in `zone` reads `local` or later.

    fold=0 is the first of a repeated time (PEP 495). A time the clock skips does not survive
    the round trip: the clock reaches it at the jump, which lies between its two readings (fold=1
    uses the offset after the jump, so falls before it, fold=0 after), found to the second."""
    after = local.replace(tzinfo=zone).astimezone(UTC)
    if _local(after, zone) == local:
        return after
    before = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    low, high = int(before.timestamp()), int(after.timestamp())
    while high - low > 1:
        mid = (low + high) // 2
        if _local(datetime.fromtimestamp(mid, UTC), zone) >= local:
            high = mid
        else:
            low = mid
    return datetime.fromtimestamp(high, UTC)
