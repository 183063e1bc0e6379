"""Benchmark `tracker run` against many local Statuspage providers. Prints figures, asserts nothing.

    python tests/benchmarks/bench_run.py --providers 200,1000
    python tests/benchmarks/bench_run.py --providers 200 --skip-daemon --profile

A stdlib HTTP server in a separate process (its CPU is not counted) serves every provider
`/pNNNN/api/v2/incidents.json` with the real GitHub payload (332 KB, 50 incidents) and a
strong ETag, answering 304 to a matching If-None-Match. Scenarios:
  cold    fresh database, `tracker run --once` (every page fetched, parsed, stored)
  304     `tracker run --once` again on the same database (every answer 304)
  daemon  fresh database, `tracker run` with interval 60: after its first (cold) cycle,
          CPU and RSS over the next --daemon-seconds (from /proc), then SIGTERM.
  steady  the steady minute users pay for: `tracker run` with interval 60, CPU sampled from
          /proc/<pid>/stat at --steady-from and --steady-to seconds after start (after the
          first cycle; every answer then is a 304), divided by the polls the server answered
          in between: the cost of one poll, all included (hand-off, request, bookkeeping, loop).
  idle    `tracker run` with interval 3600: after the first cycle nothing is due; CPU over
          --idle-seconds is what the loop costs doing nothing.
--old-tree DIR runs another checkout (e.g. `git archive <commit> tracker migrations`, with
migrations/ moved into tracker/) through PYTHONPATH, for a before/after table in one run.
Not collected by pytest (its name does not start with test_).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import pstats
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "github-incidents-2026-07-31.json"
TICK = os.sysconf("SC_CLK_TCK")
_exe = Path(sys.executable).with_name("tracker")
TRACKER = [str(_exe)] if _exe.exists() else [sys.executable, "-m", "tracker"]


# -- the server (runs in its own process) ---------------------------------------------------

def serve(n: int, conn, fixture: str | Path = FIXTURE) -> None:
    body = Path(fixture).read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    paths = {f"/p{i:04d}/api/v2/incidents.json" for i in range(n)}
    stats = {"requests": 0, "200": 0, "304": 0, "404": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stalls

        def log_message(self, *args) -> None:
            pass

        def _send(self, status: int, payload: bytes, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            if status in (200, 304):
                self.send_header("ETag", etag)
            self.end_headers()
            if payload:
                self.wfile.write(payload)

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path == "/_stats":  # not counted
                self._send(200, json.dumps(stats).encode())
                return
            stats["requests"] += 1  # GIL-atomic enough for a sanity count
            if path not in paths:
                stats["404"] += 1
                self._send(404, b"not found", "text/plain")
            elif self.headers.get("If-None-Match") == etag:
                stats["304"] += 1
                self._send(304, b"")
            else:
                stats["200"] += 1
                self._send(200, body)

    class Server(ThreadingHTTPServer):
        request_queue_size = 1024
        daemon_threads = True

        def handle_error(self, request, client_address) -> None:
            pass  # a client gone at the end of a run (connection reset) is not news

    httpd = Server(("127.0.0.1", 0), Handler)
    conn.send(httpd.server_address[1])
    httpd.serve_forever()


def server_stats(port: int, since: dict | None = None) -> dict:
    """The server's counters, minus `since` if given."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stats", timeout=10) as r:
        now = json.loads(r.read())
    return {k: v - (since or {}).get(k, 0) for k, v in now.items()}


# -- running tracker ------------------------------------------------------------------------

def steady(work: Path, port: int, n: int, start: float, end: float, interval: int = 60,
           name: str = "steady", tracker: list[str] | None = None, env: dict | None = None) -> dict:
    """CPU of a running daemon between `start` and `end` seconds after it started."""
    tag = name.replace(" ", "-")
    cfg, db, out = work / f"{tag}.toml", work / f"{tag}.db", work / f"{tag}.out"
    write_config(cfg, port, n, interval=interval)
    t0 = time.monotonic()
    with open(out, "wb") as f:
        proc = subprocess.Popen((tracker or TRACKER) + ["run", "--config", str(cfg), "--db", str(db),
                                                        "--log-format", "json"], stdout=f, env=env)
    try:
        time.sleep(max(0.0, start - (time.monotonic() - t0)))
        cpu0, rss0, _ = proc_sample(proc.pid)
        cs0 = switches(proc.pid)
        s0, w0 = server_stats(port), time.monotonic()
        time.sleep(max(0.0, end - (time.monotonic() - t0)))
        cpu1, rss1, hwm = proc_sample(proc.pid)
        cs = switches(proc.pid) - cs0
        window, wall = server_stats(port, s0), time.monotonic() - w0
        code, ru = stop(proc)
    finally:
        kill(proc)
    cpu = cpu1 - cpu0
    polls = window["requests"]
    per_poll = f"{cpu / polls * 1000:.2f} ms/poll" if polls else "no polls"
    print(f"{name}: {n} providers, window {start:g}-{end:g} s: CPU {cpu:.2f} s = {cpu / wall * 100:.2f} % of a "
          f"core, {polls} polls ({window['304']} answered 304), {per_poll}, {cs} context switches; "
          f"VmRSS {rss1:.0f} MB")
    return {"scenario": f"{name} ({per_poll}, {cpu / wall * 100:.2f} % of a core)", "n": n, "wall": wall,
            "cpu": cpu, "rss": rss1, "counts": f"{polls} polls in the window", "exit": code,
            "lines": len(records(out)), "server": window}


def old_tree(path: str) -> tuple[list[str], dict]:
    """Command and environment that run the checkout at `path` instead of the installed tracker."""
    # PYTHONSAFEPATH: `python -m` would otherwise put the current directory first on the path,
    # and run from a checkout it would import that checkout's tracker instead of `path`'s.
    return [sys.executable, "-m", "tracker"], {**os.environ, "PYTHONPATH": path, "PYTHONSAFEPATH": "1"}


def byte_compile(env: dict | None = None) -> str:
    """Byte-compile the tracker package a run with `env` imports, as `pip install .` does:
    measured without .pyc files (PYTHONDONTWRITEBYTECODE, an editable install), every start
    would compile tracker's modules from source first (about 0.1 s here), which an installed
    tracker never does. Returns the package's directory."""
    where = subprocess.run([sys.executable, "-c", "import os, tracker; print(os.path.dirname(tracker.__file__))"],
                           env=env, capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run([sys.executable, "-m", "compileall", "-q", where], check=True, stdout=subprocess.DEVNULL)
    return where


def write_config(path: Path, port: int, n: int, interval: int = 60) -> None:
    lines = [f"interval = {interval}", "workers = 8", ""]
    for i in range(n):
        lines += ["[[providers]]", f'name = "P{i:04d}"', f'url = "http://127.0.0.1:{port}/p{i:04d}"', ""]
    path.write_text("\n".join(lines))


def stop(proc: subprocess.Popen) -> tuple[int, object]:
    """SIGTERM a running tracker and wait for it (killed past 60 s): (exit code, its rusage)."""
    proc.send_signal(signal.SIGTERM)
    code, ru = wait_child(proc.pid, 60)
    proc.returncode = code
    return code, ru


def kill(proc: subprocess.Popen) -> None:
    """In a `finally`: a tracker still running (the measurement failed) is killed."""
    if proc.returncode is None:
        proc.kill()
        proc.wait(10)


def wait_child(pid: int, timeout: float) -> tuple[int, object]:
    """os.wait4 with a deadline: (exit code, rusage of exactly that child). Kills on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        got, status, ru = os.wait4(pid, os.WNOHANG)
        if got:
            return os.waitstatus_to_exitcode(status), ru
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            _, status, ru = os.wait4(pid, 0)
            print(f"!! pid {pid} killed after {timeout:g} s", file=sys.stderr)
            return os.waitstatus_to_exitcode(status), ru
        time.sleep(0.02)


def records(path: Path) -> list[dict]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append({"event": "<not json>", "line": line})
    return out


def summarize(recs: list[dict], final: str) -> str:
    done = [r for r in recs if r.get("event") == final]
    if not done:
        return "no " + final
    d = done[-1]
    return f"{d.get('polls')}/{d.get('failed')}/{d.get('new')}"


def run_once(name: str, work: Path, cfg: Path, db: Path, port: int, n: int, timeout: float,
             prefix: list[str] | None = None, env: dict | None = None) -> dict:
    out = work / f"{name.replace(' ', '-').replace('(', '').replace(')', '')}-{n}.out"
    before = server_stats(port)
    t0 = time.monotonic()
    with open(out, "wb") as f:
        proc = subprocess.Popen((prefix or TRACKER) + ["run", "--once", "--config", str(cfg), "--db", str(db),
                                                       "--log-format", "json"], stdout=f, env=env)
    code, ru = wait_child(proc.pid, timeout)
    proc.returncode = code  # reaped by wait4, tell Popen
    wall = time.monotonic() - t0
    recs = records(out)
    failed = [r for r in recs if r.get("event") == "poll_failed"]
    if failed:
        print(f"!! {name} {n}: {len(failed)} failed polls, e.g. {failed[0].get('error')}", file=sys.stderr)
    return {"scenario": name, "n": n, "wall": wall, "cpu": ru.ru_utime + ru.ru_stime,
            "rss": ru.ru_maxrss / 1024, "counts": summarize(recs, "run_complete"), "exit": code,
            "lines": len(recs), "server": server_stats(port, before)}


def proc_sample(pid: int) -> tuple[float, float, float]:
    """(CPU seconds, VmRSS MB, VmHWM MB) of a live process, all threads."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15)
    mem = {k: int(v.split()[0]) / 1024 for k, v in
           (line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
           if k in ("VmRSS", "VmHWM")}
    return cpu, mem["VmRSS"], mem["VmHWM"]


def switches(pid: int) -> int:
    """Context switches (voluntary and not) of every thread of a live process so far."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            lines = (task / "status").read_text().splitlines()
        except OSError:  # the thread ended meanwhile
            continue
        total += sum(int(line.split()[1]) for line in lines
                     if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")))
    return total


def daemon(work: Path, port: int, n: int, seconds: float) -> dict:
    cfg, db, out = work / "daemon.toml", work / "daemon.db", work / "daemon.out"
    write_config(cfg, port, n, interval=60)
    start_stats = server_stats(port)
    t0 = time.monotonic()
    with open(out, "wb") as f:
        proc = subprocess.Popen(TRACKER + ["run", "--config", str(cfg), "--db", str(db), "--log-format", "json"],
                                stdout=f)
    try:
        # The cold cycle is over when every provider has logged first_contact or poll_failed.
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            done = sum(r.get("event") in ("first_contact", "poll_failed") for r in records(out))
            if done >= n:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"daemon cold cycle did not finish (exit {proc.returncode})")
        cold, cold_stats = time.monotonic() - t0, server_stats(port, start_stats)
        cpu0, rss0, _ = proc_sample(proc.pid)
        s0 = server_stats(port)
        time.sleep(seconds)
        cpu1, rss1, hwm = proc_sample(proc.pid)
        window = server_stats(port, s0)
        proc.send_signal(signal.SIGTERM)
        t1 = time.monotonic()
        code, ru = wait_child(proc.pid, 60)
        proc.returncode = code
        stop = time.monotonic() - t1
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait(10)
    recs = records(out)
    print(f"daemon: cold cycle {cold:.1f} s (server saw {cold_stats}); measured {seconds:g} s: "
          f"CPU {cpu1 - cpu0:.2f} s, VmRSS {rss0:.0f} -> {rss1:.0f} MB, VmHWM {hwm:.0f} MB; "
          f"SIGTERM -> exit {code} in {stop:.2f} s; whole life: CPU {ru.ru_utime + ru.ru_stime:.1f} s, "
          f"maxrss {ru.ru_maxrss / 1024:.0f} MB, {len(recs)} lines")
    return {"scenario": f"daemon {seconds:g}s after cold", "n": n, "wall": seconds, "cpu": cpu1 - cpu0,
            "rss": hwm, "counts": summarize(recs, "tracker_stopped") + " (whole life)", "exit": code,
            "lines": len(recs), "server": window}


def profile(work: Path, port: int, n: int, timeout: float) -> None:
    cfg, db, prof = work / "prof.toml", work / "prof.db", work / "cold.prof"
    write_config(cfg, port, n)
    r = run_once("cold (cProfile)", work, cfg, db, port, n, timeout,
                 prefix=[sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "tracker"])
    print(f"\ncProfile of cold {n}, wall {r['wall']:.1f} s, exit {r['exit']}, {r['counts']}. Main thread only "
          "(workers fetch and parse, unprofiled); its sqlite times include waits for the GIL.")
    pstats.Stats(str(prof)).sort_stats("cumulative").print_stats(25)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--providers", default="200,1000", help="comma-separated provider counts")
    ap.add_argument("--daemon-providers", type=int, default=1000)
    ap.add_argument("--daemon-seconds", type=float, default=60.0)
    ap.add_argument("--skip-daemon", action="store_true")
    ap.add_argument("--steady", action="store_true", help="measure the steady window and idle (see above)")
    ap.add_argument("--steady-from", type=float, default=80.0)
    ap.add_argument("--steady-to", type=float, default=200.0)
    ap.add_argument("--idle-seconds", type=float, default=60.0)
    ap.add_argument("--old-tree", help="also measure this checkout (PYTHONPATH): cold, 304, and with --steady")
    ap.add_argument("--profile", action="store_true", help="also run cold 1000 under cProfile")
    ap.add_argument("--timeout", type=float, default=900.0, help="limit for each tracker run")
    ap.add_argument("--repeat", type=int, default=1,
                    help="cold runs per provider count (alternating with the old tree's): figures vary by "
                         "a third from run to run on a VM, so compare several")
    ap.add_argument("--payload", default=str(FIXTURE),
                    help="the page every provider serves (default: GitHub's 332 KB incidents.json; "
                         "tests/fixtures/dropbox-incidents-2024-01-03.json is a real 166 KiB one)")
    args = ap.parse_args()
    counts = [int(x) for x in args.providers.split(",") if x.strip()]
    biggest = max(counts + [args.daemon_providers, 1000 if args.profile else 0])

    parent, child = mp.Pipe()
    server = mp.Process(target=serve, args=(biggest, child, args.payload), daemon=True)
    server.start()
    results = []
    try:
        if not parent.poll(30):
            raise RuntimeError("benchmark server did not start")
        port = parent.recv()
        with tempfile.TemporaryDirectory(prefix="tracker-bench-") as tmp:
            work = Path(tmp)
            trees = [("", TRACKER, None)]
            if args.old_tree:
                trees.append((" (old tree)", *old_tree(args.old_tree)))
            for _label, _command, env in trees:
                print(f"byte-compiled {byte_compile(env)}", file=sys.stderr)
            for n in counts:
                for rep in range(args.repeat):
                    for t, (label, command, env) in enumerate(trees):
                        write_config(work / f"run-{n}-{t}-{rep}.toml", port, n)
                        results.append(run_once("cold" + label, work, work / f"run-{n}-{t}-{rep}.toml",
                                                work / f"run-{n}-{t}-{rep}.db", port, n, args.timeout,
                                                prefix=command, env=env))
                for t, (label, command, env) in enumerate(trees):  # again on the first cold run's database
                    results.append(run_once("304" + label, work, work / f"run-{n}-{t}-0.toml",
                                            work / f"run-{n}-{t}-0.db", port, n, args.timeout,
                                            prefix=command, env=env))
            if not args.skip_daemon:
                results.append(daemon(work, port, args.daemon_providers, args.daemon_seconds))
            if args.steady:
                for label, command, env in trees:
                    results.append(steady(work, port, args.daemon_providers, args.steady_from, args.steady_to,
                                          name="steady" + label, tracker=command, env=env))
                    idle_from = args.steady_from  # the first cycle is over by then
                    results.append(steady(work, port, args.daemon_providers, idle_from,
                                          idle_from + args.idle_seconds, interval=3600, name="idle" + label,
                                          tracker=command, env=env))
            if args.profile:
                profile(work, port, 1000, args.timeout)
    finally:
        server.kill()
        server.join(10)

    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip() or os.cpu_count()
    print(f"\nnproc {nproc}, Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, "
          f"tracker: {' '.join(TRACKER)}\n")
    print("| scenario | providers | wall s | CPU s | peak RSS MB | polls/failed/new | exit | lines "
          "| server requests (200/304/404) |")
    print("|---|---:|---:|---:|---:|---|---:|---:|---|")
    for r in results:
        s = r["server"]
        print(f"| {r['scenario']} | {r['n']} | {r['wall']:.1f} | {r['cpu']:.2f} | {r['rss']:.0f} | {r['counts']} "
              f"| {r['exit']} | {r['lines']} | {s['requests']} ({s['200']}/{s['304']}/{s['404']}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
