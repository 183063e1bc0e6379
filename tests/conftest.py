"""Shared fixtures. Every test runs with TRACKER_* variables removed and HOME/XDG paths
inside tmp_path, so nothing reads the developer's config or writes outside the test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import pgserver  # noqa: E402
from statusserver import StatusServer  # noqa: E402


def _needs_postgres(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return ("pg" in getattr(item, "fixturenames", ()) or item.path.name == "test_postgres.py"
            or (callspec is not None and callspec.params.get("db") == "postgresql"))


def pytest_report_header(config: pytest.Config) -> str:
    return f"postgresql: {pgserver.unavailable() or pgserver.binaries()}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Where no PostgreSQL can be had, its tests are left out and the summary says why in
    one line (instead of a skip line per test)."""
    if pgserver.unavailable() is None:
        return
    kept, left_out = [], []
    for item in items:
        (left_out if _needs_postgres(item) else kept).append(item)
    if left_out:
        items[:] = kept
        config.hook.pytest_deselected(items=left_out)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    why = pgserver.unavailable()
    if why:
        terminalreporter.write_line(why, yellow=True)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TRACKER_") or name in (
            "STATE_DIRECTORY", "NOTIFY_SOCKET", "JOURNAL_STREAM", "WATCHDOG_USEC", "WATCHDOG_PID",
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "home" / ".local" / "state"))


@pytest.fixture
def server():
    with StatusServer() as srv:
        yield srv


@pytest.fixture(scope="session")
def pg():
    """A PostgreSQL server of this test process's own (tests/pgserver.py); where none can be
    had, the tests that need it were left out at collection."""
    srv = pgserver.PgServer()
    yield srv
    srv.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path: Path):
    """Where a store test's database is, on each engine: a new SQLite file, or a new empty
    PostgreSQL database (its URL carries the password, as a `database` setting may)."""
    if request.param == "sqlite":
        return tmp_path / "t.db"
    return request.getfixturevalue("pg").database()


def tracker_command() -> list[str]:
    """The installed console script beside this interpreter (what a user runs)."""
    script = Path(sys.executable).with_name("tracker")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tracker"]


def write_config(path: Path, providers: list[dict[str, Any]], notify: Sequence[dict[str, Any]] = (),
                 **top: Any) -> Path:
    lines = [f"{k} = {json.dumps(v)}" for k, v in top.items()]
    for table, items in (("providers", providers), ("notify", notify)):
        for item in items:
            lines.append(f"[[{table}]]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in item.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def parse_lines(stdout: str) -> list[dict[str, Any]]:
    """Every stdout line must be one JSON object."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def updates_of(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["event"] == "incident_update"]


class Tracker:
    """Runs the real `tracker` command in subprocesses against one config and database."""

    def __init__(self, config: Path, db: Path):
        self.config = config
        self.db = db

    def args(self, *extra: str) -> list[str]:
        return [*tracker_command(), *extra, "--config", str(self.config), "--db", str(self.db),
                "--log-format", "json"]

    def once(self, *extra: str, timeout: float = 60) -> tuple[int, list[dict[str, Any]], str]:
        p = subprocess.run(self.args("run", "--once", *extra), capture_output=True, text=True, timeout=timeout)
        return p.returncode, parse_lines(p.stdout), p.stderr

    def start(self, *extra: str) -> subprocess.Popen:
        return subprocess.Popen(self.args("run", *extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    @staticmethod
    def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15) -> tuple[int, list[dict], str, float]:
        started = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, parse_lines(out), err, time.monotonic() - started
