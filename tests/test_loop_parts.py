"""The poll loop's parts in-process: the dispatcher (bounded hand-off), the ledger (what a poll
outcome means), the outbox (announce, recover) and the loop shell, on a real SQLite file in
tmp_path, real payloads, a synchronous executor, a fake clock and structlog's capture_logs().
No subprocess, no socket: these run in milliseconds; the subprocess tests elsewhere prove the
same guarantees across processes."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from tracker import times
from tracker.config import Provider, Settings
from tracker.dispatch import Dispatcher
from tracker.errors import FetchError
from tracker.fetch import Fetched, HTTPStatusError
from tracker.ledger import QUIET_FAILURES, REPEAT_EVERY, Ledger
from tracker.outbox import Outbox
from tracker.poller import Poller
from tracker.read import read
from tracker.store import Store

from fakes import Clock, PageFetcher, SyncExecutor  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
GITHUB = Provider(id="github", name="GitHub", url="https://www.githubstatus.com", format="statuspage")
ENDPOINT = "https://www.githubstatus.com/api/v2/incidents.json"


def payload(name: str = "github-incidents-2026-07-31.json") -> dict:
    return json.loads((FIXTURES / name).read_bytes())


def body(obj) -> bytes:
    return json.dumps(obj).encode()


@pytest.fixture(autouse=True)
def every_level_logged():
    """structlog as it is before configure(): a test that ran `tracker` in this process may have
    left an info-level filter behind, and these tests read debug records too."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(db):
    s = Store.open(db)
    yield s
    s.close()


@pytest.fixture
def parts(store, clock):
    log = structlog.get_logger()
    outbox = Outbox(store, log, clock=clock.now)
    ledger = Ledger(store, log, outbox, clock=clock.now, monotonic=clock.monotonic)
    ledger.load([GITHUB])
    return ledger, outbox


def poll(ledger: Ledger, fetcher: PageFetcher, provider: Provider = GITHUB):
    state = ledger.state(provider.id)
    return ledger.apply(read(provider, fetcher, state, ledger.now()))


def events(logs, name="incident_update"):
    return [e for e in logs if e["event"] == name]


# -- the dispatcher -------------------------------------------------------------------------


def test_the_hand_off_is_bounded_and_never_polls_one_provider_twice():
    executor = SyncExecutor(hold=True)
    mono = [0.0]
    done: list[str] = []
    dispatcher = Dispatcher(executor, lambda p: p.id, max_inflight=2, monotonic=lambda: mono[0])
    providers = [Provider(id=f"p{n}", name=f"P{n}", url=f"https://p{n}.example") for n in range(5)]
    for p in providers:
        assert dispatcher.submit(p)
    dispatcher.fill()
    assert not dispatcher.submit(providers[0]) and not dispatcher.submit(providers[4])  # in flight / in line
    assert sorted(dispatcher.inflight) == ["p0", "p1"] and [p.id for p in dispatcher.waiting] == ["p2", "p3", "p4"]
    mono[0] = 100.0
    assert sorted(dispatcher.stuck(50)) == ["p0", "p1"] and dispatcher.stuck(150) == []
    executor.release(1)
    assert dispatcher.drain(0, done.append) == 1 and done == ["p0"]
    assert sorted(dispatcher.inflight) == ["p1", "p2"]  # the line moved up, still at most two
    while dispatcher.pending:
        executor.release(len(executor.held))
        dispatcher.drain(0, done.append)
    assert sorted(done) == [p.id for p in providers]


def test_quick_polls_are_handed_out_together_slow_ones_alone():
    """Providers whose last poll was quick go to one worker together (one wake-up for several
    polls); a slow or never-polled one goes alone; a batch that runs over its time hands the
    polls it has not started back to the head of the line."""
    executor = SyncExecutor(hold=True)
    mono = [0.0]
    took = {f"p{n}": 0.002 for n in range(6)} | {"slow": 1.0}

    def work(p):  # a poll taking took[p.id] seconds on the fake clock
        mono[0] += took[p.id]
        return p.id

    dispatcher = Dispatcher(executor, work, max_inflight=8, monotonic=lambda: mono[0])
    providers = [Provider(id=pid, name=pid, url=f"https://{pid}.example") for pid in took]
    done: list[str] = []
    for p in providers:
        dispatcher.submit(p)
    dispatcher.fill()
    assert len(executor.held) == 7  # first polls: nothing known yet, each alone
    executor.release(7)
    dispatcher.drain(0, done.append)
    assert sorted(done) == sorted(took)

    done.clear()
    for p in providers:
        dispatcher.submit(p)
    dispatcher.fill()
    assert len(executor.held) == 2  # the six quick ones together, the slow one alone
    assert len({id(f) for f in dispatcher.inflight.values()}) == 2 and len(dispatcher.inflight) == 7
    executor.release(2)
    assert dispatcher.drain(0, done.append) == 7 and sorted(done) == sorted(took)

    # p2 turns slow: the batch stops after it, the three behind it go back to the line, first.
    took["p2"] = 0.5
    done.clear()
    for p in providers[:6]:
        dispatcher.submit(p)
    dispatcher.fill()
    executor.release(1)
    assert dispatcher.drain(0, done.append) == 3 and done == ["p0", "p1", "p2"]
    assert sorted(dispatcher.inflight) == ["p3", "p4", "p5"] and not dispatcher.waiting
    executor.release(1)
    assert dispatcher.drain(0, done.append) == 3 and done[3:] == ["p3", "p4", "p5"]
    dispatcher.submit(providers[2])
    dispatcher.fill()
    assert len(executor.held) == 1 and list(dispatcher.inflight) == ["p2"]  # slow now: alone


def test_a_batch_held_by_a_page_turned_slow_gives_the_rest_to_another_worker():
    """A quick page turned slow holds its worker up to the request timeout: the polls behind
    it in its batch do not wait for that, they are taken back and go to another worker."""
    from concurrent.futures import ThreadPoolExecutor

    from tracker.dispatch import BATCH_LIMIT

    mono = [0.0]
    hang, running = threading.Event(), threading.Event()

    def work(p):
        if p.id == "p0" and mono[0] > 0:  # p0 hangs from the second round on
            running.set()
            hang.wait(10)
        return p.id

    providers = [Provider(id=f"p{n}", name=f"P{n}", url=f"https://p{n}.example") for n in range(5)]
    with ThreadPoolExecutor(2) as executor:
        dispatcher = Dispatcher(executor, work, max_inflight=2, monotonic=lambda: mono[0])
        done: list[str] = []
        for p in providers:  # first polls, each alone: now every one is known to be quick
            dispatcher.submit(p)
        while dispatcher.pending:
            dispatcher.fill()
            dispatcher.drain(1, done.append)
        mono[0] = 10.0
        for p in providers:
            dispatcher.submit(p)
        dispatcher.fill()
        assert len(dispatcher.batches) == 1 and running.wait(5)  # one batch; p0 is stuck in it
        assert dispatcher.reclaim_at() == 10.0 + BATCH_LIMIT
        dispatcher.fill()
        assert len(dispatcher.batches) == 1  # within its time: nothing taken back yet
        mono[0] = 10.0 + BATCH_LIMIT + 0.1
        dispatcher.fill()  # taken back, handed to the other worker
        assert sorted(dispatcher.inflight) == ["p0", "p1", "p2", "p3", "p4"] and len(dispatcher.batches) == 2
        done.clear()
        deadline = time.monotonic() + 5
        while len(done) < 4 and time.monotonic() < deadline:
            dispatcher.drain(0.1, done.append)
        assert done == ["p1", "p2", "p3", "p4"] and list(dispatcher.inflight) == ["p0"]  # p0 still hangs
        assert dispatcher.reclaim_at() is None
        hang.set()
        while dispatcher.pending:
            dispatcher.drain(1, done.append)
        assert done[-1] == "p0"


def test_closing_the_dispatcher_cancels_what_has_not_started():
    executor = SyncExecutor(hold=True)
    dispatcher = Dispatcher(executor, lambda p: p.id, max_inflight=1)
    for n in range(3):
        dispatcher.submit(Provider(id=f"p{n}", name="P", url="https://p.example"))
    dispatcher.fill()
    dispatcher.close()
    handled: list = []
    dispatcher.drain(0, handled.append)
    assert handled == [] and not dispatcher.waiting and not dispatcher.submit(Provider(id="x", name="X", url="https://x.example"))


# -- the ledger -----------------------------------------------------------------------------


def test_first_contact_announces_what_is_open_then_every_new_update(parts, store):
    ledger, _ = parts
    page = payload()
    open_ids = {i["id"] for i in page["incidents"] if i["status"] not in ("resolved", "postmortem")}
    newest = page["incidents"][0]
    older = {**page, "incidents": page["incidents"][1:]}
    fetcher = PageFetcher({ENDPOINT: body(older)})
    with capture_logs() as logs:
        assert poll(ledger, fetcher) == "ok"
    [contact] = events(logs, "first_contact")
    assert contact["updates"] == sum(len(i["incident_updates"]) for i in older["incidents"])
    assert {e["incident_id"] for e in events(logs)} <= open_ids
    fetcher.pages[ENDPOINT] = body(page)
    with capture_logs() as logs:
        assert poll(ledger, fetcher) == "ok"
    assert [e["update_id"] for e in events(logs)] == [u["id"] for u in reversed(newest["incident_updates"])]
    stamps = [e["created_at"] for e in events(logs)]
    assert stamps == sorted(stamps) and not events(logs, "first_contact")
    assert tuple(store.conn.execute("SELECT count(*) FROM updates WHERE announce = 1 AND emitted_at IS NULL").fetchone()) == (0,)


def test_an_unchanged_page_is_batched_bookkeeping_not_a_commit_per_poll(parts, store, clock):
    ledger, _ = parts
    fetcher = PageFetcher({ENDPOINT: body(payload())})
    poll(ledger, fetcher)
    clock.advance(60)
    with capture_logs() as logs:
        assert poll(ledger, fetcher) == "not_modified"  # a 304
    assert fetcher.requests.count(ENDPOINT) == 2 and ledger.quiet == {"github": ledger.now()}
    before = store.conn.execute("SELECT last_poll_at FROM providers").fetchone()[0]
    assert before < ledger.now()  # not written yet
    ledger.flush_quiet()
    assert tuple(store.conn.execute("SELECT last_poll_at, last_result FROM providers").fetchone()) == (ledger.now(), "not_modified")
    assert not events(logs)


def test_failures_back_off_and_a_long_outage_does_not_flood_the_log(parts, store, clock):
    ledger, _ = parts
    fetcher = PageFetcher({ENDPOINT: HTTPStatusError(503)})
    with capture_logs() as logs:
        for _ in range(QUIET_FAILURES + 3):
            assert poll(ledger, fetcher) == "error"
            clock.advance(30)
    failed = events(logs, "poll_failed")
    assert [f["failures"] for f in failed] == list(range(1, QUIET_FAILURES + 1))  # then quiet
    state = ledger.state("github")
    assert state.failures == QUIET_FAILURES + 3 and ledger.backing_off("github") == state.next_poll_at
    assert tuple(store.conn.execute("SELECT failures, next_poll_at FROM providers").fetchone()) == (state.failures, state.next_poll_at)
    clock.advance(REPEAT_EVERY)
    with capture_logs() as logs:
        poll(ledger, fetcher)
    [again] = events(logs, "poll_failed")
    assert again["unlogged"] == 3
    fetcher.pages[ENDPOINT] = body(payload())
    with capture_logs() as logs:
        assert poll(ledger, fetcher) == "ok"
    [recovered] = events(logs, "provider_recovered")
    assert recovered["failures"] == QUIET_FAILURES + 4 and ledger.backing_off("github") is None


def test_a_database_that_refuses_writes_is_one_store_failed_a_minute(parts, store, clock, tmp_path):
    ledger, _ = parts
    ledger.store = Store.open_readonly(store.path)  # every write now fails, as on a read-only disk
    fetcher = PageFetcher({ENDPOINT: body(payload())})
    with capture_logs() as logs:
        for _ in range(5):
            assert poll(ledger, fetcher) == "unrecorded"
            clock.advance(10)
        clock.advance(60)
        poll(ledger, fetcher)
    failed = events(logs, "store_failed")
    assert len(failed) == 2 and failed[1]["unlogged"] == 4
    assert "readonly" in failed[0]["error"] or "read-only transaction" in failed[0]["error"]
    assert ledger.unrecorded == 6
    ledger.store.close()


# -- the outbox -----------------------------------------------------------------------------


def test_the_outbox_takes_over_a_dead_process_and_leaves_a_live_one_alone(parts, store, clock):
    ledger, outbox = parts
    page = payload()
    # Two processes claimed updates and never announced them: one dead (a pid that does not
    # exist on this host), one alive (this test's own parent) with its lease still running.
    dead = f"{os.uname().nodename}:999999:dead"
    alive = f"{os.uname().nodename}:{os.getppid()}:alive"
    from tracker.adapters.statuspage import parse
    from tracker.policy import Policy

    incidents = parse(page).incidents
    future = times.iso(clock.now() + timedelta(minutes=10))
    store.record("github", incidents[:1], now=ledger.now(), source="run", policy=Policy(mode="all"),
                 lease=(dead, future))
    store.record("github", incidents[1:2], now=ledger.now(), source="run", policy=Policy(mode="all"),
                 lease=(alive, future))
    with capture_logs() as logs:
        ledger.recover()
    announced = [e["incident_id"] for e in events(logs)]
    if store.engine.name == "sqlite":
        assert set(announced) == {incidents[0].incident_id} and len(announced) == len(incidents[0].updates)
        [recovered] = events(logs, "outbox_recovered")
        assert recovered["updates"] == len(incidents[0].updates) and recovered["previous_owner"] == [dead]
    else:  # hosts share the database: a pid says nothing, only a lease running out does
        assert announced == []
    clock.advance(11 * 60)  # the live one's lease ran out: its updates are taken over too
    with capture_logs() as logs:
        ledger.recover()
    assert {e["incident_id"] for e in events(logs)} == (
        {incidents[1].incident_id} if store.engine.name == "sqlite"
        else {incidents[0].incident_id, incidents[1].incident_id})
    assert events(logs, "outbox_recovered")[0]["previous_owner"] == (
        [alive] if store.engine.name == "sqlite" else sorted([alive, dead]))
    with capture_logs() as logs:
        ledger.recover()
    assert events(logs) == []


# -- the loop shell -------------------------------------------------------------------------


def test_run_once_is_the_same_loop_and_reports_what_it_did(store, clock):
    settings = Settings(database=store.path, providers=(GITHUB,), workers=2)
    pages = {ENDPOINT: body(payload())}
    with capture_logs() as logs:
        poller = Poller(settings, store, structlog.get_logger(), source="once", fetcher=PageFetcher(pages),
                        executor=SyncExecutor(), clock=clock.now, monotonic=clock.monotonic)
        assert poller.run(once=True) == 0
    names = [e["event"] for e in logs]
    assert names[0] == "tracker_started" and names[-1] == "run_complete"
    [complete] = events(logs, "run_complete")
    assert complete["polls"] == 1 and complete["failed"] == 0 and complete["announced"] == len(events(logs))


def test_run_once_polls_a_provider_in_backoff_and_the_daemon_does_not(store, clock):
    failing = {ENDPOINT: FetchError("connection refused by www.githubstatus.com:443")}
    settings = Settings(database=store.path, providers=(GITHUB,), workers=2)

    def make(pages):
        return Poller(settings, store, structlog.get_logger(), fetcher=PageFetcher(pages), executor=SyncExecutor(),
                      clock=clock.now, monotonic=clock.monotonic)

    with capture_logs():
        make(failing).run(once=True)
    poller = make({ENDPOINT: body(payload())})
    poller.ledger.load(poller.providers.values())
    with capture_logs() as logs:
        poller.submit(GITHUB)  # the daemon's scheduler job: backing off, so skipped
    assert poller.dispatcher.pending is False and events(logs, "poll_skipped")[0]["reason"] == "backing off"
    with capture_logs() as logs:
        assert make({ENDPOINT: body(payload())}).run(once=True) == 0  # an explicit run polls anyway
    assert events(logs, "provider_recovered")


def test_the_state_a_worker_reads_is_a_copy(store, clock):
    settings = Settings(database=store.path, providers=(GITHUB,), workers=2)
    poller = Poller(settings, store, structlog.get_logger(), fetcher=PageFetcher({}), executor=SyncExecutor(),
                    clock=clock.now, monotonic=clock.monotonic)
    poller.ledger.load([GITHUB])
    _, state, now = poller._context(GITHUB)
    state.cache["x"] = None
    state.failures = 99
    kept = poller.ledger.state("github")
    assert kept.failures == 0 and "x" not in kept.cache and now == times.iso(clock.now())


# -- lifecycle and two views, in-process (the subprocess tests in test_lifecycle.py and
# test_incidentio_views.py prove the same across processes) ---------------------------------


def test_the_github_afternoon_closes_what_left_the_summary_once(store, clock):
    provider = Provider(id="github", name="GitHub", url="https://www.githubstatus.com/api/v2/summary.json",
                        closing_grace=0)  # no history view answers here: inferred at the first miss
    log = structlog.get_logger()
    ledger = Ledger(store, log, Outbox(store, log, clock=clock.now), clock=clock.now, monotonic=clock.monotonic)
    ledger.load([provider])
    fetcher = PageFetcher({})
    counts, closed = [], []
    for moment in ("T1348Z", "T1503Z", "T2110Z", "T2142Z", "T2142Z"):
        fetcher.pages[provider.url] = (FIXTURES / f"github-summary-2026-08-17{moment}.json").read_bytes()
        clock.advance(60)
        with capture_logs() as logs:
            poll(ledger, fetcher, provider)
        counts.append(len([e for e in events(logs) if not e.get("inferred")]))
        closed += [e["update_id"] for e in events(logs) if e.get("inferred")]
    assert counts == [6, 11, 18, 0, 0] and closed == ["closed"]


def test_an_edit_is_told_once_with_the_text_it_replaced(parts, store):
    ledger, _ = parts
    page = payload()
    fetcher = PageFetcher({ENDPOINT: body(page)})
    poll(ledger, fetcher)
    update = page["incidents"][3]["incident_updates"][0]
    old = update["body"]
    update["body"] = old + " Update: the fix is rolling out."
    fetcher.pages[ENDPOINT] = body(page)
    with capture_logs() as logs:
        poll(ledger, fetcher)
    [edit] = events(logs, "incident_update_edited")
    assert edit["update_id"] == update["id"] and edit["message"].endswith("the fix is rolling out.")
    assert edit["previous_message"] == old.strip() and ":edit:" in edit["event_id"]
    page["page"]["updated_at"] = "2026-08-02T00:00:00Z"  # another body, the same texts
    fetcher.pages[ENDPOINT] = body(page)
    with capture_logs() as logs:
        poll(ledger, fetcher)
    assert events(logs, "incident_update_edited") == [] and events(logs) == []


def test_incidentio_two_views_give_every_update_its_own_words_once(store, clock):
    from openai_pages import copy_at, moments, summary_at, week

    provider = Provider(id="openai", name="OpenAI", url="https://status.openai.com", format="incidentio")
    log = structlog.get_logger()
    ledger = Ledger(store, log, Outbox(store, log, clock=clock.now), clock=clock.now, monotonic=clock.monotonic)
    ledger.load([provider])
    raws = week("W32")
    texts = {(r["id"], u["id"]): u["body"].strip() for r in raws for u in r["incident_updates"]}
    fetcher = PageFetcher({})
    seen = []
    for t in moments(raws):
        fetcher.pages["https://status.openai.com/proxy/status.openai.com"] = body(summary_at(raws, t))
        fetcher.pages["https://status.openai.com/api/v2/incidents.json"] = body(copy_at(raws, t))
        with capture_logs() as logs:
            assert poll(ledger, fetcher, provider) == "ok"
        assert not events(logs, "view_failed")
        seen += events(logs)
    assert sorted((e["incident_id"], e["update_id"]) for e in seen) == sorted(texts)
    assert all(e["message"] == texts[(e["incident_id"], e["update_id"])] for e in seen)


def test_a_payload_of_another_platform_names_the_format_that_reads_it(parts):
    ledger, _ = parts
    slack = (FIXTURES / "slack-status-current-2026-09-01.json").read_bytes()
    with capture_logs() as logs:
        assert poll(ledger, PageFetcher({ENDPOINT: slack})) == "error"
    [failed] = events(logs, "poll_failed")
    assert failed["error"].endswith('(it reads as slack: set format = "slack")')
    html = b"<html><head><title>Just a moment...</title></head><body>checking</body></html>"

    class HTMLFetcher(PageFetcher):
        def get(self, url, **kw):
            got = super().get(url, **kw)
            return Fetched(got.status, got.body, "text/html; charset=utf-8", got.etag, None, url)

    with capture_logs() as logs:
        poll(ledger, HTMLFetcher({ENDPOINT: html}))
    [failed] = events(logs, "poll_failed")
    assert 'text/html "Just a moment..."' in failed["error"]


def test_the_timetable_runs_what_is_due_and_skips_what_was_cancelled():
    from tracker.timetable import Timetable

    table = Timetable()
    ran: list[str] = []
    jobs = {name: table.track(table.every(60).seconds.do(ran.append, name)) for name in "abcd"}
    assert ran == [] and 59 < table.idle_seconds <= 60
    past = datetime.now() - timedelta(seconds=1)
    for name in "bd":
        jobs[name].next_run = past
    table.track(jobs["b"]), table.track(jobs["d"])  # (re)pushed at their new time, as the loop does
    table.cancel_job(jobs["d"])
    table.run_pending()
    assert ran == ["b"] and jobs["b"].next_run > datetime.now()  # run once, then 60 s on
    table.run_pending()
    assert ran == ["b"]
    table.run_all()
    assert sorted(ran) == ["a", "b", "b", "c"] and 59 < table.idle_seconds <= 60
    table.clear()
    assert table.idle_seconds is None


def test_a_new_url_is_probed_again(store, clock):
    """`format = "auto"` remembers what the probe found for a URL; another URL is asked again."""
    log = structlog.get_logger()
    ledger = Ledger(store, log, Outbox(store, log, clock=clock.now), clock=clock.now, monotonic=clock.monotonic)
    summary = (FIXTURES / "openai-incidentio-proxy-2026-10-06.json").read_bytes()
    fetcher = PageFetcher({
        "https://a.example/proxy/a.example": summary,
        # incident.io's copy of the Statuspage API, cut to no incidents: its ULID page id says
        # whose it is
        "https://a.example/api/v2/incidents.json": body({**payload("openai-incidents-2025-11-15.json"),
                                                         "incidents": []}),
        "https://b.example/api/v2/incidents.json": body(payload()),
    })
    first = Provider(id="p", name="P", url="https://a.example")
    ledger.load([first])
    with capture_logs() as logs:
        poll(ledger, fetcher, first)
    assert [e["format"] for e in events(logs, "format_detected")] == ["incidentio"]
    assert store.poll_states()["p"].detected_format == "incidentio"  # stored with the poll's record
    moved = Provider(id="p", name="P", url="https://b.example")
    ledger.load([moved])  # as a restart or SIGHUP does with the new config
    with capture_logs() as logs:
        assert poll(ledger, fetcher, moved) == "ok"
    assert [e["format"] for e in events(logs, "format_detected")] == ["statuspage"]
    assert store.poll_states()["p"].detected_format == "statuspage"
    assert events(logs, "url_changed") and events(logs, "first_contact")
    ledger.load([first])  # back: probed again, and its views answer 304 (nothing else to write)
    with capture_logs() as logs:
        poll(ledger, fetcher, first)
    assert [e["format"] for e in events(logs, "format_detected")] == ["incidentio"]
    assert store.poll_states()["p"].detected_format == "incidentio"


# -- reading a page of unknown platform (`format = "auto"`) ----------------------------------


def auto(host: str) -> Provider:
    return Provider(id=host, name=host, url=f"https://{host}")


def test_auto_reads_a_statuspage_page_with_its_one_request():
    """The probe's read of the Statuspage endpoint is the poll's own: nothing else is asked."""
    page = (FIXTURES / "dropbox-incidents-2024-01-03.json").read_bytes()
    fetcher = PageFetcher({"https://s.example/api/v2/incidents.json": page})
    outcome = read(auto("s.example"), fetcher, now="2024-01-03T12:00:00.000Z")
    assert outcome.error is None and (outcome.format, outcome.detected) == ("statuspage", "statuspage")
    assert fetcher.requests == ["https://s.example/api/v2/incidents.json"]
    assert len(outcome.parsed.incidents) == len(json.loads(page)["incidents"]) == 50
    assert outcome.cache["https://s.example/api/v2/incidents.json"].etag  # kept for the next poll's 304


def test_auto_tells_incidentio_by_its_summary_whether_or_not_it_serves_the_copy():
    copy = (FIXTURES / "openai-incidents-2025-11-15.json").read_bytes()
    summary = (FIXTURES / "openai-incidentio-proxy-2026-10-06.json").read_bytes()
    both = PageFetcher({"https://i.example/api/v2/incidents.json": copy, "https://i.example/proxy/i.example": summary})
    outcome = read(auto("i.example"), both, now="2025-11-15T02:00:00.000Z")
    assert outcome.error is None and outcome.detected == "incidentio"
    assert [v.name for v in outcome.views] == ["summary", "incidents"]
    # The copy's ULID ids said "a copy": the summary was asked (the probe), then each view read.
    assert both.requests == ["https://i.example/api/v2/incidents.json", "https://i.example/proxy/i.example",
                             "https://i.example/proxy/i.example", "https://i.example/api/v2/incidents.json"]
    # A page that does not serve the copy is recognised by its summary too.
    no_copy = PageFetcher({"https://n.example/proxy/n.example": summary})
    outcome = read(auto("n.example"), no_copy, now="2025-11-15T02:00:00.000Z")
    assert outcome.error is None and outcome.detected == "incidentio"
    assert [v.name for v in outcome.failed_views] == ["incidents"]
    assert no_copy.requests == ["https://n.example/api/v2/incidents.json", "https://n.example/proxy/n.example",
                                "https://n.example/proxy/n.example", "https://n.example/api/v2/incidents.json"]


def test_auto_on_a_page_nothing_reads_or_nobody_answers():
    """Nothing recognised: the Statuspage read's own error, and nothing remembered. Asked to
    wait, or no answer at all: the poll fails at once, asking that host nothing more."""
    fetcher = PageFetcher({})
    outcome = read(auto("x.example"), fetcher, now="2025-11-15T02:00:00.000Z")
    assert (outcome.error, outcome.detected) == ("HTTP 404", None)
    assert fetcher.requests == ["https://x.example/api/v2/incidents.json", "https://x.example/proxy/x.example"]
    busy = PageFetcher({"https://b.example/api/v2/incidents.json": HTTPStatusError(429, "120")})
    outcome = read(auto("b.example"), busy, now="2025-11-15T02:00:00.000Z")
    assert (outcome.error, outcome.retry_after, outcome.detected) == ("HTTP 429 (Retry-After: 120)", 120, None)
    assert busy.requests == ["https://b.example/api/v2/incidents.json"]  # asked to wait: nothing more
    down = PageFetcher({"https://d.example/api/v2/incidents.json": FetchError("connect timeout after 10 s")})
    outcome = read(auto("d.example"), down, now="2025-11-15T02:00:00.000Z")
    assert (outcome.error, outcome.detected) == ("connect timeout after 10 s", None)
    assert down.requests == ["https://d.example/api/v2/incidents.json"]
