"""What a pair of hosts on one PostgreSQL database logs when one of them is killed mid-delivery:
the real `tracker` command as two "hosts" (UTS namespaces with their own names, where this runs
as root), a throwaway PostgreSQL server (tests/pgserver.py), GitHub's real page replayed on
127.0.0.1 and a slow webhook receiver. Prints the survivor's records and what the receiver got;
asserts nothing (tests/test_postgres.py asserts the same).

    python tests/benchmarks/show_pair.py [--lease 5]
"""

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pgserver  # noqa: E402
from conftest import write_config  # noqa: E402
from notifyserver import Receiver  # noqa: E402
from statusserver import StatusServer  # noqa: E402
from test_postgres import Host, Replay, rows, wait_for  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--lease", type=float, default=5.0)
args = ap.parse_args()

why = pgserver.unavailable()
if why:
    sys.exit(why)
pg = pgserver.PgServer()
os.environ["PGPASSWORD"] = pgserver.PASSWORD
database = pg.database(password=False)
work = Path(tempfile.mkdtemp())


def wall(r):
    return datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")).timestamp()


try:
    with StatusServer() as server, Receiver() as rcv:
        rp = Replay(server, providers="ab", tail=6)
        config = write_config(work / "tracker.toml",
                              [{"name": f"GitHub {p}", "id": p, "url": f"{server.base}/{p}"} for p in rp.routes],
                              [{"name": "hook", "type": "webhook", "url": f"{rcv.base}/hook"}],
                              interval=1, lease=args.lease)
        hosts = {n: Host(n, config, database, "run") for n in ("host-a", "host-b")}
        wait_for(lambda: sum(len(h.events("first_contact")) for h in hosts.values()) == 2, 20, "first contact")
        started = min(wall(r) for h in hosts.values() for r in h.events("first_contact"))
        rcv.delay = 0.4  # slow deliveries: a lane is in flight when the kill comes
        for r in rp.routes.values():
            r.body = rp.bodies[-1]  # six new updates on each page at once
        # Kill the host holding a lane of deliveries while it sends.
        holder = wait_for(lambda: rows(pg, database, "SELECT lease_owner FROM deliveries WHERE lease_owner IS NOT NULL "
                                                    "AND delivered_at IS NULL LIMIT 1"), 20, "a lane in flight")[0][0]
        wait_for(lambda: len(rcv.got) >= 1, 10, "a first delivery")
        victim = holder.split(":")[0]
        survivor = next(n for n in hosts if n != victim)
        killed_at, killed_wall = time.monotonic(), time.time()
        hosts[victim].kill()
        print(f"kill -9 {victim} (lease owner {holder}) while it sent; {len(rcv.got)} deliveries received so far")
        wait_for(lambda: rp.new <= {f"{p}:{i}:{u}" for p, i, u in rows(
            pg, database, "SELECT provider_id, incident_id, update_id FROM updates WHERE announce = 1")}
            and rows(pg, database, "SELECT count(*) FROM deliveries WHERE delivered_at IS NULL")[0][0] == 0,
            args.lease + 60, "everything delivered")
        took = time.monotonic() - killed_at
        hosts[survivor].stop()
        timeline = sorted(((wall(r), n, r) for n, h in hosts.items() for r in h.records
                           if wall(r) >= started), key=lambda t: t[0])
        print(f"\nboth hosts' records from first contact on "
              f"(kill -9 at {datetime.fromtimestamp(killed_wall, timezone.utc):%H:%M:%S.%f}):")
        marked = False
        for at, n, r in timeline:
            if at >= killed_wall and not marked:
                print(f"   --- kill -9 {victim} ---")
                marked = True
            keep = {k: v for k, v in r.items() if k not in ("level",)}
            if r["event"] == "incident_update":
                keep = {k: r[k] for k in ("event", "timestamp", "event_id", "status")}
            print(f"   {n}: {json.dumps(keep)[:300]}")
        got = Counter(rcv.event_ids("/hook"))
        print(f"\nreceiver: {sum(got.values())} deliveries, {len(got)} distinct, "
              f"repeated: {sorted(e for e, n in got.items() if n > 1)}; everything delivered {took:.1f} s after the kill")
finally:
    pg.close()
