"""Benchmark notification delivery: latency from the claim of an update to its arrival at the
receiver, for ~1,000 updates to two webhook destinations on loopback. Prints figures, asserts
nothing.

    python tests/benchmarks/bench_notify.py                      # both scenarios
    python tests/benchmarks/bench_notify.py --scenario steady --updates 1000

Scenarios:
  steady  a `tracker run` daemon (interval 1 s) polls 4 providers whose pages (the real GitHub
          capture, cut at successive moments) publish their last updates one by one, about 50
          updates a second in all; each update is claimed by a poll and delivered to two
          `webhook` destinations by the daemon's delivery threads.
  burst   `tracker backfill --emit` records 4 providers' whole history (4 x 287 updates) and
          queues them all at once for two `webhook` destinations with `backfill = true`.

Latency is the receiver's clock (time.time() when the request was read) minus the update's
`recorded_at` in the database (the claim, millisecond resolution), and minus its delivery's
`queued_at` (the commit that marked it logged). Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from notifyserver import Receiver  # noqa: E402
from pages import all_updates, cut, load, serve_statuspage  # noqa: E402
from statusserver import StatusServer  # noqa: E402

_exe = Path(sys.executable).with_name("tracker")
TRACKER = [str(_exe)] if _exe.exists() else [sys.executable, "-m", "tracker"]
GITHUB = "github-incidents-2026-07-31.json"
PROVIDERS = ("p0", "p1", "p2", "p3")


def unix(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def write_config(path: Path, base: str, receiver: str, backfill: bool = False) -> None:
    lines = ["interval = 1"]
    for p in PROVIDERS:
        lines += ["[[providers]]", f'name = "GitHub {p}"', f'id = "{p}"', f'url = "{base}/{p}"', 'format = "statuspage"']
    for name in ("a", "b"):
        lines += ["[[notify]]", f'name = "{name}"', 'type = "webhook"', f'url = "{receiver}/{name}"']
        if backfill:
            lines.append("backfill = true")
    path.write_text("\n".join(lines) + "\n")


def figures(db: Path, rcv: Receiver) -> dict:
    conn = sqlite3.connect(db)
    claimed = {f"{p}:{i}:{u}": unix(at) for p, i, u, at in conn.execute(
        "SELECT provider_id, incident_id, update_id, recorded_at FROM updates WHERE announce = 1")}
    queued = {(d, e): unix(at) for d, e, at in conn.execute("SELECT destination, event_id, queued_at FROM deliveries")}
    conn.close()
    out: dict = {"updates": len(claimed)}
    from_claim, from_queue = [], []
    for name in ("a", "b"):
        got = rcv.on(f"/{name}")
        ids = [r.headers["X-Tracker-Event-Id"] for r in got]
        out[f"{name}_received"] = len(got)
        out[f"{name}_duplicates"] = len(ids) - len(set(ids))
        out[f"{name}_lost"] = len(set(claimed) - set(ids))
        for r, event_id in zip(got, ids):
            from_claim.append(r.at - claimed[event_id])
            from_queue.append(r.at - queued[(name, event_id)])
    for label, values in (("claim_to_receiver", from_claim), ("queued_to_receiver", from_queue)):
        values.sort()
        out[label] = {
            "n": len(values), "p50_ms": round(statistics.median(values) * 1000, 1),
            "p99_ms": round(values[int(len(values) * 0.99) - 1] * 1000, 1), "max_ms": round(values[-1] * 1000, 1),
        }
    return out


def steady(n_updates: int) -> dict:
    payload = load(GITHUB)
    per = max(1, n_updates // len(PROVIDERS))
    moments = [at for at, _, _ in all_updates(payload)[-(per + 1):]]
    print(f"steady: preparing {len(moments)} page states…", file=sys.stderr)
    bodies = [json.dumps(cut(payload, at)).encode() for at in moments]
    with StatusServer() as srv, Receiver() as rcv, tempfile.TemporaryDirectory() as tmp:
        routes = [srv.route(f"/{p}/api/v2/incidents.json") for p in PROVIDERS]
        for r in routes:
            r.body = bodies[0]
        config, db = Path(tmp) / "tracker.toml", Path(tmp) / "tracker.db"
        write_config(config, srv.base, rcv.base)
        proc = subprocess.Popen([*TRACKER, "run", "--config", str(config), "--db", str(db), "--log-format", "json"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(2.5)  # first contact on the starting page
        baseline = len(rcv.got)
        started = time.monotonic()

        def advance() -> None:
            for step in range(1, len(bodies)):
                for r in routes:
                    r.body = bodies[step]
                time.sleep(len(PROVIDERS) / 50)  # ~50 updates a second in all

        mover = threading.Thread(target=advance)
        mover.start()
        mover.join()
        expected = baseline + 2 * len(PROVIDERS) * (len(bodies) - 1)
        deadline = time.monotonic() + 60
        while len(rcv.got) < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        out = figures(db, rcv)
        out["seconds"] = round(elapsed, 1)
        return out


def burst() -> dict:
    payload = load(GITHUB)
    with StatusServer() as srv, Receiver() as rcv, tempfile.TemporaryDirectory() as tmp:
        for p in PROVIDERS:
            serve_statuspage(srv, f"/{p}", payload, recent=50)
        config, db = Path(tmp) / "tracker.toml", Path(tmp) / "tracker.db"
        write_config(config, srv.base, rcv.base, backfill=True)
        started = time.monotonic()
        p = subprocess.run([*TRACKER, "backfill", "--emit", "--config", str(config), "--db", str(db),
                            "--log-format", "json"], capture_output=True, text=True, timeout=300)
        elapsed = time.monotonic() - started
        if p.returncode != 0:
            raise SystemExit(p.stderr)
        out = figures(db, rcv)
        out["seconds"] = round(elapsed, 1)
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", choices=("steady", "burst", "both"), default="both")
    ap.add_argument("--updates", type=int, default=1000, help="steady: updates published in all (default 1000)")
    args = ap.parse_args()
    os.environ.pop("TRACKER_CONFIG", None)
    if args.scenario in ("steady", "both"):
        print("steady:", json.dumps(steady(args.updates)))
    if args.scenario in ("burst", "both"):
        print("burst:", json.dumps(burst()))


if __name__ == "__main__":
    main()
