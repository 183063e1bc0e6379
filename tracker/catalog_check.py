"""`tracker catalog check`: read each catalog entry's page once and say whether the entry is
still true (docs/contract.md §5). How the catalog is kept true from a machine with network.

Each entry's page is asked once, in the entry's format (its first view: the endpoint a poll
asks first), a few entries at a time, with tracker's own User-Agent and bounds. The outcome:

  ok            the page answers in the entry's format
  moved         it answers from another host (or port) after a redirect: the new URL is given
  wrong-format  it answers, but not in the entry's format (what it reads as, when another
                format reads it)
  gone          404/410, or the host name does not resolve
  blocked       401/403/429: the page refuses tracker (or asks it to wait)
  failing       any other error (5xx, a timeout, a refused connection, a broken answer)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from urllib.parse import urlsplit, urlunsplit

from . import times
from .adapters import FORMATS
from .catalog import Entry
from .errors import FetchError, ParseError
from .fetch import Fetcher, HTTPStatusError, describe_body
from .read import decode, readers

RESULTS = ("ok", "moved", "wrong-format", "gone", "blocked", "failing")
WORKERS = 4  # entries asked at a time: status pages are shared, and most are on a few platforms


@dataclass(frozen=True)
class Checked:
    """What one entry's page said."""

    id: str
    format: str
    url: str
    result: str
    detail: str = ""
    new_url: str | None = None  # moved: the entry's URL on the host it moved to
    reads_as: str | None = None  # wrong-format: a format that reads the page

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}


def _moved_url(entry_url: str, endpoint: str, final: str) -> str:
    """The entry's URL on the host the endpoint's redirect ended on (its path, when the
    redirect kept the endpoint's own path; else the final URL itself)."""
    asked, landed = urlsplit(endpoint), urlsplit(final)
    if landed.path == asked.path:
        parts = urlsplit(entry_url)
        return urlunsplit((landed.scheme, landed.netloc, parts.path, parts.query, ""))
    return final


def check_one(entry: Entry, fetcher: Fetcher) -> Checked:
    """Ask `entry`'s page once; never raises."""
    base = Checked(entry.id, entry.format, entry.url, "failing")
    spec = FORMATS.get(entry.format)
    if spec is None:
        return replace(base, result="wrong-format", detail=f"unknown format {entry.format!r}")
    view = spec.views[0]
    endpoint = view.endpoint(entry.url)
    try:
        got = fetcher.get(endpoint)
    except HTTPStatusError as e:
        result = "gone" if e.status in (404, 410) else "blocked" if e.status in (401, 403, 429) else "failing"
        return replace(base, result=result, detail=str(e))
    except FetchError as e:
        result = "gone" if str(e).startswith("cannot resolve") else "failing"
        return replace(base, result=result, detail=str(e))
    moved = urlsplit(got.url).netloc.lower() != urlsplit(endpoint).netloc.lower()
    try:
        payload = decode(view, got)
    except ParseError as e:
        return replace(base, result="wrong-format", detail=str(e))
    try:
        view.parse(payload, base_url=entry.url, now=times.now_iso())
    except ParseError as e:
        others = readers(payload, entry.format)
        detail = f"reads as {others[0]}" if others else f"not a {entry.format} page: {e}"
        if not others and isinstance(payload, (bytes, str)):
            detail = f"not a {entry.format} page: {describe_body(got.body or b'', got.content_type)}"
        return replace(base, result="wrong-format", detail=detail,
                          reads_as=others[0] if others else None)
    except Exception as e:  # an adapter bug: say so, check the rest
        return replace(base, detail=f"unexpected {type(e).__name__}: {e}")
    if moved:
        new = _moved_url(entry.url, endpoint, got.url)
        return replace(base, result="moved", detail=f"redirected to {got.url}", new_url=new)
    return replace(base, result="ok")


def check(entries: Sequence[Entry], fetcher: Fetcher, workers: int = WORKERS,
          done: Callable[[Checked], None] | None = None) -> list[Checked]:
    """Check every entry, `workers` at a time; results in the entries' order. `done(result)`
    is called as each one finishes (for a progress line)."""
    def one(entry: Entry) -> Checked:
        result = check_one(entry, fetcher)
        if done is not None:
            done(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="check") as pool:
        return list(pool.map(one, entries))


def summary(results: Iterable[Checked]) -> dict[str, int]:
    counts = {r: 0 for r in RESULTS}
    for r in results:
        counts[r.result] = counts.get(r.result, 0) + 1
    return counts


def as_json(results: Sequence[Checked]) -> str:
    return json.dumps([r.to_json() for r in results], indent=2)


__all__ = ["Checked", "RESULTS", "as_json", "check", "check_one", "summary"]
