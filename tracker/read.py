"""Reading a page: the one place that knows how. Resolve the provider's format (configured,
named by the URL, remembered, or probed once), fetch each of the format's views
conditionally, decode, parse with the view's pure adapter, merge the views, and return one
typed `Outcome`. Runs in worker threads: it never touches the database and never raises.

Nothing here names a format: what a format reads is described in `tracker.adapters.FORMATS`.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

from . import backoff, times
from .adapters import DEFAULT_FORMAT, FORMATS, View, detect_from_url, probe_urls, recognises
from .config import Provider
from .errors import FetchError, ParseError
from .fetch import Fetched, Fetcher, HTTPStatusError, describe_body
from .models import Cached, ParseResult, PollState


# Decoding and parsing a page is CPU work under the one interpreter lock: the workers fetch
# side by side, but two parses at a time keep both cores busy, and more would only add lock
# contention and hold more decoded pages (a few MB each) in memory at once.
PARSING = threading.BoundedSemaphore(2)


def configured_format(provider: Provider) -> str:
    """The format that reads this page as far as configuration alone tells: the configured
    one, or for "auto" what the URL says by itself; "auto" when only a probe can tell."""
    if provider.format != "auto":
        return provider.format
    return detect_from_url(provider.url) or "auto"


def known_format(provider: Provider, state: PollState | None) -> str:
    """The format, from configuration or from what an earlier probe found ("auto" if neither)."""
    fmt = configured_format(provider)
    if fmt == "auto" and state is not None:
        # What the probe found for this URL (a new URL clears it: sync_providers)
        fmt = state.detected_format or "auto"
    return fmt


def endpoints(provider: Provider, fmt: str) -> list[str]:
    """The URLs a poll of `provider` in `fmt` asks (its URL itself while the format is unknown)."""
    return FORMATS[fmt].endpoints(provider.url) if fmt in FORMATS else [provider.url]


def decode(view: View, got: Fetched) -> Any:
    """The body as the view's adapter takes it: bytes, or decoded JSON."""
    return got.body or b"" if view.raw else decode_json(got)


def decode_json(got: Fetched) -> Any:
    """The body as JSON (UTF-8/16/32 by BOM); ParseError naming what came instead."""
    try:
        return json.loads(got.body or b"")
    except ValueError as e:
        raise ParseError(f"expected JSON, got {_describe(got)}: {e}") from None


def _describe(got: Fetched) -> str:
    """The content type and, for a page that is not JSON, its <title> or first words; with the
    HTTP status. (Broken JSON is named by the decoder's own message after this.)"""
    ctype = got.content_type.split(";")[0].strip().lower()
    if ctype.endswith("json"):
        return f"{ctype} (HTTP {got.status})"
    return f"{describe_body(got.body or b'', got.content_type)} (HTTP {got.status})"


@dataclass
class ViewRead:
    """One view's part of a poll: parsed, failed, or neither (unchanged)."""

    name: str
    url: str
    open_only: bool = False
    parsed: ParseResult | None = None
    error: str | None = None
    retry_after: float | None = None
    cache: Cached | None = None  # validators to keep once `parsed` is recorded (or on a 304)
    suggested: list[str] = field(default_factory=list)  # formats that read what this view served
    unreachable: bool = False  # no answer at all (connection, time or size limits), not a bad one
    date: str | None = None  # the answer's Date header (ISO), when it was read in full


@dataclass
class Outcome:
    """What reading one provider's page gave. `error` is set only when no view could be read."""

    provider: Provider
    format: str = DEFAULT_FORMAT
    detected: str | None = None  # what `format = "auto"` found by probing, to remember
    views: list[ViewRead] = field(default_factory=list)
    parsed: ParseResult | None = None  # the views merged; None when nothing changed
    error: str | None = None
    retry_after: float | None = None  # seconds the page asked us to wait (429/503)
    ms: int = 0
    # Closing confirmation (confirm()): the history views read because incidents left the
    # open-only ones, the incidents held open that a history view lists as still open, and
    # history URL -> the ids it listed as open, for each history view read in full.
    confirms: list[ViewRead] = field(default_factory=list)
    vouched: frozenset[str] = frozenset()
    history_open: dict[str, frozenset[str]] = field(default_factory=dict)

    @property
    def unchanged(self) -> bool:
        return self.error is None and self.parsed is None

    @property
    def url(self) -> str:
        return self.views[0].url if self.views else self.provider.url

    @property
    def listed(self) -> frozenset[str] | None:
        """Incident ids listed by the views that list only open incidents, if one was read in
        full this poll (a view cut by the caps does not count); None otherwise."""
        found = [v.parsed for v in self.views if v.open_only and v.parsed is not None]
        if not found or not all(p.complete for p in found):
            return None
        return frozenset(i.incident_id for p in found for i in p.incidents)

    @property
    def capped(self) -> frozenset[str]:
        """Kinds whose list an open-only view served at its cap (nothing of them is missing)."""
        return frozenset().union(*(v.parsed.capped for v in self.views if v.open_only and v.parsed is not None))

    @property
    def page_time(self) -> str | None:
        """The page's clock as the open-only views read in full this poll state it: the
        payload's own time, else the answer's Date header; None when none was read."""
        for v in self.views:
            if v.open_only and v.parsed is not None:
                return v.parsed.page_time or v.date
        return None

    @property
    def grace(self) -> float:
        if self.provider.closing_grace is not None:
            return self.provider.closing_grace
        return FORMATS[self.format].close_grace if self.format in FORMATS else 0.0

    @property
    def failed_views(self) -> list[ViewRead]:
        """Views that failed while another one was read (a warning, not a failed poll)."""
        return [v for v in self.views + self.confirms if v.error] if self.error is None else []

    @property
    def cache(self) -> dict[str, Cached]:
        """URL -> validators to keep, for every view read in full or answered 304."""
        return {v.url: v.cache for v in self.views + self.confirms if v.cache is not None}


def tag_view(parsed: ParseResult, name: str) -> ParseResult:
    """Mark every update with the view that gave it (edits compare texts of one view only)."""
    return replace(parsed, incidents=[
        i._replace(updates=tuple(u._replace(view=name) for u in i.updates)) for i in parsed.incidents])


def readers(payload: Any, fmt: str) -> list[str]:
    """For a payload format `fmt` cannot read: the other formats that read it."""
    if isinstance(payload, (bytes, str)):
        return []
    return [other for other in FORMATS
            if other != fmt and not FORMATS[other].views[0].raw and recognises(other, payload)]


def read_view(view: View, url: str, provider: Provider, fetcher: Fetcher, known: Cached | None,
              now: str, tag: bool = False, fmt: str = "") -> ViewRead:
    """Fetch one view conditionally and parse it, unless its body is the one last recorded."""
    result = ViewRead(view.name, url, open_only=view.lists_only_open(url))
    known = known or Cached()
    try:
        got = fetcher.get(url, etag=known.etag, last_modified=known.last_modified)
        if got.not_modified:
            return result
        digest = hashlib.sha256(got.body or b"").hexdigest()
        result.cache = Cached(got.etag, got.last_modified, digest)
        result.date = times.parse(got.date) if got.date else None
        if digest == known.body_sha256:
            # Byte-identical to the last body recorded in full: nothing can be new.
            if (got.etag, got.last_modified) == (known.etag, known.last_modified):
                result.cache = None  # nothing to write
            return result
        with PARSING:
            payload = decode(view, got)
            try:
                result.parsed = view.parse(payload, base_url=provider.url, now=now)
            except ParseError as e:
                result.suggested = readers(payload, fmt)
                if result.suggested:
                    other = result.suggested[0]
                    raise ParseError(f'{e} (it reads as {other}: set format = "{other}")') from None
                raise
            del payload  # the decoded page is the big part: gone before the next parse starts
            if result.parsed.open_only is not None:
                result.open_only = result.parsed.open_only  # the payload says what it lists
            if tag:
                result.parsed = tag_view(result.parsed, view.name)
    except HTTPStatusError as e:
        result.error, result.cache = str(e), None
        result.retry_after = backoff.parse_retry_after(e.retry_after)
    except FetchError as e:
        result.error, result.cache, result.unreachable = str(e), None, True
    except ParseError as e:
        result.error, result.cache = str(e), None
    except Exception as e:  # an adapter bug must cost one poll, not the daemon
        result.error, result.cache = f"unexpected {type(e).__name__}: {e}", None
    return result


@dataclass
class Probed:
    """What the probe of `format = "auto"` found."""

    format: str
    first: ViewRead  # DEFAULT_FORMAT's read of the page
    requests: int = 1

    @property
    def own(self) -> ViewRead | None:
        """The first read, when it read the page in the format found: the poll's own read of
        that view (nothing asks it again)."""
        return self.first if self.format == DEFAULT_FORMAT else None


def probe(provider: Provider, fetcher: Fetcher, now: str) -> Probed:
    """The one probe of `format = "auto"` (docs/contract.md §5) for a URL that does not say its
    platform. The page is read first as DEFAULT_FORMAT, the platform most pages are on: when
    that reads it and the payload is its own, not another platform's copy of its API, that is
    the format, and the read is the poll's own (one request in all). Otherwise (an HTTP error,
    not JSON, another shape, incident.io's copy) each format that can be recognised by one
    request is asked in turn; if none answers, the page is DEFAULT_FORMAT and the first read
    is its poll's. A page that asked us to wait (429/503 with Retry-After) is asked nothing
    more. Raises FetchError when the page cannot be asked at all (a connection failure).
    Nothing is remembered unless the poll reads the page."""
    spec = FORMATS[DEFAULT_FORMAT]
    view = spec.views[0]
    first = read_view(view, view.endpoint(provider.url), provider, fetcher, None, now,
                      tag=len(spec.views) > 1, fmt=DEFAULT_FORMAT)
    found = Probed(DEFAULT_FORMAT, first)
    if first.unreachable:
        raise FetchError(first.error or "")
    if first.retry_after is not None or first.parsed is not None and first.parsed.served_by is None:
        return found
    for fmt, probe_url in probe_urls(provider.url):
        found.requests += 1
        try:
            got = fetcher.get(probe_url)
        except HTTPStatusError:
            continue  # 404 & co: not this platform
        try:
            payload = json.loads(got.body or b"")
        except ValueError:
            continue
        if recognises(fmt, payload):
            found.format = fmt
            break
    return found


def confirm(outcome: Outcome, provider: Provider, fetcher: Fetcher, state: PollState, now: str) -> None:
    """Confirm before inferring (docs/contract.md §4). When incidents held open have left the
    page's open-only views (or are still missing from them), read the same page's history
    view for their kind once this poll, conditionally, and add what it says of the incidents
    held open: a closing there is the page's own, announced with its id, text and time. What
    the history view still lists as open is `vouched` for (not missing, whatever the grace).

    An unchanged history view (a 304) answers from what its last full read listed as open,
    when this process read it; otherwise it is read in full."""
    if not state.held:
        return
    spec = FORMATS[outcome.format]
    views = {v.name: v for v in spec.views}
    open_reads = [r for r in outcome.views if r.open_only and views[r.name].history is not None]
    if not open_reads:
        return
    if all(r.parsed is not None for r in open_reads):
        listed = {i.incident_id for r in open_reads for i in r.parsed.incidents}  # type: ignore[union-attr]
        left = {i: kind for i, kind in state.held.items() if i not in listed}
    else:  # unchanged (or failed): what was already missing is still waiting
        left = {i: state.held[i] for i in state.missing if i in state.held}
    if not left:
        return
    urls: dict[str, View] = {}
    for r in open_reads:
        for kind in sorted(set(left.values())):
            url = views[r.name].history(provider.url, kind)  # type: ignore[misc]
            if url:
                # The format's own view at that URL parses it (incident.io's copy); else the
                # open-only view's adapter does (Statuspage's, for each of its endpoints).
                urls[url] = next((v for v in spec.views if v.endpoint(provider.url) == url), views[r.name])
    read_here = {r.url: r for r in outcome.views}
    found: list[Any] = []
    vouched: set[str] = set()
    for url, view in urls.items():
        got = read_here.get(url)
        if got is None or got.parsed is None and got.error is None and url not in state.history_open:
            known = state.cache.get(url) if url in state.history_open else None
            got = read_view(view, url, provider, fetcher, known, now, tag=len(spec.views) > 1, fmt=outcome.format)
            outcome.confirms.append(got)
        if got.parsed is not None:
            still_open = frozenset(i.incident_id for i in got.parsed.incidents if i.is_open)
            outcome.history_open[url] = still_open
            vouched |= still_open & left.keys()
            if all(got is not v for v in outcome.views):  # a view of the poll's own is merged already
                found += [i for i in got.parsed.incidents if i.incident_id in state.held]
        elif got.error is None:
            vouched |= state.history_open.get(url, frozenset()) & left.keys()
    outcome.vouched = frozenset(vouched)
    if found:
        extra = ParseResult(incidents=found)
        outcome.parsed = extra if outcome.parsed is None else spec.merge([outcome.parsed, extra])


def read(provider: Provider, fetcher: Fetcher, state: PollState | None = None,
         now: str | None = None) -> Outcome:
    """Read one provider's page through every view of its format. Never raises."""
    started = time.monotonic()
    state = state or PollState()
    now = now or times.now_iso()
    outcome = Outcome(provider)
    try:
        fmt = known_format(provider, state)
        first = None  # the view the probe read, when it was this poll's own
        if fmt == "auto":
            found = probe(provider, fetcher, now)
            fmt = outcome.detected = found.format
            first = found.own
        outcome.format = fmt
        spec = FORMATS[fmt]
        for view in spec.views:
            url = view.endpoint(provider.url)
            if first is not None and (first.name, first.url) == (view.name, url):
                outcome.views.append(first)
            else:
                outcome.views.append(read_view(view, url, provider, fetcher, state.cache.get(url), now,
                                               tag=len(spec.views) > 1, fmt=fmt))
        failed = [v for v in outcome.views if v.error]
        if len(failed) == len(outcome.views):
            if len(failed) == 1:
                outcome.error = failed[0].error
            else:
                outcome.error = "; ".join(f"{v.name}: {v.error}" for v in failed)
            waits = [v.retry_after for v in failed if v.retry_after is not None]
            outcome.retry_after = max(waits) if waits else None
        else:
            parsed = [v.parsed for v in outcome.views if v.parsed is not None]
            if parsed:
                outcome.parsed = spec.merge(parsed)
            confirm(outcome, provider, fetcher, state, now)
    except HTTPStatusError as e:
        outcome.error = str(e)
        outcome.retry_after = backoff.parse_retry_after(e.retry_after)
    except (FetchError, ParseError) as e:
        outcome.error = str(e)
    except Exception as e:  # a bug must cost one poll, not the daemon
        outcome.error = f"unexpected {type(e).__name__}: {e}"
    if outcome.error is not None:
        outcome.detected = None  # remember a probe only with a page that could be read
    outcome.ms = int((time.monotonic() - started) * 1000)
    return outcome


__all__ = ["Outcome", "Probed", "ViewRead", "configured_format", "confirm", "decode", "decode_json", "endpoints",
           "known_format", "probe", "read", "readers"]
