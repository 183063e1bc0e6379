"""Backfill walks: the history a page offers beyond what its views list, for the formats that
have one. Like adapters they do no I/O of their own: each is handed `get(url, conditional=True)`
(returns the decoded payload, or None for a 304; raises FetchError / ParseError) and yields
what it found, a page at a time, so the caller can record as it goes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from .. import times
from ..errors import FetchError, ParseError
from ..models import CLOSED_STATUSES, Incident, ParseResult
from . import incidentio, statuspage

MAX_PAGES = 200  # Statuspage history pages walked per provider at most (GitHub had 51 in 2023)
WINDOW_DAYS = 90  # incident.io's list takes start_at/end_at windows of about three months at most
MAX_WINDOWS = 24  # six years of windows
EMPTY_WINDOWS = 2  # consecutive windows without an incident that end the walk


@dataclass
class Found:
    """One step of a walk: incidents to record, and the URL whose validators may be kept
    once they are recorded (a history page listing only what is now recorded)."""

    incidents: list[Incident] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    remember: str | None = None
    note: str | None = None
    pages: int = 0


def _status_of(e: Exception) -> int | None:
    return getattr(e, "status", None)


def history_codes(page: Any) -> list[str]:
    """Incident codes of a `/history?page=N` JSON page: {"months": [{"incidents": [{"code"…}]}]}."""
    if not isinstance(page, dict) or not isinstance(page.get("months"), list):
        raise ParseError("history page is not {'months': [...]}")
    codes = []
    for month in page["months"]:
        for item in (month.get("incidents") or []) if isinstance(month, dict) else []:
            code = item.get("code") if isinstance(item, dict) else None
            if isinstance(code, str) and code and code not in codes:
                codes.append(code)
    return codes


def statuspage_history(get: Callable[..., Any], root: str, *, seen: set[str], known: dict[str, str],
                       keep: Callable[[list[Incident]], list[Incident]], stop: Callable[[], bool],
                       now: str | None = None, since: str | None = None) -> Iterator[Found]:
    """`/history?page=N` (JSON when asked with Accept: application/json: months of incident
    codes, a quarter or so a page), then `/api/v2/incidents/<code>.json` for every incident not
    yet recorded whole (`known`: id -> recorded status)."""
    for number in range(1, MAX_PAGES + 1):
        if stop():
            return
        url = f"{root}/history?page={number}"
        try:
            page = get(url)
        except ParseError as e:
            if number == 1:  # the page offers no JSON history: what incidents.json gave is all
                yield Found(note=f"no history pages ({e})")
                return
            raise
        except FetchError as e:
            if _status_of(e) == 404 and number == 1:
                yield Found(note="no history pages (HTTP 404)")
                return
            raise
        if page is None:  # 304: everything it lists was recorded by an earlier run
            yield Found(pages=1)
            continue
        codes = history_codes(page)
        fresh = [c for c in codes if c not in seen]
        if not codes or not fresh:
            return  # past the last page (or a page that ignores ?page=)
        seen.update(fresh)
        found = Found(remember=url, pages=1)
        older = 0
        for code in fresh:
            if stop():
                found.remember = None  # not everything it lists was read
                yield found
                return
            if known.get(code) in CLOSED_STATUSES:
                continue  # recorded whole by an earlier run: resume past it
            result = statuspage.parse(get(f"{root}/api/v2/incidents/{code}.json", conditional=False),
                                      base_url=root, now=now)
            found.skipped += result.skipped
            kept = keep(result.incidents)
            older += len(result.incidents) - len(kept)
            found.incidents += kept
        yield found
        if since and older and not found.incidents:
            return  # this page is already older than --since


def _window_url(root: str, start: datetime, end: datetime) -> str:
    host = urlsplit(root).hostname
    return (f"{root}/proxy/{host}/incidents?start_at={times.iso(start)[:19]}Z"
            f"&end_at={times.iso(end)[:19]}Z")


def incidentio_history(get: Callable[..., Any], root: str, *, seen: set[str], known: dict[str, str],
                       keep: Callable[[list[Incident]], list[Incident]], stop: Callable[[], bool],
                       now: str | None = None, since: str | None = None) -> Iterator[Found]:
    """The native list `/proxy/<host>/incidents` in explicit `start_at`/`end_at` windows of
    WINDOW_DAYS walking back (as public clients call it). A list entry's updates are used as
    they are only where it carries more than the first one: otherwise the per-incident endpoint
    `/proxy/<host>/incidents/<id>` is asked, and where it does not answer the entry is kept
    with what it has (its ids are the page's own; a later poll adds what is missing)."""
    host = urlsplit(root).hostname
    end = datetime.fromisoformat((now or times.now_iso()).replace("Z", "+00:00"))
    floor = datetime.fromisoformat(since.replace("Z", "+00:00")) if since else None
    empty = 0
    detail_works = True
    for _ in range(MAX_WINDOWS):
        if stop() or (floor and end <= floor):
            return
        start = end - timedelta(days=WINDOW_DAYS)
        try:
            payload = get(_window_url(root, start, end), conditional=False)
        except (FetchError, ParseError) as e:
            yield Found(note=f"no native incident list ({e})")
            return
        listed = incidentio.parse(payload, base_url=root, now=now) if payload is not None else ParseResult([])
        found = Found(skipped=list(listed.skipped), pages=1)
        for inc in listed.incidents:
            if stop():
                break
            if inc.incident_id in seen or known.get(inc.incident_id) in CLOSED_STATUSES:
                continue
            seen.add(inc.incident_id)
            whole = inc
            if len(inc.updates) <= 1 and inc.status in CLOSED_STATUSES and detail_works:
                try:
                    detail = incidentio.parse(get(f"{root}/proxy/{host}/incidents/{inc.incident_id}",
                                                  conditional=False), base_url=root, now=now)
                    whole = next((d for d in detail.incidents if d.incident_id == inc.incident_id), inc)
                except (FetchError, ParseError):
                    detail_works = False  # do not ask again for every incident
            found.incidents += keep([whole])
        yield found
        empty = 0 if listed.incidents else empty + 1
        if empty >= EMPTY_WINDOWS:
            return
        end = start


__all__ = ["Found", "history_codes", "incidentio_history", "statuspage_history"]
