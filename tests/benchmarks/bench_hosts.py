"""The real network's shape: N providers on N distinct HTTPS hosts against N providers on one
host, in the same run. Prints figures, asserts nothing.

    python tests/benchmarks/bench_hosts.py --providers 300
    python tests/benchmarks/bench_hosts.py --providers 300 --old-tree /tmp/old
    python tests/benchmarks/bench_hosts.py --providers 300 --idle-close 30 --resumption both --hosts many
    python tests/benchmarks/bench_hosts.py --providers 1000 --hosts many --window 30

A server in another process (its CPU is not counted) listens on N loopback addresses
127.1.x.y, each with its own certificate from a throwaway CA (trustme), and, for the one-host
case, on 127.0.0.1 with every provider a path of its own. Every provider's page is GitHub's
real `incidents.json` (332 KB) with a strong ETag, answered 304 to a matching If-None-Match,
over HTTP/1.1 keep-alive: the server keeps an idle connection `--idle-close` seconds (300 by
default: longer than the interval), optionally saying so in `Keep-Alive: timeout=N`
(`--announce`), and issues TLS 1.3 session tickets unless told not to (`--resumption off`).

tracker runs as a daemon (`interval = 60`, 8 workers) with the CA trusted the way an operator
would (`REQUESTS_CA_BUNDLE`, here certifi's bundle with the throwaway CA appended, so loading
it costs what loading certifi's costs). After the first cycle, CPU is sampled from /proc at
`--start` and `--start + --window` seconds; the server counts the polls, the connections
opened and how many of their handshakes resumed a session in between:

  CPU per poll        the daemon's CPU in the window / the polls the server answered
  new conn. per poll  connections the server accepted in the window / polls
  resumed             the share of those connections whose TLS handshake was resumed
  VmRSS               the daemon's resident memory at the end of the window

`--old-tree DIR` runs another checkout beside the installed tracker (as bench_run.py does).
`--bare` adds, for each host layout, a bare `requests.Session.get` of every page (one Session,
conditional, answered 304, spread over the window as the daemon's polls are), measured in a
process of its own: the floor a poll is compared with.
Each run stops by itself; a full default run takes about 2 × (start + window) seconds per tree.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import ipaddress
import multiprocessing as mp
import os
import resource
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_run import TRACKER, byte_compile, kill, old_tree, proc_sample, stop  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "github-incidents-2026-07-31.json"


def address(i: int) -> str:
    """The i-th host's loopback address: 127.1.0.1, 127.1.0.2, … (all of 127/8 is loopback)."""
    return str(ipaddress.IPv4Address("127.1.0.0") + 1 + i)


# -- the server (its own process) -----------------------------------------------------------------


class Stats:
    def __init__(self) -> None:
        self.requests = self.not_modified = self.connections = self.resumed = self.idle_closed = 0


class Page(asyncio.Protocol):
    """HTTP/1.1 keep-alive GETs: 200 with the page and its ETag, or 304."""

    def __init__(self, stats: Stats, body: bytes, etag: str, idle: float, announce: bool):
        self.stats, self.body, self.etag, self.idle, self.announce = stats, body, etag, idle, announce
        self.buffer = b""
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.stats.connections += 1
        tls = transport.get_extra_info("ssl_object")
        if tls is not None and tls.session_reused:
            self.stats.resumed += 1
        self._arm()

    def _arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = asyncio.get_running_loop().call_later(self.idle, self._idle_close)

    def _idle_close(self) -> None:
        self.stats.idle_closed += 1
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
            self.stats.requests += 1
            extra = f"Keep-Alive: timeout={self.idle:g}\r\n" if self.announce else ""
            if headers.get("if-none-match") == self.etag:
                self.stats.not_modified += 1
                self.transport.write(f"HTTP/1.1 304 Not Modified\r\nETag: {self.etag}\r\n{extra}"
                                     "Content-Length: 0\r\n\r\n".encode())
            else:
                self.transport.write(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nETag: {self.etag}\r\n"
                                     f"{extra}Content-Length: {len(self.body)}\r\n\r\n".encode() + self.body)
        self._arm()


def serve(n: int, certs: Path, conn, idle: float, announce: bool, resumption: bool) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    body = FIXTURE.read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'

    def context(host: str) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(certs / f"{host}.pem")
        if not resumption:
            ctx.options |= ssl.OP_NO_TICKET
            ctx.num_tickets = 0
        return ctx

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stats = Stats()
        factory = lambda: Page(stats, body, etag, idle, announce)  # noqa: E731
        one = await loop.create_server(factory, "127.0.0.1", 0, ssl=context("127.0.0.1"), backlog=1024)
        port = one.sockets[0].getsockname()[1]
        for i in range(n):
            await loop.create_server(factory, address(i), port, ssl=context(address(i)), backlog=64)
        conn.send(port)
        while True:
            await asyncio.sleep(0.05)
            if conn.poll():
                if conn.recv() == "stop":
                    return
                conn.send(dict(vars(stats)))

    asyncio.run(main())


def make_certs(n: int, where: Path) -> Path:
    """A throwaway CA and one certificate per address; returns the bundle a client trusts:
    certifi's with the CA appended."""
    import certifi
    import trustme

    ca = trustme.CA()
    for host in ["127.0.0.1", *(address(i) for i in range(n))]:
        ca.issue_cert(host).private_key_and_cert_chain_pem.write_to_path(str(where / f"{host}.pem"))
    bundle = where / "bundle.pem"
    bundle.write_bytes(Path(certifi.where()).read_bytes() + b"\n" + ca.cert_pem.bytes())
    return bundle


# -- running tracker ------------------------------------------------------------------------------


def write_config(path: Path, port: int, n: int, many: bool) -> None:
    lines = ["interval = 60", "workers = 8", ""]
    for i in range(n):
        url = f"https://{address(i)}:{port}/p{i:04d}" if many else f"https://127.0.0.1:{port}/p{i:04d}"
        lines += ["[[providers]]", f'name = "P{i:04d}"', f'url = "{url}"', 'format = "statuspage"', ""]
    path.write_text("\n".join(lines))


def run(work: Path, server, port: int, n: int, many: bool, start: float, window: float, label: str,
        tracker: list[str], env: dict) -> dict:
    tag = label.replace(" ", "-").replace("/", "-")
    cfg, db = work / f"{tag}.toml", work / f"{tag}.db"
    write_config(cfg, port, n, many)
    server.send("stats")
    before_start = server.recv()
    t0 = time.monotonic()
    with open(work / f"{tag}.out", "wb") as out:
        proc = subprocess.Popen(tracker + ["run", "--config", str(cfg), "--db", str(db), "--log-format", "json"],
                                stdout=out, env=env)
    try:
        time.sleep(max(0.0, start - (time.monotonic() - t0)))
        cpu0, _, _ = proc_sample(proc.pid)
        server.send("stats")
        s0 = server.recv()
        w0 = time.monotonic()
        time.sleep(window)
        cpu1, rss, _ = proc_sample(proc.pid)
        server.send("stats")
        s1 = server.recv()
        wall = time.monotonic() - w0
        code, _ = stop(proc)
    finally:
        kill(proc)
    d = {k: s1[k] - s0[k] for k in s1}
    first = s0["requests"] - before_start["requests"]
    polls = d["requests"]
    cpu = cpu1 - cpu0
    row = {
        "label": label, "polls": polls, "first_cycle": first,
        "ms": cpu / polls * 1000 if polls else float("nan"), "core": cpu / wall * 100,
        "new": d["connections"] / polls if polls else float("nan"),
        "resumed": d["resumed"] / d["connections"] if d["connections"] else 0.0,
        "rss": rss, "exit": code,
    }
    print(f"{label}: {polls} polls in {wall:.0f} s, CPU {cpu:.2f} s = {row['ms']:.2f} ms/poll "
          f"({row['core']:.2f} % of a core), {d['connections']} new connections ({row['new']:.3f}/poll, "
          f"{d['resumed']} resumed), VmRSS {rss:.0f} MB, exit {code}", flush=True)
    return row


BARE = """
import os, resource, sys, time, requests
urls, window = sys.argv[2:], float(sys.argv[1])
s = requests.Session()
tags = {u: s.get(u).headers["ETag"] for u in urls}  # the first cycle: every page in full
pause = window / len(urls)
t0 = time.process_time()
for u in urls:
    time.sleep(pause)  # spread out as the daemon's polls are
    assert s.get(u, headers={"If-None-Match": tags[u]}).status_code == 304
print((time.process_time() - t0) / len(urls) * 1000)
"""


def bare(port: int, n: int, many: bool, window: float, bundle: Path, label: str) -> dict:
    """A bare `requests.Session.get` of each page, conditional (answered 304), one Session, the
    polls spread over `window` as the daemon's are: the floor a poll is compared with."""
    urls = [f"https://{address(i) if many else '127.0.0.1'}:{port}/p{i:04d}/api/v2/incidents.json" for i in range(n)]
    out = subprocess.run([sys.executable, "-c", BARE, str(window), *urls], capture_output=True, text=True,
                         env={**os.environ, "REQUESTS_CA_BUNDLE": str(bundle)}, timeout=window * 3 + 120)
    ms = float(out.stdout.strip() or "nan")
    print(f"{label}: {ms:.2f} ms/poll{'' if out.returncode == 0 else ' ' + out.stderr[-300:]}", flush=True)
    return {"label": label, "polls": n, "first_cycle": n, "ms": ms, "core": float("nan"), "new": float("nan"),
            "resumed": float("nan"), "rss": float("nan"), "exit": out.returncode}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--providers", type=int, default=300)
    ap.add_argument("--hosts", default="one,many", help="one, many, or one,many")
    ap.add_argument("--start", type=float, default=75.0, help="seconds after start the window opens")
    ap.add_argument("--window", type=float, default=60.0)
    ap.add_argument("--idle-close", type=float, default=300.0, help="the server closes idle connections after this")
    ap.add_argument("--announce", action="store_true", help="the server sends Keep-Alive: timeout=N")
    ap.add_argument("--resumption", default="on", choices=["on", "off", "both"])
    ap.add_argument("--old-tree", help="a checkout (tracker/ with migrations/ inside) to measure beside")
    ap.add_argument("--bare", action="store_true",
                    help="also a bare requests.Session.get of each page (304), spread over the window")
    args = ap.parse_args()

    trees = [("now", TRACKER, dict(os.environ))]
    if args.old_tree:
        cmd, env = old_tree(args.old_tree)
        trees.append(("old", cmd, env))
    for _, _, env in trees:
        byte_compile(env)
    work = Path(tempfile.mkdtemp(prefix="bench-hosts-"))
    certs = work / "certs"
    certs.mkdir()
    t = time.monotonic()
    bundle = make_certs(args.providers, certs)
    print(f"{args.providers + 1} certificates in {time.monotonic() - t:.1f} s; idle close {args.idle_close:g} s"
          f"{' (announced)' if args.announce else ''}", flush=True)
    rows = []
    for resumption in ([True, False] if args.resumption == "both" else [args.resumption == "on"]):
        parent, child = mp.Pipe()
        server = mp.Process(target=serve, args=(args.providers, certs, child, args.idle_close, args.announce,
                                                resumption), daemon=True)
        server.start()
        port = parent.recv()
        try:
            for hosts in args.hosts.split(","):
                where = f"{'1 host' if hosts == 'one' else f'{args.providers} hosts'}"
                for name, cmd, env in trees:
                    label = f"{name}, {args.providers} providers on {where}{'' if resumption else ', no resumption'}"
                    rows.append(run(work, parent, port, args.providers, hosts == "many", args.start, args.window,
                                    label, cmd, {**env, "REQUESTS_CA_BUNDLE": str(bundle)}))
                if args.bare:
                    rows.append(bare(port, args.providers, hosts == "many", args.window, bundle,
                                     f"bare requests.Session.get, {args.providers} pages on {where}"))
        finally:
            parent.send("stop")
            server.join(10)
            if server.is_alive():
                server.kill()
    print()
    print("| run | CPU per poll | % of a core | new connections per poll | resumed | VmRSS |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['label']} | {r['ms']:.2f} ms | {r['core']:.2f} % | {r['new']:.3f} | {r['resumed'] * 100:.0f} % "
              f"| {r['rss']:.0f} MB |")


if __name__ == "__main__":
    main()
