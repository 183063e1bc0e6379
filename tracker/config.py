"""Load and validate configuration into frozen dataclasses.

Resolution order for every setting (SPEC §2): command-line option > TRACKER_* environment
variable > config file > built-in default. Every problem is a ConfigError whose text is one
line naming the file (or variable), the key and the value.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .adapters import FORMATS as _REGISTRY
from .errors import ConfigError

ADAPTER_FORMATS = tuple(_REGISTRY)

LOG_FORMATS = ("auto", "json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_TARGETS = ("stdout", "journal")
FORMATS = ("auto", *ADAPTER_FORMATS)  # the adapter registry is the one list of formats
POLITE_INTERVAL = 30  # seconds; below this a warning is logged once

DEFAULT_INTERVAL = 60
DEFAULT_WORKERS = 8
DEFAULT_TIMEOUT = 20.0  # seconds: total deadline of one request, connect and read included
DEFAULT_MAX_BYTES = 2 * 1024 * 1024

TOP_KEYS = {"interval", "workers", "database", "log_format", "log_level", "log_target", "timeout", "providers"}
PROVIDER_KEYS = {"catalog", "name", "url", "id", "format", "interval", "components"}
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

    database: Path
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
    """Only the providers named: configured ones by id, others from the catalog (SPEC §5:
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
    warnings = tuple(w for w in settings.warnings if any(repr(p.id) in w for p in chosen))
    return replace(settings, providers=tuple(chosen), warnings=warnings)


def _providers(check: _Checker, value: Any, interval: float) -> tuple[Provider, ...]:
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
    environ: dict | None = None,
) -> Settings:
    """Resolve Settings from the file at `config_path` (None: built-in default providers).

    `database`, `log_format`, `log_level` and `log_target` come from options or environment variables,
    already merged and validated by the CLI; None means "not given there"."""
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
    if "providers" in data:
        providers = _providers(check, data["providers"], interval)
    else:
        providers = tuple(replace(p, interval=interval) for p in DEFAULT_PROVIDERS)

    # The file's own values are checked even where an option overrides them: a broken file
    # must not wait for the day the option is dropped to stop the service.
    file_fmt = check.choice("log_format", data.get("log_format", "auto"), LOG_FORMATS)
    file_level = check.choice("log_level", data.get("log_level", "info"), LOG_LEVELS)
    file_target = check.choice("log_target", data.get("log_target", "stdout"), LOG_TARGETS)
    file_db = None
    if "database" in data:
        file_db = Path(check.string("database", data["database"])).expanduser()
        if not file_db.is_absolute() and path is not None:
            # A relative path in the file means relative to the file, not to wherever
            # the command happens to be started from.
            file_db = path.parent / file_db
    fmt = log_format or file_fmt
    level = log_level or file_level
    target = log_target or file_target
    if database not in (None, ""):
        db_path = Path(database).expanduser()
    else:
        db_path = file_db or default_database_path(environ)

    warnings = tuple(
        f"provider {p.id!r} is polled every {p.interval:g} s; status pages are shared public "
        f"resources, {POLITE_INTERVAL} s or more is polite"
        for p in providers
        if p.interval < POLITE_INTERVAL
    )
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
    )
