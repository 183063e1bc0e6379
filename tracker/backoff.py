"""When to poll a failing provider again: exponential backoff with jitter, and the page's own
Retry-After, both capped. Kept as a "not before" time in scheduler state and in the database,
never as a sleep inside a worker."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

MAX_BACKOFF = 600.0  # seconds: a page down for hours is still tried every 10 minutes
MAX_RETRY_AFTER = 3600.0  # seconds: the most a page's Retry-After can hold us off


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP-date, RFC 9110
    §10.2.3), capped at MAX_RETRY_AFTER; None when absent or unreadable."""
    if not value or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        seconds = float(text)
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def doubling(attempt: int, start: float, cap: float) -> float:
    """`start`, doubled for each attempt after the first, at most `cap`."""
    return min(cap, start * 2 ** max(0, attempt - 1))


def jitter(base: float, rng: random.Random | None = None) -> float:
    """"Equal jitter": between half and all of `base`, so waits that start together spread."""
    return (rng or random).uniform(base / 2, base)


def delay(failures: int, interval: float, retry_after: float | None = None, rng: random.Random | None = None) -> float:
    """Seconds before the next poll after `failures` consecutive failures.

    The first failure keeps the normal interval; each further one doubles it, up to
    MAX_BACKOFF, with "equal jitter" (between half and all of it) so providers that failed
    together do not retry together. A Retry-After longer than that wins.
    """
    base = doubling(failures, interval, MAX_BACKOFF)
    wait = base if failures <= 1 else jitter(base, rng)
    if retry_after is not None:
        wait = max(wait, retry_after)
    return wait
