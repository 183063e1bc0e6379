"""Load and validate configuration into frozen dataclasses.

Resolution order for every setting (docs/contract.md §2): command-line option > TRACKER_* environment
variable > config file > built-in default. Every problem is a ConfigError whose text is one
line naming the file (or variable), the key and the value.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .adapters import FORMATS as _REGISTRY
from .errors import ConfigError
from .metrics import parse_listen
from .notify import Destination
from .notify import parse as parse_notify
from .store import PgURL, locate

ADAPTER_FORMATS = tuple(_REGISTRY)

LOG_FORMATS = ("auto", "json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")
LEVEL_ALIASES = {"warn": "warning"}  # contract §2: `warn` is accepted for `warning`
LOG_TARGETS = ("stdout", "journal")
FORMATS = ("auto", *ADAPTER_FORMATS)  # the adapter registry is the one list of formats
POLITE_INTERVAL = 30  # seconds; below this a warning is logged once

DEFAULT_INTERVAL = 60
DEFAULT_WORKERS = 8
DEFAULT_TIMEOUT = 20.0  # seconds: total deadline of one request, connect and read included
DEFAULT_MAX_BYTES = 2 * 1024 * 1024
# Seconds what one process claimed (an update to announce, a lane of deliveries) stays its own:
# when a process or host dies, another takes its work over once this runs out.
DEFAULT_LEASE = 60.0

TOP_KEYS = {"interval", "workers", "database", "log_format", "log_level", "log_target", "timeout", "providers",
            "metrics_listen", "kinds", "min_impact", "closing_grace", "notify", "lease"}
# Settings with only an environment variable (no option), read by load() (contract §2).
ENV_NUMBERS = {"interval": "TRACKER_INTERVAL", "workers": "TRACKER_WORKERS", "timeout": "TRACKER_TIMEOUT"}
PROVIDER_KEYS = {"catalog", "name", "url", "id", "format", "interval", "components", "kinds", "min_impact",
                 "closing_grace"}
KINDS = ("incident", "maintenance")
IMPACTS = ("none", "minor", "major", "critical")  # in order: min_impact keeps this one and above
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Provider:
    """One status page to watch."""

    id: str
    name: str
    url: str
    format: str = "auto"
    interval: float = DEFAULT_INTERVAL
    components: tuple[str, ...] = ()
    kinds: tuple[str, ...] = KINDS  # which kinds are announced (docs/contract.md §4 filters)
    min_impact: str = "none"  # incidents below this impact are recorded, not announced
    # Seconds an incident must stay missing from a page that lists only open incidents before
    # a closing is inferred; None: the format's own (docs/contract.md §4).
    closing_grace: float | None = None

    @property
    def component_filter(self) -> frozenset[str]:
        return frozenset(c.lower() for c in self.components)


DEFAULT_PROVIDERS = (
    # OpenAI's page is hosted by incident.io: read natively for the real update text.
    Provider(id="openai", name="OpenAI", url="https://status.openai.com", format="incidentio"),
)


@dataclass(frozen=True)
class Settings:
    """Everything a command needs, resolved from options, environment, file and defaults."""

    database: Path | PgURL  # a file, or a PostgreSQL database shared by a pair of hosts
    providers: tuple[Provider, ...] = DEFAULT_PROVIDERS
    log_format: str = "auto"
    log_level: str = "info"
    log_target: str = "stdout"
    interval: float = DEFAULT_INTERVAL
    workers: int = DEFAULT_WORKERS
    timeout: float = DEFAULT_TIMEOUT
    max_bytes: int = DEFAULT_MAX_BYTES
    config_path: Path | None = None
    warnings: tuple[str, ...] = field(default=(), compare=False)
    metrics_listen: str | None = None  # "HOST:PORT" of the /metrics endpoint (contract §8)
    notify: tuple[Destination, ...] = ()  # [[notify]] destinations (contract §7)
    lease: float = DEFAULT_LEASE  # seconds before another process or host takes work over
    # setting -> where its value came from: "file", "default", "env TRACKER_…", or "given"
    # (an option or variable the CLI merged; it knows which)
    sources: dict[str, str] = field(default_factory=dict, compare=False)


def default_database_path(environ: os._Environ | dict | None = None) -> Path:
    """`$STATE_DIRECTORY/tracker.db` under systemd, else the XDG state directory."""
    env = os.environ if environ is None else environ
    state_dirs = env.get("STATE_DIRECTORY")
    if state_dirs:
        # systemd joins several StateDirectory= entries with ':'; the first one is ours.
        return Path(state_dirs.split(":")[0]) / "tracker.db"
    xdg = env.get("XDG_STATE_HOME", "")
    if not os.path.isabs(xdg):  # the XDG spec: relative values are to be ignored
        home = env.get("HOME") or str(Path.home())
        xdg = os.path.join(home, ".local", "state")
    return Path(xdg) / "tracker" / "tracker.db"


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:64] or "provider"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class _Checker:
    """Builds one-line messages that name the file, the key and the value."""

    def __init__(self, origin: str):
        self.origin = origin

    def fail(self, where: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.origin}: {where}: {problem}")

    def positive(self, where: str, value: Any) -> float:
        if not _is_number(value) or value <= 0:
            raise self.fail(where, f"{value!r} is not a positive number")
        return value

    def positive_int(self, where: str, value: Any, maximum: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= maximum:
            raise self.fail(where, f"{value!r} is not a whole number from 1 to {maximum}")
        return value

    def string(self, where: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, f"{value!r} is not a non-empty string")
        return value.strip()

    def choice(self, where: str, value: Any, choices: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value.lower() not in choices:
            raise self.fail(where, f"{value!r} is not one of {', '.join(choices)}")
        return value.lower()


class _EnvChecker(_Checker):
    """The same checks for a TRACKER_* variable: the message names the variable."""

    def fail(self, where: str, problem: str) -> ConfigError:
        return ConfigError(f"{where}: {problem}")


def _number(text: str) -> Any:
    """A variable's text as the number it spells, else the text (which then fails the check)."""
    for kind in (int, float):
        try:
            return kind(text.strip())
        except ValueError:
            pass
    return text


def level_alias(value: Any) -> Any:
    """`warn` is accepted for `warning` (contract §2)."""
    return LEVEL_ALIASES.get(value.strip().lower(), value) if isinstance(value, str) else value


def read_file(path: Path) -> dict[str, Any]:
    """Parse the TOML file; any problem is a one-line ConfigError."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file: {e.strerror or e}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None


def from_catalog(entry_id: str, interval: float = DEFAULT_INTERVAL) -> Provider | None:
    """The catalog's entry as a Provider, or None if there is no such id."""
    from . import catalog

    known = catalog.get(entry_id.strip().lower())
    if known is None:
        return None
    return Provider(id=known.id, name=known.name, url=known.url, format=known.format, interval=interval)


def select(settings: Settings, ids: tuple[str, ...]) -> Settings:
    """Only the providers named: configured ones by id, others from the catalog (docs/contract.md §5:
    `tracker run --provider github --provider stripe` needs no config file). Raises
    KeyError naming the ids that are neither."""
    if not ids:
        return settings
    configured = {p.id: p for p in settings.providers}
    chosen: list[Provider] = []
    unknown: list[str] = []
    for pid in dict.fromkeys(ids):
        p = configured.get(pid) or from_catalog(pid, settings.interval)
        if p is None:
            unknown.append(pid)
        else:
            chosen.append(p)
    if unknown:
        raise KeyError(", ".join(map(repr, unknown)))
    warnings = tuple(w for w in settings.warnings if not w.startswith(POLITE_PREFIX)) + polite_warning(chosen)
    return replace(settings, providers=tuple(chosen), warnings=warnings)


POLITE_PREFIX = "polled more often than every"


def polite_warning(providers: Iterable[Provider]) -> tuple[str, ...]:
    """One warning (logged once per run) naming every provider polled faster than is polite."""
    fast = [f"{p.id!r} ({p.interval:g} s)" for p in providers if p.interval < POLITE_INTERVAL]
    if not fast:
        return ()
    return (f"{POLITE_PREFIX} {POLITE_INTERVAL} s: {', '.join(fast)}; status pages are shared public "
            f"resources, {POLITE_INTERVAL} s or more is polite",)


_GRACE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h)?$")
_GRACE_UNIT = {None: 1, "s": 1, "m": 60, "h": 3600}


def grace_seconds(value: Any) -> float | None:
    """`closing_grace` in seconds: a number, or "90s", "10m", "1h" (0 allowed); None if not one."""
    if _is_number(value) and value >= 0:
        return float(value)
    if isinstance(value, str) and (m := _GRACE.match(value.strip().lower())):
        return float(m.group(1)) * _GRACE_UNIT[m.group(2)]
    return None


def _filters(check: _Checker, where: str, entry: dict[str, Any], default: dict[str, Any]) -> dict[str, Any]:
    """`kinds`, `min_impact` and `closing_grace` of a provider (or the top-level defaults)."""
    found = dict(default)
    if "closing_grace" in entry:
        grace = grace_seconds(entry["closing_grace"])
        if grace is None:
            raise check.fail(f"{where}closing_grace", f"{entry['closing_grace']!r} is not a duration "
                             '(seconds, or "90s", "10m", "1h"; 0 closes at the first poll that misses it)')
        found["closing_grace"] = grace
    if "kinds" in entry:
        kinds = entry["kinds"]
        if not isinstance(kinds, list) or not kinds or not all(isinstance(k, str) and k.lower() in KINDS for k in kinds):
            raise check.fail(f"{where}kinds", f"{kinds!r} is not a list of {' / '.join(KINDS)}")
        found["kinds"] = tuple(dict.fromkeys(k.lower() for k in kinds))
    if "min_impact" in entry:
        found["min_impact"] = check.choice(f"{where}min_impact", entry["min_impact"], IMPACTS)
    return found


def _providers(check: _Checker, value: Any, interval: float,
               filters: dict[str, Any] | None = None) -> tuple[Provider, ...]:
    if not isinstance(value, list) or not all(isinstance(p, dict) for p in value):
        raise check.fail("providers", "must be an array of tables ([[providers]])")
    if not value:
        raise check.fail("providers", "is empty; remove the key to use the built-in default")
    providers: list[Provider] = []
    seen: dict[str, int] = {}
    for number, entry in enumerate(value, start=1):
        label = f"provider #{number}"
        if isinstance(entry.get("name"), str) and entry["name"].strip():
            label += f" ({entry['name'].strip()!r})"
        for key in entry:
            if key not in PROVIDER_KEYS:
                raise check.fail(f"{label}", f"unknown key {key!r} (known: {', '.join(sorted(PROVIDER_KEYS))})")
        base: dict[str, Any] = {}
        if "catalog" in entry:
            # A catalog entry gives name, URL and format; keys written beside it win.
            known = from_catalog(check.string(f"{label}.catalog", entry["catalog"]), interval)
            if known is None:
                raise check.fail(f"{label}.catalog", f"{entry['catalog']!r} is not in the catalog "
                                 "(`tracker catalog WORD` searches it)")
            base = {"id": known.id, "name": known.name, "url": known.url, "format": known.format}
            label += f" (catalog {known.id!r})"
        entry = {**base, **entry}
        if "name" not in entry:
            raise check.fail(label, "missing key 'name' (or 'catalog')")
        if "url" not in entry:
            raise check.fail(label, "missing key 'url' (or 'catalog')")
        name = check.string(f"{label}.name", entry["name"])
        url = check.string(f"{label}.url", entry["url"])
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise check.fail(f"{label}.url", f"{url!r} is not an http(s) URL")
        pid = entry.get("id", slugify(name))
        if not isinstance(pid, str) or not _ID_RE.match(pid):
            raise check.fail(
                f"{label}.id", f"{pid!r} must be 1-64 of a-z 0-9 . _ - starting with a letter or digit"
            )
        if pid in seen:
            raise check.fail(f"{label}.id", f"duplicate provider id {pid!r} (also provider #{seen[pid]})")
        seen[pid] = number
        fmt = check.choice(f"{label}.format", entry.get("format", "auto"), FORMATS)
        p_interval = check.positive(f"{label}.interval", entry.get("interval", interval))
        comps = entry.get("components", [])
        if not isinstance(comps, list) or not all(isinstance(c, str) and c.strip() for c in comps):
            raise check.fail(f"{label}.components", f"{comps!r} is not a list of component names")
        providers.append(
            Provider(
                id=pid,
                name=name,
                url=url,
                format=fmt,
                interval=p_interval,
                components=tuple(c.strip() for c in comps),
                **_filters(check, f"{label}.", entry, filters or {}),
            )
        )
    return tuple(providers)


def load(
    config_path: str | os.PathLike | None = None,
    *,
    database: str | os.PathLike | None = None,
    log_format: str | None = None,
    log_level: str | None = None,
    log_target: str | None = None,
    metrics_listen: str | None = None,
    environ: dict | None = None,
) -> Settings:
    """Resolve Settings from the file at `config_path` (None: built-in default providers).

    `database`, `log_format`, `log_level`, `log_target` and `metrics_listen` come from options or
    environment variables, already merged and validated by the CLI; None means "not given
    there". TRACKER_INTERVAL, TRACKER_WORKERS and TRACKER_TIMEOUT (no options) are read from
    `environ` (default: os.environ) here."""
    env = os.environ if environ is None else environ
    from_env = {key: env[var] for key, var in ENV_NUMBERS.items() if env.get(var, "").strip()}
    data: dict[str, Any] = {}
    path = Path(config_path) if config_path not in (None, "") else None
    if path is not None:
        data = read_file(path)
    check = _Checker(str(path) if path else "built-in default")

    for key in data:
        if key not in TOP_KEYS:
            raise check.fail(repr(key), f"unknown key (known: {', '.join(sorted(TOP_KEYS))})")

    interval = check.positive("interval", data.get("interval", DEFAULT_INTERVAL))
    workers = check.positive_int("workers", data.get("workers", DEFAULT_WORKERS), 256)
    timeout = check.positive("timeout", data.get("timeout", DEFAULT_TIMEOUT))
    lease = DEFAULT_LEASE
    if "lease" in data:
        lease = grace_seconds(data["lease"]) or 0.0
        if lease < 1:
            raise check.fail("lease", f"{data['lease']!r} is not a duration of at least 1 s "
                             '(seconds, or "90s", "2m"; default 60)')
    # The environment beats the file (its values were checked above all the same).
    env_check = _EnvChecker("environment")
    if "interval" in from_env:
        interval = env_check.positive("TRACKER_INTERVAL", _number(from_env["interval"]))
    if "workers" in from_env:
        workers = env_check.positive_int("TRACKER_WORKERS", _number(from_env["workers"]), 256)
    if "timeout" in from_env:
        timeout = env_check.positive("TRACKER_TIMEOUT", _number(from_env["timeout"]))
    if "providers" in data:
        providers = _providers(check, data["providers"], interval, _filters(check, "", data, {}))
    else:
        providers = tuple(replace(p, interval=interval, **_filters(check, "", data, {})) for p in DEFAULT_PROVIDERS)
        # The built-in default's page at another address (a mirror, a proxy, a test server).
        default_url = env.get("TRACKER_DEFAULT_URL", "").strip()
        if default_url:
            parts = urlsplit(default_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"TRACKER_DEFAULT_URL: {default_url!r} is not an http(s) URL")
            providers = tuple(replace(p, url=default_url) for p in providers)

    # The file's own values are checked even where an option overrides them: a broken file
    # must not wait for the day the option is dropped to stop the service.
    file_fmt = check.choice("log_format", data.get("log_format", "auto"), LOG_FORMATS)
    file_level = check.choice("log_level", level_alias(data.get("log_level", "info")), LOG_LEVELS)
    file_target = check.choice("log_target", data.get("log_target", "stdout"), LOG_TARGETS)
    file_db = None
    if "database" in data:
        file_db = locate(check.string("database", data["database"]))
        if isinstance(file_db, Path) and not file_db.is_absolute() and path is not None:
            # A relative path in the file means relative to the file, not to wherever
            # the command happens to be started from.
            file_db = path.parent / file_db
    fmt = log_format or file_fmt
    level = log_level or file_level
    target = log_target or file_target
    if database not in (None, ""):
        db_path = locate(database)
    else:
        db_path = file_db or default_database_path(environ)

    file_listen = None
    if "metrics_listen" in data:
        file_listen = check.string("metrics_listen", data["metrics_listen"])
        try:
            parse_listen(file_listen)
        except ValueError as e:
            raise check.fail("metrics_listen", str(e)) from None
    listen = metrics_listen or file_listen
    notify: tuple[Destination, ...] = ()
    if "notify" in data:
        configured = {p.id for p in providers}
        notify = parse_notify(check, data["notify"], environ=env,
                              known_provider=lambda pid: pid in configured or from_catalog(pid) is not None)

    def origin(key: str, given: Any = None) -> str:
        if given not in (None, ""):
            return "given"
        if key in ENV_NUMBERS and key in from_env:
            return f"env {ENV_NUMBERS[key]}"
        return "file" if key in data else "default"

    sources = {"config_path": "given" if path is not None else "default",
               "database": origin("database", database), "log_format": origin("log_format", log_format),
               "log_level": origin("log_level", log_level), "log_target": origin("log_target", log_target),
               "interval": origin("interval"), "workers": origin("workers"), "timeout": origin("timeout"),
               "metrics_listen": origin("metrics_listen", metrics_listen), "lease": origin("lease"),
               "providers": "file" if "providers" in data else "default"}
    warnings = polite_warning(providers)
    return Settings(
        database=db_path,
        providers=providers,
        log_format=fmt,
        log_level=level,
        log_target=target,
        interval=interval,
        workers=workers,
        timeout=timeout,
        config_path=path,
        warnings=warnings,
        metrics_listen=listen,
        sources=sources,
        notify=notify,
        lease=lease,
    )
