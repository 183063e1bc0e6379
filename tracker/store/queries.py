"""What the read commands and backfill ask of the history."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..times import now_iso
from .common import OPEN


class Queries:
    """Read-side queries (a mixin of Store)."""

    def component_names(self, provider_id: str) -> set[str]:
        """Every component name the provider's incidents have ever named."""
        names: set[str] = set()
        for (listed,) in self.conn.execute(
            "SELECT DISTINCT components FROM incidents WHERE provider_id = ? AND components != '[]'", (provider_id,)
        ):
            names.update(json.loads(listed))
        return names

    def incident_statuses(self) -> dict[str, dict[str, str]]:
        """provider id -> {incident id -> status}: what a backfill can skip."""
        found: dict[str, dict[str, str]] = {}
        for pid, iid, status in self.conn.execute("SELECT provider_id, incident_id, status FROM incidents"):
            found.setdefault(pid, {})[iid] = status
        return found

    def http_cache(self) -> dict[str, tuple[str | None, str | None]]:
        return {r[0]: (r[1], r[2]) for r in self.conn.execute("SELECT url, etag, last_modified FROM http_cache")}

    def remember(self, url: str, etag: str | None, last_modified: str | None) -> None:
        """Keep a page's validators once everything it listed is recorded."""
        if not etag and not last_modified:
            return
        with self.transaction() as c:
            c.execute(
                "INSERT INTO http_cache (url, etag, last_modified, stored_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (url) DO UPDATE SET etag = excluded.etag, "
                "last_modified = excluded.last_modified, stored_at = excluded.stored_at",
                (url, etag, last_modified, now_iso()),
            )

    # -- queries for the CLI -------------------------------------------------------------

    def provider_summaries(self) -> dict[str, dict[str, Any]]:
        """Poll state and counts per provider id."""
        rows = self.conn.execute(
            "SELECT p.*, "
            " (SELECT count(*) FROM incidents i WHERE i.provider_id = p.id) AS incidents, "
            f" (SELECT count(*) FROM incidents i WHERE i.provider_id = p.id AND i.{OPEN})"
            "   AS open_incidents, "
            " (SELECT count(*) FROM updates u WHERE u.provider_id = p.id) AS updates "
            "FROM providers p"
        ).fetchall()
        return {r["id"]: dict(r) for r in rows}

    def query_incidents(
        self,
        provider_ids: Sequence[str] = (),
        *,
        open_only: bool = False,
        since: str | None = None,
        limit: int | None = None,
        with_updates: bool = False,
    ) -> list[dict[str, Any]]:
        """Incidents newest first, each with its update count (and its updates, oldest first)."""
        where, args = [], []
        if provider_ids:
            where.append(f"i.provider_id IN ({','.join('?' * len(provider_ids))})")
            args.extend(provider_ids)
        if open_only:
            where.append(f"i.{OPEN}")
        if since:
            # "Created or updated since": an incident opened last month and still moving this
            # week belongs to "since Monday" (the page's updated_at, or a newer update of it).
            where.append("(i.created_at >= ? OR COALESCE(i.updated_at, i.created_at) >= ? OR EXISTS ("
                         "SELECT 1 FROM updates u WHERE u.provider_id = i.provider_id"
                         " AND u.incident_id = i.incident_id AND u.created_at >= ?))")
            args.extend([since, since, since])
        sql = (
            "SELECT i.provider_id, p.name AS provider, i.incident_id, i.title, i.status, i.impact, i.kind, "
            "i.url, i.components, i.created_at, i.updated_at, i.resolved_at, i.unlisted_at, "
            "(SELECT count(*) FROM updates u WHERE u.provider_id = i.provider_id AND u.incident_id = i.incident_id)"
            " AS update_count "
            "FROM incidents i JOIN providers p ON p.id = i.provider_id"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY i.created_at DESC, i.provider_id"
            + (" LIMIT ?" if limit else "")
        )
        if limit:
            args.append(limit)
        found = []
        for r in self.conn.execute(sql, args).fetchall():
            item = dict(r)
            item["components"] = json.loads(item["components"])
            if with_updates:
                item["updates"] = [
                    {**dict(u), "components": json.loads(u["components"])}
                    for u in self.conn.execute(
                        "SELECT update_id, status, message, components, created_at FROM updates "
                        "WHERE provider_id = ? AND incident_id = ? ORDER BY created_at, id",
                        (r["provider_id"], r["incident_id"]),
                    )
                ]
            found.append(item)
        return found
