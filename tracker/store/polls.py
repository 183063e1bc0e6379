"""Provider poll state: the rows of the providers table and each view's HTTP validators."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..models import Cached, PollState
from .common import OPEN


class PollStates:
    """What the scheduler needs of each provider between polls (a mixin of Store)."""

    def sync_providers(self, providers: Iterable[Any]) -> None:
        """Make sure every configured provider has a row; keep its poll state."""
        # In id order: two hosts starting together lock the same rows in the same order.
        rows = sorted((p.id, p.name, p.url, p.format) for p in providers)
        with self.transaction() as c:
            c.executemany(
                "INSERT INTO providers (id, name, url, format) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET name = excluded.name, url = excluded.url, "
                "format = excluded.format, "
                # a new URL may be another platform: probe it again
                "detected_format = CASE WHEN providers.url = excluded.url THEN providers.detected_format END",
                rows,
            )

    def poll_states(self) -> dict[str, PollState]:
        """Provider id -> its poll state, as recorded (the validators of every URL included)."""
        states = {
            row["id"]: PollState(
                failures=row["failures"], next_poll_at=row["next_poll_at"],
                detected_format=row["detected_format"], polled_format=row["polled_format"],
                first_polled_at=row["first_polled_at"], last_ok_at=row["last_ok_at"],
            )
            for row in self.conn.execute("SELECT * FROM providers")
        }
        held: dict[str, dict[str, str]] = {}
        missing: dict[str, set[str]] = {}
        for pid, iid, kind, gone_at in self.conn.execute(
            f"SELECT provider_id, incident_id, kind, gone_at FROM incidents WHERE {OPEN} AND unlisted_at IS NULL"
        ):
            held.setdefault(pid, {})[iid] = kind
            if gone_at is not None:
                missing.setdefault(pid, set()).add(iid)
        for pid, state in states.items():
            state.held = held.get(pid, {})
            state.missing = frozenset(missing.get(pid, ()))
        for row in self.conn.execute("SELECT * FROM view_cache"):
            if row["provider_id"] in states:
                states[row["provider_id"]].cache[row["url"]] = Cached(
                    row["etag"], row["last_modified"], row["body_sha256"])
        return states

    @staticmethod
    def _keep_cache(c: Conn, provider_id: str, cache: dict[str, Cached]) -> None:
        c.executemany(
            "INSERT INTO view_cache (provider_id, url, etag, last_modified, body_sha256) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (provider_id, url) DO UPDATE SET etag = excluded.etag, "
            "last_modified = excluded.last_modified, "
            "body_sha256 = COALESCE(excluded.body_sha256, view_cache.body_sha256)",
            [(provider_id, url, v.etag, v.last_modified, v.body_sha256) for url, v in cache.items()],
        )

    def record_not_modified(self, provider_id: str, now: str, cache: dict[str, Cached] | None = None) -> int:
        """A 304 (or a body identical to the last one recorded): the poll succeeded and
        found nothing new. New validators for the same body are kept. Returns the
        consecutive failures this success ends."""
        with self.transaction() as c:
            before = c.execute("SELECT failures FROM providers WHERE id = ?", (provider_id,)).fetchone()
            c.execute(
                "UPDATE providers SET last_poll_at = ?, last_ok_at = ?, last_result = 'not_modified', "
                "last_error = NULL, failures = 0, next_poll_at = NULL WHERE id = ?",
                (now, now, provider_id),
            )
            if cache:
                self._keep_cache(c, provider_id, cache)
        return before["failures"] if before else 0

    def remember_format(self, provider_id: str, fmt: str) -> None:
        """What `format = "auto"` found by probing the page."""
        with self.transaction() as c:
            c.execute("UPDATE providers SET detected_format = ? WHERE id = ?", (fmt, provider_id))

    def record_quiet(self, polled: dict[str, str]) -> None:
        """Many "polled at <time>, nothing new" results at once (provider id -> time), for
        providers that were not failing: one commit instead of one per poll."""
        with self.transaction() as c:
            c.executemany(
                "UPDATE providers SET last_poll_at = ?, last_ok_at = ?, last_result = 'not_modified', "
                "last_error = NULL, failures = 0, next_poll_at = NULL WHERE id = ?",
                [(when, when, pid) for pid, when in sorted(polled.items())],
            )

    def record_failure(self, provider_id: str, error: str, now: str, not_before: str | None = None) -> int:
        """Count one more consecutive failure and keep the next poll from starting before
        `not_before` (backoff). Returns the count including this one."""
        with self.transaction() as c:
            row = c.execute(
                "UPDATE providers SET last_poll_at = ?, last_result = 'error', last_error = ?, "
                "failures = failures + 1, next_poll_at = ? WHERE id = ? RETURNING failures",
                (now, error[:1000], not_before, provider_id),
            ).fetchone()
        return row["failures"] if row else 1

