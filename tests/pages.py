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


MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")


def history_pages(payload: dict[str, Any], months_per_page: int = 1) -> list[dict[str, Any]]:
    """A Statuspage page's `/history?page=N` JSON, built from a real capture's incidents.

    No raw capture of this endpoint exists; its shape is what tests/fixtures/SOURCES.md and
    GitHub-Incident-History's main.py (which walks it) describe: {"months": [{"name", "year",
    "incidents": [{"code", "name", "message", "impact", "status", "timestamp"}]}]}, newest month
    first, a few months a page. Only `code` is relied on by tracker.
    """
    by_month: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for inc in sorted(payload["incidents"], key=lambda i: i["created_at"], reverse=True):
        year, month = int(inc["created_at"][:4]), int(inc["created_at"][5:7])
        updates = inc.get("incident_updates") or []
        by_month.setdefault((year, month), []).append({
            "code": inc["id"], "name": inc["name"],
            "message": updates[0]["body"] if updates else "",
            "impact": inc["impact"], "status": inc["status"],
            "timestamp": f"{MONTHS[month - 1][:3]} <var data-var='date'>{int(inc['created_at'][8:10])}</var>",
        })
    months = [{"name": MONTHS[m - 1], "year": y, "incidents": incs} for (y, m), incs in by_month.items()]
    pages = [{"months": months[i : i + months_per_page]} for i in range(0, len(months), months_per_page)]
    return pages + [{"months": []}]  # past the last page


def serve_statuspage(server: Any, prefix: str, payload: dict[str, Any], recent: int = 50,
                     months_per_page: int = 1) -> dict[str, Any]:
    """Serve a real capture as a whole Statuspage page: incidents.json (the `recent` newest
    incidents), /history?page=N and /api/v2/incidents/<id>.json. Returns the routes."""
    newest = sorted(payload["incidents"], key=lambda i: i["created_at"], reverse=True)
    routes = {"recent": server.route(f"{prefix}/api/v2/incidents.json", {**payload, "incidents": newest[:recent]})}
    for n, page in enumerate(history_pages(payload, months_per_page), start=1):
        routes[f"history{n}"] = server.route(f"{prefix}/history?page={n}", page)
    for inc in payload["incidents"]:
        routes[inc["id"]] = server.route(f"{prefix}/api/v2/incidents/{inc['id']}.json",
                                         {"page": payload["page"], "incident": inc})
    return routes
