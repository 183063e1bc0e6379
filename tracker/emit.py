"""Turn recorded updates into `incident_update` records (SPEC §3), after their commit."""

from __future__ import annotations

import json
import sqlite3
from typing import Any


def event_fields(row: sqlite3.Row | dict[str, Any], *, backfill: bool = False) -> dict[str, Any]:
    """The fields of one `incident_update` record, in the order of SPEC §3's table."""
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
    if backfill:
        fields["backfill"] = True
    return fields


def emit(log: Any, rows: list[sqlite3.Row]) -> int:
    """Log one record per row, in the order given (the store sorts oldest first)."""
    for row in rows:
        log.info("incident_update", **event_fields(row, backfill=row["source"] == "backfill"))
    return len(rows)
