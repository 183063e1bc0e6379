"""Real systemd 252 as PID 1 in a throw-away namespace, running the real tracker.service.

The recipe is reliability.md §1.9: `unshare --mount --pid --fork --uts --ipc --net --cgroup`
over an overlay of the host root (every write lands in a tmpfs upper layer), a child cgroup so
the namespace's cgroup root is not the host's, and `/lib/systemd/systemd --system
--unit=trk.target`. systemctl and journalctl run inside through `nsenter -a`.

What runs inside:
  * systemd/tracker.service, copied unchanged into /run/systemd/system, plus a drop-in for what
    the namespace forces (no default dependencies; ordered after the page server) and a
    shorter WatchdogSec so the watchdog is observable in a short test;
  * /opt/tracker/venv: a venv of Debian's /usr/bin/python3 (the pyenv Python lives under /root,
    which ProtectHome=yes hides from the service) holding a copy of the tracker package and its
    dependencies, with a console-script launcher at /opt/tracker/venv/bin/tracker;
  * /etc/tracker/tracker.toml: one Statuspage provider, polled every 2 s BY NAME
    (http://status.example.test:8080/gh), served by
  * trk-http.service: tests/systemd_boot/pageserver.py on port 8080 of the namespace's own
    network (127.0.0.1, and later 127.0.0.2 and a private 10.255.0.1 that the opt-in
    systemd/ssrf-guard.conf must block), serving a directory of the host's tmp_path
    (bind-mounted), so the test changes the page from outside: GitHub's real capture cut at
    T0, then at T1, a 500 for a moment, then the next real update stretched past a datagram's
    size;
  * trk-dns.service: tests/systemd_boot/dnsserver.py, the namespace's only resolver, on the
    PRIVATE address 10.0.0.53 (a dummy interface, else the namespace's loopback), answering
    status.example.test with 127.0.0.1; the overlay's /etc/resolv.conf names it and nothing
    else, and nsswitch asks `files dns` only. So every poll first resolves the page's name
    through a resolver on a private address, from inside the unit's sandbox: what a Debian
    host without systemd-resolved (or AWS's 169.254.169.253, GCP's 169.254.169.254) does.

Late phases restart tracker.service with drop-ins: the deny list the unit shipped before
issue 13 (every lookup then fails: "cannot resolve status.example.test"), then the shipped
opt-in ssrf-guard.conf plus the admin's IPAddressAllow= of the resolver (names resolve, private
and loopback pages stay out of reach).

Nothing is downloaded and nothing outside tmp_path and the overlay is written, except the
cgroup directory (removed at the end). Unlike §1.9, the host's /dev and /sys are not bound
into the namespace and /proc/sys is read-only: there, PID 1 created /dev/log in the host's
/dev and raised the host kernel's fs.file-max. Root only; skipped (with the reason) where the
namespace cannot be made. The tests share one boot and run in file order; the last one stops
the service. The whole journal is kept in the sandbox directory (journal.txt, journal.json).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import signal
import sqlite3
import stat
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import pytest

from pages import all_updates, cut, load

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
UNIT = ROOT / "systemd" / "tracker.service"
PAGESERVER = HERE / "systemd_boot" / "pageserver.py"
SYSTEMD = Path("/lib/systemd/systemd")
SYS_PYTHON = Path("/usr/bin/python3")

GITHUB = "github-incidents-2026-07-31.json"
T0 = "2026-07-25T09:45:00.000Z"  # one incident open (vv9vvksmj4s9, 1 update so far)
T1 = "2026-07-25T12:40:00.000Z"  # +3 updates of it (now resolved) and 2 of a new incident
T2 = "2026-07-25T12:58:32.832Z"  # +1 update of that new incident (made huge by one test)
PORT = 8080
PRIVATE = "10.255.0.1"  # an address in one of ssrf-guard.conf's IPAddressDeny= ranges, on the namespace's lo
LOOPBACK2 = "127.0.0.2"  # loopback, denied by ssrf-guard.conf (the test allows only 127.0.0.1)
HOSTNAME = "status.example.test"  # the page's name, resolved by trk-dns.service to 127.0.0.1
RESOLVER = "10.0.0.53"  # trk-dns.service: the namespace's resolver, on a private address
DNSSERVER = HERE / "systemd_boot" / "dnsserver.py"
SSRF_GUARD = ROOT / "systemd" / "ssrf-guard.conf"
# The private-range deny list tracker.service shipped before issue 13, which blocked DNS.
OLD_DENY = "IPAddressDeny=10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 169.254.0.0/16 fc00::/7 fe80::/10"
PROVIDER_ID = "github"
PAGE = "gh/api/v2/incidents.json"  # under the served directory
INTERVAL = 2
WATCHDOG_SEC = 6
DYNAMIC_UIDS = range(61184, 65520)  # systemd's DynamicUser= range
INCIDENT_UPDATE_MESSAGE_ID = "6f0c2f3e8a1d4b57a9c4e2d1b0a7f3c5"  # tracker.log's, spelled out on purpose

# Environment of every command run inside: nothing of pytest's (HOME, TRACKER_*) leaks in.
CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "SYSTEMD_PAGER": "",
             "SYSTEMD_COLORS": "0", "SYSTEMD_LOG_COLOR": "0"}

TIMINGS: dict[str, float] = {}
DNS_REPORT: list[str] = []  # what the DNS checks saw, printed at the end


# -- can this machine do it? ---------------------------------------------------------------

def _cgroup2_mount() -> Path | None:
    """Where the unified (v2) hierarchy is mounted: /sys/fs/cgroup or, hybrid, .../unified."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        left, _, right = line.partition(" - ")
        if right.split(" ")[0] == "cgroup2":
            return Path(left.split(" ")[4])
    return None


def _skip_reason(scratch: Path) -> str | None:
    if os.geteuid() != 0:
        return "needs root (mount, unshare, cgroups)"
    for tool in ("unshare", "nsenter", "setpriv", "systemctl", "journalctl", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    if not os.access(SYSTEMD, os.X_OK):
        return f"{SYSTEMD} not found (systemd is not installed)"
    if not os.access(SYS_PYTHON, os.X_OK):
        return f"{SYS_PYTHON} not found: the service needs a Python outside /root and /home"
    probe = subprocess.run([str(SYS_PYTHON), "-c", "import sys, venv, tomllib"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        return f"{SYS_PYTHON} has no venv/tomllib module (Python >= 3.11 with venv needed)"
    cgroup2 = _cgroup2_mount()
    if cgroup2 is None:
        return "no cgroup2 (unified) hierarchy mounted"
    try:
        (cgroup2 / f"trk-probe-{os.getpid()}").mkdir()
        (cgroup2 / f"trk-probe-{os.getpid()}").rmdir()
    except OSError as e:
        return f"cannot make a cgroup under {cgroup2}: {e.strerror}"
    # The namespace and the overlay of / (quick: about 50 ms).
    d = scratch / "probe"
    d.mkdir()
    script = (f"set -e; mount -t tmpfs tmpfs {d}; mkdir {d}/u {d}/w {d}/m; "
              f"mount -t overlay overlay -o lowerdir=/,upperdir={d}/u,workdir={d}/w {d}/m; "
              f"mount -t proc proc {d}/m/proc; mount -t sysfs -o ro sysfs {d}/m/sys; "
              f"mount -t cgroup2 cgroup2 {d}/m/sys/fs/cgroup; "
              f"test -x {d}/m{SYSTEMD}")
    try:
        p = subprocess.run(["unshare", "--mount", "--pid", "--fork", "--uts", "--ipc", "--net", "--cgroup",
                            "--propagation", "private", "/bin/sh", "-c", script],
                           capture_output=True, text=True, timeout=20, env=CLEAN_ENV)
    except subprocess.TimeoutExpired:
        return "the namespace probe hung"
    if p.returncode != 0:
        return f"cannot make the namespace/overlay: {p.stderr.strip()[-300:] or p.returncode}"
    return None


# -- building /opt/tracker/venv -------------------------------------------------------------

def _requirements(name: str) -> list[str]:
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pragma: no cover
        from pip._vendor.packaging.requirements import Requirement
    found = []
    for spec in metadata.distribution(name).requires or []:
        req = Requirement(spec)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            found.append(req.name)
    return found


def _runtime_distributions() -> list[str]:
    """tracker's install_requires (setup.cfg) and theirs, transitively, as installed here."""
    text = (ROOT / "setup.cfg").read_text()
    block = re.search(r"install_requires\s*=\s*\n((?:[ \t]+\S.*\n)+)", text)
    todo = [re.split(r"[<>=!~; \[]", line.strip())[0] for line in block.group(1).splitlines()
            if line.strip() and not line.strip().startswith("#")]
    seen: list[str] = []
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        seen.append(key)
        todo += _requirements(name)
    return seen


def _build_venv(opt: Path) -> None:
    """/opt/tracker as pip would leave it: a venv of /usr/bin/python3, tracker and its
    dependencies in its site-packages, byte-compiled, and the console script."""
    venv = opt / "venv"
    subprocess.run([str(SYS_PYTHON), "-m", "venv", "--without-pip", str(venv)], check=True,
                   capture_output=True, timeout=60)
    (site,) = venv.glob("lib/python3*/site-packages")
    # Dependencies: every file their RECORD lists, from this interpreter's site-packages.
    # Compiled speed-ups (.so, for the pyenv build) are left out: each has a pure-Python twin.
    for dist_name in _runtime_distributions():
        dist = metadata.distribution(dist_name)
        if not dist.files:
            raise RuntimeError(f"{dist_name}: installed without a RECORD; cannot copy it")
        for f in dist.files:
            rel = Path(str(f))
            if rel.parts[0] == ".." or "__pycache__" in rel.parts or rel.suffix in (".pyc", ".so"):
                continue
            src = Path(dist.locate_file(f))
            if src.is_file():
                (site / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, site / rel)
    # tracker itself, laid out as setup.cfg installs it (migrations/ -> tracker/migrations).
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "tracker", site / "tracker", ignore=ignore)
    shutil.copytree(ROOT / "migrations", site / "tracker" / "migrations", ignore=ignore, dirs_exist_ok=True)
    final_site = Path("/opt/tracker") / site.relative_to(opt)
    subprocess.run([str(venv / "bin" / "python3"), "-m", "compileall", "-q", "-j", "0", "-s", str(site),
                    "-p", str(final_site), str(site)], check=True, capture_output=True, timeout=300)
    launcher = venv / "bin" / "tracker"  # pip's console-script template for tracker = tracker.cli:cli
    launcher.write_text(
        "#!/opt/tracker/venv/bin/python3\n"
        "# -*- coding: utf-8 -*-\n"
        "import re\nimport sys\nfrom tracker.cli import cli\n"
        "if __name__ == '__main__':\n"
        "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
        "    sys.exit(cli())\n"
    )
    launcher.chmod(0o755)
    for path in [opt, *opt.rglob("*")]:  # readable by the service's transient user
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)
    # The venv works before anything boots: a broken copy fails here, not as a crash loop.
    check = subprocess.run([str(venv / "bin" / "python3"), "-c",
                            "import tracker.cli, tracker.migrations, requests, structlog, schedule, click"],
                           capture_output=True, text=True, timeout=60, env=CLEAN_ENV, cwd="/")
    assert check.returncode == 0, f"the venv for the service is broken:\n{check.stderr}"


# -- the units --------------------------------------------------------------------------------

TARGET = """\
[Unit]
Description=tracker boot test (throw-away namespace)
# Nothing of sysinit.target/basic.target: in a namespace over the host's root they would run
# the host's early-boot units (sysctl, udev, modules, tmpfiles) against the real kernel.
DefaultDependencies=no
Wants=systemd-journald.socket systemd-journald.service trk-dns.service trk-http.service tracker.service
"""

HTTP_UNIT = f"""\
[Unit]
Description=Test status page server on port {PORT} (of the namespace's own network)
DefaultDependencies=no
After=systemd-journald.socket

[Service]
Type=notify
NotifyAccess=main
ExecStart={SYS_PYTHON} -S /opt/trk-test/pageserver.py /srv/trk {PORT} 0.0.0.0
"""

DNS_UNIT = f"""\
[Unit]
Description=Test DNS resolver on {RESOLVER}:53 (a private address of the namespace's own network)
DefaultDependencies=no
After=systemd-journald.socket

[Service]
Type=notify
NotifyAccess=main
ExecStart={SYS_PYTHON} -S /opt/trk-test/dnsserver.py {RESOLVER} 53 {HOSTNAME}=127.0.0.1
"""

TRACKER_DROPIN = f"""\
# Test-only; only what the throw-away namespace forces. The sandbox settings are untouched.
[Unit]
# No sysinit.target/basic.target in this namespace (see trk.target): without this the implicit
# Requires=sysinit.target would start the host's early-boot units against the real kernel.
DefaultDependencies=no
# The page it polls and the resolver of its name are units of this test, in the namespace.
Wants=trk-http.service trk-dns.service
After=trk-http.service trk-dns.service

[Service]
# Lowered from the unit's 120 s so that a missed ping would show within a short test.
WatchdogSec={WATCHDOG_SEC}s
"""

BOOT_SH = """\
#!/bin/bash
# Run as: unshare --mount --pid --fork --uts --ipc --net --cgroup --propagation private boot.sh
# (reliability.md §1.9, with the host's /dev, /sys and /proc/sys kept out of reach: bound
# writable, PID 1 writes /dev/log into the host's /dev and fs.file-max into the host kernel).
# Every write lands in a tmpfs; the host's root is only the overlay's lower layer.
set -eu
B={sandbox}
mount -t tmpfs -o mode=0755 tmpfs "$B/ovl"
mkdir "$B/ovl/upper" "$B/ovl/work" "$B/ovl/merged"
mount -t overlay overlay -o "lowerdir=/,upperdir=$B/ovl/upper,workdir=$B/ovl/work" "$B/ovl/merged"
R="$B/ovl/merged"
mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
for p in sys sysrq-trigger; do
  [ -e "$R/proc/$p" ] || continue
  mount --bind "$R/proc/$p" "$R/proc/$p"; mount -o remount,bind,ro "$R/proc/$p"
done
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"
mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$R/sys/fs/cgroup"
# A /dev of its own: the harmless nodes of the host's, fresh pts/shm/mqueue; no console, no kmsg.
mount -t tmpfs -o mode=0755,nosuid tmpfs "$R/dev"
for n in null zero full random urandom tty; do touch "$R/dev/$n"; mount --bind "/dev/$n" "$R/dev/$n"; done
mkdir "$R/dev/pts" "$R/dev/shm" "$R/dev/mqueue"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,nosuid,noexec devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/dev/shm"
mount -t mqueue -o nosuid,nodev,noexec mqueue "$R/dev/mqueue"
ln -s /proc/self/fd "$R/dev/fd"
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$R/run"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/tmp"
mkdir -p "$R/opt/tracker" "$R/opt/trk-test" "$R/srv/trk" "$R/etc/tracker" "$R/run/systemd/system"
mount --bind "$B/opt-tracker" "$R/opt/tracker"
mount --bind "$B/www" "$R/srv/trk"
install -m 0644 "$B/pageserver.py" "$R/opt/trk-test/pageserver.py"
install -m 0644 "$B/dnsserver.py" "$R/opt/trk-test/dnsserver.py"
install -m 0644 "$B/tracker.toml" "$R/etc/tracker/tracker.toml"
cp -r "$B/units/." "$R/run/systemd/system/"
ip link set lo up
# The resolver's private address: on a dummy interface where the kernel has the driver, else
# on the namespace's loopback (local delivery either way; the cgroup filter sees the address).
if ip link add trk-dns0 type dummy 2>/dev/null; then
  ip addr add {resolver}/24 dev trk-dns0
  ip link set trk-dns0 up
else
  ip addr add {resolver}/32 dev lo
fi
# Names resolve through that resolver only (the overlay's copies; the host's files are untouched).
rm -f "$R/etc/resolv.conf"
printf 'nameserver {resolver}\\noptions timeout:1 attempts:2\\n' > "$R/etc/resolv.conf"
sed -i 's/^hosts:.*/hosts: files dns/' "$R/etc/nsswitch.conf"
hostname trk-boot-test
cd "$R"
mkdir -p oldroot
pivot_root . oldroot
umount -l /oldroot
rmdir /oldroot
exec env -i container=unshare TERM=dumb {systemd} --system --unit=trk.target --log-target=journal --show-status=no
"""


def _config(interval: float, *, private: bool = False) -> str:
    """tracker.toml: GitHub's page by name (and the same page on a private and on a loopback
    address other than the one the name resolves to)."""
    text = f"interval = {interval}\ntimeout = 3\n"
    pages = [(PROVIDER_ID, "GitHub", HOSTNAME)]
    if private:
        pages += [("private", "Intranet", PRIVATE), ("loopback", "Local", LOOPBACK2)]
    for pid, name, host in pages:
        text += (f"\n[[providers]]\nid = \"{pid}\"\nname = \"{name}\"\nformat = \"statuspage\"\n"
                 f"url = \"http://{host}:{PORT}/gh\"\n")
    return text


def _host_state() -> dict[str, Any]:
    """What a careless namespace would change on the host: its /dev (journald's /dev/log
    symlink), kernel settings PID 1 raises at boot, its hostname."""
    sysctl = {k: Path("/proc/sys", k).read_text().strip()
              for k in ("fs/file-max", "fs/nr_open", "kernel/hostname", "net/unix/max_dgram_qlen")}
    return {"dev": sorted(os.listdir("/dev")), **sysctl}


# -- the running system ---------------------------------------------------------------------

class Booted:
    """One booted namespace: run commands inside it, read its journal, change the page."""

    def __init__(self, sandbox: Path, cgroup: Path):
        self.sandbox = sandbox
        self.cgroup = cgroup
        self.www = sandbox / "www"
        self.payload = load(GITHUB)
        self.proc: subprocess.Popen | None = None
        self.host_before: dict[str, Any] = {}
        self.pid1 = 0

    # inside the namespace
    def ns(self, *cmd: str, timeout: float = 20) -> subprocess.CompletedProcess:
        return subprocess.run(["nsenter", "-t", str(self.pid1), "-a", "-r", "-w", *cmd], capture_output=True,
                              text=True, timeout=timeout, env=CLEAN_ENV, stdin=subprocess.DEVNULL)

    def systemctl(self, *args: str, timeout: float = 20) -> subprocess.CompletedProcess:
        return self.ns("systemctl", "--no-pager", *args, timeout=timeout)

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.systemctl("show", unit, "-p", ",".join(props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def journal(self, *args: str) -> list[dict[str, Any]]:
        p = self.ns("journalctl", "--no-pager", "-a", "-o", "json", *args)
        return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]

    def events(self, event: str | None = None, *args: str) -> list[dict[str, Any]]:
        """tracker's own records (entries with TRACKER_EVENT) of `journalctl -u tracker`."""
        found = [e for e in self.journal("-u", "tracker", *args) if "TRACKER_EVENT" in e]
        return [e for e in found if event is None or e["TRACKER_EVENT"] == event]

    @property
    def root(self) -> Path:
        """The namespace's / seen from the host (the overlay)."""
        return Path(f"/proc/{self.pid1}/root")

    # the page
    def serve(self, at: str | dict[str, Any]) -> None:
        """The page as it stood at `at` (or this payload), replaced atomically."""
        path = self.www / PAGE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(cut(self.payload, at) if isinstance(at, str) else at))
        tmp.chmod(0o644)
        os.replace(tmp, path)

    def fail_page(self, status: int | None) -> None:
        flag = self.www / (PAGE + ".status")
        if status is None:
            flag.unlink(missing_ok=True)
        else:
            flag.write_text(f"{status}\n")

    # diagnostics for failure messages
    def diagnostics(self) -> str:
        if not self.pid1:
            return "(not booted)"
        parts = []
        for cmd in (("systemctl", "--no-pager", "status", "tracker.service", "trk-http.service"),
                    ("journalctl", "--no-pager", "-a", "-n", "60", "-o", "short-monotonic")):
            try:
                p = self.ns(*cmd)
                parts.append(f"$ {' '.join(cmd)}\n{p.stdout}{p.stderr}")
            except Exception as e:  # noqa: BLE001 - diagnostics must not hide the failure
                parts.append(f"$ {' '.join(cmd)}: {e!r}")
        return "\n".join(parts)

    def keep_journal(self) -> None:
        """The whole journal, kept in the sandbox directory (pytest keeps the last few)."""
        if not self.pid1 or self.proc is None or self.proc.poll() is not None:
            return
        for name, fmt in (("journal.txt", "short-monotonic"), ("journal.json", "json")):
            try:
                p = self.ns("journalctl", "--no-pager", "-a", "-o", fmt, timeout=30)
                (self.sandbox / name).write_text(p.stdout)
            except (OSError, subprocess.SubprocessError):
                pass

    def wait(self, what: str, check: Callable[[], Any], timeout: float, every: float = 0.25) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:g} s waiting for {what}\n{self.diagnostics()}")
            time.sleep(every)

    def wait_active(self) -> None:
        """tracker.service is active (after READY=1); each test starts from there."""
        self.wait("tracker.service to become active",
                  lambda: self.systemctl("is-active", "tracker.service").stdout.strip() == "active", timeout=30)

    # lifecycle
    def boot(self) -> None:
        log = open(self.sandbox / "pid1.log", "wb")
        # Into our cgroup first; --pdeathsig/--kill-child: if pytest dies, unshare and then the
        # whole namespace die too; no module loading or clock setting from in there.
        command = (f"echo $$ > {shlex.quote(str(self.cgroup / 'cgroup.procs'))} && "
                   f"exec setpriv --pdeathsig KILL --bounding-set -sys_module,-sys_time "
                   f"unshare --mount --pid --kill-child --uts --ipc --net --cgroup --propagation private "
                   f"{shlex.quote(str(self.sandbox / 'boot.sh'))}")
        self.proc = subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, env=CLEAN_ENV, start_new_session=True)
        log.close()

        def systemd_pid() -> int:
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"the namespace exited ({self.proc.returncode}):\n"
                            f"{(self.sandbox / 'pid1.log').read_text(errors='replace')}")
            try:
                children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
                for child in children:
                    if Path(f"/proc/{child}/comm").read_text().strip() == "systemd":
                        return int(child)
            except OSError:
                pass
            return 0

        self.pid1 = self.wait("systemd to exec as PID 1 of the namespace", systemd_pid, timeout=20, every=0.05)
        self.wait("systemctl to answer inside the namespace",
                  lambda: self.systemctl("is-system-running").stdout.strip() in
                  ("initializing", "starting", "running", "degraded"), timeout=20, every=0.1)

    def shutdown(self) -> None:
        """poweroff, else SIGKILL the namespace's PID 1 (which kills every process in it); then
        remove the cgroups. The mounts go with the mount namespace."""
        if self.proc is not None:
            if self.proc.poll() is None and self.pid1:
                try:
                    asked = self.systemctl("poweroff", "--no-block", timeout=10).returncode == 0
                except subprocess.TimeoutExpired:
                    asked = False
                try:
                    self.proc.wait(timeout=15 if asked else 0.1)
                except subprocess.TimeoutExpired:
                    pass
            if self.proc.poll() is None:
                # Every process of the namespace (and unshare) is in our cgroup, and only they are.
                try:
                    (self.cgroup / "cgroup.kill").write_text("1")
                except OSError:  # kernels before 5.14: killing PID 1 of a pid namespace kills it all
                    for pid in (self.pid1, self.proc.pid):
                        try:
                            if pid:
                                os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                self.proc.wait(timeout=15)
        deadline = time.monotonic() + 10
        while self.cgroup.exists():
            for d in sorted((p for p in self.cgroup.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                try:
                    d.rmdir()
                except OSError:
                    pass
            try:
                self.cgroup.rmdir()
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


@pytest.fixture(scope="module")
def booted(tmp_path_factory: pytest.TempPathFactory):
    scratch = tmp_path_factory.mktemp("systemd-boot")
    reason = _skip_reason(scratch)
    if reason:
        pytest.skip(reason)
    started = time.monotonic()
    sandbox = scratch / "sb"
    for d in ("ovl", "units/tracker.service.d", "opt-tracker", "www"):
        (sandbox / d).mkdir(parents=True)
    _build_venv(sandbox / "opt-tracker")
    shutil.copyfile(UNIT, sandbox / "units" / "tracker.service")  # unchanged
    (sandbox / "units" / "tracker.service.d" / "boot-test.conf").write_text(TRACKER_DROPIN)
    (sandbox / "units" / "trk.target").write_text(TARGET)
    (sandbox / "units" / "trk-http.service").write_text(HTTP_UNIT)
    (sandbox / "units" / "trk-dns.service").write_text(DNS_UNIT)
    shutil.copyfile(PAGESERVER, sandbox / "pageserver.py")
    shutil.copyfile(DNSSERVER, sandbox / "dnsserver.py")
    (sandbox / "tracker.toml").write_text(_config(INTERVAL))
    (sandbox / "boot.sh").write_text(BOOT_SH.format(sandbox=shlex.quote(str(sandbox)), systemd=SYSTEMD,
                                                    resolver=RESOLVER))
    (sandbox / "boot.sh").chmod(0o755)
    sandbox.chmod(0o755)
    (sandbox / "www").chmod(0o755)
    TIMINGS["build venv and units"] = time.monotonic() - started

    system = Booted(sandbox, _cgroup2_mount() / f"trk-boot-{os.getpid()}-{secrets.token_hex(3)}")
    system.serve(T0)
    system.host_before = _host_state()
    system.cgroup.mkdir()
    try:
        started = time.monotonic()
        system.boot()
        TIMINGS["boot to systemctl answering"] = time.monotonic() - started
        yield system
    finally:
        started = time.monotonic()
        system.keep_journal()
        system.shutdown()
        TIMINGS["poweroff and cleanup"] = time.monotonic() - started
        print("\nsystemd boot test timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in TIMINGS.items())
              + f"; journal kept in {sandbox}/journal.txt")
        if DNS_REPORT:
            print("DNS checks:\n  " + "\n  ".join(DNS_REPORT))


# -- helpers on the page's history ------------------------------------------------------------

def _event_id(incident_id: str, update_id: str) -> str:
    return f"{PROVIDER_ID}:{incident_id}:{update_id}"


def _open_updates(at: str) -> list[str]:
    """First contact: the updates of incidents still open at `at`, oldest first."""
    page = cut(load(GITHUB), at)
    found = sorted((u["created_at"], i["id"], u["id"]) for i in page["incidents"]
                   if i["status"] not in ("resolved", "completed", "postmortem") for u in i["incident_updates"])
    return [_event_id(i, u) for _, i, u in found]


def _published_between(after: str, until: str) -> list[str]:
    return [_event_id(i, u) for at, i, u in all_updates(load(GITHUB)) if after < at <= until]


# -- the tests (in order: they share the boot) -------------------------------------------------

def test_type_notify_service_becomes_active_after_ready_inside_its_sandbox(booted: Booted):
    started = time.monotonic()
    booted.wait_active()
    TIMINGS["tracker active"] = time.monotonic() - started
    assert booted.systemctl("is-active", "trk-http.service").stdout.strip() == "active"
    assert booted.systemctl("is-active", "trk-dns.service").stdout.strip() == "active"

    s = booted.show("tracker.service", "Type", "NotifyAccess", "WatchdogUSec", "StatusText", "MainPID", "NRestarts",
                    "ExecMainStartTimestampMonotonic", "ActiveEnterTimestampMonotonic", "User", "DynamicUser",
                    "FragmentPath", "DropInPaths")
    # The repository's unit, byte for byte, plus only the test's drop-in.
    assert s["FragmentPath"] == "/run/systemd/system/tracker.service"
    assert (booted.root / "run/systemd/system/tracker.service").read_bytes() == UNIT.read_bytes()
    assert s["DropInPaths"] == "/run/systemd/system/tracker.service.d/boot-test.conf"
    assert (s["Type"], s["NotifyAccess"], s["WatchdogUSec"]) == ("notify", "main", f"{WATCHDOG_SEC}s")
    assert (s["User"], s["DynamicUser"], s["NRestarts"]) == ("tracker", "yes", "0")
    # STATUS=: one line, as tracker writes it.
    assert re.fullmatch(r"1 providers?, \d+ failing, \d+ updates announced since start(; last: .+)?", s["StatusText"]), s
    assert f'Status: "{s["StatusText"]}"' in booted.systemctl("status", "tracker.service").stdout

    # "active" came from READY=1, not from the exec: tracker logged tracker_started (which
    # precedes READY=1) after the process started and before the unit became active.
    # The record's time is when journald received it: a few ms after tracker sent it, and
    # journald and PID 1 read their sockets independently, so READY=1 (sent later, to PID 1)
    # can be handled first. Allow journald that much lag.
    (started_rec,) = booted.events("tracker_started")
    mono = int(started_rec["__MONOTONIC_TIMESTAMP"])
    lag = 50_000  # µs
    assert int(s["ExecMainStartTimestampMonotonic"]) < mono < int(s["ActiveEnterTimestampMonotonic"]) + lag, s
    assert started_rec["TRACKER_DATABASE"] == "/var/lib/tracker/tracker.db"
    assert started_rec["TRACKER_MODE"] == "run"

    # The records went over the native protocol from the unit's own process, not via stdout.
    assert not booted.events("journal_unavailable")
    assert started_rec["_TRANSPORT"] == "journal" and started_rec["_SYSTEMD_UNIT"] == "tracker.service"
    assert started_rec["SYSLOG_IDENTIFIER"] == "tracker" and started_rec["_PID"] == s["MainPID"]

    # The sandbox is the unit's: transient user, seccomp filter, no privileges, no capabilities.
    status = booted.ns("cat", f"/proc/{s['MainPID']}/status").stdout
    fields = dict(re.findall(r"^(\w+):\s+(.*)$", status, re.M))
    assert int(fields["Uid"].split()[0]) in DYNAMIC_UIDS, fields["Uid"]
    assert (fields["NoNewPrivs"], fields["Seccomp"]) == ("1", "2"), fields
    assert int(fields["CapEff"], 16) == 0 and int(fields["CapBnd"], 16) == 0, fields

    # Safety of the recipe itself: no host early-boot unit ever ran in here, and the host's
    # /dev and kernel settings are as they were before the boot.
    assert booted.systemctl("is-active", "sysinit.target").stdout.strip() != "active"
    assert _host_state() == booted.host_before


def test_incident_updates_are_journal_entries_with_tracker_fields(booted: Booted):
    booted.wait_active()
    expected = _open_updates(T0)
    assert expected == [_event_id("vv9vvksmj4s9", "8ql04hwt1g1w")]
    updates = booted.wait("the first-contact incident_update in the journal",
                          lambda: booted.events("incident_update"), timeout=20)
    assert [e["TRACKER_EVENT_ID"] for e in updates] == expected
    (e,) = updates
    assert e["TRACKER_PROVIDER_ID"] == PROVIDER_ID and e["TRACKER_PROVIDER"] == "GitHub"
    assert (e["PRIORITY"], e["MESSAGE_ID"]) == ("6", INCIDENT_UPDATE_MESSAGE_ID)
    assert (e["TRACKER_INCIDENT_ID"], e["TRACKER_UPDATE_ID"]) == ("vv9vvksmj4s9", "8ql04hwt1g1w")
    assert e["TRACKER_STATUS"] == "investigating" and e["TRACKER_KIND"] == "incident"
    assert e["MESSAGE"].startswith("GitHub: Several GPT models degraded [investigating, ")
    assert "\n" not in e["MESSAGE"] and e["_SYSTEMD_UNIT"] == "tracker.service"
    assert json.loads(e["TRACKER_COMPONENTS"]) == json.loads(e["TRACKER_JSON"])["components"]

    # journalctl's own matches select by tracker's fields.
    by_provider = booted.journal("-u", "tracker", f"TRACKER_PROVIDER_ID={PROVIDER_ID}")
    assert by_provider and all(x["TRACKER_PROVIDER_ID"] == PROVIDER_ID for x in by_provider)
    assert [x["TRACKER_EVENT_ID"] for x in by_provider if x.get("TRACKER_EVENT") == "incident_update"] == expected
    assert {x["TRACKER_EVENT"] for x in by_provider} >= {"incident_update", "first_contact"}
    by_id = booted.journal(f"MESSAGE_ID={INCIDENT_UPDATE_MESSAGE_ID}")
    assert [x["TRACKER_EVENT_ID"] for x in by_id] == expected

    # The whole record as JSON, one line per entry, for collectors.
    p = booted.ns("journalctl", "--no-pager", "-a", "-u", "tracker", "-o", "cat", "--output-fields=TRACKER_JSON")
    records = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    assert [r["event"] for r in records][0] == "tracker_started"
    assert [r["event_id"] for r in records if r["event"] == "incident_update"] == expected
    first = next(r for r in records if r["event"] == "incident_update")
    assert first["provider_id"] == PROVIDER_ID and first["level"] == "info"


def _dns_queries(booted: Booted) -> list[str]:
    """The queries for the page's name that reached trk-dns.service (one journal line each)."""
    lines = booted.ns("journalctl", "--no-pager", "-u", "trk-dns", "-o", "cat").stdout.splitlines()
    return [line for line in lines if line.startswith("query from ") and f" {HOSTNAME} " in line]


def test_names_resolve_through_a_resolver_on_a_private_address_under_the_shipped_unit(booted: Booted):
    booted.wait_active()
    assert (booted.root / "etc/resolv.conf").read_text().splitlines()[0] == f"nameserver {RESOLVER}"
    # tracker, inside its sandbox, asked the resolver for the page's name (A and AAAA) ...
    queries = booted.wait(f"tracker's queries for {HOSTNAME} at {RESOLVER}", lambda: _dns_queries(booted), timeout=10)
    assert any(q.endswith(f": A {HOSTNAME} -> 127.0.0.1") for q in queries), queries
    assert all(q.startswith(f"query from {RESOLVER}:") for q in queries), queries  # from the namespace
    # ... and read the page by that name: its first contact is in the journal (previous test).
    (first,) = booted.events("first_contact")
    assert first["TRACKER_PROVIDER_ID"] == PROVIDER_ID
    assert not booted.events("poll_failed")
    # Because the shipped unit filters no address: 10.0.0.53 is inside 10.0.0.0/8.
    s = booted.show("tracker.service", "IPAddressDeny", "IPAddressAllow")
    assert s == {"IPAddressDeny": "", "IPAddressAllow": ""}, s
    DNS_REPORT.append(f"shipped unit: {len(queries)} queries for {HOSTNAME} reached {RESOLVER}, e.g. "
                      f"{queries[0]!r}; first_contact of {PROVIDER_ID}, no poll_failed")


def test_a_failing_page_is_a_warning_and_the_service_rides_it_out(booted: Booted):
    booted.wait_active()
    before = len(booted.events("poll_failed"))
    pid = booted.show("tracker.service", "MainPID")["MainPID"]
    booted.fail_page(500)
    try:
        failed = booted.wait("a poll_failed record", lambda: booted.events("poll_failed")[before:], timeout=15)
        status = booted.wait("STATUS= to count the failing provider",
                             lambda: " 1 failing" in booted.show("tracker.service", "StatusText")["StatusText"],
                             timeout=10)
        assert status
    finally:
        booted.fail_page(None)
    e = failed[0]
    assert e["PRIORITY"] == "4" and e["TRACKER_LEVEL"] == "warning"
    assert e["TRACKER_PROVIDER_ID"] == PROVIDER_ID and e["TRACKER_ERROR"] == "HTTP 500"
    assert e["TRACKER_URL"] == f"http://{HOSTNAME}:{PORT}/{PAGE}"
    assert "MESSAGE_ID" not in e

    assert e["__CURSOR"] in {w["__CURSOR"] for w in booted.journal("-p", "warning")}
    warnings = booted.journal("-u", "tracker", "-p", "warning")
    assert e["__CURSOR"] in {w["__CURSOR"] for w in warnings}
    assert all(int(w["PRIORITY"]) <= 4 for w in warnings)
    assert not any(w.get("TRACKER_EVENT") == "incident_update" for w in warnings)

    recovered = booted.wait("provider_recovered", lambda: booted.events("provider_recovered"), timeout=20)
    assert recovered[-1]["TRACKER_PROVIDER_ID"] == PROVIDER_ID and recovered[-1]["PRIORITY"] == "6"
    after = booted.show("tracker.service", "ActiveState", "MainPID", "NRestarts")
    assert after == {"ActiveState": "active", "MainPID": pid, "NRestarts": "0"}


def test_new_updates_on_the_page_are_journaled_exactly_once(booted: Booted):
    booted.wait_active()
    expected = _open_updates(T0) + _published_between(T0, T1)
    assert len(expected) == 6
    booted.serve(T1)
    started = time.monotonic()

    def all_there() -> list[str]:
        ids = [e["TRACKER_EVENT_ID"] for e in booted.events("incident_update")]
        return ids if set(ids) >= set(expected) else []

    booted.wait("the updates published between T0 and T1", all_there, timeout=20)
    TIMINGS["new updates journaled"] = time.monotonic() - started
    # Several more polls of the same page (304s and a restart-free loop) announce nothing again.
    requests_before = _page_requests(booted)
    booted.wait("two more polls", lambda: _page_requests(booted) >= requests_before + 2, timeout=20)
    ids = [e["TRACKER_EVENT_ID"] for e in booted.events("incident_update")]
    assert ids == expected  # each exactly once, oldest first
    assert all(e["PRIORITY"] == "6" and e["MESSAGE_ID"] == INCIDENT_UPDATE_MESSAGE_ID
               for e in booted.events("incident_update"))
    status = booted.show("tracker.service", "StatusText")["StatusText"]
    assert re.match(r"1 providers?, 0 failing, 6 updates announced since start; last: GitHub: ", status), status


def test_a_record_too_big_for_one_datagram_reaches_the_journal_whole(booted: Booted):
    booted.wait_active()
    # The next real update, with its incident's title and its body stretched past the adapter's
    # cap (64 KiB each): the record (MESSAGE, TRACKER_INCIDENT, TRACKER_MESSAGE, TRACKER_JSON)
    # is then over 256 KB, more than one AF_UNIX datagram with the default 212992-byte send
    # buffer, so tracker must hand it to journald as a sealed memfd (memfd_create, F_ADD_SEALS,
    # SCM_RIGHTS), inside the unit's seccomp filter and MemoryDenyWriteExecute=yes.
    page = cut(load(GITHUB), T2)
    incident = next(i for i in page["incidents"] if i["id"] == "pz7g535gbs6p")
    update = next(u for u in incident["incident_updates"] if u["id"] == "2s8j64rtkx4d")
    incident["name"] = " ".join([incident["name"]] * (70_000 // len(incident["name"])))
    update["body"] = " ".join([update["body"]] * (70_000 // len(update["body"])))
    pid = booted.show("tracker.service", "MainPID")["MainPID"]
    booted.serve(page)
    wanted = _event_id("pz7g535gbs6p", "2s8j64rtkx4d")
    found = booted.wait("the huge incident_update in the journal",
                        lambda: [e for e in booted.events("incident_update") if e["TRACKER_EVENT_ID"] == wanted],
                        timeout=20)
    (e,) = found
    cap = 64 * 1024
    assert e["TRACKER_MESSAGE"] == update["body"][:cap] + " […]"
    assert e["TRACKER_INCIDENT"] == incident["name"][:cap] + " […]"
    assert json.loads(e["TRACKER_JSON"])["message"] == e["TRACKER_MESSAGE"]
    size = sum(len(k) + len(str(v).encode()) + 2 for k, v in e.items() if not k.startswith("_"))
    assert size > 256_000, size
    assert len(e["MESSAGE"]) <= 500 and "\n" not in e["MESSAGE"]
    status = booted.wait("STATUS= naming the huge update",
                         lambda: re.match(r"1 providers?, 0 failing, 7 updates announced since start; last: GitHub: Actions run",
                                          t := booted.show("tracker.service", "StatusText")["StatusText"]) and t,
                         timeout=10)
    assert len(status) <= 200, status
    assert booted.show("tracker.service", "ActiveState", "MainPID", "NRestarts") == {
        "ActiveState": "active", "MainPID": pid, "NRestarts": "0"}
    assert [x["TRACKER_EVENT_ID"] for x in booted.events("incident_update")].count(wanted) == 1


def _page_requests(booted: Booted) -> int:
    """Requests the page server answered (one journal line each)."""
    lines = booted.ns("journalctl", "--no-pager", "-u", "trk-http", "-o", "cat").stdout.splitlines()
    return sum(1 for line in lines if f'"GET /{PAGE} HTTP/1.1"' in line)


def test_watchdog_pings_keep_the_service_running_past_twice_the_timeout(booted: Booted):
    booted.wait_active()
    s = booted.show("tracker.service", "ActiveEnterTimestampMonotonic", "MainPID", "WatchdogTimestampMonotonic")
    active_for = time.monotonic() - int(s["ActiveEnterTimestampMonotonic"]) / 1e6
    if active_for < 2 * WATCHDOG_SEC + 1:
        time.sleep(2 * WATCHDOG_SEC + 1 - active_for)
    first = int(booted.show("tracker.service", "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"])
    # tracker pings every WatchdogSec/2 = 3 s from its loop: the timestamp moves on.
    booted.wait("a newer WATCHDOG=1 ping",
                lambda: int(booted.show("tracker.service", "WatchdogTimestampMonotonic")
                            ["WatchdogTimestampMonotonic"]) > first, timeout=WATCHDOG_SEC)
    after = booted.show("tracker.service", "ActiveState", "SubState", "Result", "MainPID", "NRestarts",
                        "ActiveEnterTimestampMonotonic")
    assert after["ActiveState"] == "active" and after["SubState"] == "running", after
    assert (after["Result"], after["MainPID"], after["NRestarts"]) == ("success", s["MainPID"], "0"), after
    assert time.monotonic() - int(after["ActiveEnterTimestampMonotonic"]) / 1e6 > 2 * WATCHDOG_SEC
    pid1_lines = [e.get("MESSAGE", "") for e in booted.journal("-u", "tracker") if "TRACKER_EVENT" not in e]
    assert not [m for m in pid1_lines if "atchdog" in m], pid1_lines


def test_a_killed_tracker_is_restarted_and_announces_nothing_twice(booted: Booted):
    booted.wait_active()
    before = booted.show("tracker.service", "MainPID", "NRestarts")
    announced = [e["TRACKER_EVENT_ID"] for e in booted.events("incident_update")]
    assert announced, "nothing announced yet"
    starts = len(booted.events("tracker_started"))
    started = time.monotonic()
    p = booted.systemctl("kill", "--signal=KILL", "tracker.service")
    assert p.returncode == 0, p.stderr

    def restarted() -> bool:
        s = booted.show("tracker.service", "ActiveState", "MainPID", "NRestarts")
        return (s["ActiveState"] == "active" and s["MainPID"] not in ("0", before["MainPID"])
                and int(s["NRestarts"]) == int(before["NRestarts"]) + 1)

    booted.wait("Restart=on-failure to start a new process (RestartSec=5s) and its READY=1", restarted, timeout=25)
    TIMINGS["kill -9 to active again"] = time.monotonic() - started
    manager = [e.get("MESSAGE", "") for e in booted.journal("-u", "tracker") if "TRACKER_EVENT" not in e]
    assert any("status=9/KILL" in m for m in manager), manager
    assert any("Failed with result 'signal'" in m for m in manager), manager
    assert any("Scheduled restart job, restart counter is at" in m for m in manager), manager

    # The new process opens the same database: no first contact again, nothing re-announced.
    booted.wait("the new process's tracker_started", lambda: len(booted.events("tracker_started")) > starts, timeout=10)
    polls = _page_requests(booted)
    booted.wait("two polls by the new process", lambda: _page_requests(booted) >= polls + 2, timeout=15)
    assert [e["TRACKER_EVENT_ID"] for e in booted.events("incident_update")] == announced
    assert len(booted.events("first_contact")) == 1


def test_reload_sends_sighup_and_tracker_rereads_its_config(booted: Booted):
    booted.wait_active()
    before = booted.show("tracker.service", "ActiveState", "MainPID", "NRestarts")
    config = booted.root / "etc" / "tracker" / "tracker.toml"

    # A broken file: logged as an error, the running configuration kept. systemctl reload
    # itself cannot tell (ExecReload=kill -HUP returns at once; no notify-reload before 253).
    failures = len(booted.events("config_reload_failed"))
    config.write_text("interval = = 2\n")
    p = booted.systemctl("reload", "tracker.service")
    assert p.returncode == 0, p.stderr
    failed = booted.wait("config_reload_failed",
                         lambda: booted.events("config_reload_failed")[failures:], timeout=10)
    assert failed[0]["PRIORITY"] == "3"
    assert failed[0]["TRACKER_ERROR"].startswith("/etc/tracker/tracker.toml: invalid TOML"), failed[0]
    assert booted.show("tracker.service", "ActiveState", "MainPID", "NRestarts") == before

    reloads = len(booted.events("config_reloaded"))
    config.write_text(_config(INTERVAL + 1))
    p = booted.systemctl("reload", "tracker.service")
    assert p.returncode == 0, p.stderr
    reloaded = booted.wait("config_reloaded", lambda: booted.events("config_reloaded")[reloads:], timeout=10)
    e = reloaded[0]
    assert e["PRIORITY"] == "6" and json.loads(e["TRACKER_CHANGED"]) == [PROVIDER_ID]
    assert json.loads(e["TRACKER_ADDED"]) == [] and json.loads(e["TRACKER_REMOVED"]) == []
    assert booted.show("tracker.service", "ActiveState", "MainPID", "NRestarts") == before


def _restart_with_dropins(booted: Booted, dropins: dict[str, str | None]) -> str:
    """Write (or, for None, remove) drop-ins of tracker.service, daemon-reload, restart it (a
    new process: no pooled connection, every name resolved afresh); its new MainPID."""
    d = booted.root / "run" / "systemd" / "system" / "tracker.service.d"
    for name, text in dropins.items():
        if text is None:
            (d / name).unlink(missing_ok=True)
        else:
            (d / name).write_text(text)
    p = booted.systemctl("daemon-reload", timeout=30)
    assert p.returncode == 0, p.stderr
    p = booted.systemctl("restart", "tracker.service", timeout=45)
    assert p.returncode == 0, p.stderr + booted.diagnostics()
    booted.wait_active()
    return booted.show("tracker.service", "MainPID")["MainPID"]


def _failures(booted: Booted, pid: str, provider_id: str) -> list[dict[str, Any]]:
    return [e for e in booted.events("poll_failed") if e["_PID"] == pid and e["TRACKER_PROVIDER_ID"] == provider_id]


def test_the_deny_list_the_unit_had_before_breaks_every_lookup(booted: Booted):
    # The private-range IPAddressDeny= tracker.service shipped before issue 13, as a drop-in:
    # the resolver at 10.0.0.53 is in 10.0.0.0/8, glibc's queries are dropped in tracker's
    # own cgroup, and the page, though on 127.0.0.1 and allowed, is never reached.
    booted.wait_active()
    queries = len(_dns_queries(booted))
    started = time.monotonic()
    pid = _restart_with_dropins(booted, {"old-deny.conf": f"[Service]\n{OLD_DENY}\n"})
    assert "10.0.0.0/8" in booted.show("tracker.service", "IPAddressDeny")["IPAddressDeny"]
    failed = booted.wait("a poll_failed of the new process",
                         lambda: _failures(booted, pid, PROVIDER_ID), timeout=30)
    TIMINGS["old deny list: restart to poll_failed"] = time.monotonic() - started
    error = failed[0]["TRACKER_ERROR"]
    assert error.startswith(f"cannot resolve {HOSTNAME}"), error
    assert len(_dns_queries(booted)) == queries  # not one query reached the resolver
    assert not [e for e in booted.events("first_contact") if e["_PID"] == pid]
    DNS_REPORT.append(f"old unit's deny list ({OLD_DENY}): poll_failed {error!r}; "
                      f"queries reaching {RESOLVER} after the restart: {len(_dns_queries(booted)) - queries}")

    # Without it, as shipped: the name resolves again and the page is read.
    requests = _page_requests(booted)
    pid = _restart_with_dropins(booted, {"old-deny.conf": None})
    booted.wait("the page polled by name again", lambda: _page_requests(booted) > requests, timeout=20)
    assert len(_dns_queries(booted)) > queries
    assert not _failures(booted, pid, PROVIDER_ID)


GUARD_ALLOW = f"""\
# The admin's step after installing ssrf-guard.conf: allow this host's resolver. (For this
# test only, also the address the page's name resolves to; 127.0.0.2 stays denied.)
[Service]
IPAddressAllow={RESOLVER} 127.0.0.1
"""


def test_the_opt_in_ssrf_guard_keeps_the_service_off_private_addresses_and_dns_works(booted: Booted):
    booted.wait_active()
    # The same page on a private address and on another loopback address of the namespace:
    # reachable for root in the namespace, but the guard (cgroup BPF) must keep tracker off them.
    p = booted.ns("ip", "addr", "add", f"{PRIVATE}/32", "dev", "lo")
    assert p.returncode == 0, p.stderr
    for host in (PRIVATE, LOOPBACK2):
        url = f"http://{host}:{PORT}/{PAGE}"
        p = booted.ns(str(SYS_PYTHON), "-S", "-c",
                      f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=5).status)")
        assert p.stdout.strip() == "200", p.stderr
    (booted.root / "etc" / "tracker" / "tracker.toml").write_text(_config(INTERVAL, private=True))
    queries, requests = len(_dns_queries(booted)), _page_requests(booted)
    started = time.monotonic()
    pid = _restart_with_dropins(booted, {"ssrf-guard.conf": SSRF_GUARD.read_text(), "resolver.conf": GUARD_ALLOW})
    s = booted.show("tracker.service", "IPAddressDeny", "IPAddressAllow", "DropInPaths")
    assert "169.254.0.0/16" in s["IPAddressDeny"] and "10.0.0.0/8" in s["IPAddressDeny"], s
    assert RESOLVER in s["IPAddressAllow"] and "127.0.0.53" in s["IPAddressAllow"], s
    assert "/run/systemd/system/tracker.service.d/ssrf-guard.conf" in s["DropInPaths"].split(), s

    for provider_id in ("private", "loopback"):
        failed = booted.wait(f"a poll_failed of the {provider_id} provider",
                             lambda: _failures(booted, pid, provider_id), timeout=15)
        error = failed[0]["TRACKER_ERROR"]
        # Dropped by the filter: a connect timeout (or EPERM), never an answer, never "refused".
        assert error.startswith("connect timeout") or "not permitted" in error, error
        DNS_REPORT.append(f"ssrf-guard.conf: {provider_id} page ({PRIVATE if provider_id == 'private' else LOOPBACK2})"
                          f" poll_failed {error!r}")
    # Meanwhile the page by name: resolved through the allowed resolver, polled, no failure.
    booted.wait("two polls of the page by name", lambda: _page_requests(booted) >= requests + 2, timeout=20)
    TIMINGS["ssrf guard: restart to two polls"] = time.monotonic() - started
    assert len(_dns_queries(booted)) > queries
    assert not _failures(booted, pid, PROVIDER_ID)
    assert not [e for e in booted.events("first_contact") if e["TRACKER_PROVIDER_ID"] in ("private", "loopback")]
    DNS_REPORT.append(f"ssrf-guard.conf + IPAddressAllow={RESOLVER}: {len(_dns_queries(booted)) - queries} queries "
                      f"reached the resolver, {PROVIDER_ID} polled by name without failure")


def test_stop_is_clean_and_the_database_is_the_dynamic_users(booted: Booted):
    booted.wait_active()
    started = time.monotonic()
    p = booted.systemctl("stop", "tracker.service", timeout=45)
    TIMINGS["systemctl stop"] = time.monotonic() - started
    assert p.returncode == 0, p.stderr
    s = booted.show("tracker.service", "ActiveState", "SubState", "Result", "ExecMainStatus", "ExecMainCode")
    assert s == {"ActiveState": "inactive", "SubState": "dead", "Result": "success",
                 "ExecMainStatus": "0", "ExecMainCode": "1"}, s  # 1: CLD_EXITED
    assert booted.systemctl("is-active", "tracker.service").stdout.strip() == "inactive"

    stopping = booted.wait("tracker_stopping", lambda: booted.events("tracker_stopping"), timeout=5)
    stopped = booted.wait("tracker_stopped", lambda: booted.events("tracker_stopped"), timeout=5)
    assert int(stopping[-1]["__REALTIME_TIMESTAMP"]) <= int(stopped[-1]["__REALTIME_TIMESTAMP"])
    assert json.loads(stopped[-1]["TRACKER_ABANDONED"]) == []
    # Its counts are the last process's own: what it announced is what the journal has from it.
    last = stopped[-1]
    mine = [e for e in booted.events("incident_update") if e["_PID"] == last["_PID"]]
    assert json.loads(last["TRACKER_ANNOUNCED"]) == len(mine)

    # DynamicUser=yes + StateDirectory=tracker: /var/lib/tracker -> private/tracker, 0700 above it.
    lib = booted.root / "var" / "lib"
    assert os.readlink(lib / "tracker") == "private/tracker"
    assert stat.S_IMODE((lib / "private").stat().st_mode) == 0o700
    db = lib / "private" / "tracker" / "tracker.db"
    st = db.stat()
    assert st.st_uid in DYNAMIC_UIDS and stat.S_IMODE(st.st_mode) == 0o600, (st.st_uid, oct(st.st_mode))  # UMask=0077
    # SQLite resolves symlinks itself, and /proc/PID/root reads as "/": look at a copy.
    copy = booted.sandbox / "tracker-db-copy"
    copy.mkdir(exist_ok=True)
    for f in db.parent.glob("tracker.db*"):
        shutil.copyfile(f, copy / f.name)
    conn = sqlite3.connect(copy / "tracker.db")
    try:
        rows = conn.execute("SELECT provider_id, incident_id, update_id, emitted_at FROM updates "
                            "WHERE announce = 1 ORDER BY created_at").fetchall()
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()
    assert all(r[3] for r in rows), rows  # the outbox is empty
    announced = sorted(_event_id(r[1], r[2]) for r in rows)
    assert announced == sorted(e["TRACKER_EVENT_ID"] for e in booted.events("incident_update"))
