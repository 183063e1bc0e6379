"""systemd integration without systemd: a real AF_UNIX datagram socket stands in for the
service manager (NOTIFY_SOCKET) and for journald (its native socket); the unit files are
checked by systemd-analyze itself."""

from __future__ import annotations

import array
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import Tracker, parse_lines, tracker_command, updates_of, write_config
from pages import cut, load

from tracker.systemd import JournalSender, encode, status

ROOT = Path(__file__).resolve().parent.parent
T0 = "2026-07-25T09:45:00.000Z"
T1 = "2026-07-25T12:40:00.000Z"
HOSTILE = "Outage\nSTOPPING=1\nREADY=1\x1b[2J"


class Listener:
    """A datagram socket that collects what it receives, in a thread."""

    def __init__(self, address: str):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.2)
        self.datagrams: list[tuple[float, bytes, list[int]]] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        fds_size = socket.CMSG_LEN(16 * array.array("i").itemsize)
        while not self.done.is_set():
            try:
                data, ancdata, _, _ = self.sock.recvmsg(1 << 20, fds_size)
            except socket.timeout:
                continue
            except OSError:
                return
            fds: list[int] = []
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.extend(array.array("i", payload[: len(payload) - len(payload) % 4]))
            self.datagrams.append((time.monotonic(), data, fds))

    def messages(self) -> list[str]:
        return [d.decode() for _, d, _ in self.datagrams]

    def close(self) -> None:
        self.done.set()
        self.thread.join(timeout=2)
        self.sock.close()


def decode_journal(data: bytes) -> dict[str, str]:
    """The native protocol, read back: KEY=VALUE lines and KEY\\n<le64>VALUE\\n fields."""
    fields, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            i = nl + 1
        else:
            key = line
            (size,) = struct.unpack("<Q", data[nl + 1 : nl + 9])
            value = data[nl + 9 : nl + 9 + size]
            i = nl + 9 + size + 1
        fields[key.decode()] = value.decode()
    return fields


@pytest.fixture
def github_page(server, tmp_path):
    payload = load("github-incidents-2026-07-31.json")
    page = cut(payload, T0)
    for inc in page["incidents"]:
        if inc["status"] != "resolved":
            inc["name"] = HOSTILE  # untrusted text that would inject protocol fields
    route = server.route("/gh/api/v2/incidents.json", page)
    config = write_config(tmp_path / "t.toml", [{"name": "GitHub", "url": f"{server.base}/gh"}], interval=1)
    return payload, route, Tracker(config, tmp_path / "t.db")


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
@pytest.mark.slow
def test_notify_ready_status_watchdog_stopping(github_page, tmp_path, monkeypatch, abstract):
    payload, route, tracker = github_page
    if abstract:
        name = f"@tracker-test-{os.getpid()}-{time.monotonic_ns()}"
        listener = Listener("\0" + name[1:])
    else:
        name = str(tmp_path / "notify.sock")
        listener = Listener(name)
    monkeypatch.setenv("NOTIFY_SOCKET", name)
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # a ping every 0.5 s
    proc = tracker.start()
    try:
        deadline = time.monotonic() + 10
        while not any("READY=1" in m for m in listener.messages()) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(2.5)
        signalled = time.monotonic()
        code, records, err, _ = Tracker.stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        time.sleep(0.2)
        listener.close()
    assert code == 0, err
    assert updates_of(records)  # the hostile incident was announced, as data
    lines = [(t, line) for t, d, _ in listener.datagrams for line in d.decode().split("\n")]
    keys = [line.split("=", 1)[0] for _, line in lines]
    assert set(keys) <= {"READY", "STATUS", "WATCHDOG", "STOPPING"}, keys
    assert keys.index("READY") < keys.index("STOPPING")
    # STOPPING only once, and only after SIGTERM: the title's "\nSTOPPING=1" never got through.
    assert [t >= signalled for t, line in lines if line.startswith("STOPPING=")] == [True]
    assert keys.count("READY") == 1
    statuses = [line for _, line in lines if line.startswith("STATUS=")]
    assert any("GitHub: Outage STOPPING=1 READY=1" in s for s in statuses), statuses
    assert all("\x1b" not in s and len(s) <= len("STATUS=") + 200 for s in statuses)
    pings = [t for t, line in lines if line == "WATCHDOG=1"]
    assert len(pings) >= 4  # ~every 0.5 s for ~2.5 s


def test_without_notify_socket_nothing_is_sent_and_it_runs(github_page):
    payload, route, tracker = github_page
    code, records, err = tracker.once()
    assert code == 0 and updates_of(records)


@pytest.mark.slow
def test_journal_target_sends_native_entries_with_tracker_fields(github_page, tmp_path, monkeypatch):
    payload, route, tracker = github_page
    listener = Listener(str(tmp_path / "journal.sock"))
    monkeypatch.setenv("TRACKER_JOURNAL_SOCKET", str(tmp_path / "journal.sock"))
    try:
        for page in (None, cut(payload, T1)):  # first contact (the hostile open incident), then news
            if page:
                route.set_json(page)
            p = subprocess.run(tracker.args("run", "--once", "--log-target", "journal"),
                               capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, p.stderr
            assert p.stdout == ""  # every record went to the journal
        time.sleep(0.3)
    finally:
        listener.close()
    entries = [decode_journal(d) for _, d, _ in listener.datagrams]
    updates = [e for e in entries if e.get("TRACKER_EVENT") == "incident_update"]
    assert len(updates) == 6  # the open incident's first update + the 5 published by T1
    for e in updates:
        record = json.loads(e["TRACKER_JSON"])
        assert e["PRIORITY"] == "6" and e["SYSLOG_IDENTIFIER"] == "tracker"
        assert e["TRACKER_PROVIDER_ID"] == "github" and e["TRACKER_EVENT_ID"] == record["event_id"]
        assert e["TRACKER_INCIDENT_ID"] == record["incident_id"]
        assert e["TRACKER_UPDATE_ID"] == record["update_id"] and e["TRACKER_STATUS"] == record["status"]
        assert json.loads(e["TRACKER_COMPONENTS"]) == record["components"]
        assert "MESSAGE_ID" in e
        assert "\n" not in e["MESSAGE"] and "\x1b" not in e["MESSAGE"]
        assert e["MESSAGE"].startswith("GitHub: ")
    # The hostile title arrives intact in its own field (newlines kept by the length-prefixed form).
    assert any(e["TRACKER_INCIDENT"] == HOSTILE for e in updates)
    started = [e for e in entries if e.get("TRACKER_EVENT") == "tracker_started"]
    assert started and started[0]["PRIORITY"] == "6"


def test_journal_target_falls_back_to_stdout_without_a_journal(github_page, tmp_path, monkeypatch):
    payload, route, tracker = github_page
    monkeypatch.setenv("TRACKER_JOURNAL_SOCKET", str(tmp_path / "absent.sock"))
    p = subprocess.run(tracker.args("run", "--once", "--log-target", "journal"),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    records = parse_lines(p.stdout)
    assert records[0]["event"] == "journal_unavailable" and records[0]["level"] == "warning"
    assert updates_of(records)


def test_large_record_goes_through_a_memfd(tmp_path):
    listener = Listener(str(tmp_path / "journal.sock"))
    try:
        JournalSender(str(tmp_path / "journal.sock")).send({"MESSAGE": "big", "TRACKER_BODY": "x" * 400_000})
        time.sleep(0.3)
    finally:
        listener.close()
    ((_, data, fds),) = listener.datagrams
    assert data == b"" and len(fds) == 1
    with os.fdopen(fds[0], "rb") as f:
        f.seek(0)  # the descriptor shares the sender's file offset (journald maps it instead)
        fields = decode_journal(f.read())
    assert fields["MESSAGE"] == "big" and len(fields["TRACKER_BODY"]) == 400_000


def test_encode_uses_the_length_form_for_newlines():
    assert encode({"A": "one line"}) == b"A=one line\n"
    assert encode({"B": "two\nlines"}) == b"B\n" + struct.pack("<Q", 9) + b"two\nlines\n"
    assert status("a\nSTOPPING=1\r\x1b[31mred") == "STATUS=a STOPPING=1 red"


@pytest.mark.slow
def test_priority_prefix_when_stdout_is_the_journal(github_page, tmp_path):
    payload, route, tracker = github_page
    out = tmp_path / "stdout"
    with open(out, "w") as f:
        st = os.fstat(f.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        route.fault = "500"
        subprocess.run(tracker.args("run", "--once"), stdout=f, env=env, timeout=60, check=True)
    lines = out.read_text().splitlines()
    assert lines[0].startswith('<6>{"event": "tracker_started"')
    failed = [line for line in lines if '"poll_failed"' in line]
    assert failed and all(line.startswith("<4>{") for line in failed)
    # Not the journal (another file): no prefix.
    p = subprocess.run(tracker.args("run", "--once"), capture_output=True, text=True, timeout=60,
                       env={**os.environ, "JOURNAL_STREAM": "1:1"})
    assert p.stdout.startswith("{")


@pytest.mark.slow
def test_sighup_reloads_providers_and_keeps_the_old_config_when_the_new_one_is_bad(server, tmp_path):
    payload = load("github-incidents-2026-07-31.json")
    a = server.route("/a/api/v2/incidents.json", cut(payload, T0))
    b = server.route("/b/api/v2/incidents.json", cut(payload, T0))
    config = tmp_path / "t.toml"
    write_config(config, [{"name": "A", "url": f"{server.base}/a"}], interval=1)
    tracker = Tracker(config, tmp_path / "t.db")
    proc = tracker.start()
    try:
        time.sleep(1.5)
        write_config(config, [{"name": "B", "url": f"{server.base}/b"}], interval=1)
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.5)
        a_after_reload, b_after_reload = a.requests, b.requests
        config.write_text("interval = 'often'\n")
        proc.send_signal(signal.SIGHUP)
        time.sleep(2.0)
    finally:
        code, records, err, _ = Tracker.stop(proc)
    assert code == 0, err
    reloaded = [r for r in records if r["event"] == "config_reloaded"]
    assert [(r["added"], r["removed"]) for r in reloaded] == [(["b"], ["a"])]
    assert b_after_reload >= 1 and b.requests > b_after_reload  # B polled, and still after the bad reload
    assert a.requests <= a_after_reload + 1  # A stopped (one poll may have been under way)
    failed = [r for r in records if r["event"] == "config_reload_failed"]
    assert len(failed) == 1 and failed[0]["level"] == "error" and "interval" in failed[0]["error"]
    assert {r["provider_id"] for r in updates_of(records)} == {"a", "b"}  # both first contacts


ANALYZE = shutil.which("systemd-analyze")


def _units_with_real_binary(tmp_path: Path) -> Path:
    """The shipped units, with ExecStart pointed at this machine's tracker (verify checks that
    the binary exists; the README installs it at /opt/tracker/venv/bin/tracker)."""
    real = " ".join(tracker_command())
    for unit in ("tracker.service", "tracker-once.service", "tracker-backfill.service", "tracker.timer"):
        text = (ROOT / "systemd" / unit).read_text()
        (tmp_path / unit).write_text(text.replace("/opt/tracker/venv/bin/tracker", real))
    return tmp_path


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
def test_units_verify_clean(tmp_path):
    d = _units_with_real_binary(tmp_path)
    p = subprocess.run([ANALYZE, "verify", "--man=no", "./tracker.service", "./tracker-once.service",
                        "./tracker-backfill.service", "./tracker.timer"], capture_output=True, text=True, cwd=d)
    assert p.returncode == 0 and p.stdout + p.stderr == "", p.stdout + p.stderr


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("unit", ["tracker.service", "tracker-once.service", "tracker-backfill.service"])
def test_units_score_1_1_or_better(tmp_path, unit):
    d = _units_with_real_binary(tmp_path)
    p = subprocess.run([ANALYZE, "security", "--offline=yes", "--threshold=11", f"./{unit}"],
                       capture_output=True, text=True, cwd=d)
    assert p.returncode == 0, p.stdout[-2000:]
    assert "Overall exposure level for" in p.stdout
    score = float(p.stdout.split("Overall exposure level for")[1].split(":")[1].split()[0])
    assert score <= 1.1
    # Not gamed: no allow-everything IP list, no RootDirectory= trick.
    text = (ROOT / "systemd" / unit).read_text()
    assert "IPAddressAllow=any" not in text and "RootDirectory=" not in text


def _settings(text: str, key: str) -> list[str]:
    """Every value of `key=` in a unit file's non-comment lines, split on whitespace."""
    return [v for line in text.splitlines() if line.startswith(f"{key}=") for v in line.split("=", 1)[1].split()]


@pytest.mark.parametrize("unit", ["tracker.service", "tracker-once.service", "tracker-backfill.service"])
def test_default_units_filter_no_addresses_so_dns_to_a_private_resolver_works(unit):
    # glibc sends DNS queries from tracker's own process to the nameserver of /etc/resolv.conf,
    # often private or link-local (DHCP's 10.x/192.168.x, AWS 169.254.169.253, GCP
    # 169.254.169.254): an IPAddressDeny= of those ranges breaks every lookup. The guard is the
    # opt-in ssrf-guard.conf; tests/test_systemd_boot.py shows both under real systemd.
    text = (ROOT / "systemd" / unit).read_text()
    assert _settings(text, "IPAddressDeny") == [] and _settings(text, "IPAddressAllow") == []
    assert _settings(text, "Documentation") == ["file:///opt/tracker/README.md"]


SSRF_GUARD = ROOT / "systemd" / "ssrf-guard.conf"


def test_ssrf_guard_denies_private_ranges_and_allows_the_resolved_stub():
    import ipaddress

    text = SSRF_GUARD.read_text()
    denied = [ipaddress.ip_network(v) for v in _settings(text, "IPAddressDeny")]
    allowed = [ipaddress.ip_network(v) for v in _settings(text, "IPAddressAllow")]
    for address in ("169.254.169.254", "10.1.2.3", "172.16.0.1", "192.168.1.1", "127.0.0.1", "0.0.0.0",
                    "100.64.0.1", "::1", "fd00:ec2::254", "fe80::1"):
        ip = ipaddress.ip_address(address)
        assert any(ip in n for n in denied) and not any(ip in n for n in allowed), address
    assert allowed == [ipaddress.ip_network("127.0.0.53/32")]
    for public in ("1.1.1.1", "151.101.1.1", "2606:4700::1"):
        ip = ipaddress.ip_address(public)
        assert not any(ip in n for n in denied if n.version == ip.version), public
    # The comments tell the admin what they must do, and where the file goes.
    assert "IPAddressAllow=" in text and "/etc/resolv.conf" in text
    assert "/etc/systemd/system/$u.service.d/ssrf-guard.conf" in text


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("unit", ["tracker.service", "tracker-once.service", "tracker-backfill.service"])
def test_units_with_the_ssrf_guard_verify_clean_and_score_the_same(tmp_path, unit):
    d = _units_with_real_binary(tmp_path)
    (d / f"{unit}.d").mkdir()
    (d / f"{unit}.d" / "ssrf-guard.conf").write_bytes(SSRF_GUARD.read_bytes())  # read beside the unit
    p = subprocess.run([ANALYZE, "verify", "--man=no", f"./{unit}"], capture_output=True, text=True, cwd=d)
    assert p.returncode == 0 and p.stdout + p.stderr == "", p.stdout + p.stderr
    p = subprocess.run([ANALYZE, "security", "--offline=yes", "--threshold=11", f"./{unit}"],
                       capture_output=True, text=True, cwd=d)
    assert p.returncode == 0 and p.stderr == "", p.stdout[-2000:] + p.stderr
    assert float(p.stdout.split("Overall exposure level for")[1].split(":")[1].split()[0]) <= 1.1


POSTGRES = ROOT / "systemd" / "postgres.conf"


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("unit", ["tracker.service", "tracker-once.service", "tracker-backfill.service"])
def test_units_with_the_pairs_database_verify_clean_and_keep_the_password_out_of_the_environment(tmp_path, unit):
    text = POSTGRES.read_text()
    env = " ".join(_settings(text, "Environment"))
    assert "TRACKER_DATABASE=postgresql://" in env and "PGPASSFILE=%d/pgpass" in env and "PGPASSWORD" not in env
    assert _settings(text, "LoadCredential") == ["pgpass:/etc/tracker/pgpass"]
    d = _units_with_real_binary(tmp_path)
    (d / f"{unit}.d").mkdir()
    (d / f"{unit}.d" / "postgres.conf").write_bytes(POSTGRES.read_bytes())
    p = subprocess.run([ANALYZE, "verify", "--man=no", f"./{unit}"], capture_output=True, text=True, cwd=d)
    assert p.returncode == 0 and p.stdout + p.stderr == "", p.stdout + p.stderr
    p = subprocess.run([ANALYZE, "security", "--offline=yes", "--threshold=11", f"./{unit}"],
                       capture_output=True, text=True, cwd=d)
    assert p.returncode == 0 and float(p.stdout.split("Overall exposure level for")[1].split(":")[1].split()[0]) <= 1.1


def test_units_name_the_exit_code_of_a_config_error():
    service = (ROOT / "systemd" / "tracker.service").read_text()
    assert "RestartPreventExitStatus=78" in service and "Restart=on-failure" in service
    assert "Type=notify" in service and "WatchdogSec=" in service and "StateDirectory=tracker" in service


def test_journal_target_writes_stdout_when_journald_goes_away(github_page, tmp_path, monkeypatch):
    payload, route, tracker = github_page
    sock = tmp_path / "journal.sock"
    listener = Listener(str(sock))
    listener.close()  # the socket file stays, nobody listens: sends are refused
    monkeypatch.setenv("TRACKER_JOURNAL_SOCKET", str(sock))
    p = subprocess.run(tracker.args("run", "--once", "--log-target", "journal"),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    records = parse_lines(p.stdout)
    assert records[0]["event"] == "tracker_started" and updates_of(records)
