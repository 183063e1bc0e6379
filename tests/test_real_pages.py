"""Real pages' habits (docs/contract.md §4 "Closing by disappearance"), in-process on real
captures cut at moments, a real SQLite file, a fake clock and capture_logs():

- an incident that flickers out of an open-only view is not resolved (DigitalOcean's five real
  consecutive summary.json versions: the incident is missing from the second, a stale copy);
- a closing is confirmed from the page's history view before it is inferred, and the page's own
  closing (its id, text and time) is what is announced;
- a maintenance cut from the list before its window began is not completed (Cloudflare's real
  summary.json, judged on the page's clock, years behind the host's here);
- a list at its cap is not evidence.

The subprocess test at the end proves the DigitalOcean sequence through the real `tracker`
command against a 127.0.0.1 server, across processes."""

from __future__ import annotations

import copy
import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner
from structlog.testing import capture_logs

from tracker import times
from tracker.cli import cli
from tracker.config import Provider
from tracker.fetch import HTTPStatusError
from tracker.ledger import Ledger
from tracker.outbox import Outbox
from tracker.read import read
from tracker.store import Store

from conftest import Tracker, updates_of, write_config  # noqa: E402
from fakes import Clock, PageFetcher  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"

DO_ROOT = "https://status.digitalocean.com/api/v2"
DO = Provider(id="do", name="DigitalOcean", url=f"{DO_ROOT}/summary.json", format="statuspage")
DO_MOMENTS = ["2021-02-02T2216Z", "2021-02-02T2241Z", "2021-02-02T2257Z", "2021-02-02T2318Z", "2021-02-03T0127Z"]
FLICKER = "3g0w2t0t8j6q"  # open throughout, missing from the 22:41 version

CF_ROOT = "https://www.cloudflarestatus.com/api/v2"
CF = Provider(id="cf", name="Cloudflare", url=f"{CF_ROOT}/summary.json", format="statuspage", closing_grace=0)
CF_NOW = "2025-11-18T14:42:37.468Z"  # the capture's page.updated_at


def data(name: str):
    return json.loads((FIXTURES / name).read_bytes())


def body(obj) -> bytes:
    return json.dumps(obj).encode()


def do_summary(moment: str) -> dict:
    return data(f"digitalocean-summary-{moment}.json")


def at(moment: str) -> datetime:
    """A capture's moment ("2021-02-02T2216Z") as the fake clock's wall time."""
    return datetime.strptime(moment, "%Y-%m-%dT%H%MZ").replace(tzinfo=timezone.utc)


# The resolution DigitalOcean published between 23:18 and 01:27 is in no capture: its text is
# the one Statuspage pages use ("This incident has been resolved."); its id and time are ours.
RESOLVED = {"id": "r3s0lv3d0do1", "status": "resolved", "body": "This incident has been resolved.",
            "created_at": "2021-02-03T00:41:12.000Z", "display_at": "2021-02-03T00:41:12.000Z"}


def do_history(incident: dict, page: dict, resolved: bool = False) -> dict:
    """DigitalOcean's incidents.json as it would list the incident: the incident object the
    summary served (the same object both endpoints carry), closed by RESOLVED when asked."""
    inc = copy.deepcopy(incident)
    if resolved:
        newest = inc["incident_updates"][0]
        inc["incident_updates"].insert(0, {**newest, **RESOLVED, "affected_components": None})
        inc.update(status="resolved", resolved_at=RESOLVED["created_at"], updated_at=RESOLVED["created_at"])
    return {"page": page, "incidents": [inc]}


@pytest.fixture(autouse=True)
def every_level_logged():
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


class Rig:
    """A ledger on a real database, reading pages from a PageFetcher at a fake time."""

    def __init__(self, db, provider: Provider):
        self.provider = provider
        self.clock = Clock()
        self.database = str(db)  # with its password: what --db is given
        self.store = Store.open(db)
        log = structlog.get_logger()
        self.ledger = Ledger(self.store, log, Outbox(self.store, log, clock=self.clock.now), clock=self.clock.now,
                             monotonic=self.clock.monotonic)
        self.ledger.load([provider])
        self.fetcher = PageFetcher({})

    def poll(self) -> list[dict]:
        with capture_logs() as logs:
            state = self.ledger.state(self.provider.id)
            self.ledger.apply(read(self.provider, self.fetcher, state, self.ledger.now()))
        return logs

    def serve(self, url: str, page) -> None:
        self.fetcher.pages[url] = page if isinstance(page, Exception) else body(page)

    def rows(self, sql: str, *args) -> list[tuple]:
        return [tuple(r) for r in self.store.conn.execute(sql, args).fetchall()]


@pytest.fixture
def rig(db):
    """Rigs on one database, on each engine."""
    made: list[Rig] = []

    def make(provider: Provider) -> Rig:
        made.append(Rig(db, provider))
        return made[-1]

    yield make
    for r in made:
        r.store.close()


def updates(logs) -> list[dict]:
    return [e for e in logs if e["event"] == "incident_update"]


def closings(logs) -> list[dict]:
    return [e for e in updates(logs) if e.get("inferred")]


# -- an incident that flickers --------------------------------------------------------------


def test_digitalocean_flicker_is_no_closing_and_the_real_resolution_is_announced_once(rig):
    """The real sequence, with the page's history view answering as the page would: nothing
    about the absence at 22:41, the monitoring update at 23:18, and at 01:27 the page's own
    resolution (its id, text and time), one request to incidents.json, no inferred closing."""
    do = rig(DO)
    listed = None
    seen: list[tuple[str, str, str]] = []
    for moment in DO_MOMENTS:
        page = do_summary(moment)
        do.serve(DO.url, page)
        listed = next((i for i in page["incidents"] if i["id"] == FLICKER), listed)
        do.serve(f"{DO_ROOT}/incidents.json", do_history(listed, page["page"], resolved=moment == DO_MOMENTS[-1]))
        do.clock.wall = at(moment)
        before = len(do.fetcher.requests)
        logs = do.poll()
        asked = do.fetcher.requests[before:]
        seen += [(moment, e["incident_id"], e["update_id"]) for e in updates(logs)]
        assert not closings(logs)
        if moment == "2021-02-02T2241Z":
            assert asked == [DO.url, f"{DO_ROOT}/incidents.json"]  # it left: history asked, once
            [stale] = [e for e in logs if e["event"] == "page_stale"]  # an older copy of the page
            assert stale["page_time"] == "2021-02-02T20:30:32.090Z"
        if moment == DO_MOMENTS[-1]:
            [resolution] = [e for e in updates(logs) if e["incident_id"] == FLICKER]
            assert (resolution["update_id"], resolution["status"], resolution["message"]) == (
                RESOLVED["id"], "resolved", RESOLVED["body"])
            assert resolution["created_at"] == RESOLVED["created_at"] and "inferred" not in resolution
            assert asked == [DO.url, f"{DO_ROOT}/incidents.json"]
    assert seen == [
        ("2021-02-02T2216Z", FLICKER, "gklc3cqfnd92"),  # first contact: the open incident
        ("2021-02-02T2318Z", FLICKER, "ykjgxgtxbtcp"),  # monitoring
        ("2021-02-03T0127Z", FLICKER, RESOLVED["id"]),  # oldest first: the resolution (00:41)…
        ("2021-02-03T0127Z", "19x5b38q9fdt", "lymm4qtjghqb"),  # …then the next incident (01:17)
    ]
    # Nothing more, however long the page stays as it is.
    for _ in range(3):
        do.clock.advance(3600)
        assert updates(do.poll()) == []
    assert do.rows("SELECT status, resolved_at FROM incidents WHERE incident_id = ?", FLICKER) == [
        ("resolved", RESOLVED["created_at"])]
    assert do.rows("SELECT count(*) FROM updates WHERE inferred = 1") == [(0,)]


def fresh_gap() -> dict:
    """The 22:41 version as a fresh copy would serve it (the page's clock at 22:41): the
    incident missing from an up-to-date page, which only the grace or history can explain."""
    page = do_summary("2021-02-02T2241Z")
    page["page"]["updated_at"] = "2021-02-02T22:41:00.000Z"
    return page


def test_a_flicker_shorter_than_the_grace_is_nothing_when_history_cannot_say(rig):
    do = rig(DO)  # the format's grace: one hour; incidents.json fails throughout
    do.serve(f"{DO_ROOT}/incidents.json", HTTPStatusError(500))
    announced = []
    for moment, page in [("2021-02-02T2216Z", do_summary("2021-02-02T2216Z")), ("2021-02-02T2241Z", fresh_gap()),
                         ("2021-02-02T2257Z", do_summary("2021-02-02T2257Z")),
                         ("2021-02-02T2318Z", do_summary("2021-02-02T2318Z"))]:
        do.serve(DO.url, page)
        do.clock.wall = at(moment)
        logs = do.poll()
        announced += [e["update_id"] for e in updates(logs)]
        if moment == "2021-02-02T2241Z":
            [warning] = [e for e in logs if e["event"] == "view_failed"]
            assert warning["url"] == f"{DO_ROOT}/incidents.json" and "HTTP 500" in warning["error"]
    assert announced == ["gklc3cqfnd92", "ykjgxgtxbtcp"]  # no closing, nothing about the absence
    assert do.rows("SELECT gone_at FROM incidents WHERE incident_id = ?", FLICKER) == [(None,)]

    # It really ends (01:27): history still cannot say, so the closing is inferred after the
    # grace, once, from the first successful poll that missed it.
    do.serve(DO.url, do_summary("2021-02-03T0127Z"))
    do.clock.wall = at("2021-02-03T0127Z")
    assert closings(do.poll()) == []
    found = []
    for _ in range(8):  # polls every 10 minutes; the page does not change (304s)
        do.clock.advance(600)
        found += [(times.iso(do.clock.now()), e["update_id"], e["status"]) for e in closings(do.poll())]
    assert found == [("2021-02-03T02:27:00.000Z", "closed", "resolved")]  # missing for the hour since 01:27


def test_a_stale_copy_of_the_page_closes_nothing_even_without_a_grace(rig):
    do = rig(Provider(id="do", name="DigitalOcean", url=DO.url, format="statuspage", closing_grace=0))
    do.serve(f"{DO_ROOT}/incidents.json", HTTPStatusError(404))
    found = []
    for moment in DO_MOMENTS:
        do.serve(DO.url, do_summary(moment))
        do.clock.wall = at(moment)
        found += [(moment, e["incident_id"], e["update_id"]) for e in closings(do.poll())]
    # 22:41 is older than the 22:16 copy already read: no evidence. 01:27 is new and history
    # cannot say: with closing_grace = 0 the closing is inferred at once, and only once.
    assert found == [("2021-02-03T0127Z", FLICKER, "closed")]
    do.clock.advance(60)
    assert closings(do.poll()) == []


def test_what_the_history_view_still_lists_as_open_is_not_closed_whatever_the_grace(rig):
    do = rig(Provider(id="do", name="DigitalOcean", url=DO.url, format="statuspage", closing_grace=0))
    first = do_summary("2021-02-02T2216Z")
    do.serve(DO.url, first)
    do.clock.wall = at("2021-02-02T2216Z")
    do.poll()
    do.serve(f"{DO_ROOT}/incidents.json", do_history(first["incidents"][0], first["page"]))
    do.serve(DO.url, fresh_gap())
    for _ in range(3):  # missing from a fresh page for half an hour, listed open by incidents.json
        do.clock.advance(600)
        assert updates(do.poll()) == []
    assert do.rows("SELECT status FROM incidents WHERE incident_id = ?", FLICKER) == [("investigating",)]
    # history then drops it (a page with 50 newer incidents) and cannot say: inferred, once
    do.serve(f"{DO_ROOT}/incidents.json", {"page": first["page"], "incidents": []})
    do.clock.advance(600)
    assert [e["update_id"] for e in closings(do.poll())] == ["closed"]


# -- the real resolution, GitHub's afternoon --------------------------------------------------


GH_ROOT = "https://www.githubstatus.com/api/v2"


def github_resolved() -> dict:
    """GitHub's incidents.json after 21:15 on 2026-08-17 as it lists the afternoon's incident:
    the incident object of the 21:10 summary closed by its real resolution, whose text and
    time are those of the page's history.atom (github-history-2026-08-18.atom; the update's id
    is not in the feed, so it is ours)."""
    page = data("github-summary-2026-08-17T2110Z.json")
    inc = copy.deepcopy(page["incidents"][0])
    text = ("This incident has been resolved. Thank you for your patience and understanding as we addressed this "
            "issue. A detailed root cause analysis will be shared as soon as it is available.")
    atom = (FIXTURES / "github-history-2026-08-18.atom").read_text()
    assert text in atom and "zkxwbgr0cnmx" in atom
    inc["incident_updates"].insert(0, {**inc["incident_updates"][0], "id": "zkxres0lved1", "status": "resolved",
                                       "body": text, "created_at": "2026-08-17T21:15:00.000Z",
                                       "display_at": "2026-08-17T21:15:00.000Z", "affected_components": None})
    inc.update(status="resolved", resolved_at="2026-08-17T21:15:00.000Z")
    return {"page": page["page"], "incidents": [inc]}


def test_the_announced_closing_is_the_pages_own_with_its_id_text_and_time(rig):
    gh = rig(Provider(id="github", name="GitHub", url=f"{GH_ROOT}/summary.json", format="statuspage"))
    gh.serve(gh.provider.url, data("github-summary-2026-08-17T2110Z.json"))
    gh.clock.wall = datetime(2026, 8, 17, 21, 10, tzinfo=timezone.utc)
    gh.poll()
    gh.serve(gh.provider.url, data("github-summary-2026-08-17T2142Z.json"))
    gh.serve(f"{GH_ROOT}/incidents.json", github_resolved())
    gh.clock.advance(32 * 60)
    before = len(gh.fetcher.requests)
    [closing] = updates(gh.poll())
    assert gh.fetcher.requests[before:] == [gh.provider.url, f"{GH_ROOT}/incidents.json"]  # one request more
    assert (closing["event_id"], closing["status"], closing["created_at"]) == (
        "github:zkxwbgr0cnmx:zkxres0lved1", "resolved", "2026-08-17T21:15:00.000Z")
    assert closing["message"].startswith("This incident has been resolved.") and "inferred" not in closing
    assert closing["incident"] == "Incident with GitHub.com"
    for _ in range(3):  # nothing more; no history read either, nothing has left since
        gh.clock.advance(60)
        before = len(gh.fetcher.requests)
        assert updates(gh.poll()) == [] and gh.fetcher.requests[before:] == [gh.provider.url]


def test_a_history_view_that_fails_leaves_inference_after_the_grace_once(rig):
    gh = rig(Provider(id="github", name="GitHub", url=f"{GH_ROOT}/summary.json", format="statuspage",
                      closing_grace=600))
    gh.serve(gh.provider.url, data("github-summary-2026-08-17T2110Z.json"))
    gh.poll()
    gh.serve(gh.provider.url, data("github-summary-2026-08-17T2142Z.json"))
    gh.serve(f"{GH_ROOT}/incidents.json", HTTPStatusError(503))
    found = []
    for minute in range(1, 15):
        gh.clock.advance(60)
        found += [(minute, e["update_id"], e["message"]) for e in closings(gh.poll())]
    assert found == [(11, "closed", "No longer listed on the status page")]  # missing at minute 1, +10 min


# -- maintenances cut from the list -----------------------------------------------------------


def cloudflare(page_time: str, drop: tuple[str, ...] = (), add: list[dict] | None = None) -> dict:
    """Cloudflare's real summary.json (2025-11-18 14:42) as a later version of it: the page's
    clock at `page_time`, maintenances `drop`ped from the list, others added."""
    page = data("cloudflare-summary-2025-11-18T1444Z.json")
    page["page"]["updated_at"] = page_time
    page["scheduled_maintenances"] = [m for m in page["scheduled_maintenances"] if m["id"] not in drop] + (add or [])
    return page


def maintenance(page: dict, mid: str) -> dict:
    return next(m for m in page["scheduled_maintenances"] if m["id"] == mid)


SCL = "vs8f5417pcp7"  # in progress, 12:00-15:00
SYD, ICN, MAA = "zqvgdwg2v0ql", "9j37fvy02xpn", "kkwnsqyc4rkp"  # scheduled from 15:00, 17:00, 21:00
KUL = "shp4ypj52wnf"  # scheduled, 18:00-22:00


def test_maintenances_cut_from_the_list_before_their_window_are_not_completed(rig):
    cf = rig(CF)  # closing_grace = 0, and no history view answers: the rules alone decide
    # The host's clock says 2026; the page's says 2025-11-18: "before" is judged on the page's.
    assert cf.clock.now().year == 2026
    cf.serve(CF.url, cloudflare(CF_NOW))
    assert len(updates(cf.poll())) == 80  # first contact: every open incident and maintenance

    # Ten minutes later three scheduled maintenances and the one in progress in Santiago are
    # no longer listed.
    cf.serve(CF.url, cloudflare("2025-11-18T14:52:37.468Z", drop=(SYD, ICN, MAA, SCL)))
    cf.clock.advance(600)
    logs = cf.poll()
    assert [(e["incident_id"], e["update_id"], e["status"]) for e in updates(logs)] == [(SCL, "closed", "completed")]
    unlisted = [e for e in logs if e["event"] == "maintenance_unlisted"]
    assert {e["incident_id"]: e["scheduled_for"] for e in unlisted} == {
        SYD: "2025-11-18T15:00:00.000Z", ICN: "2025-11-18T17:00:00.000Z", MAA: "2025-11-18T21:00:00.000Z"}
    assert all(e["log_level"] == "info" and e["page_time"] == "2025-11-18T14:52:37.468Z" for e in unlisted)
    for _ in range(3):  # nothing more about them, poll after poll
        cf.clock.advance(600)
        assert updates(logs := cf.poll()) == [] and not [e for e in logs if e["event"] == "maintenance_unlisted"]

    # Sydney is listed again: as if it never left. Then it starts, and that is announced.
    cf.serve(CF.url, cloudflare("2025-11-18T14:58:00.000Z", drop=(ICN, MAA, SCL)))
    cf.clock.advance(600)
    assert updates(cf.poll()) == []
    assert cf.rows("SELECT status, unlisted_at, gone_at FROM incidents WHERE incident_id = ?", SYD) == [
        ("scheduled", None, None)]
    started = cloudflare("2025-11-18T15:00:05.000Z", drop=(ICN, MAA, SCL))
    syd = maintenance(started, SYD)
    syd["status"] = "in_progress"
    syd["incident_updates"].insert(0, {**syd["incident_updates"][0], "id": "sydstart0001", "status": "in_progress",
                                       "body": "Scheduled maintenance is currently in progress. We will provide "
                                               "updates as necessary.", "created_at": "2025-11-18T15:00:02.000Z"})
    cf.serve(CF.url, started)
    cf.clock.advance(600)
    assert [(e["incident_id"], e["update_id"], e["status"]) for e in updates(cf.poll())] == [
        (SYD, "sydstart0001", "in_progress")]

    # Kuala Lumpur leaves at 18:30, still "scheduled" but inside its window (18:00-22:00): it
    # is closed as before (nothing told us it was cancelled rather than done).
    cf.serve(CF.url, cloudflare("2025-11-18T18:30:00.000Z", drop=(ICN, MAA, SCL, KUL), add=[syd]))
    cf.clock.advance(600)
    assert [(e["incident_id"], e["update_id"], e["status"]) for e in updates(cf.poll())] == [
        (KUL, "closed", "completed")]
    # `tracker incidents` tells them apart from what is still listed.
    shown = CliRunner().invoke(cli, ["incidents", "--open", "--db", cf.database])
    assert shown.exit_code == 0, shown.output
    unlisted = [line for line in shown.output.splitlines() if "scheduled (unlisted)" in line]
    assert len(unlisted) == 2 and "ICN (Seoul)" in unlisted[0] + unlisted[1] and "MAA (Chennai)" in unlisted[0] + unlisted[1]
    # Seoul and Chennai were never completed, however late it gets.
    assert cf.rows(f"SELECT incident_id, status FROM incidents WHERE incident_id IN ('{ICN}', '{MAA}') "
                   "ORDER BY incident_id") == [(ICN, "scheduled"), (MAA, "scheduled")]
    assert cf.rows("SELECT count(*) FROM updates WHERE status = 'completed' AND incident_id IN (?, ?, ?)",
                   SYD, ICN, MAA) == [(0,)]


@pytest.mark.parametrize("date, told", [
    ("Tue, 08 Sep 2026 09:00:00 GMT", "unlisted"),  # two days before its window, by the page's clock
    ("Thu, 10 Sep 2026 08:05:00 GMT", "closed"),  # inside its window
])
def test_without_a_clock_in_the_payload_the_pages_date_header_judges(rig, date, told):
    """Instatus states no time of its own: the answer's Date header is the page's clock (the
    host's, in December here, is past both windows)."""
    gcore = data("gcore-instatus-summary-2026-09-07.json")
    url = "https://status.gcore.com/summary.json"
    page = rig(Provider(id="gcore", name="Gcore", url="https://status.gcore.com", format="instatus", closing_grace=0))
    page.clock.wall = datetime(2026, 12, 1, tzinfo=timezone.utc)
    page.serve(url, gcore)
    page.fetcher.dates[url] = date
    page.poll()
    first = gcore["activeMaintenances"][0]["id"]  # 2026-09-10 08:00, 15 minutes
    page.serve(url, {**gcore, "activeMaintenances": gcore["activeMaintenances"][1:]})
    page.clock.advance(60)
    logs = page.poll()
    found = [(e["incident_id"], "unlisted") for e in logs if e["event"] == "maintenance_unlisted"]
    found += [(e["incident_id"], e["update_id"]) for e in closings(logs)]
    assert found == [(first, told)]


def test_a_maintenance_that_ends_is_closed_by_the_pages_own_completed_update(rig):
    cf = rig(Provider(id="cf", name="Cloudflare", url=CF.url, format="statuspage"))  # the format's grace
    cf.serve(CF.url, cloudflare(CF_NOW))
    cf.poll()
    # 15:02: Santiago's window is over and it has left the list; scheduled-maintenances.json
    # (the page's history of maintenances) lists it completed. Its completed update's text is
    # Statuspage's default one; its id and time are ours (no capture has them).
    done = copy.deepcopy(maintenance(cloudflare(CF_NOW), SCL))
    done["incident_updates"].insert(0, {**done["incident_updates"][0], "id": "sclcomplete1", "status": "completed",
                                        "body": "The scheduled maintenance has been completed.",
                                        "created_at": "2025-11-18T15:00:31.000Z"})
    done.update(status="completed", resolved_at="2025-11-18T15:00:31.000Z")
    cf.serve(f"{CF_ROOT}/scheduled-maintenances.json", {"page": cloudflare(CF_NOW)["page"],
                                                         "scheduled_maintenances": [done]})
    cf.serve(CF.url, cloudflare("2025-11-18T15:02:00.000Z", drop=(SCL,)))
    cf.clock.advance(20 * 60)
    before = len(cf.fetcher.requests)
    [closing] = updates(cf.poll())
    assert cf.fetcher.requests[before:] == [CF.url, f"{CF_ROOT}/scheduled-maintenances.json"]
    assert (closing["event_id"], closing["status"], closing["message"], closing["created_at"]) == (
        f"cf:{SCL}:sclcomplete1", "completed", "The scheduled maintenance has been completed.",
        "2025-11-18T15:00:31.000Z")
    assert closing["kind"] == "maintenance" and "inferred" not in closing
    cf.clock.advance(2 * 3600)  # past the grace: nothing inferred on top of it
    assert updates(cf.poll()) == []


def test_a_full_list_is_not_evidence(rig):
    cf = rig(CF)  # closing_grace = 0; no history view answers
    real = cloudflare(CF_NOW)["scheduled_maintenances"]
    # Statuspage cuts summary.json's list at 100: fill it with copies of real maintenances
    # under ids of their own, as a big page's list is.
    copies = [{**m, "id": f"{m['id'][:8]}c{n:03d}",
               "incident_updates": [{**u, "id": f"{u['id'][:8]}c{n:03d}"} for u in m["incident_updates"]]}
              for n, m in enumerate(m for m in real if m["scheduled_for"] > "2025-11-18T16:00")]
    cf.serve(CF.url, cloudflare(CF_NOW, add=copies[:47]))
    assert len(json.loads(cf.fetcher.pages[CF.url])["scheduled_maintenances"]) == 100
    cf.poll()
    atl = "84lhksfgl6ld"  # in progress, 07:00 - next day 22:00
    # Atlanta is not on a list that is still full (another one took its place): it may only
    # have been pushed off the end, so nothing is closed.
    cf.serve(CF.url, cloudflare("2025-11-18T14:52:37.468Z", drop=(atl,), add=copies[:48]))
    for n in range(3):
        cf.clock.advance(600)
        told = {e["incident_id"] for e in updates(cf.poll())}
        assert told == ({copies[47]["id"]} if n == 0 else set())  # the newcomer, announced; nothing of Atlanta
    assert cf.rows("SELECT status, gone_at FROM incidents WHERE incident_id = ?", atl) == [("in_progress", None)]
    # The list shrinks to 98 without it: now it is missing, and inferred completed (the
    # newcomer that left with it is still ahead of its window: unlisted, not completed).
    cf.serve(CF.url, cloudflare("2025-11-18T15:30:00.000Z", drop=(atl,), add=copies[:47]))
    cf.clock.advance(600)
    assert [(e["incident_id"], e["update_id"]) for e in closings(cf.poll())] == [(atl, "closed")]


# -- through the real command, across processes ------------------------------------------------


@pytest.mark.slow
def test_the_digitalocean_sequence_through_tracker_run_once(server, tmp_path):
    """Each poll is a new `tracker run --once` process against a 127.0.0.1 page; the last one
    is three processes at once. What a user sees: the incident, its monitoring update, and its
    real resolution, once; nothing about the 22:41 absence."""
    summary, history = server.route("/do/api/v2/summary.json"), server.route("/do/api/v2/incidents.json")
    config = write_config(tmp_path / "t.toml", [{"name": "DigitalOcean", "id": "do",
                                                   "url": f"{server.base}/do/api/v2/summary.json"}])
    tracker = Tracker(config, tmp_path / "t.db")
    seen, listed = [], None
    for moment in DO_MOMENTS:
        page = do_summary(moment)
        listed = next((i for i in page["incidents"] if i["id"] == FLICKER), listed)
        summary.set_json(page)
        history.set_json(do_history(listed, page["page"], resolved=moment == DO_MOMENTS[-1]))
        if moment != DO_MOMENTS[-1]:
            code, records, err = tracker.once()
            assert code == 0, err
            seen += [(e["update_id"], e["status"]) for e in updates_of(records)]
            continue
        procs = [subprocess.Popen(tracker.args("run", "--once"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(3)]
        outs = [p.communicate(timeout=60) for p in procs]
        assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
        seen += [(e["update_id"], e["status"]) for out, _ in outs for line in out.splitlines()
                 if (e := json.loads(line))["event"] == "incident_update"]
    assert seen == [("gklc3cqfnd92", "investigating"), ("ykjgxgtxbtcp", "monitoring"),
                    (RESOLVED["id"], "resolved"), ("lymm4qtjghqb", "investigating")]
    assert history.requests >= 2  # asked when the incident left (22:41, 01:27), not on every poll
    assert history.requests <= 1 + 3  # 22:41, then once per process at 01:27
