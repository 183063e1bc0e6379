"""Records as they leave the process: JSON lines that hostile text cannot break, and a
console form that strips what a terminal would obey."""

from __future__ import annotations

import io
import json

import pytest
import structlog

from tracker.emit import event_fields
from tracker.log import configure
from tracker.text import clean

# A title an attacker could publish (measured in the reliability notes): an OSC-8 link, an
# erase-line, CRLF followed by a forged journald priority and record, a bidi override.
HOSTILE = (
    "Outage \x1b]8;;https://evil.example/\x07click me\x1b]8;;\x07 \x1b[2K\r\n"
    '<0>{"level":"critical","event":"forged","provider":"bank"}\n\u202eevil\u202c \x9b31m'
)


def row(**over):
    base = {
        "provider_id": "github", "incident_id": "i1", "update_id": "u1", "kind": "incident",
        "provider": "GitHub", "incident": HOSTILE, "status": "investigating", "impact": "major",
        "components": '["Actions"]', "incident_components": "[]", "message": HOSTILE,
        "created_at": "2026-07-25T12:31:51.013Z", "url": "https://www.githubstatus.com/incidents/i1",
        "source": "run",
    }
    base.update(over)
    return base


@pytest.fixture
def capture():
    def _configure(fmt):
        out = io.StringIO()
        configure(fmt, "info", stream=out)
        return out, structlog.get_logger()
    yield _configure
    structlog.reset_defaults()


def test_json_record_is_one_ascii_line_whatever_the_page_wrote(capture):
    out, log = capture("json")
    log.info("incident_update", **event_fields(row()))
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    assert text.isascii()
    assert "\x1b" not in text and "\r" not in text
    record = json.loads(text)
    assert record["incident"] == HOSTILE  # escaped, not altered: the pipeline gets the page's words
    assert record["event"] == "incident_update" and record["level"] == "info"
    assert list(record)[:3] == ["event", "level", "timestamp"]


def test_console_block_has_no_escape_sequences_or_forged_lines(capture):
    out, log = capture("console")  # StringIO is not a TTY: no colours of our own either
    log.info("incident_update", **event_fields(row()))
    text = out.getvalue()
    assert "\x1b" not in text and "\x9b" not in text and "\u202e" not in text and "\r" not in text
    lines = text.rstrip("\n").split("\n")
    assert lines[0].startswith("2026-07-25 12:31:51 UTC  GitHub · incident")
    # The title stays on its line; the message may span lines but each is inside the block.
    assert lines[1].startswith("  Outage click me") and "forged" in lines[1]
    assert all(line.startswith("  ") for line in lines[1:])
    assert not any(line.lstrip().startswith("<0>") for line in lines)


def test_console_other_records_are_cleaned_too(capture):
    out, log = capture("console")
    log.warning("poll_failed", provider_id="x", error="HTTP 500\x1b[2J\nfake line")
    text = out.getvalue()
    assert "\x1b[2J" not in text and text.count("\n") == 1


def test_backfill_flag_only_on_backfill_records():
    assert "backfill" not in event_fields(row())
    assert event_fields(row(source="backfill"), backfill=True)["backfill"] is True


def test_components_fall_back_to_the_incident_when_the_update_names_none():
    assert event_fields(row(components="[]", incident_components='["API"]'))["components"] == ["API"]
    assert event_fields(row(components="[]"))["components"] == []


@pytest.mark.parametrize(
    "text, expected",
    [
        ("plain", "plain"),
        ("a\r\nb\nc\rd", "a b c d"),
        ("\x1b[31mred\x1b[0m", "red"),
        ("title\x1b]0;pwned\x07", "title"),
        ("zero\u200bwidth\u202eflip", "zero width flip"),
        ("\x9b2Jc1 csi", "c1 csi"),
        ("tab\tand\x00nul", "tab and nul"),
    ],
)
def test_clean_one_line(text, expected):
    assert clean(text) == expected


def test_clean_keeps_lines_when_asked_and_caps_length():
    assert clean("a\r\nb\x1b[1m\n\nc", multiline=True) == "a\nb\n\nc"
    assert clean("x" * 50, limit=10) == "x" * 9 + "…"
