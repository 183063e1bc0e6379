"""`tracker health`: is every configured provider being read? (docs/contract.md §6)

A provider is healthy when its last successful poll is recent: within `max_age` seconds, by
default three of its intervals (a poll or two may fail without alarm; a page down for longer,
a daemon that stopped, or a provider never polled is reported). Pure: it judges what
`Store.provider_summaries()` recorded, at `now`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from .config import Provider
from .text import clean

INTERVALS = 3  # default max age, in intervals of the provider
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?$")
_UNIT = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """"90s", "10m", "2h", "1d" or plain seconds -> seconds. ValueError when it is none."""
    m = _DURATION.match(text.strip().lower())
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration such as 90s, 10m, 2h or 1d")
    return float(m.group(1)) * _UNIT[m.group(2)]


def ago(seconds: float) -> str:
    """A short, rounded age for people: "40 s", "14 min", "5 h", "3 days"."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def _when(iso: str | None) -> datetime | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True)
class ProviderHealth:
    id: str
    name: str
    healthy: bool
    max_age_seconds: float
    last_ok_at: str | None
    age_seconds: float | None  # since the last success (None: never)
    failures: int
    last_error: str | None
    last_poll_at: str | None
    next_poll_at: str | None

    def line(self) -> str:
        """One line for people: `openai: last success 2026-11-28 01:02:03 UTC (14 min ago), 5
        failures: HTTP 503`."""
        if self.last_ok_at is None:
            text = f"{self.id}: never polled successfully"
        else:
            text = (f"{self.id}: last success {self.last_ok_at[:19].replace('T', ' ')} UTC "
                    f"({ago(self.age_seconds or 0)} ago; max age {ago(self.max_age_seconds)})")
        if self.failures:
            text += f", {self.failures} failure{'s' if self.failures != 1 else ''}"
            if self.last_error:
                text += f": {clean(self.last_error, limit=200)}"
        elif self.last_poll_at is None:
            text += " (not polled yet: is `tracker run` running on this database?)"
        return text


@dataclass(frozen=True)
class Report:
    database: str
    checked_at: str
    providers: tuple[ProviderHealth, ...]

    @property
    def healthy(self) -> bool:
        return all(p.healthy for p in self.providers)

    @property
    def late(self) -> list[ProviderHealth]:
        return [p for p in self.providers if not p.healthy]

    def as_dict(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "database": self.database, "checked_at": self.checked_at,
                "providers": [asdict(p) for p in self.providers]}


def check(providers: Iterable[Provider], summaries: Mapping[str, Mapping[str, Any]], *, database: str,
          now: datetime | None = None, max_age: float | None = None) -> Report:
    """Judge every configured provider from its recorded poll state (`summaries`: provider id
    -> the providers row, as Store.provider_summaries() returns it)."""
    from . import times

    now = now or datetime.now(timezone.utc)
    found = []
    for p in providers:
        row = summaries.get(p.id, {})
        limit = max_age if max_age is not None else INTERVALS * p.interval
        last_ok = _when(row.get("last_ok_at"))
        age = (now - last_ok).total_seconds() if last_ok else None
        found.append(ProviderHealth(
            id=p.id, name=p.name, healthy=age is not None and age <= limit, max_age_seconds=limit,
            last_ok_at=row.get("last_ok_at"), age_seconds=None if age is None else round(age, 1),
            failures=row.get("failures") or 0, last_error=row.get("last_error"),
            last_poll_at=row.get("last_poll_at"), next_poll_at=row.get("next_poll_at"),
        ))
    return Report(database=database, checked_at=times.iso(now), providers=tuple(found))


__all__ = ["INTERVALS", "ProviderHealth", "Report", "ago", "check", "parse_duration"]
