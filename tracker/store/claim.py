"""The claim: every update not seen before is recorded by exactly one process, in one
transaction, and that process alone announces it (docs/contract.md §4). Edits are claimed the
same way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import StoreError
from ..models import Incident, source_digest
from ..policy import Policy
from .common import Claim, Conn, PollRecord, Row, Shut, _chunks, _json_names


class Claims:
    """The claim and its edits (a mixin of Store)."""

    def record(
        self,
        provider_id: str,
        incidents: Sequence[Incident],
        *,
        now: str,
        source: str,
        policy: Policy,
        lease: tuple[str, str],
        poll: PollRecord | None = None,
    ) -> Claim:
        """Record incidents and claim every update not seen before, every edit and every
        closing.

        The one writer path: `run`, `run --once` and `backfill` all come here. Inside one
        transaction it upserts the incidents and inserts the updates with `ON CONFLICT DO
        NOTHING`, and reads back the rows it inserted (`_insert_updates`): only rows this
        process really inserted come back; any other process or host (or an earlier run) that
        recorded an update first owns it.
        Edits (an update whose source text changed) are claimed the same way, keyed by the new
        text's digest, and so are inferred closings (`closed`, `closed-2`, …).

        `policy` decides which new updates are announced; those are leased to `lease` =
        (owner, until) for the outbox. `poll` is given for a poll of the provider's own page:
        it says in which format and at which URL the page was read, which URL validators to
        keep and which incidents the open-only views listed, and makes this the provider's
        last successful poll (first contact: its first, or the first in another format or at
        another URL). Without it (backfill) the poll state is left alone and nothing closes.
        """
        owner, lease_until = lease
        with self.transaction() as c:
            self.engine.lock(c, "provider", provider_id)  # one claim of a provider at a time
            # The updates table's last id: on SQLite, with the write lock held (nobody else
            # inserts meanwhile), the rows this claim inserts are those past it.
            state = c.execute(
                "SELECT first_polled_at, failures, polled_format, polled_url, page_time, "
                "(SELECT coalesce(max(id), 0) FROM updates) AS last_id FROM providers WHERE id = ?",
                (provider_id,),
            ).fetchone()
            if state is None:
                raise StoreError(f"provider {provider_id!r} has no row; sync_providers() first")
            moved_from = None
            if poll is not None and poll.url and state["polled_url"] not in (None, poll.url):
                moved_from = state["polled_url"]
            # First contact: never polled, or polled in another format or at another URL (its
            # ids differ, or its history is not ours: §4).
            first_contact = poll is not None and (
                state["first_polled_at"] is None or state["polled_format"] not in (None, poll.format)
                or moved_from is not None
            )

            incident_rows = []
            update_rows = []
            announced: dict[str, bool] = {}
            for inc in incidents:
                names = list(inc.components)
                for u in inc.updates:
                    names.extend(n for n in u.components if n not in names)
                incident_rows.append(
                    (provider_id, inc.incident_id, inc.title, inc.status, inc.impact, inc.kind, inc.url,
                     _json_names(tuple(names)), inc.created_at, inc.updated_at, inc.resolved_at, now, now,
                     inc.scheduled_for, inc.scheduled_until)
                )
                announce = announced[inc.incident_id] = policy.announces(inc, first_contact)
                for u in inc.updates:
                    update_rows.append(
                        (provider_id, inc.incident_id, u.update_id, u.status, u.message,
                         _json_names(u.components), u.created_at, now, source, int(announce),
                         owner if announce else None, lease_until if announce else None,
                         u.digest, u.view)
                    )

            for chunk in _chunks(incident_rows):
                c.execute(
                    "INSERT INTO incidents (provider_id, incident_id, title, status, impact, kind, url, "
                    "components, created_at, updated_at, resolved_at, first_seen_at, last_seen_at, "
                    "scheduled_for, scheduled_until) VALUES "
                    + ",".join(["(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"] * len(chunk))
                    + " ON CONFLICT (provider_id, incident_id) DO UPDATE SET title = excluded.title, "
                    "status = excluded.status, impact = excluded.impact, kind = excluded.kind, "
                    "url = excluded.url, components = excluded.components, "
                    "updated_at = excluded.updated_at, resolved_at = excluded.resolved_at, "
                    "last_seen_at = excluded.last_seen_at, "
                    "scheduled_for = COALESCE(excluded.scheduled_for, incidents.scheduled_for), "
                    "scheduled_until = COALESCE(excluded.scheduled_until, incidents.scheduled_until)",
                    [v for row in chunk for v in row],
                )
            inserted, new_rows = self._insert_updates(c, update_rows, any(announced.values()), state["last_id"])
            every_row = inserted == len(update_rows)
            claimed = [(r[0], r[1], r[2]) for r in new_rows]
            seen_before = []
            if not every_row:
                new_keys = {(r[3], r[4]) for r in new_rows}
                seen_before = [row for row in update_rows if (row[1], row[2]) not in new_keys]
            edit_ids, edits = self._claim_edits(c, provider_id, seen_before, announced, now, source, owner,
                                               lease_until) if seen_before else ([], 0)

            shut = Shut()
            stale = False
            if poll is not None:
                # A page whose clock is older than one already read is a stale copy (a CDN
                # serving an old version): what it does not list is not missing.
                known_time = None if first_contact else state["page_time"]
                stale = bool(poll.page_time and known_time and poll.page_time < known_time)
                shut = self._close_missing(c, provider_id, poll, policy, now, source, owner, lease_until,
                                           first_contact, stale)
                c.execute(
                    "UPDATE providers SET first_polled_at = COALESCE(first_polled_at, ?), "
                    "last_poll_at = ?, last_ok_at = ?, last_result = 'ok', last_error = NULL, "
                    "failures = 0, next_poll_at = NULL, polled_format = ?, "
                    "polled_url = COALESCE(?, polled_url), detected_format = COALESCE(?, detected_format), "
                    "page_time = ? WHERE id = ?",
                    (now, now, now, poll.format, poll.url, poll.detected,
                     max(filter(None, (known_time, poll.page_time)), default=None), provider_id),
                )
                self._keep_cache(c, provider_id, poll.cache)
            closing = shut.closing
        everything = claimed + closing
        announce_ids = [row_id for row_id, ann, _ in sorted(everything, key=lambda r: (r[2], r[0])) if ann]
        return Claim(
            new=inserted,
            announce_ids=announce_ids,
            first_contact=first_contact,
            recovered_after=state["failures"] if poll is not None else 0,
            edit_ids=edit_ids,
            edits=edits,
            closed=len(closing),
            moved_from=moved_from,
            gone=shut.gone,
            unlisted=shut.unlisted,
            stale=stale,
            held=shut.held,
            missing=shut.missing,
        )

    _INSERT = ("INSERT INTO updates (provider_id, incident_id, update_id, status, message, components, "
               "created_at, recorded_at, source, announce, lease_owner, lease_until, source_sha256, source_view) "
               "VALUES {values} ON CONFLICT (provider_id, incident_id, update_id) DO NOTHING")

    def _insert_updates(self, c: Conn, rows: list[tuple], announcing: bool, last_id: int) -> tuple[int, list[Row]]:
        """Insert `rows` and say which this transaction inserted: (how many, and those rows'
        id, announce, created_at, incident_id, update_id).

        PostgreSQL: other hosts insert at the same moment and draw ids from the same sequence,
        so the statement itself says what it inserted (`RETURNING`). SQLite: the write lock
        keeps everyone else out, so what was inserted is what lies past `last_id`, read back in
        one query; when every update listed is new (first contact above all) only the
        announced ones are read back, none when nothing is announced (RETURNING would hand
        back every row, one step and one release of the interpreter at a time)."""
        if self.engine.returning_claim:
            new_rows: list[Row] = []
            for chunk in _chunks(rows):
                new_rows.extend(c.execute(
                    self._INSERT.format(values=",".join(["(?,?,?,?,?,?,?,?,?,?,?,?,?,?)"] * len(chunk)))
                    + " RETURNING id, announce, created_at, incident_id, update_id",
                    [v for row in chunk for v in row],
                ).fetchall())
            return len(new_rows), new_rows
        inserted = 0
        for chunk in _chunks(rows):
            inserted += c.execute(
                self._INSERT.format(values=",".join(["(?,?,?,?,?,?,?,?,?,?,?,?,?,?)"] * len(chunk))),
                [v for row in chunk for v in row],
            ).rowcount
        every_row = inserted == len(rows)
        if not inserted or every_row and not announcing:
            return inserted, []
        return inserted, c.execute(
            "SELECT id, announce, created_at, incident_id, update_id FROM updates WHERE id > ?"
            + (" AND announce = 1" if every_row else ""), (last_id,),
        ).fetchall()

    def _claim_edits(self, c: Conn, provider_id: str, rows: list[tuple], announced: dict[str, bool],
                     now: str, source: str, owner: str, lease_until: str) -> tuple[list[int], int]:
        """Updates listed again whose source text is not the one recorded: store the new text
        and claim one edit per distinct new text. Rows recorded before digests were kept adopt
        theirs silently. A text is compared only with one from the same view of the page (two
        views may word an update differently), except that text replacing a fallback line (the
        page gave none before) is always an edit."""
        stored: dict[tuple[str, str], Row] = {}
        by_incident: dict[str, list[str]] = {}
        for row in rows:
            by_incident.setdefault(row[1], []).append(row[2])
        for incident_id, update_ids in by_incident.items():
            for chunk in _chunks(update_ids):
                for r in c.execute(
                    "SELECT incident_id, update_id, message, source_sha256, source_view FROM updates "
                    f"WHERE provider_id = ? AND incident_id = ? AND update_id IN ({','.join('?' * len(chunk))})",
                    [provider_id, incident_id, *chunk],
                ):
                    stored[(r[0], r[1])] = r
        adopt, changed = [], []
        empty = source_digest("")
        for row in rows:
            incident_id, update_id, message, digest, view = row[1], row[2], row[4], row[12], row[13]
            old = stored.get((incident_id, update_id))
            if old is None or old["source_sha256"] == digest or digest == empty:
                continue  # unchanged, or the page gives no text now: never a downgrade
            if old["source_sha256"] is None:
                adopt.append((digest, view, provider_id, incident_id, update_id))
            elif old["source_sha256"] == empty or old["source_view"] == view:
                changed.append((row, old["message"]))
        if adopt:
            c.executemany("UPDATE updates SET source_sha256 = ?, source_view = ? "
                          "WHERE provider_id = ? AND incident_id = ? AND update_id = ?", adopt)
        ids: list[int] = []
        for row, previous in changed:
            incident_id, update_id, message, digest, view = row[1], row[2], row[4], row[12], row[13]
            c.execute("UPDATE updates SET message = ?, source_sha256 = ?, source_view = ? "
                      "WHERE provider_id = ? AND incident_id = ? AND update_id = ?",
                      (message, digest, view, provider_id, incident_id, update_id))
            announce = announced.get(incident_id, False)
            got = c.execute(
                "INSERT INTO edits (provider_id, incident_id, update_id, source_sha256, message, previous_message, "
                "recorded_at, source, announce, lease_owner, lease_until) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (provider_id, incident_id, update_id, source_sha256) DO NOTHING RETURNING id",
                (provider_id, incident_id, update_id, digest, message, previous, now, source, int(announce),
                 owner if announce else None, lease_until if announce else None),
            ).fetchone()
            if got is not None and announce:
                ids.append(got[0])
        return ids, len(changed)
