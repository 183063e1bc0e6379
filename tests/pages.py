"""Derive test payloads from real captures: a page as it stood at an earlier moment.

`cut(payload, at)` keeps the incidents and updates published at or before `at` and rewrites
each incident's status to its newest remaining update, as the page would have shown it then.
Every id, text and timestamp left is the page's own.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def all_updates(payload: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(created_at, incident_id, update_id) of every update, oldest first."""
    found = [
        (u["created_at"], i["id"], u["id"])
        for i in payload["incidents"]
        for u in i.get("incident_updates") or []
    ]
    return sorted(found)


def cut(payload: dict[str, Any], at: str) -> dict[str, Any]:
    """The page as it was at `at` (an ISO timestamp in the page's own format)."""
    page = copy.deepcopy(payload)
    kept = []
    for inc in page["incidents"]:
        updates = [u for u in inc.get("incident_updates") or [] if u["created_at"] <= at]
        if not updates:
            continue
        updates.sort(key=lambda u: u["created_at"], reverse=True)  # the API lists newest first
        inc["incident_updates"] = updates
        inc["status"] = updates[0]["status"]
        inc["updated_at"] = updates[0]["created_at"]
        if inc["status"] not in ("resolved", "postmortem", "completed"):
            inc["resolved_at"] = None
        kept.append(inc)
    kept.sort(key=lambda i: i["created_at"], reverse=True)
    page["incidents"] = kept
    if isinstance(page.get("page"), dict):
        page["page"]["updated_at"] = at
    return page
