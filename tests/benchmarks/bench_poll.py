"""Where one steady poll's time goes. Prints figures, asserts nothing.

    python tests/benchmarks/bench_poll.py

A stdlib server in another process (bench_run.py's, with ETags) serves 300 providers; every
poll below is a conditional GET answered 304. Measured in this process (CPU time, all threads):
  * `tracker.read.read()` back to back on one thread, then with 1, 5 and 20 ms between polls
    (a daemon spreads its polls out: 1,000 providers every 60 s is one every 60 ms);
  * 17 polls falling due together once a second (what the daemon's one look a second at the
    schedule finds for 1,000 providers every 60 s), read in turn by one worker (the dispatcher's
    batch) or handed one by one to a pool of 8 threads;
  * a bare `requests.Session.get` and a bare `urllib3.PoolManager.request` for comparison;
  * the ledger's handling of a 304 outcome;
  * a cProfile of read() + apply(), top functions by own time.
Not collected by pytest.
"""

from __future__ import annotations

import cProfile
import multiprocessing as mp
import pstats
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import requests  # noqa: E402
import structlog  # noqa: E402
import urllib3  # noqa: E402
from bench_run import serve  # noqa: E402

from tracker.config import Provider  # noqa: E402
from tracker.fetch import Fetcher  # noqa: E402
from tracker.ledger import Ledger  # noqa: E402
from tracker.models import PollState  # noqa: E402
from tracker.outbox import Outbox  # noqa: E402
from tracker.read import read  # noqa: E402
from tracker.store import Store  # noqa: E402

N = 300


def per_poll(label: str, calls: int, work) -> None:
    started = time.process_time()
    work()
    print(f"{label:58} {(time.process_time() - started) / calls * 1000:.3f} ms CPU per poll")


def main() -> None:
    parent, child = mp.Pipe()
    server = mp.Process(target=serve, args=(N, child), daemon=True)
    server.start()
    port = parent.recv()
    try:
        providers = [Provider(id=f"p{i}", name=f"P{i}", url=f"http://127.0.0.1:{port}/p{i:04d}", format="statuspage")
                     for i in range(N)]
        fetcher = Fetcher()
        states: dict[str, PollState] = {}
        for p in providers:  # the first poll of each: a 200, its validators kept
            states[p.id] = PollState(cache=dict(read(p, fetcher, PollState()).cache))
        for gap in (0.0, 0.001, 0.005, 0.02):
            def polls(gap: float = gap) -> None:
                for p in providers:
                    read(p, fetcher, states[p.id])
                    if gap:
                        time.sleep(gap)
            per_poll(f"read(), one thread, {gap * 1000:g} ms between polls", N, polls)

        pool8 = ThreadPoolExecutor(8)
        for label, hand_off in (("in turn by one worker (a batch)", lambda batch: [pool8.submit(
                                    lambda: [read(p, fetcher, states[p.id]) for p in batch])]),
                                ("one by one to 8 threads", lambda batch: [
                                    pool8.submit(read, p, fetcher, states[p.id]) for p in batch])):
            def bursts(hand_off=hand_off) -> None:
                for start in range(0, 136, 17):
                    wait(hand_off([providers[(start + k) % N] for k in range(17)]))
                    time.sleep(1.0)
            per_poll(f"17 polls due each second, {label}", 136, bursts)
        pool8.shutdown()

        url = providers[0].url + "/api/v2/incidents.json"
        etag = next(iter(states[providers[0].id].cache.values())).etag
        session = requests.Session()
        session.trust_env = False
        per_poll("bare requests.Session.get (304), back to back", N, lambda: [
            session.get(url, headers={"If-None-Match": etag}, timeout=(5, 10)).content for _ in range(N)])
        pool = urllib3.PoolManager()
        per_poll("bare urllib3 request (304), back to back", N, lambda: [
            pool.request("GET", url, headers={"If-None-Match": etag}) for _ in range(N)])

        structlog.configure(logger_factory=structlog.ReturnLoggerFactory())
        log = structlog.get_logger()
        store = Store.open(Path(tempfile.mkdtemp()) / "t.db")
        ledger = Ledger(store, log, Outbox(store, log))
        ledger.load(providers)
        for p in providers:
            ledger.apply(read(p, fetcher, ledger.state(p.id)))  # first contact, recorded
        outcomes = [read(p, fetcher, ledger.state(p.id)) for p in providers]
        per_poll("ledger.apply() of a 304 outcome", N, lambda: [ledger.apply(o) for o in outcomes])

        profile = cProfile.Profile()
        profile.enable()
        for p in providers:
            ledger.apply(read(p, fetcher, ledger.state(p.id)))
        profile.disable()
        print("\ncProfile of read() + apply() over 300 polls answered 304, by own time:")
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)
    finally:
        server.kill()
        server.join(10)


if __name__ == "__main__":
    main()
