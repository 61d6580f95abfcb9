"""When a party member takes requests: weekly hours in Beijing time, plus a pause switch.

Written the way an operator types it: "mon-fri 08:00-18:00, sat 09:00-12:00". A member with no
hours takes requests at any time; hours past midnight ("22:00-06:00") run into the next day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

LOCAL = ZoneInfo("Asia/Shanghai")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_LABELS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
_PART = re.compile(
    r"^(?P<first>[a-z]{3})(?:-(?P<last>[a-z]{3}))?\s+"
    r"(?P<start>\d{1,2}:\d{2})-(?P<end>\d{1,2}:\d{2})$"
)
DAY_MINUTES = 24 * 60


class ScheduleError(ValueError):
    pass


@dataclass(frozen=True)
class Slot:
    """One weekday's stretch of duty, in minutes after local midnight (end exclusive)."""

    weekday: int
    start: int
    end: int

    def covers(self, weekday: int, minute: int) -> bool:
        return weekday == self.weekday and self.start <= minute < self.end


def _minutes(text: str) -> int:
    hours, minutes = (int(p) for p in text.split(":"))
    if not (0 <= hours <= 24 and 0 <= minutes < 60) or hours * 60 + minutes > DAY_MINUTES:
        raise ScheduleError(f"no such time {text}")
    return hours * 60 + minutes


def _days(first: str, last: str | None) -> list[int]:
    try:
        a, b = DAYS.index(first), DAYS.index(last or first)
    except ValueError:
        raise ScheduleError(f"unknown day in {first}-{last}") from None
    return [(a + i) % 7 for i in range((b - a) % 7 + 1)]


def parse_schedule(text: str) -> list[Slot]:
    """ "mon-fri 08:00-18:00, sat 09:00-12:00" as slots; empty text means always on duty."""
    slots: list[Slot] = []
    for part in filter(None, (p.strip().lower() for p in text.split(","))):
        match = _PART.match(part)
        if match is None:
            raise ScheduleError(f"cannot read {part!r}; write e.g. 'mon-fri 08:00-18:00'")
        start, end = _minutes(match["start"]), _minutes(match["end"])
        if start == end:
            raise ScheduleError(f"{part!r} is empty")
        for day in _days(match["first"], match["last"]):
            if start < end:
                slots.append(Slot(day, start, end))
            else:
                slots.append(Slot(day, start, DAY_MINUTES))
                slots.append(Slot((day + 1) % 7, 0, end))
    return slots


def slots_to_json(slots: list[Slot]) -> list[list[int]]:
    return [[s.weekday, s.start, s.end] for s in slots]


def slots_from_json(data: list[list[int]] | None) -> list[Slot]:
    return [Slot(*row) for row in data or []]


def on_duty(schedule: list[list[int]] | None, paused: bool, now: datetime) -> bool:
    if paused:
        return False
    slots = slots_from_json(schedule)
    if not slots:
        return True
    local = now.astimezone(LOCAL)
    minute = local.hour * 60 + local.minute
    return any(s.covers(local.weekday(), minute) for s in slots)


def describe(schedule: list[list[int]] | None) -> str:
    """Hours as a member reads them in the console."""
    slots = slots_from_json(schedule)
    if not slots:
        return "随时"
    return "，".join(
        f"{DAY_LABELS[s.weekday]} {s.start // 60:02d}:{s.start % 60:02d}-"
        f"{s.end // 60:02d}:{s.end % 60:02d}"
        for s in slots
    )
