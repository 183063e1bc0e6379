"""The command line: a thin layer over config, store and poller."""

from __future__ import annotations

import csv
import functools
import io
import json
import re
import sqlite3
import sys
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import click
from click.core import ParameterSource

from . import __version__, config, times
from .config import LOG_FORMATS, LOG_LEVELS, LOG_TARGETS, Settings
from .errors import ConfigError, TrackerError
from .text import clean

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class ExitError(click.ClickException):
    """A one-line error with the exit code its cause calls for (78 for configuration)."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def handle_errors(f: Callable) -> Callable:
    """TrackerError (and a database error that escaped) -> one line on stderr, no traceback."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except TrackerError as e:
            raise ExitError(str(e), e.exit_code) from None
        except sqlite3.Error as e:
            # Damage found after the file opened (a corrupt page): name the file.
            where = click.get_current_context().meta.get("tracker.database", "database")
            raise ExitError(f"{where}: database error: {e}") from None

    return wrapper


def config_options(f: Callable) -> Callable:
    f = click.option(
        "--db", "database", envvar="TRACKER_DB", show_envvar=True, metavar="PATH",
        help="SQLite database file. Default: $STATE_DIRECTORY/tracker.db under systemd, "
        "else ~/.local/state/tracker/tracker.db (or the config file's `database`).",
    )(f)
    f = click.option(
        "--config", "config_path", envvar="TRACKER_CONFIG", show_envvar=True, metavar="PATH",
        help="TOML config file. Default: none, which tracks OpenAI's status page every 60 s.",
    )(f)
    return f


def log_options(f: Callable) -> Callable:
    f = click.option(
        "--log-target", envvar="TRACKER_LOG_TARGET", show_envvar=True, metavar="TARGET",
        help="stdout, or journal: each record as a native journald entry with TRACKER_* fields "
        "(the systemd unit's choice; falls back to stdout where there is no journal). Default: stdout.",
    )(f)
    f = click.option(
        "--log-level", envvar="TRACKER_LOG_LEVEL", show_envvar=True, metavar="LEVEL",
        help=f"One of {', '.join(LOG_LEVELS)}. Default: info (debug adds one line per poll).",
    )(f)
    f = click.option(
        "--log-format", envvar="TRACKER_LOG_FORMAT", show_envvar=True, metavar="FORMAT",
        help="json, console or auto. Default: auto, console on a terminal and JSON lines otherwise.",
    )(f)
    return f


_ENV = {"log_format": "TRACKER_LOG_FORMAT", "log_level": "TRACKER_LOG_LEVEL", "log_target": "TRACKER_LOG_TARGET",
        "config_path": "TRACKER_CONFIG", "database": "TRACKER_DB"}


def _choice(ctx: click.Context, name: str, value: str | None, choices: tuple[str, ...]) -> str | None:
    """Validate an option/env value: a bad option is a usage error (2), a bad TRACKER_*
    variable a configuration error (78), as SPEC §6 asks."""
    if value in (None, ""):
        return None
    if value.lower() in choices:
        return value.lower()
    problem = f"{value!r} is not one of {', '.join(choices)}"
    if ctx.get_parameter_source(name) == ParameterSource.ENVIRONMENT:
        raise ExitError(f"{_ENV[name]}: {problem}", ConfigError.exit_code)
    raise click.BadParameter(problem, ctx=ctx, param_hint="--" + name.replace("_", "-"))


def settings_loader(ctx: click.Context, config_path: str | None, database: str | None,
                    log_format: str | None = None, log_level: str | None = None,
                    log_target: str | None = None) -> Callable[[], Settings]:
    """Validate option/env values now; return a function that (re)reads the config file
    with them, raising ConfigError. `tracker run` calls it again on SIGHUP."""
    fmt = _choice(ctx, "log_format", log_format, LOG_FORMATS)
    level = _choice(ctx, "log_level", log_level, LOG_LEVELS)
    target = _choice(ctx, "log_target", log_target, LOG_TARGETS)
    return functools.partial(config.load, config_path, database=database, log_format=fmt,
                             log_level=level, log_target=target)


def load_settings(ctx: click.Context, config_path: str | None, database: str | None,
                  log_format: str | None = None, log_level: str | None = None,
                  log_target: str | None = None) -> Settings:
    loader = settings_loader(ctx, config_path, database, log_format, log_level, log_target)
    try:
        settings = loader()
        ctx.meta["tracker.database"] = str(settings.database)
        return settings
    except ConfigError as e:
        message = str(e)
        if config_path and ctx.get_parameter_source("config_path") == ParameterSource.ENVIRONMENT:
            message = f"TRACKER_CONFIG: {message}"
        raise ExitError(message, e.exit_code) from None


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="tracker")
def cli() -> None:
    """Watch public status pages and log every new incident update, exactly once.

    \b
    Quick start (tracks OpenAI's status page, no config needed):
      tracker run                      # the daemon; JSON lines when piped
      tracker run --once               # one poll of every provider, then exit
      tracker incidents --open         # what is going on now
      tracker --help | COMMAND --help  # every option and its environment variable

    Settings resolve as: option > TRACKER_* environment variable > config file > default.
    """


@cli.command(context_settings=CONTEXT)
@click.option("--once", is_flag=True, help="Poll every provider once, emit what is new, and exit (for timers and cron).")
@click.option("--provider", "provider_ids", multiple=True, metavar="ID",
              help="Only this provider (repeatable): a configured id, or a catalog id "
              "(`tracker catalog`), so `--provider github --provider stripe` needs no config file.")
@config_options
@log_options
@click.pass_context
@handle_errors
def run(ctx: click.Context, once: bool, provider_ids: tuple[str, ...], config_path: str | None,
        database: str | None, log_format: str | None, log_level: str | None, log_target: str | None) -> None:
    """Poll every provider on its interval and log each new incident update.

    Runs until SIGTERM or Ctrl-C, then lets in-flight polls finish (at most a few
    seconds) and exits 0; SIGHUP re-reads the config file. Every new update is one `incident_update` record on stdout; a
    restart, or a second process on the same database, never announces an update twice.
    On the first poll of a provider, only incidents still open are announced; the rest of
    the page's history is recorded silently.

    \b
    Examples:
      tracker run
      tracker run --provider github --provider cloudflare      # catalog providers, no config file
      tracker run --config /etc/tracker/tracker.toml --log-format json
      tracker run --once --db ./tracker.db | jq 'select(.event=="incident_update")'
    """
    from .log import configure, get_logger
    from .poller import Poller
    from .store import Store
    from .systemd import journal_available, journal_socket_path

    settings = _selected(ctx, load_settings(ctx, config_path, database, log_format, log_level, log_target),
                         provider_ids)
    file_loader = settings_loader(ctx, config_path, database, log_format, log_level, log_target)

    def loader() -> Settings:  # SIGHUP: the file again, the same --provider choice
        try:
            return config.select(file_loader(), provider_ids)
        except KeyError as e:
            raise ConfigError(f"--provider {e.args[0]}: no longer configured or in the catalog") from None

    target = settings.log_target
    if target == "journal" and not journal_available():
        target = "stdout"
    configure(settings.log_format, settings.log_level, target=target)
    log = get_logger()
    if target != settings.log_target:
        log.warning("journal_unavailable", detail=f"no journald socket at {journal_socket_path()}; logging to stdout")
    store = Store.open(settings.database)
    try:
        poller = Poller(settings, store, log, source="once" if once else "run", reload=loader)
        code = poller.run_once() if once else poller.run()
    finally:
        store.close()
    ctx.exit(code)


@cli.command(context_settings=CONTEXT)
@click.option("--provider", "provider_ids", multiple=True, metavar="ID",
              help="Only this provider (repeatable). Default: every configured provider.")
@click.option("--since", callback=lambda c, p, v: _since(c, p, v), metavar="WHEN",
              help="Only incidents created since WHEN: a date, an ISO date-time, or an age such as 90d.")
@click.option("--emit", is_flag=True,
              help='Also log each newly recorded update as an incident_update record with "backfill": true, '
              "oldest first (to ship history to a log pipeline once).")
@config_options
@log_options
@click.pass_context
@handle_errors
def backfill(ctx: click.Context, provider_ids: tuple[str, ...], since: str | None, emit: bool,
             config_path: str | None, database: str | None, log_format: str | None,
             log_level: str | None, log_target: str | None) -> None:
    """Record the history the status pages offer, without announcing it.

    Reads each page's recent incidents and, for Statuspage pages, walks its history pages
    and fetches every incident not yet recorded, one request at a time per host. Safe
    while `tracker run` uses the same database: an update is recorded (and, with --emit,
    logged) by whichever process finds it first, once. Afterwards `tracker run` announces
    nothing that was backfilled. Ctrl-C stops cleanly, keeping what was recorded; run it
    again to resume (exit 130 when interrupted).

    \b
    Examples:
      tracker backfill                                  # every configured provider, silently
      tracker backfill --provider github --since 2025-01-01
      tracker backfill --emit --log-format json | jq 'select(.event=="incident_update")'
    """
    from .backfill import Backfill
    from .log import configure, get_logger
    from .store import Store
    from .systemd import journal_available

    settings = _selected(ctx, load_settings(ctx, config_path, database, log_format, log_level, log_target),
                         provider_ids)
    chosen = list(settings.providers)
    target = settings.log_target if settings.log_target != "journal" or journal_available() else "stdout"
    configure(settings.log_format, settings.log_level, target=target)
    store = Store.open(settings.database)
    try:
        if sys.stderr.isatty():
            with click.progressbar(length=len(chosen), label="Backfilling", file=sys.stderr,
                                   show_pos=True) as bar:
                code = Backfill(settings, store, get_logger(), chosen, since=since, emit=emit, progress=bar).run()
        else:
            code = Backfill(settings, store, get_logger(), chosen, since=since, emit=emit).run()
    finally:
        store.close()
    if code == 130:
        click.echo("Interrupted: what was recorded is kept; run the same command again to resume.", err=True)
    ctx.exit(code)


def _selected(ctx: click.Context, settings: Settings, ids: tuple[str, ...]) -> Settings:
    try:
        return config.select(settings, ids)
    except KeyError as e:
        configured = ", ".join(p.id for p in settings.providers)
        raise click.BadParameter(
            f"{e.args[0]} not configured (configured: {configured}) and not in the catalog "
            "(`tracker catalog WORD` searches it)", ctx=ctx, param_hint="--provider") from None


@cli.command(name="catalog", context_settings=CONTEXT)
@click.argument("word", required=False, default="")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@handle_errors
def catalog_command(word: str, as_json: bool) -> None:
    """List the built-in catalog of known status pages, or those matching WORD.

    Track one with `catalog = "ID"` in a [[providers]] table of the config file, or without
    any file: `tracker run --provider ID`.

    \b
    Examples:
      tracker catalog
      tracker catalog cloud
      tracker catalog --json | jq -r '.[] | select(.format=="incidentio") | .id'
    """
    from . import catalog

    found = catalog.search(word)
    if as_json:
        click.echo(json.dumps([{"id": e.id, "name": e.name, "url": e.url, "format": e.format,
                                "source": e.source} for e in found], indent=2))
        return
    if not found:
        click.echo(f"No catalog entry matches {word!r}.", err=True)
        return
    rows = [[e.id, clean(e.name, limit=40), e.format, e.url] for e in found]
    click.echo(_table(["ID", "NAME", "FORMAT", "URL"], rows))


def _open_readonly(settings: Settings):
    """Open the database for a read command: read-only, never created, migrated or locked.
    None, after a line on stderr naming the file, when it is missing or nothing was recorded
    in it yet (a typo in --db shows up here instead of creating an empty database)."""
    from .store import EmptyDatabase, Store

    try:
        return Store.open_readonly(settings.database)
    except EmptyDatabase as e:
        click.echo(f"Note: {e}", err=True)
        return None


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


@cli.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@config_options
@click.pass_context
@handle_errors
def providers(ctx: click.Context, as_json: bool, config_path: str | None, database: str | None) -> None:
    """List the configured providers with the result of their last poll.

    \b
    Examples:
      tracker providers
      tracker providers --config tracker.toml --json | jq '.[] | select(.last_result=="error")'
    """
    from .read import configured_format, endpoints

    settings = load_settings(ctx, config_path, database)
    store = _open_readonly(settings)
    try:
        states = store.provider_summaries() if store else {}
    finally:
        store and store.close()
    items = []
    for p in settings.providers:
        s = states.get(p.id, {})
        fmt = configured_format(p)
        known = fmt if fmt != "auto" else (s.get("detected_format") or s.get("polled_format") or "auto")
        urls = endpoints(p, known)
        items.append({
            "id": p.id, "name": p.name, "url": p.url, "format": fmt,
            "detected_format": s.get("detected_format"), "polled_format": s.get("polled_format"),
            "endpoint": urls[0], "endpoints": urls,
            "interval": p.interval, "components": list(p.components),
            "last_poll_at": s.get("last_poll_at"), "last_result": s.get("last_result"),
            "last_error": s.get("last_error"), "failures": s.get("failures", 0),
            "incidents": s.get("incidents", 0), "open_incidents": s.get("open_incidents", 0),
            "updates": s.get("updates", 0),
        })
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    rows = []
    for it in items:
        result = it["last_result"] or "never polled"
        if it["last_result"] == "error":
            result = f"error ×{it['failures']}: {clean(it['last_error'] or '', limit=60)}"
        fmt = it["format"] if it["format"] != "auto" else f"auto: {it['detected_format'] or 'not probed yet'}"
        rows.append([
            it["id"], clean(it["name"], limit=30), fmt, f"{it['interval']:g}s",
            (it["last_poll_at"] or "-")[:19].replace("T", " "), result,
            f"{it['incidents']} ({it['open_incidents']} open)", clean(it["url"], limit=60),
        ])
    click.echo(_table(["ID", "NAME", "FORMAT", "EVERY", "LAST POLL (UTC)", "RESULT", "INCIDENTS", "URL"], rows))


_RELATIVE = re.compile(r"^(\d+)\s*([dhm])$")


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    m = _RELATIVE.match(value.strip().lower())
    if m:
        unit = {"d": "days", "h": "hours", "m": "minutes"}[m.group(2)]
        return times.iso(datetime.now(timezone.utc) - timedelta(**{unit: int(m.group(1))}))
    try:
        return times.parse_date(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date (2026-01-31), a date and time (2026-01-31T12:00Z) or an age (7d, 12h)"
        ) from None


@cli.command(context_settings=CONTEXT)
@click.option("--provider", "provider_ids", multiple=True, metavar="ID", help="Only this provider (repeatable).")
@click.option("--open", "open_only", is_flag=True, help="Only incidents that are not resolved/completed.")
@click.option("--since", callback=_since, metavar="WHEN",
              help="Only incidents created since WHEN: a date, an ISO date-time, or an age such as 7d or 12h.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N incidents (newest first).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array with every update of each incident.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (one row per incident) for spreadsheets.")
@config_options
@click.pass_context
@handle_errors
def incidents(ctx: click.Context, provider_ids: tuple[str, ...], open_only: bool, since: str | None,
              limit: int | None, as_json: bool, as_csv: bool, config_path: str | None,
              database: str | None) -> None:
    """Query the recorded history of incidents, newest first.

    \b
    Examples:
      tracker incidents --open
      tracker incidents --provider openai --since 7d
      tracker incidents --since 2026-01-01 --json | jq '.[].title'
      tracker incidents --since 90d --csv > incidents.csv
    """
    settings = load_settings(ctx, config_path, database)
    store = _open_readonly(settings)
    try:
        found = store.query_incidents(provider_ids, open_only=open_only, since=since, limit=limit,
                                      with_updates=as_json) if store else []
    finally:
        store and store.close()
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    if as_csv:
        out = io.StringIO()
        columns = ["provider_id", "provider", "incident_id", "title", "status", "impact", "kind",
                   "created_at", "resolved_at", "update_count", "components", "url"]
        writer = csv.writer(out)
        writer.writerow(columns)
        for i in found:
            writer.writerow([", ".join(i[c]) if c == "components" else i[c] for c in columns])
        click.echo(out.getvalue(), nl=False)
        return
    if not found:
        click.echo("No incidents recorded" + (" that match." if (provider_ids or open_only or since) else " yet."), err=True)
        return
    rows = [[
        i["created_at"][:16].replace("T", " "), i["provider_id"], i["status"], i["impact"],
        str(i["update_count"]), clean(i["title"], limit=80),
    ] for i in found]
    click.echo(_table(["STARTED (UTC)", "PROVIDER", "STATUS", "IMPACT", "UPDATES", "TITLE"], rows))


@cli.group(context_settings=CONTEXT)
def db() -> None:
    """Database maintenance."""


@db.command(context_settings=CONTEXT)
@click.option("--create", is_flag=True, help="Create the database file if it does not exist yet.")
@config_options
@click.pass_context
@handle_errors
def migrate(ctx: click.Context, create: bool, config_path: str | None, database: str | None) -> None:
    """Apply pending schema migrations (every command also does this when it opens the
    database), then check the file's integrity (PRAGMA quick_check).

    \b
    A missing file is an error (a typo in --db would otherwise create an empty database);
    --create makes a new one.

    \b
    Examples:
      tracker db migrate --db /var/lib/tracker/tracker.db
      tracker db migrate --db ./new.db --create
    """
    from .store import Store

    settings = load_settings(ctx, config_path, database)
    store = Store.open(settings.database, migrate=False, create=create)
    try:
        ran = store.migrate()
        store.check()
    finally:
        store.close()
    for name in ran:
        click.echo(f"Applied {name}")
    click.echo(f"{settings.database}: schema up to date" + ("" if ran else " (nothing to apply)"))
