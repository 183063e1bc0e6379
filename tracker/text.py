"""Untrusted text from status pages, made safe for terminals and one-line protocols.

JSON output needs nothing from here: the JSON renderer escapes every control character and
writes ASCII only. This is for what people read (the console renderer, CLI tables) and for
one-line fields such as sd_notify's STATUS=.
"""

from __future__ import annotations

import re

# ANSI/VT escape sequences: CSI (ESC [ or the one-byte 0x9B), OSC (ESC ] ... BEL or ST),
# DCS/SOS/PM/APC strings, and the two-character escapes.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c]*(?:\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
# C0 and C1 controls (tab and newline handled separately), DEL, zero-width and bidi controls
# that can reorder or hide text on screen.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def clean(text: object, *, multiline: bool = False, limit: int | None = None) -> str:
    """Strip escape sequences and control characters.

    One line (the default): every run of whitespace, newlines included, becomes one space.
    `multiline`: newlines (CR, LF, CRLF) are kept as "\\n", other controls removed.
    `limit` caps the length (characters), ending in "…" when cut.
    """
    s = text if isinstance(text, str) else str(text)
    s = _ESCAPES.sub("", s)
    if multiline:
        s = s.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
        s = _CONTROLS.sub("", s)
        s = "\n".join(line.rstrip() for line in s.split("\n")).strip("\n")
    else:
        s = _CONTROLS.sub(" ", s.replace("\n", " ").replace("\r", " ").replace("\t", " "))
        s = " ".join(s.split())
    if limit is not None and len(s) > limit:
        s = s[: max(0, limit - 1)] + "…"
    return s
