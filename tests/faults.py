"""The fault matrix: one `tracker run` daemon polls a healthy provider beside one provider per
fault of statusserver.FAULTS. Used by tests/test_faults.py (which asserts) and by
tests/benchmarks/fault_matrix.py (which prints the figures)."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import Tracker, write_config
from pages import all_updates, cut, load
from statusserver import FAULTS, StatusServer

GITHUB = "github-incidents-2026-07-31.json"
T0 = "2026-07-25T09:45:00.000Z"  # the pages at first contact
T1 = "2026-07-29T16:00:00.000Z"  # what they publish while faulty (15 updates later)
FAULT_SECONDS = 5.0


@dataclass
class Outcome:
    mode: str
    errors: list[str] = field(default_factory=list)  # poll_failed texts
    failed_records: int = 0
    recovered_after: float | None = None  # seconds from fault cleared to provider_recovered
    announced: list[tuple[str, str]] = field(default_factory=list)
    expected: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class MatrixResult:
    outcomes: dict[str, Outcome]
    healthy_worst_gap: float  # the longest pause between two polls of the healthy provider
    healthy_announced: list[tuple[str, str]]
    healthy_expected: list[tuple[str, str]]
    exit_code: int
    stderr: str
    seconds: float


def run_matrix(workdir: Path, modes: list[str] | None = None, interval: float = 1.0) -> MatrixResult:
    modes = modes or list(FAULTS)
    payload = load(GITHUB)
    expected = [(i, u) for at, i, u in all_updates(payload) if T0 < at <= T1]
    started = time.monotonic()
    with StatusServer() as srv:
        routes = {m: srv.route(f"/{m}/api/v2/incidents.json", cut(payload, T0)) for m in ["healthy", *modes]}
        config = write_config(
            workdir / "faults.toml",
            [{"name": m, "url": f"{srv.base}/{m}"} for m in routes],
            interval=interval, timeout=2, workers=8,
        )
        tracker = Tracker(config, workdir / "faults.db")
        proc = tracker.start()
        records: list[tuple[float, dict[str, Any]]] = []

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                try:
                    records.append((time.monotonic(), json.loads(line)))
                except ValueError:
                    pass

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            time.sleep(2.5)  # first contact everywhere
            for m in modes:
                routes[m].set_json(cut(payload, T1))  # published meanwhile, served only later
                routes[m].fault = m
            routes["healthy"].set_json(cut(payload, T1))
            time.sleep(FAULT_SECONDS)
            cleared = time.monotonic()
            for m in modes:
                routes[m].fault = None
            deadline = cleared + 25
            while time.monotonic() < deadline:
                done = {r["provider_id"] for _, r in records if r.get("event") == "provider_recovered"}
                if set(modes) <= done:
                    break
                time.sleep(0.2)
            time.sleep(1.5)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            reader.join(timeout=5)
        stderr = proc.stderr.read() if proc.stderr else ""
        healthy_times = routes["healthy"].times

    outcomes = {m: Outcome(m, expected=expected) for m in modes}
    healthy_announced = []
    for at, r in records:
        pid = r.get("provider_id")
        if r.get("event") == "incident_update":
            key = (r["incident_id"], r["update_id"])
            if pid == "healthy":
                healthy_announced.append(key)
            elif pid in outcomes:
                outcomes[pid].announced.append(key)
        elif r.get("event") == "poll_failed" and pid in outcomes:
            outcomes[pid].failed_records += 1
            outcomes[pid].errors.append(r["error"])
        elif r.get("event") == "provider_recovered" and pid in outcomes:
            outcomes[pid].recovered_after = round(at - cleared, 1)
    # First contact announced the one open incident's first update on every page.
    first = [(i, u) for at, i, u in all_updates(cut(payload, T0)) if i == "vv9vvksmj4s9"]
    for o in outcomes.values():
        o.announced = [k for k in o.announced if k not in first]
    healthy_announced = [k for k in healthy_announced if k not in first]
    gaps = [b - a for a, b in zip(healthy_times, healthy_times[1:])]
    return MatrixResult(
        outcomes=outcomes,
        healthy_worst_gap=round(max(gaps), 2) if gaps else float("inf"),
        healthy_announced=healthy_announced,
        healthy_expected=expected,
        exit_code=proc.returncode,
        stderr=stderr,
        seconds=round(time.monotonic() - started, 1),
    )
