"""OpenAI's incident.io page as it was at a moment, rebuilt from real captures.

The compatible copy (`/api/v2/incidents.json`) comes from the weekly archives
`openai-compat-incidents-weekly-2026-W3x.json`: their `raw` objects are the vendor's own
incident objects, wrapped as `{"page": <the page object of openai-incidents-2025-11-15.json>,
"incidents": [...]}` as the fixture README says, newest incident first, cut at a moment (an
update is on the page from its `created_at`, when it was published).

The native summary (`/proxy/<host>`) is the real OpenAI capture `openai-incidentio-proxy-
2026-10-06.json` with its `ongoing_incidents` set to the incidents open at that moment, each
written in the native shape the real page embeds (`openai-incidentio-page-*.html`: id, name,
status, published_at, updates[{id, published_at, to_status, message_string}]) with the ids,
times and text the copy gives: the fixture README records that both views carry the same ids,
the copy's `display_at` is the native `published_at` and its `body` the native `message_string`.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
CLOSED = ("resolved", "completed", "postmortem")


def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_bytes())


def week(name: str) -> list[dict[str, Any]]:
    """The vendor's incident objects of one weekly archive (W30, W31, W32)."""
    return [item["raw"] for item in _load(f"openai-compat-incidents-weekly-2026-{name}.json")]


def moments(raws: list[dict[str, Any]]) -> list[str]:
    """Every moment an update was published, in order."""
    return sorted({u["created_at"] for r in raws for u in r["incident_updates"]})


def _at(raw: dict[str, Any], t: str) -> dict[str, Any] | None:
    updates = [u for u in raw["incident_updates"] if u["created_at"] <= t]
    if not updates:
        return None
    updates.sort(key=lambda u: u["created_at"], reverse=True)  # the API lists newest first
    cut = copy.deepcopy(raw)
    cut["incident_updates"] = updates
    cut["status"] = updates[0]["status"]
    cut["resolved_at"] = updates[0]["display_at"] if cut["status"] in CLOSED else None
    cut["updated_at"] = updates[0]["updated_at"]
    return cut


def copy_at(raws: list[dict[str, Any]], t: str) -> dict[str, Any]:
    """The compatible copy's incidents.json at moment `t`."""
    page = _load("openai-incidents-2025-11-15.json")["page"]
    found = [c for c in (_at(r, t) for r in raws) if c is not None]
    found.sort(key=lambda i: i["created_at"], reverse=True)
    return {"page": page, "incidents": found}


def native(incident: dict[str, Any]) -> dict[str, Any]:
    """One copy incident in the native summary's shape, same ids, times and text."""
    return {
        "id": incident["id"],
        "name": incident["name"],
        "status": incident["status"],
        "type": "incident",
        "published_at": incident["created_at"],
        "affected_components": [],
        "updates": [
            {"id": u["id"], "published_at": u["display_at"], "to_status": u["status"],
             "message_string": u["body"], "component_statuses": []}
            for u in incident["incident_updates"]
        ],
    }


def summary_at(raws: list[dict[str, Any]], t: str) -> dict[str, Any]:
    """The native summary at moment `t`: the incidents still open then are ongoing."""
    summary = _load("openai-incidentio-proxy-2026-10-06.json")
    ongoing = [native(c) for c in (_at(r, t) for r in raws) if c is not None and c["status"] not in CLOSED]
    summary["summary"]["ongoing_incidents"] = ongoing
    summary["summary"]["scheduled_maintenances"] = []
    return summary
