"""A full disk under a running daemon: a clear error record, no crash, nothing lost once
space returns. The database lives on a 4 MiB tmpfs mounted in a private mount namespace
(root only; skipped elsewhere)."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
import time

import pytest
from conftest import parse_lines, tracker_command, updates_of, write_config
from pages import all_updates, cut, load

T0 = "2026-07-25T09:45:00.000Z"
T1 = "2026-07-29T16:00:00.000Z"


def _can_unshare() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _can_unshare(), reason="needs root and unshare --mount (a private tmpfs)")
def test_disk_full_is_reported_and_nothing_is_lost(server, tmp_path):
    payload = load("github-incidents-2026-07-31.json")
    route = server.route("/gh/api/v2/incidents.json", cut(payload, T0))
    config = write_config(tmp_path / "t.toml", [{"name": "GitHub", "url": f"{server.base}/gh"}], interval=1)
    disk = tmp_path / "disk"
    disk.mkdir()
    cmd = " ".join(tracker_command())
    script = textwrap.dedent(f"""\
        set -u
        mount -t tmpfs -o size=4m tmpfs {disk}
        {cmd} run --config {config} --db {disk}/t.db --log-format json > {tmp_path}/out 2> {tmp_path}/err &
        pid=$!
        sleep 2.5                                              # first contact recorded
        dd if=/dev/zero of={disk}/filler bs=16k 2>/dev/null    # fill every byte left
        touch {tmp_path}/full
        sleep 4                                                # polls meanwhile cannot write
        rm {disk}/filler
        sleep 3                                                # room again: recorded and emitted
        kill -TERM $pid
        wait $pid
        echo $? > {tmp_path}/rc
    """)
    proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "bash", "-c", script])
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "full").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        route.set_json(cut(payload, T1))  # news while the disk is full
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (tmp_path / "rc").read_text().strip() == "0", (tmp_path / "err").read_text()
    records = parse_lines((tmp_path / "out").read_text())
    failed = [r for r in records if r["event"] == "store_failed"]
    assert failed and failed[0]["level"] == "error" and "full" in failed[0]["error"]
    assert len(failed) == 1  # at most once a minute
    announced = [(r["incident_id"], r["update_id"]) for r in updates_of(records)]
    first = [(i, u) for at, i, u in all_updates(cut(payload, T0)) if i == "vv9vvksmj4s9"]
    assert announced == first + [(i, u) for at, i, u in all_updates(payload) if T0 < at <= T1]
    assert "Traceback" not in (tmp_path / "err").read_text()
