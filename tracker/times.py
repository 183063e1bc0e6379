"""Timestamps: everything stored and emitted is ISO 8601 UTC in one fixed-width form."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

# "2026-07-30 10:12:15 UTC", "… GMT", "… Z": a zone word fromisoformat does not take.
_ISO_UTC_WORD = re.compile(r"\s*(?:UTC|GMT|Z)$", re.IGNORECASE)


def iso(dt: datetime) -> str:
    """Fixed-width UTC text ("2025-11-14T20:53:41.000Z"), so stored values sort as strings."""
    dt = dt.astimezone(timezone.utc)
    # Formatted by hand: strftime's %Y does not zero-pad years before 1000 on Linux.
    return (f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:"
            f"{dt.second:02d}.{dt.microsecond // 1000:03d}Z")


def now_iso() -> str:
    return iso(datetime.now(timezone.utc))


def parse(value: object) -> str | None:
    """Normalise a page's timestamp to `iso()` form; None if absent or not a timestamp.

    Accepts what status pages serve: "…Z", "…+00:00", fractional seconds of any length,
    "-05:00" offsets, a trailing "UTC"/"GMT", RFC 2822 dates. A value without an offset is
    taken as UTC.
    """
    if not isinstance(value, str):
        return None
    if len(value) == 24 and value[-1] == "Z" and value[19] == "." and value[10] == "T":
        # Already in our form (Statuspage's own): skip the datetime round trip, which is
        # most of the adapter's cost on a 300-update page. fromisoformat still vets it.
        try:
            datetime.fromisoformat(value[:23])
        except ValueError:
            return None
        return value
    text = value.strip()
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(_ISO_UTC_WORD.sub("+00:00", text))
    except ValueError:
        try:  # RFC 2822, as feeds and HTTP headers write dates
            dt = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return iso(dt)


def parse_date(value: str) -> str:
    """Parse a --since value (a date, or a date and time) to `iso()` form; ValueError if bad."""
    dt = datetime.fromisoformat(value.strip())
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return iso(dt)
