"""Benchmark `tracker backfill`: N providers × GitHub's 50 real incidents from 127.0.0.x.
Prints figures, asserts nothing.

    python tests/benchmarks/bench_backfill.py --providers 200

Each provider is a whole Statuspage page (tests/pages.py serve layout): incidents.json holds
the newest 20 incidents, /history?page=N lists all 50 a month a page, and
/api/v2/incidents/<id>.json serves each one, so a backfill makes ~35 requests per provider.
Providers are spread over 8 loopback addresses (127.0.0.1-8, one listener each, in a server
process of its own), since backfill asks one request at a time per host.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_run import TRACKER, wait_child  # noqa: E402
from pages import history_pages, load  # noqa: E402

HOSTS = [f"127.0.0.{i}" for i in range(1, 9)]


def serve(conn) -> None:
    payload = load("github-incidents-2026-07-31.json")
    newest = sorted(payload["incidents"], key=lambda i: i["created_at"], reverse=True)
    docs = {"/api/v2/incidents.json": json.dumps({**payload, "incidents": newest[:20]}).encode()}
    for n, page in enumerate(history_pages(payload), start=1):
        docs[f"/history?page={n}"] = json.dumps(page).encode()
    for inc in payload["incidents"]:
        docs[f"/api/v2/incidents/{inc['id']}.json"] = json.dumps({"page": payload["page"], "incident": inc}).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stalls

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            # /pNNNN/<path>: every provider serves the same page.
            rest = "/" + self.path.split("/", 2)[2] if self.path.count("/") >= 2 else self.path
            body = docs.get(rest)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

    class Server(ThreadingHTTPServer):
        request_queue_size = 1024
        daemon_threads = True

    servers = [Server((host, 0), Handler) for host in HOSTS]
    conn.send([s.server_address for s in servers])
    for s in servers[1:]:
        Thread(target=s.serve_forever, daemon=True).start()
    servers[0].serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--providers", type=int, default=200)
    args = ap.parse_args()
    parent, child = mp.Pipe()
    server = mp.Process(target=serve, args=(child,), daemon=True)
    server.start()
    addresses = parent.recv()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "t.toml"
            lines = ["workers = 8", ""]
            for i in range(args.providers):
                host, port = addresses[i % len(addresses)]
                lines += ["[[providers]]", f'name = "P{i:04d}"', f'url = "http://{host}:{port}/p{i:04d}"', ""]
            config.write_text("\n".join(lines))
            for label in ("fresh database", "again (resume: nothing new)"):
                started = time.monotonic()
                out = Path(tmp) / "out"
                with open(out, "w") as f:
                    pid = os.posix_spawn(TRACKER[0], [*TRACKER, "backfill", "--config", str(config), "--db",
                                                      str(Path(tmp) / "t.db"), "--log-format", "json"],
                                         dict(os.environ), file_actions=[(os.POSIX_SPAWN_DUP2, f.fileno(), 1)])
                    code, ru = wait_child(pid, 600)
                wall = time.monotonic() - started
                done = [json.loads(line) for line in out.read_text().splitlines() if '"backfill_complete"' in line]
                total = done[0] if done else {}
                print(f"| {label} | {args.providers} | {wall:.1f} s | {ru.ru_utime + ru.ru_stime:.1f} s | "
                      f"{ru.ru_maxrss / 1024:.0f} MB | {total.get('incidents')} | {total.get('new')} | "
                      f"{total.get('requests')} | {code} |")
    finally:
        server.terminate()


if __name__ == "__main__":
    print("| run | providers | wall | CPU | peak RSS | incidents | new updates | requests | exit |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    main()
