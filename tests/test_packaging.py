"""The installed package carries its SQL migrations: build a wheel, install it (not editable)
into a directory away from the checkout, and migrate a fresh database with it."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_installs_the_migrations_and_runs_against_a_fresh_database(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(dist), str(ROOT)],
        check=True, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    # The distribution is statuspage-tracker (`tracker` on PyPI is someone else's); the import
    # package and the console script are still `tracker`.
    (wheel,) = dist.glob("statuspage_tracker-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    assert "\nName: statuspage-tracker\n" in zipfile.ZipFile(wheel).read(metadata).decode()
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "tracker = tracker.cli:cli" in zipfile.ZipFile(wheel).read(entry_points).decode()
    assert {n.split("/")[0] for n in names} == {"tracker", metadata.split("/")[0]}
    assert {f"tracker/migrations/{f.name}" for f in (ROOT / "migrations").glob("*.sql")} <= set(names)
    assert "tracker/migrations/__init__.py" in names
    assert "tracker/catalog.csv" in names

    # Install the wheel alone into a directory of its own and run it from there, away from
    # the checkout: the runtime dependencies come from this interpreter's site-packages.
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(target),
                    str(wheel)], check=True, capture_output=True, timeout=300, cwd=tmp_path)
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run(
        [sys.executable, "-c", "import tracker.migrations as m; print(m.__file__)"],
        check=True, capture_output=True, text=True, cwd=tmp_path, env=env,
    ).stdout.strip()
    assert where.startswith(str(target)), where
    tracker = [sys.executable, "-m", "tracker"]

    db = tmp_path / "fresh" / "tracker.db"
    p = subprocess.run([*tracker, "db", "migrate", "--create", "--db", str(db)],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr
    shipped = sorted(f.name for f in (ROOT / "migrations").glob("*.sql"))
    assert p.stdout.splitlines()[:-1] == [f"Applied {name}" for name in shipped]
    p = subprocess.run([*tracker, "incidents", "--db", str(db)],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert p.returncode == 0 and "No incidents recorded yet." in p.stderr
