"""A throwaway PostgreSQL server for the tests: `initdb` into a temporary directory, `pg_ctl
start` on a free port of 127.0.0.1, stopped (and the directory removed) at the end.

The binaries: $TRACKER_TEST_PG_BIN, else the newest /usr/lib/postgresql/*/bin (Debian's
`postgresql` package), else `pg_config --bindir`, else initdb on PATH. PostgreSQL refuses to
run as root, so when the suite runs as root the server runs as the `postgres` user. Password
authentication over TCP (scram-sha-256), like a real deployment: the tests give the password
in the URL or in PGPASSWORD.
"""

from __future__ import annotations

import functools
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PASSWORD = "s3cret-for-tests"
SUPERUSER = "postgres"


# Read once, at import: the tests themselves run with every TRACKER_* variable removed.
GIVEN = os.environ.get("TRACKER_TEST_PG_BIN")


@functools.lru_cache(maxsize=1)
def binaries() -> Path | None:
    """Where initdb and pg_ctl are, or None."""
    candidates = [Path(GIVEN)] if GIVEN else []
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                                           key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit()
                                           else 0, reverse=True)]
    if shutil.which("pg_config"):
        try:
            candidates.append(Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                                                  check=True).stdout.strip()))
        except (OSError, subprocess.CalledProcessError):
            pass
    if shutil.which("initdb"):
        candidates.append(Path(shutil.which("initdb")).parent)
    for c in candidates:
        if (c / "initdb").is_file() and (c / "pg_ctl").is_file():
            return c
    return None


@functools.lru_cache(maxsize=1)
def unavailable() -> str | None:
    """Why the PostgreSQL tests cannot run here (None: they can)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "PostgreSQL tests skipped: psycopg is not installed (pip install -e '.[test]')"
    if binaries() is None:
        return ("PostgreSQL tests skipped: no PostgreSQL server binaries (initdb, pg_ctl) found; "
                "install Debian's postgresql package or set TRACKER_TEST_PG_BIN")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "PostgreSQL tests skipped: running as root and there is no `postgres` user to run the server as"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    """One cluster; `database()` makes a new empty database and returns its URL."""

    _names = itertools.count(1)

    def __init__(self) -> None:
        self.bin = binaries()
        assert self.bin is not None
        self.dir = Path(tempfile.mkdtemp(prefix="tracker-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.as_user = None
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            self.as_user = entry.pw_uid, entry.pw_gid
            os.chown(self.dir, *self.as_user)
        pwfile = self.dir / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.as_user:
            os.chown(pwfile, *self.as_user)
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--pwfile", str(pwfile), "-E", "UTF8",
                  "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256")
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        kwargs = {"user": self.as_user[0], "group": self.as_user[1], "extra_groups": []} if self.as_user else {}
        p = subprocess.run([str(self.bin / tool), *args], capture_output=True, text=True, timeout=60, **kwargs)
        if p.returncode != 0:
            raise RuntimeError(f"{tool} failed: {p.stderr.strip() or p.stdout.strip()}")

    def start(self) -> None:
        # fsync off: a test database need not survive a power loss, and it saves seconds.
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-t", "30", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                  "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres", password: bool = True) -> str:
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql://{SUPERUSER}{secret}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            cur = conn.execute(statement)
            return cur.fetchall() if cur.description else []

    def database(self, password: bool = True) -> str:
        name = f"t{os.getpid()}_{next(self._names)}"
        self.sql(f"CREATE DATABASE {name} TEMPLATE template0")
        return self.url(name, password=password)

    def close(self) -> None:
        try:
            self.stop("immediate")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
