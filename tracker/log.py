"""structlog set-up: JSON lines on stdout for machines, readable blocks for people.

Called once by the CLI. Every record goes to stdout; `--log-format auto` picks the console
form when stdout is a terminal and JSON otherwise.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, TextIO

import structlog

from .text import clean

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def resolve_format(fmt: str, stream: TextIO) -> str:
    if fmt != "auto":
        return fmt
    try:
        return "console" if stream.isatty() else "json"
    except (AttributeError, ValueError):
        return "json"


_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)


def _human_time(ts: str) -> str:
    """"2025-11-14T20:53:41.000Z" -> "2025-11-14 20:53:41 UTC"."""
    return ts[:19].replace("T", " ") + " UTC" if len(ts) >= 19 else ts


class ConsoleRenderer:
    """One block per incident update; other records as one line through structlog's
    ConsoleRenderer. Every value from a page is cleaned of control characters and escape
    sequences first, so a hostile title cannot move the cursor, retitle the terminal or
    fake another line."""

    def __init__(self, colors: bool):
        self._line = structlog.dev.ConsoleRenderer(colors=colors, sort_keys=False)
        self._bold = "\x1b[1m" if colors else ""
        self._dim = "\x1b[2m" if colors else ""
        self._reset = "\x1b[0m" if colors else ""

    def __call__(self, logger: Any, name: str, event_dict: dict[str, Any]) -> str:
        if event_dict.get("event") == "incident_update":
            return self._block(event_dict)
        safe = {k: clean(v, limit=500) if isinstance(v, str) else v for k, v in event_dict.items()}
        return self._line(logger, name, safe)

    def _block(self, e: dict[str, Any]) -> str:
        b, d, r = self._bold, self._dim, self._reset
        when = _human_time(str(e.get("created_at", "")))
        kind = "maintenance" if e.get("kind") == "maintenance" else "incident"
        tag = " (backfill)" if e.get("backfill") else ""
        components = ", ".join(clean(c, limit=80) for c in e.get("components") or []) or "—"
        message = clean(_BR.sub("\n", str(e.get("message", ""))), multiline=True, limit=4000)
        lines = [
            f"{d}{when}{r}  {b}{clean(e.get('provider', ''), limit=80)}{r} · {kind}{tag}",
            f"  {b}{clean(e.get('incident', ''), limit=300)}{r}",
            f"  status: {clean(e.get('status', ''), limit=40)}   impact: {clean(e.get('impact', ''), limit=40)}"
            f"   components: {components}",
        ]
        lines += [f"  │ {line}" for line in message.split("\n")]
        if e.get("url"):
            lines.append(f"  {d}{clean(e['url'], limit=300)}{r}")
        return "\n".join(lines) + "\n"


def _event_first(logger: Any, name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Put `event`, `level` and `timestamp` first, so a line reads from its name."""
    head = {k: event_dict.pop(k) for k in ("event", "level", "timestamp") if k in event_dict}
    return {**head, **event_dict}


def configure(fmt: str = "auto", level: str = "info", stream: TextIO | None = None) -> str:
    """Configure structlog for the process; return the format chosen ("json" or "console")."""
    stream = stream or sys.stdout
    fmt = resolve_format(fmt, stream)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if fmt == "json":
        # ensure_ascii (the default) escapes newlines, ESC and bidi overrides: one record is
        # always exactly one line, whatever a page puts in its text.
        renderer: Any = structlog.processors.JSONRenderer()
        processors = shared + [structlog.processors.dict_tracebacks, _event_first, renderer]
    else:
        colors = bool(getattr(stream, "isatty", lambda: False)())
        processors = shared + [structlog.processors.format_exc_info, ConsoleRenderer(colors)]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    # urllib3 speaks through the stdlib logger; its chatter (pool full, retries) is not ours.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    return fmt


def get_logger(**bound: Any) -> Any:
    return structlog.get_logger().bind(**bound) if bound else structlog.get_logger()
