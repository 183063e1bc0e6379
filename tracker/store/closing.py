"""Closing by disappearance (docs/contract.md §4): incidents missing from a page's open-only
views, waiting out the grace, closed by an inferred update claimed like any other."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta

from ..models import CLOSED_STATUSES, Incident, source_digest
from ..policy import Policy
from ..times import iso
from .common import CLOSED_MESSAGE, OPEN, Claim, Conn, PollRecord, Shut


def times_iso_minus(now: str, seconds: float) -> str:
    """`now` (ISO, UTC) less `seconds`, in the same fixed-width form (so it compares as text)."""
    if not seconds:
        return now
    return iso(datetime.fromisoformat(now.replace("Z", "+00:00")) - timedelta(seconds=seconds))


class Closings:
    """Incidents that left the page (a mixin of Store)."""

    def _close_missing(self, c: Conn, provider_id: str, poll: PollRecord, policy: Policy, now: str,
                       source: str, owner: str, lease_until: str, first_contact: bool, stale: bool = False
                       ) -> "Shut":
        """Closing by disappearance (docs/contract.md §4).

        Incidents held open that the page's open-only views no longer list are marked missing
        (`gone_at`), unless the list they were on is at its cap, or they are maintenances
        still scheduled whose window has not begun by the page's clock: those are marked
        unlisted instead (`unlisted_at`), never closed for it. What a history view still lists
        as open is not missing either: its `gone_at` moves on to now. An incident missing for
        `poll.grace` seconds is closed: silently when the page's own closing is already
        recorded (a view that listed it lagged behind), else by an inferred closing
        (`closed`, `closed-2`, …). On first contact (a new page) whatever is missing is closed
        silently. A stale copy of the page marks nothing."""
        shut = Shut()
        if poll.listed is not None and not stale:
            open_rows = c.execute(
                "SELECT incident_id, title, kind, status, scheduled_for, gone_at, unlisted_at FROM incidents "
                f"WHERE provider_id = ? AND {OPEN}",
                (provider_id,),
            ).fetchall()
            back = [r[0] for r in open_rows if r[0] in poll.listed and (r[5] or r[6])]
            c.executemany("UPDATE incidents SET gone_at = NULL, unlisted_at = NULL "
                          "WHERE provider_id = ? AND incident_id = ?", [(provider_id, i) for i in back])
            if first_contact:
                missing = [r for r in open_rows if r[0] not in poll.listed and r[5] is None]
            else:
                missing = [r for r in open_rows if r[0] not in poll.listed and r[5] is None and r[6] is None
                           and r[2] not in poll.capped]
                clock = poll.page_time or now
                shut.unlisted = [r for r in missing if r[2] == "maintenance" and r[3] == "scheduled"
                                 and r[4] is not None and clock < r[4] and not self._started(c, provider_id, r[0])]
                if shut.unlisted:
                    unlisted = {r[0] for r in shut.unlisted}
                    missing = [r for r in missing if r[0] not in unlisted]
                    c.executemany("UPDATE incidents SET unlisted_at = ? WHERE provider_id = ? AND incident_id = ?",
                                  [(now, provider_id, i) for i in unlisted])
            c.executemany("UPDATE incidents SET gone_at = ? WHERE provider_id = ? AND incident_id = ?",
                          [(now, provider_id, r[0]) for r in missing])
        if poll.vouched:
            c.executemany("UPDATE incidents SET gone_at = ? WHERE provider_id = ? AND incident_id = ? "
                          "AND gone_at IS NOT NULL", [(now, provider_id, i) for i in poll.vouched])
        due = times_iso_minus(now, poll.grace)
        gone = c.execute(
            "SELECT incident_id, title, status, impact, kind, url, components, created_at, gone_at "
            f"FROM incidents WHERE provider_id = ? AND gone_at IS NOT NULL AND {OPEN}",
            (provider_id,),
        ).fetchall()
        # What a history view lists as open this poll is not closed whatever the grace; the
        # grace counts from the last poll that vouched for it.
        rows = [r for r in gone if first_contact or r["gone_at"] <= due and r["incident_id"] not in poll.vouched]
        shut.gone = len(gone) - len(rows)
        for r in rows:
            # The page's own closing, recorded already (a view listing it again lagged behind
            # the history that told it): the incident is over, nothing to infer.
            told = c.execute("SELECT status FROM updates WHERE provider_id = ? AND incident_id = ? AND inferred = 0 "
                             "ORDER BY created_at DESC, id DESC LIMIT 1", (provider_id, r["incident_id"])).fetchone()
            if told is not None and told[0] in CLOSED_STATUSES:
                c.execute("UPDATE incidents SET status = ?, gone_at = NULL WHERE provider_id = ? AND incident_id = ?",
                          (told[0], provider_id, r["incident_id"]))
                continue
            inc = Incident(incident_id=r["incident_id"], title=r["title"], status=r["status"], impact=r["impact"],
                           kind=r["kind"], url=r["url"], created_at=r["created_at"],
                           components=tuple(json.loads(r["components"] or "[]")))
            status = inc.closing_status
            before = c.execute("SELECT count(*) FROM updates WHERE provider_id = ? AND incident_id = ? AND inferred = 1",
                               (provider_id, inc.incident_id)).fetchone()[0]
            update_id = "closed" if before == 0 else f"closed-{before + 1}"
            announce = not first_contact and policy.announces(inc, False)
            got = c.execute(
                "INSERT INTO updates (provider_id, incident_id, update_id, status, message, components, created_at, "
                "recorded_at, source, announce, lease_owner, lease_until, source_sha256, inferred) "
                "VALUES (?,?,?,?,?,'[]',?,?,?,?,?,?,?,1) ON CONFLICT (provider_id, incident_id, update_id) DO NOTHING "
                "RETURNING id, announce, created_at",
                (provider_id, inc.incident_id, update_id, status, CLOSED_MESSAGE, now, now, source, int(announce),
                 owner if announce else None, lease_until if announce else None, source_digest(CLOSED_MESSAGE)),
            ).fetchone()
            c.execute("UPDATE incidents SET status = ?, resolved_at = ?, updated_at = ?, gone_at = NULL "
                      "WHERE provider_id = ? AND incident_id = ?", (status, now, now, provider_id, inc.incident_id))
            if got is not None:
                shut.closing.append((got[0], got[1], got[2]))
        if poll.track:
            held = c.execute(f"SELECT incident_id, kind, gone_at FROM incidents WHERE provider_id = ? AND {OPEN} "
                             "AND unlisted_at IS NULL", (provider_id,)).fetchall()
            shut.held = {r[0]: r[1] for r in held}
            shut.missing = frozenset(r[0] for r in held if r[2] is not None)
        return shut

    @staticmethod
    def _started(c: Conn, provider_id: str, incident_id: str) -> bool:
        """Whether a maintenance was ever said to be under way (in progress or verifying)."""
        return c.execute("SELECT 1 FROM updates WHERE provider_id = ? AND incident_id = ? "
                         "AND status IN ('in_progress', 'verifying') LIMIT 1", (provider_id, incident_id)).fetchone() \
            is not None

    def close_gone(self, provider_id: str, *, now: str, source: str, policy: Policy, lease: tuple[str, str],
                   poll: PollRecord) -> Claim:
        """On a poll that found nothing new on the page's own views: what a history view still
        lists as open (`poll.vouched`) waits on, what has been missing for the grace is closed."""
        owner, lease_until = lease
        with self.transaction() as c:
            self.engine.lock(c, "provider", provider_id)
            shut = self._close_missing(c, provider_id, replace(poll, listed=None, track=True), policy, now, source,
                                       owner, lease_until, False)
            if poll.cache:
                self._keep_cache(c, provider_id, poll.cache)
        return Claim(new=0, announce_ids=[r[0] for r in shut.closing if r[1]], first_contact=False,
                     recovered_after=0, closed=len(shut.closing), gone=shut.gone, held=shut.held,
                     missing=shut.missing)

