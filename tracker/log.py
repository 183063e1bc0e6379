"""structlog set-up: JSON lines on stdout for machines, readable blocks for people.

Called once by the CLI. Every record goes to stdout; `--log-format auto` picks the console
form when stdout is a terminal and JSON otherwise.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any, TextIO

import structlog

from .systemd import PRIORITIES, field_name, stdout_is_journal
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


class PriorityPrefix:
    """Prefix each rendered line with sd-daemon's "<N>" so journald (reading our stdout)
    records the syslog priority and `journalctl -p warning` works. The JSON after it can
    never start a second line, so page text cannot forge a prefix of its own."""

    def __init__(self, renderer: Any):
        self.renderer = renderer

    def __call__(self, logger: Any, name: str, event_dict: dict[str, Any]) -> str:
        priority = PRIORITIES.get(str(event_dict.get("level")), 6)
        return f"<{priority}>" + self.renderer(logger, name, event_dict)


# MESSAGE_ID of incident_update entries: `journalctl MESSAGE_ID=…` selects them.
INCIDENT_UPDATE_MESSAGE_ID = "6f0c2f3e8a1d4b57a9c4e2d1b0a7f3c5"


def summary(event_dict: dict[str, Any]) -> str:
    """One line for people: the journal's MESSAGE= (sanitised, at most 500 characters)."""
    e = event_dict
    if e.get("event") == "incident_update":
        text = (f"{e.get('provider')}: {e.get('incident')} [{e.get('status')}, {e.get('impact')}] "
                f"{e.get('message')}")
    else:
        skip = {"event", "level", "timestamp"}
        text = " ".join([str(e.get("event"))] + [f"{k}={v}" for k, v in e.items() if k not in skip])
    return clean(text, limit=500)


class JournalRenderer:
    """Send each record to journald's native socket with its fields as journal fields:
    TRACKER_<KEY> for every key (lists as JSON), TRACKER_JSON with the whole record,
    MESSAGE (a one-line summary), PRIORITY and SYSLOG_IDENTIFIER. Nothing reaches stdout."""

    def __init__(self, sender: Any):
        self.sender = sender
        self.json = structlog.processors.JSONRenderer()

    def __call__(self, logger: Any, name: str, event_dict: dict[str, Any]) -> str:
        fields: dict[str, Any] = {
            "MESSAGE": summary(event_dict),
            "PRIORITY": str(PRIORITIES.get(str(event_dict.get("level")), 6)),
            "SYSLOG_IDENTIFIER": "tracker",
        }
        if event_dict.get("event") == "incident_update":
            fields["MESSAGE_ID"] = INCIDENT_UPDATE_MESSAGE_ID
        for key, value in event_dict.items():
            name_ = field_name(key)
            if name_ and value is not None:
                fields[name_] = value if isinstance(value, str) else json.dumps(value)
        fields["TRACKER_JSON"] = line = self.json(logger, name, event_dict)
        try:
            self.sender.send(fields)
        except OSError:
            # journald is away (restarting, or its socket gone): write the JSON line to
            # stdout, which systemd also connects to the journal, rather than lose it.
            return line
        raise structlog.DropEvent


def configure(
    fmt: str = "auto", level: str = "info", stream: TextIO | None = None, target: str = "stdout"
) -> str:
    """Configure structlog for the process; return what was chosen: "json", "console" or
    "journal" (records as native journald entries)."""
    stream = stream or sys.stdout
    fmt = resolve_format(fmt, stream)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if target == "journal":
        from .systemd import JournalSender

        renderer: Any = JournalRenderer(JournalSender())
        processors = shared + [structlog.processors.dict_tracebacks, _event_first, renderer]
        chosen = "journal"
    elif fmt == "json":
        # ensure_ascii (the default) escapes newlines, ESC and bidi overrides: one record is
        # always exactly one line, whatever a page puts in its text.
        renderer = structlog.processors.JSONRenderer()
        if stream is sys.stdout and stdout_is_journal():
            renderer = PriorityPrefix(renderer)
        processors = shared + [structlog.processors.dict_tracebacks, _event_first, renderer]
        chosen = "json"
    else:
        colors = bool(getattr(stream, "isatty", lambda: False)())
        processors = shared + [structlog.processors.format_exc_info, ConsoleRenderer(colors)]
        chosen = "console"
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    # urllib3 speaks through the stdlib logger; its chatter (pool full, retries) is not ours.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    return chosen


def get_logger(**bound: Any) -> Any:
    return structlog.get_logger().bind(**bound) if bound else structlog.get_logger()
