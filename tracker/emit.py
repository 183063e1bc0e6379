"""Turn recorded updates into `incident_update` records (docs/contract.md §3), after their commit."""

from __future__ import annotations

import json
import sqlite3
from typing import Any


def event_fields(row: sqlite3.Row | dict[str, Any], *, backfill: bool = False) -> dict[str, Any]:
    """The fields of one `incident_update` record, in the order of docs/contract.md §3's table."""
    components = json.loads(row["components"] or "[]") or json.loads(row["incident_components"] or "[]")
    fields: dict[str, Any] = {
        "event_id": f"{row['provider_id']}:{row['incident_id']}:{row['update_id']}",
        "kind": row["kind"],
        "provider": row["provider"],
        "provider_id": row["provider_id"],
        "incident_id": row["incident_id"],
        "update_id": row["update_id"],
        "incident": row["incident"],
        "status": row["status"],
        "impact": row["impact"],
        "components": components,
        "message": row["message"],
        "created_at": row["created_at"],
        "url": row["url"],
    }
    keys = row.keys() if hasattr(row, "keys") else ()
    if row["kind"] == "maintenance":
        for key in ("scheduled_for", "scheduled_until"):
            if key in keys and row[key]:
                fields[key] = row[key]
    if "inferred" in keys and row["inferred"]:
        fields["inferred"] = True
    if "previous_message" in keys:
        # An edit (docs/contract.md §3): its own event id, one per distinct new source text.
        fields["event_id"] += f":edit:{row['source_sha256'][:12]}"
        fields["previous_message"] = row["previous_message"]
    if backfill:
        fields["backfill"] = True
    return fields


def emit(log: Any, rows: list[sqlite3.Row], event: str = "incident_update") -> int:
    """Log one record per row, in the order given (the store sorts oldest first)."""
    for row in rows:
        log.info(event, **event_fields(row, backfill=row["source"] == "backfill"))
    return len(rows)
