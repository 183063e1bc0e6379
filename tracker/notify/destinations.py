"""`[[notify]]` tables (docs/contract.md §7): where announced updates are sent, validated into
frozen `Destination`s.

Secrets (a destination URL, an HMAC secret, an SMTP password) come from environment variables
named in the file (`url_env`, `secret_env`, `password_env`), so the file itself holds none. They
are kept in fields left out of `repr`, never formatted into a message, and every error text a
delivery produces is passed through `Destination.redact` before it is logged.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlsplit

TYPES = ("webhook", "slack", "discord", "teams", "email", "pagerduty", "opsgenie", "apprise")
# Alerting destinations: one alert per incident, opened with it and resolved with it (the
# action of each delivery is decided when it is queued: notify.queue).
ALERTING = ("pagerduty", "opsgenie")
DEFAULT_URLS = {"pagerduty": "https://events.pagerduty.com/v2/enqueue", "opsgenie": "https://api.opsgenie.com"}
KINDS = ("incident", "maintenance")
IMPACTS = ("none", "minor", "major", "critical")
IMPACT_RANK = {name: rank for rank, name in enumerate(IMPACTS)}

DEFAULT_RETENTION = 24 * 3600.0  # seconds a delivery is retried before it is dropped
DEFAULT_TIMEOUT = 10.0  # seconds: connect + answer of one delivery
# At most N messages per W seconds per destination, from each service's documentation:
# Slack incoming webhooks 1 message a second; Discord webhooks 5 requests per 2 seconds;
# Teams webhooks throttle above 4 requests a second. Plain webhooks and mail: no limit.
# PagerDuty's Events API v2 takes 120 events a minute per integration key; Opsgenie's Alert API
# a few per second per key; Apprise stands for a hundred services, most of them chat: a message a
# second is what they all take.
DEFAULT_RATES: dict[str, tuple[int, float]] = {"slack": (1, 1.0), "discord": (5, 2.0), "teams": (4, 1.0),
                                               "pagerduty": (2, 1.0), "opsgenie": (5, 1.0), "apprise": (1, 1.0)}

COMMON_KEYS = {"name", "type", "providers", "kinds", "min_impact", "components", "backfill", "retention", "rate",
               "edits"}
HTTP_KEYS = {"url", "url_env", "timeout"}
KEYS_BY_TYPE = {
    "webhook": COMMON_KEYS | HTTP_KEYS | {"secret_env"},
    "slack": COMMON_KEYS | HTTP_KEYS,
    "discord": COMMON_KEYS | HTTP_KEYS,
    "teams": COMMON_KEYS | HTTP_KEYS,
    "email": COMMON_KEYS | {"smtp", "from", "to", "username_env", "password_env", "starttls", "timeout"},
    "pagerduty": COMMON_KEYS | {"url", "routing_key_env", "timeout"},
    "opsgenie": COMMON_KEYS | {"url", "api_key_env", "timeout"},
    "apprise": COMMON_KEYS | {"url_env", "timeout"},
}
ALL_KEYS = set().union(*KEYS_BY_TYPE.values())

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ADDRESS_RE = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+$")
_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|min|h|d)?$")
_RATE_RE = re.compile(r"^(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*(s|m|min|h)$")
_UNITS = {None: 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


@dataclass(frozen=True)
class Destination:
    """One `[[notify]]` table. Fields holding a secret are left out of repr and never shown."""

    name: str
    type: str
    url: str | None = field(default=None, repr=False)
    url_env: str | None = None
    secret: str | None = field(default=None, repr=False)
    secret_env: str | None = None
    providers: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    min_impact: str = "none"
    components: tuple[str, ...] = ()
    backfill: bool = False
    smtp: str | None = None  # "host:port"
    from_: str | None = None
    to: tuple[str, ...] = ()
    username: str | None = field(default=None, repr=False)
    username_env: str | None = None
    password: str | None = field(default=None, repr=False)
    password_env: str | None = None
    starttls: bool = True
    retention: float = DEFAULT_RETENTION
    rate: tuple[int, float] | None = None  # (messages, per seconds); None: no limit
    timeout: float = DEFAULT_TIMEOUT
    edits: bool = True  # incident_update_edited records too (pagers: false by default)
    routing_key: str | None = field(default=None, repr=False)  # PagerDuty's integration key
    routing_key_env: str | None = None
    api_key: str | None = field(default=None, repr=False)  # Opsgenie's API integration key
    api_key_env: str | None = None

    def wants(self, record: dict[str, Any], touched: Iterable[str] | None = None) -> bool:
        """Whether this destination receives `record` (an incident_update or an edit).
        `touched`: every component the incident names (as the providers' own `components`
        filter judges the incident); default: the record's components."""
        if record.get("backfill") and not self.backfill:
            return False
        if record.get("event") == "incident_update_edited" and not self.edits:
            return False
        if self.providers and record.get("provider_id") not in self.providers:
            return False
        if self.kinds and record.get("kind") not in self.kinds:
            return False
        # Impact ranks incidents; a maintenance is chosen (or not) by `kinds`.
        if record.get("kind") != "maintenance" and IMPACT_RANK.get(str(record.get("impact")), 0) < \
                IMPACT_RANK[self.min_impact]:
            return False
        if self.components:
            wanted = {c.lower() for c in self.components}
            names = record.get("components") or () if touched is None else touched
            if not wanted & {str(c).lower() for c in names}:
                return False
        return True

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value this destination holds, longest first (for redaction)."""
        found = [self.secret, self.password, self.routing_key, self.api_key]
        if self.type not in ALERTING:  # a pager's URL is the service's public endpoint
            found.append(self.url)
        if self.url and self.type not in ALERTING:
            parts = urlsplit(self.url)
            # The path and query of a webhook URL are its credential (Slack, Discord, Teams).
            found += [parts.path if len(parts.path) > 8 else None, parts.query or None]
        return tuple(sorted({s for s in found if s}, key=len, reverse=True))

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "<redacted>")
        return text

    @property
    def target(self) -> str:
        """Where it sends, in words safe to show: the variable holding the URL, or the SMTP
        server and the recipients."""
        if self.type == "email":
            return f"smtp {self.smtp} to {', '.join(self.to)}"
        if self.type in ALERTING:
            return str(self.url)
        return f"${self.url_env}" if self.url_env else "url in the config file (hidden)"

    def describe(self) -> dict[str, Any]:
        """The destination as `tracker config` / `tracker notify list` show it: secrets replaced
        by the name of the variable that holds them."""
        shown: dict[str, Any] = {"name": self.name, "type": self.type, "target": self.target}
        if self.type in ALERTING:
            shown["endpoint"] = self.url  # the service's public API (a `url` would be masked as a secret)
            key = self.routing_key_env or self.api_key_env
            shown["routing_key" if self.type == "pagerduty" else "api_key"] = f"${key}"
        elif self.type != "email":
            shown["url"] = f"${self.url_env}" if self.url_env else "(hidden)"
        if self.secret_env:
            shown["secret"] = f"${self.secret_env}"
        if self.type == "email":
            shown.update(smtp=self.smtp, starttls=self.starttls, **{"from": self.from_}, to=list(self.to))
            if self.username_env:
                shown.update(username=f"${self.username_env}", password=f"${self.password_env}")
        shown.update(providers=list(self.providers), kinds=list(self.kinds), min_impact=self.min_impact,
                     components=list(self.components), backfill=self.backfill, edits=self.edits,
                     retention=self.retention, rate=_show_rate(self.rate), timeout=self.timeout)
        return shown


def _show_rate(rate: tuple[int, float] | None) -> str:
    if rate is None:
        return "none"
    return f"{rate[0]}/s" if rate[1] == 1 else f"{rate[0]}/{rate[1]:g}s"


def _duration(value: Any) -> float | None:
    """Seconds from a positive number or a string such as "90m", "24h", "2d"."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) and value > 0 else None
    if isinstance(value, str):
        m = _DURATION_RE.match(value.strip().lower())
        if m and float(m.group(1)) > 0:
            return float(m.group(1)) * _UNITS[m.group(2)]
    return None


def _rate(value: Any) -> tuple[int, float] | None | bool:
    """(messages, seconds) from "1/s", "5/2s", "30/min"; None for false/"none"; False if bad."""
    if value is False or (isinstance(value, str) and value.strip().lower() in ("none", "off")):
        return None
    if isinstance(value, str):
        m = _RATE_RE.match(value.strip().lower())
        if m and int(m.group(1)) > 0:
            per = float(m.group(2) or 1) * _UNITS[m.group(3)]
            if per > 0:
                return int(m.group(1)), per
    return False


def parse(check: Any, value: Any, *, environ: dict[str, str] | os._Environ | None = None,
          known_provider: Callable[[str], bool] | None = None) -> tuple[Destination, ...]:
    """Validate the `notify` key (an array of tables). `check` is config's checker (its
    `fail(where, problem)` names the file); `known_provider(id)` says whether a `providers`
    filter names a provider that exists. Raises ConfigError."""
    env = os.environ if environ is None else environ
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise check.fail("notify", "must be an array of tables ([[notify]])")
    found: list[Destination] = []
    names: dict[str, int] = {}
    per_type: dict[str, int] = {}
    for number, table in enumerate(value, start=1):
        found.append(_one(check, number, table, env, names, per_type, known_provider))
    return tuple(found)


def _one(check: Any, number: int, t: dict[str, Any], env: Any, names: dict[str, int],
         per_type: dict[str, int], known_provider: Callable[[str], bool] | None) -> Destination:
    label = f"notify #{number}"
    if isinstance(t.get("name"), str) and t["name"].strip():
        label += f" ({t['name'].strip()!r})"
    if "type" not in t:
        raise check.fail(label, f"missing key 'type' (one of {', '.join(TYPES)})")
    kind = t["type"]
    if not isinstance(kind, str) or kind.strip().lower() not in TYPES:
        raise check.fail(f"{label}.type", f"{kind!r} is not one of {', '.join(TYPES)}")
    kind = kind.strip().lower()
    allowed = KEYS_BY_TYPE[kind]
    for key in t:
        if key not in ALL_KEYS:
            raise check.fail(label, f"unknown key {key!r} (known: {', '.join(sorted(ALL_KEYS))})")
        if key not in allowed:
            users = [k for k in TYPES if key in KEYS_BY_TYPE[k]]
            raise check.fail(f"{label}.{key}", f"is for type {' and '.join(users)} only, not {kind}")

    per_type[kind] = per_type.get(kind, 0) + 1
    default_name = kind if per_type[kind] == 1 else f"{kind}-{per_type[kind]}"
    name = t.get("name", default_name)
    if not isinstance(name, str) or not _NAME_RE.match(name.strip()):
        raise check.fail(f"{label}.name", f"{name!r} must be 1-64 of a-z 0-9 . _ - starting with a letter or digit")
    name = name.strip()
    if name in names:
        raise check.fail(f"{label}.name", f"duplicate destination name {name!r} (also notify #{names[name]}); "
                         "give each [[notify]] its own name")
    names[name] = number

    def variable(key: str, required: bool = True) -> tuple[str | None, str | None]:
        """(variable name, its value) for a `*_env` key; the value is never put in a message."""
        if key not in t:
            if required:
                raise check.fail(label, f"missing key {key!r}")
            return None, None
        var = t[key]
        if not isinstance(var, str) or not _ENV_RE.match(var.strip()):
            raise check.fail(f"{label}.{key}", f"{var!r} is not an environment variable name")
        var = var.strip()
        secret = env.get(var, "")
        if not secret.strip():
            raise check.fail(f"{label}.{key}", f"{var} is not set")
        return var, secret.strip()

    def names_list(key: str, pattern: re.Pattern[str] | None = None) -> tuple[str, ...]:
        raw = t.get(key, [])
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not all(isinstance(x, str) and x.strip() for x in raw):
            raise check.fail(f"{label}.{key}", f"{raw!r} is not a list of names")
        items = tuple(x.strip() for x in raw)
        for x in items:
            if pattern is not None and not pattern.match(x):
                raise check.fail(f"{label}.{key}", f"{x!r} is not a valid value")
        return items

    fields: dict[str, Any] = {"name": name, "type": kind}
    if kind in ALERTING:
        url = t.get("url", DEFAULT_URLS[kind])
        parts = urlsplit(url if isinstance(url, str) else "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise check.fail(f"{label}.url", f"{url!r} is not an http(s) URL")
        fields["url"] = url.rstrip("/") if kind == "opsgenie" else url
        key = "routing_key_env" if kind == "pagerduty" else "api_key_env"
        fields[key], fields[key[:-4]] = variable(key)
    elif kind == "apprise":
        var, url = variable("url_env")
        fields["url_env"], fields["url"] = var, url
        _apprise_check(check, f"{label}.url_env", var, url)
    elif kind != "email":
        if ("url" in t) == ("url_env" in t):
            raise check.fail(label, "give one of 'url_env' (the environment variable holding the URL) or 'url'")
        if "url_env" in t:
            var, url = variable("url_env")
            where, what = f"{label}.url_env", f"{var} does not hold an http(s) URL"
            fields["url_env"] = var
        else:
            url = t["url"] if isinstance(t["url"], str) else ""
            where, what = f"{label}.url", "is not an http(s) URL"
        parts = urlsplit(url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise check.fail(where, what)  # the value itself is a secret: never in the message
        fields["url"] = url
        if "secret_env" in t:
            fields["secret_env"], fields["secret"] = variable("secret_env")
    else:
        for key in ("smtp", "from", "to"):
            if key not in t:
                raise check.fail(label, f"missing key {key!r}")
        smtp = check.string(f"{label}.smtp", t["smtp"])
        host, sep, port_text = smtp.rpartition(":")
        if not sep:
            host, port_text = smtp, "587"
        if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise check.fail(f"{label}.smtp", f"{smtp!r} is not HOST:PORT (for example smtp.example.com:587)")
        port = int(port_text)
        fields["smtp"] = f"{host}:{port}"
        sender = check.string(f"{label}.from", t["from"])
        if not _ADDRESS_RE.match(sender.rsplit("<", 1)[-1].rstrip(">").strip()):
            raise check.fail(f"{label}.from", f"{sender!r} is not a mail address")
        fields["from_"] = sender
        to = names_list("to")
        if not to:
            raise check.fail(f"{label}.to", "names no recipient")
        for address in to:
            if not _ADDRESS_RE.match(address):
                raise check.fail(f"{label}.to", f"{address!r} is not a mail address")
        fields["to"] = to
        starttls = t.get("starttls", port == 587)
        if not isinstance(starttls, bool):
            raise check.fail(f"{label}.starttls", f"{starttls!r} is not true or false")
        fields["starttls"] = starttls
        if ("username_env" in t) != ("password_env" in t):
            raise check.fail(label, "give both 'username_env' and 'password_env', or neither")
        if "username_env" in t:
            fields["username_env"], fields["username"] = variable("username_env")
            fields["password_env"], fields["password"] = variable("password_env")
            if not starttls and port != 465:
                raise check.fail(f"{label}.starttls", "is false: the password would cross the network in "
                                 "clear text (use starttls = true, or port 465)")

    fields["providers"] = names_list("providers")
    if known_provider is not None:
        for pid in fields["providers"]:
            if not known_provider(pid):
                raise check.fail(f"{label}.providers", f"{pid!r} is neither a configured provider id nor in "
                                 "the catalog")
    kinds = tuple(k.lower() for k in names_list("kinds"))
    for k in kinds:
        if k not in KINDS:
            raise check.fail(f"{label}.kinds", f"{k!r} is not one of {', '.join(KINDS)}")
    fields["kinds"] = kinds
    if "kinds" in t and not kinds:
        raise check.fail(f"{label}.kinds", "is empty: nothing would be sent")
    if kind in ALERTING and "kinds" not in t:
        fields["kinds"] = ("incident",)  # a pager pages for maintenance only when asked to
    fields["min_impact"] = check.choice(f"{label}.min_impact", t.get("min_impact", "none"), IMPACTS)
    edits = t.get("edits", kind not in ALERTING)  # a changed text is news in a channel, not a page
    if not isinstance(edits, bool):
        raise check.fail(f"{label}.edits", f"{edits!r} is not true or false")
    fields["edits"] = edits
    fields["components"] = names_list("components")
    backfill = t.get("backfill", False)
    if not isinstance(backfill, bool):
        raise check.fail(f"{label}.backfill", f"{backfill!r} is not true or false")
    fields["backfill"] = backfill
    if "retention" in t:
        retention = _duration(t["retention"])
        if retention is None:
            raise check.fail(f"{label}.retention", f"{t['retention']!r} is not a duration (seconds, or \"24h\", \"90m\", \"2d\")")
        fields["retention"] = retention
    rate = _rate(t["rate"]) if "rate" in t else DEFAULT_RATES.get(kind)
    if rate is False:
        raise check.fail(f"{label}.rate", f"{t['rate']!r} is not a rate such as \"1/s\", \"5/2s\" or \"30/min\" "
                         "(or \"none\")")
    fields["rate"] = rate
    if "timeout" in t:
        fields["timeout"] = float(check.positive(f"{label}.timeout", t["timeout"]))
    return Destination(**fields)


def _apprise_check(check: Any, where: str, var: str, url: str) -> None:
    """An Apprise URL that Apprise itself understands (Apprise is imported only here, and only
    when a destination of that type exists). The URL is a secret: never in the message."""
    try:
        import apprise
    except ImportError:
        raise check.fail(where, "type apprise needs Apprise: pip install 'statuspage-tracker[apprise]'") from None
    scheme = url.split("://", 1)[0] if "://" in url else ""
    found = apprise.Apprise()
    with apprise.LogCapture(level=apprise.logging.CRITICAL):  # it would log the URL it refuses
        taken = found.add(url)
    if not taken:
        known = f" (scheme {scheme!r} is not one Apprise knows)" if scheme and not _apprise_knows(scheme) else ""
        raise check.fail(where, f"{var} holds a URL Apprise does not understand{known}; see "
                         "https://github.com/caronc/apprise/wiki")


def _apprise_knows(scheme: str) -> bool:
    import apprise

    try:
        for service in apprise.Apprise().details()["schemas"]:
            names = [*(service.get("protocols") or ()), *(service.get("secure_protocols") or ())]
            if scheme.lower() in (str(n).lower() for n in names):
                return True
        return False
    except Exception:  # details() is only for the message
        return True


__all__ = ["ALERTING", "DEFAULT_RATES", "DEFAULT_RETENTION", "Destination", "IMPACTS", "KINDS", "TYPES", "parse"]
