"""The command line: a thin layer over config, store and poller."""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import re
import sqlite3
import sys
import time
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
        "--db", "database", envvar=["TRACKER_DB", "TRACKER_DATABASE"], show_envvar=True, metavar="PATH|URL",
        help="SQLite database file, or a PostgreSQL URL (postgresql://user@host/db; the password from "
        "PGPASSWORD or ~/.pgpass) that a pair of hosts share. Default: $STATE_DIRECTORY/tracker.db "
        "under systemd, else ~/.local/state/tracker/tracker.db (or the config file's `database`).",
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
        "config_path": "TRACKER_CONFIG", "database": "TRACKER_DB", "metrics_listen": "TRACKER_METRICS_LISTEN"}


def _bad(ctx: click.Context, name: str, problem: str) -> click.ClickException:
    """A bad option is a usage error (2), a bad TRACKER_* variable a configuration error
    (78), as docs/contract.md §6 asks."""
    if ctx.get_parameter_source(name) == ParameterSource.ENVIRONMENT:
        return ExitError(f"{_ENV[name]}: {problem}", ConfigError.exit_code)
    return click.BadParameter(problem, ctx=ctx, param_hint="--" + name.replace("_", "-"))


def _choice(ctx: click.Context, name: str, value: str | None, choices: tuple[str, ...]) -> str | None:
    """Validate an option/env value against `choices` (`warn` is taken for `warning`)."""
    if value in (None, ""):
        return None
    value = config.level_alias(value) if name == "log_level" else value
    if value.lower() in choices:
        return value.lower()
    raise _bad(ctx, name, f"{value!r} is not one of {', '.join(choices)}")


def _listen(ctx: click.Context, value: str | None) -> str | None:
    """Validate --metrics-listen / TRACKER_METRICS_LISTEN (HOST:PORT)."""
    if value in (None, ""):
        return None
    from .metrics import parse_listen

    try:
        parse_listen(value)
    except ValueError as e:
        raise _bad(ctx, "metrics_listen", str(e)) from None
    return value


def settings_loader(ctx: click.Context, config_path: str | None, database: str | None,
                    log_format: str | None = None, log_level: str | None = None,
                    log_target: str | None = None, metrics_listen: str | None = None) -> Callable[[], Settings]:
    """Validate option/env values now; return a function that (re)reads the config file
    with them, raising ConfigError. `tracker run` calls it again on SIGHUP."""
    fmt = _choice(ctx, "log_format", log_format, LOG_FORMATS)
    level = _choice(ctx, "log_level", log_level, LOG_LEVELS)
    target = _choice(ctx, "log_target", log_target, LOG_TARGETS)
    listen = _listen(ctx, metrics_listen)
    return functools.partial(config.load, config_path, database=database, log_format=fmt,
                             log_level=level, log_target=target, metrics_listen=listen)


def load_settings(ctx: click.Context, config_path: str | None, database: str | None,
                  log_format: str | None = None, log_level: str | None = None,
                  log_target: str | None = None, metrics_listen: str | None = None) -> Settings:
    loader = settings_loader(ctx, config_path, database, log_format, log_level, log_target, metrics_listen)
    try:
        settings = loader()
        ctx.meta["tracker.database"] = str(settings.database)
        return settings
    except ConfigError as e:
        message = str(e)
        if (config_path and ctx.get_parameter_source("config_path") == ParameterSource.ENVIRONMENT
                and not message.startswith("TRACKER_")):  # a bad TRACKER_INTERVAL names itself
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
@click.option("--metrics-listen", envvar="TRACKER_METRICS_LISTEN", show_envvar=True, metavar="HOST:PORT",
              help="Serve Prometheus metrics at http://HOST:PORT/metrics (the daemon only, not --once); "
              "e.g. 127.0.0.1:9464, or :9464 for every address. Default: none (or the config file's "
              "`metrics_listen`).")
@config_options
@log_options
@click.pass_context
@handle_errors
def run(ctx: click.Context, once: bool, provider_ids: tuple[str, ...], metrics_listen: str | None,
        config_path: str | None, database: str | None, log_format: str | None, log_level: str | None,
        log_target: str | None) -> None:
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

    loaded = load_settings(ctx, config_path, database, log_format, log_level, log_target, metrics_listen)
    settings = _selected(ctx, loaded, provider_ids)
    file_loader = settings_loader(ctx, config_path, database, log_format, log_level, log_target, metrics_listen)
    configured = {p.id for p in loaded.providers}

    def loader() -> Settings:  # SIGHUP: the file again, the same --provider choice
        nonlocal configured
        fresh = file_loader()
        try:
            chosen = config.select(fresh, provider_ids)
        except KeyError as e:
            raise ConfigError(f"--provider {e.args[0]}: no longer configured or in the catalog") from None
        now_configured = {p.id for p in fresh.providers}
        for p in chosen.providers:
            if p.id in configured and p.id not in now_configured:
                # The id still names a catalog page: polled from now on, but never silently.
                log.warning("provider_from_catalog", provider_id=p.id, url=p.url, format=p.format,
                            detail="no longer in the config file; --provider now polls the catalog's page")
        configured = now_configured
        return chosen

    target = settings.log_target
    if target == "journal" and not journal_available():
        target = "stdout"
    configure(settings.log_format, settings.log_level, target=target)
    log = get_logger()
    if target != settings.log_target:
        log.warning("journal_unavailable", detail=f"no journald socket at {journal_socket_path()}; logging to stdout")
    store = Store.open(settings.database)
    server = None
    try:
        if settings.metrics_listen and not once:
            from . import metrics

            server = metrics.serve(settings.metrics_listen, settings.database)
            log.info("metrics_listening", address=server.address, url=f"http://{server.address}/metrics")
        poller = Poller(settings, store, log, source="once" if once else "run", reload=loader)
        code = poller.run_once() if once else poller.run()
    finally:
        if server is not None:
            server.close()
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
    again to resume (exit 130 when interrupted; a second Ctrl-C stops at once). Exits 1 when
    no provider could be read. On a terminal a progress line on stderr counts providers done,
    requests, history pages and new updates.

    \b
    Examples:
      tracker backfill                                  # every configured provider, silently
      tracker backfill --provider github --since 2025-01-01
      tracker backfill --emit --log-format json | jq 'select(.event=="incident_update")'
    """
    from .backfill import Backfill
    from .log import configure, get_logger
    from .progress import Progress
    from .store import Store
    from .systemd import journal_available

    settings = _selected(ctx, load_settings(ctx, config_path, database, log_format, log_level, log_target),
                         provider_ids)
    chosen = list(settings.providers)
    target = settings.log_target if settings.log_target != "journal" or journal_available() else "stdout"
    # On a terminal, a progress line on stderr; log records (stdout) erase it and it is drawn
    # again below them, so the two never share a line.
    bar = Progress(sys.stderr, total=len(chosen)) if sys.stderr.isatty() else None
    configure(settings.log_format, settings.log_level, target=target,
              stream=bar.stream(sys.stdout) if bar is not None else None)
    store = Store.open(settings.database)
    try:
        code = Backfill(settings, store, get_logger(), chosen, since=since, emit=emit, progress=bar).run()
    finally:
        store.close()
    if code == 130:
        click.echo("Interrupted: what was recorded is kept; run the same command again to resume.", err=True)
    elif code == 1:
        click.echo(f"Error: no provider could be read ({len(chosen)} tried; see the backfill_failed records)",
                   err=True)
    ctx.exit(code)


def _selected(ctx: click.Context, settings: Settings, ids: tuple[str, ...]) -> Settings:
    try:
        return config.select(settings, ids)
    except KeyError as e:
        configured = ", ".join(p.id for p in settings.providers)
        raise click.BadParameter(
            f"{e.args[0]} not configured (configured: {configured}) and not in the catalog "
            "(`tracker catalog WORD` searches it)", ctx=ctx, param_hint="--provider") from None


class _CatalogGroup(click.Group):
    """`tracker catalog [WORD]` lists (or searches) the catalog; `tracker catalog check`
    checks it. A first word that is not a subcommand is the search word."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            ctx.meta["catalog_word"] = args[0]
            args = args[1:]
        return super().parse_args(ctx, args)


@cli.group(name="catalog", cls=_CatalogGroup, invoke_without_command=True, context_settings=CONTEXT,
           subcommand_metavar="[WORD | check [ID]...]")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
@handle_errors
def catalog_command(ctx: click.Context, as_json: bool) -> None:
    """List the built-in catalog of known status pages, or those matching WORD; `tracker
    catalog check` reads the entries' pages to see that they are still true.

    Track one with `catalog = "ID"` in a [[providers]] table of the config file, or without
    any file: `tracker run --provider ID`.

    \b
    Examples:
      tracker catalog
      tracker catalog cloud
      tracker catalog --json | jq -r '.[] | select(.format=="incidentio") | .id'
      tracker catalog check github stripe
    """
    if ctx.invoked_subcommand is not None:
        return
    from . import catalog

    word = ctx.meta.get("catalog_word", "")
    found = catalog.search(word)
    if as_json:
        click.echo(json.dumps([{"id": e.id, "name": e.name, "url": e.url, "format": e.format,
                                "source": e.source, "lists": list(e.lists)} for e in found], indent=2))
        return
    if not found:
        click.echo(f"No catalog entry matches {word!r}.", err=True)
        return
    # LISTS: how many independent public lists name the page's host (0: not confirmed yet)
    rows = [[e.id, clean(e.name, limit=40), e.format, str(len(e.lists)), e.url] for e in found]
    click.echo(_table(["ID", "NAME", "FORMAT", "LISTS", "URL"], rows))


@catalog_command.command(name="check", context_settings=CONTEXT)
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--catalog", "catalog_path", type=click.Path(dir_okay=False), metavar="PATH",
              help="Check the entries of this catalog CSV (id,name,url,format,source, as tools/build_catalog.py "
                   "writes it) instead of the built-in catalog.")
@click.option("--workers", type=click.IntRange(1, 16), default=4, show_default=True,
              help="Pages asked at a time.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=config.DEFAULT_TIMEOUT,
              show_default=True, help="Seconds each request may take.")
@handle_errors
def catalog_check(ids: tuple[str, ...], as_json: bool, catalog_path: str | None, workers: int, timeout: float) -> None:
    """Read each catalog entry's page once (every entry, or the IDs given) and say whether the
    entry is still true: ok (the page answers in the entry's format), moved (it answers from
    another host after a redirect: the new URL), wrong-format (what it reads as), gone (404 or
    a name that does not resolve), blocked (401, 403 or 429), failing (any other error).

    A few pages at a time, with tracker's User-Agent and its usual time and size bounds. Exit
    0 when every entry checked is ok, 1 when any is not. Needs the network; touches no
    database.

    \b
    Examples:
      tracker catalog check
      tracker catalog check github stripe openai
      tracker catalog check --json | jq -r '.[] | select(.result != "ok") | .id'
      tracker catalog check --catalog tracker/catalog.csv
    """
    from . import catalog
    from .catalog_check import as_json as results_json
    from .catalog_check import check, summary
    from .fetch import Fetcher

    if catalog_path:
        try:
            entries = catalog.read_file(catalog_path)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--catalog") from None
    else:
        entries = catalog.load()
    if ids:
        known = {e.id: e for e in entries}
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise click.BadParameter(f"{', '.join(map(repr, unknown))} not in the catalog "
                                     "(`tracker catalog WORD` searches it)", param_hint="ID")
        entries = tuple(known[i] for i in dict.fromkeys(ids))
    counted = [0]
    tty = sys.stderr.isatty()

    def done(result: object) -> None:
        counted[0] += 1
        if tty:
            click.echo(f"\r\x1b[KChecking the catalog: {counted[0]}/{len(entries)}", err=True, nl=False)

    fetcher = Fetcher(timeout=timeout, workers=workers)
    fetcher.keep(e.url for e in entries)
    try:
        results = check(entries, fetcher, workers=workers, done=done)
    finally:
        fetcher.close()
        if tty:
            click.echo("\r\x1b[K", err=True, nl=False)
    if as_json:
        click.echo(results_json(results))
    else:
        rows = [[r.id, r.format, r.result, clean(r.new_url or r.detail or "", limit=100)] for r in results]
        if rows:
            click.echo(_table(["ID", "FORMAT", "RESULT", "DETAIL"], rows))
        counts = summary(results)
        click.echo(", ".join(f"{n} {name}" for name, n in counts.items() if n) or "nothing checked", err=True)
    if any(r.result != "ok" for r in results):
        sys.exit(1)


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
    """List the configured providers with the result of their last poll, their last
    successful poll and when the next one is due (in backoff: not before that time).

    \b
    Examples:
      tracker providers
      tracker providers --config tracker.toml --json | jq '.[] | select(.last_result=="error")'
    """
    from .models import PollState
    from .read import configured_format, endpoints, known_format

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
        urls = endpoints(p, known_format(p, PollState(detected_format=s.get("detected_format"))))
        items.append({
            "id": p.id, "name": p.name, "url": p.url, "format": fmt,
            "detected_format": s.get("detected_format"), "polled_format": s.get("polled_format"),
            "endpoint": urls[0], "endpoints": urls,
            "interval": p.interval, "components": list(p.components),
            "last_poll_at": s.get("last_poll_at"), "last_result": s.get("last_result"),
            "last_error": s.get("last_error"), "failures": s.get("failures", 0),
            "last_ok_at": s.get("last_ok_at"), "next_poll_at": _next_poll(p, s),
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
            _hms(it["last_poll_at"]), result, _hms(it["last_ok_at"]), _hms(it["next_poll_at"]),
            f"{it['incidents']} ({it['open_incidents']} open)", clean(it["url"], limit=60),
        ])
    click.echo(_table(["ID", "NAME", "FORMAT", "EVERY", "LAST POLL (UTC)", "RESULT", "LAST SUCCESS",
                       "NEXT POLL", "INCIDENTS", "URL"], rows))


def _hms(iso: str | None) -> str:
    return (iso or "-")[:19].replace("T", " ")


def _next_poll(p: Any, row: dict[str, Any]) -> str | None:
    """When the provider is next due: the backoff's not-before time while it backs off, else
    an interval after its last poll (None: never polled, so at once)."""
    if row.get("next_poll_at"):
        return row["next_poll_at"]
    last = row.get("last_poll_at")
    if not last:
        return None
    try:
        return times.iso(datetime.fromisoformat(last.replace("Z", "+00:00")) + timedelta(seconds=p.interval))
    except ValueError:
        return None


def _max_age(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    from .health import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


@cli.command(context_settings=CONTEXT)
@click.option("--max-age", callback=_max_age, metavar="DURATION",
              help="How recent each provider's last successful poll must be: 90s, 10m, 2h, 1d. "
              "Default: 3 of the provider's intervals.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object (every provider, healthy or not).")
@config_options
@click.pass_context
@handle_errors
def health(ctx: click.Context, max_age: float | None, as_json: bool, config_path: str | None,
           database: str | None) -> None:
    """Exit 0 when every configured provider was polled successfully recently, else exit 1
    with one line per late provider (its last success, its failures and last error).

    Reads the database read-only (a missing or empty one is unhealthy: exit 1, naming the
    file), so it runs beside the daemon, from cron, a Nagios-style check or an uptime push.

    \b
    Examples:
      tracker health
      tracker health --max-age 10m && curl -fsS https://hc-ping.com/UUID
      tracker health --config /etc/tracker/tracker.toml --json | jq '.providers[] | select(.healthy|not)'
    """
    from . import health as check
    from .store import Store

    settings = load_settings(ctx, config_path, database)
    try:
        store = Store.open_readonly(settings.database)
    except TrackerError as e:
        raise ExitError(f"unhealthy: {e}") from None
    try:
        summaries = store.provider_summaries()
    finally:
        store.close()
    report = check.check(settings.providers, summaries, database=str(settings.database), max_age=max_age)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    elif report.healthy:
        n = len(report.providers)
        click.echo(f"ok: {n} provider{'s' if n != 1 else ''}, each polled successfully within its max age "
                   f"({settings.database})")
    else:
        for p in report.late:
            click.echo(p.line())
    ctx.exit(0 if report.healthy else 1)


def _source(ctx: click.Context, settings: Settings, name: str) -> str:
    """Where a setting's value came from: option, env TRACKER_…, file or default."""
    origin = settings.sources.get(name, "default")
    if origin == "given" or name == "config_path" and origin == "default":
        try:
            source = ctx.get_parameter_source(name)
        except Exception:
            source = None
        if source == ParameterSource.COMMANDLINE:
            return "option --" + ("config" if name == "config_path" else
                                  "db" if name == "database" else name.replace("_", "-"))
        if source == ParameterSource.ENVIRONMENT:
            if name == "database":  # click reads the first of the two that is set
                return "env " + next(v for v in ("TRACKER_DB", "TRACKER_DATABASE") if os.environ.get(v))
            return f"env {_ENV[name]}"
    if origin == "file" and settings.config_path is not None:
        return f"file {settings.config_path}"
    return origin


def _scrub(value: Any, secrets: Any) -> Any:
    """`value` with every occurrence of a secret string replaced by the mask."""
    from .redaction import MASK

    text = json.dumps(value)
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(json.dumps(secret)[1:-1], MASK)
    return json.loads(text)


def _grace(p: config.Provider) -> float | None:
    """The seconds an incident must stay missing before a closing is inferred: configured, or
    the format's own (None while the format is left to detection: it depends on the platform)."""
    from .adapters import FORMATS
    from .read import configured_format

    if p.closing_grace is not None:
        return p.closing_grace
    fmt = configured_format(p)
    return FORMATS[fmt].close_grace if fmt in FORMATS else None


def _seconds(value: float) -> str:
    """90 -> "90s", 600 -> "10m", 3600 -> "1h"."""
    for unit, size in (("h", 3600), ("m", 60)):
        if value >= size and value % size == 0:
            return f"{value / size:g}{unit}"
    return f"{value:g}s"


@cli.command(name="config", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@click.option("--metrics-listen", envvar="TRACKER_METRICS_LISTEN", show_envvar=True, metavar="HOST:PORT",
              help="As for `tracker run`: shown as the setting `run` would use.")
@config_options
@log_options
@click.pass_context
@handle_errors
def config_command(ctx: click.Context, as_json: bool, metrics_listen: str | None, config_path: str | None,
                   database: str | None, log_format: str | None, log_level: str | None,
                   log_target: str | None) -> None:
    """Validate the configuration and print the effective settings, each with where it came
    from (option > env > file > default), and the providers. Secrets are never printed.

    Exits 78 with one line naming the file (or variable), the key and the problem when the
    configuration is bad: give it the same options and environment as `tracker run`.

    \b
    Examples:
      tracker config
      tracker config --config /etc/tracker/tracker.toml
      tracker config --json | jq '.providers[].id'
    """
    from .redaction import redact

    settings = load_settings(ctx, config_path, database, log_format, log_level, log_target, metrics_listen)
    values = {
        "config_path": str(settings.config_path) if settings.config_path else None,
        "database": str(settings.database), "log_format": settings.log_format, "log_level": settings.log_level,
        "log_target": settings.log_target, "interval": settings.interval, "workers": settings.workers,
        "timeout": settings.timeout, "metrics_listen": settings.metrics_listen, "lease": settings.lease,
    }
    shown = {k: {"value": v, "source": _source(ctx, settings, k)} for k, v in values.items()}
    providers = [{"id": p.id, "name": p.name, "url": p.url, "format": p.format, "interval": p.interval,
                  "components": list(p.components),
                  **{k: v for k, v in redact(p).items() if k not in ("id", "name", "url", "format",
                                                                     "interval", "components")},
                  "closing_grace": _grace(p)}
                 for p in settings.providers]
    # A destination says itself how to show it (variables named, never their values); redact()
    # masks whatever else might hold a secret, and any secret value it holds.
    notify = [_scrub(redact(d.describe() if hasattr(d, "describe") else d, notify=True),
                     getattr(d, "secrets", ())) for d in getattr(settings, "notify", ()) or ()]
    if as_json:
        click.echo(json.dumps({"settings": redact(shown), "providers": providers, "notify": notify,
                               "warnings": list(settings.warnings)}, indent=2, default=str))
        return
    rows = [[k, "-" if v["value"] is None else f"{v['value']:g}" if isinstance(v["value"], float)
             else str(v["value"]), v["source"]] for k, v in redact(shown).items()]
    click.echo(_table(["SETTING", "VALUE", "FROM"], rows))
    click.echo("")
    click.echo(_table(["PROVIDER", "NAME", "FORMAT", "EVERY", "GRACE", "URL"], [
        [p["id"], clean(p["name"], limit=40), p["format"], f"{p['interval']:g}s",
         "by format" if p["closing_grace"] is None else _seconds(p["closing_grace"]), clean(p["url"], limit=80)]
        for p in providers]))
    for n, dest in enumerate(notify, start=1):
        if n == 1:
            click.echo("")
        click.echo(f"notify #{n}: " + ", ".join(f"{k}={v}" for k, v in dest.items() if v not in (None, "", [])))
    for warning in settings.warnings:
        click.echo(f"Warning: {warning}", err=True)


@cli.command(context_settings=CONTEXT)
@click.argument("url")
@click.option("--format", "fmt", type=click.Choice(config.FORMATS, case_sensitive=False), default="auto",
              show_default=True, help="Read the page as this format instead of detecting it.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=config.DEFAULT_TIMEOUT,
              show_default=True, help="Seconds each request may take.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@click.pass_context
@handle_errors
def probe(ctx: click.Context, url: str, fmt: str, timeout: float, as_json: bool) -> None:
    """Read one status page once and show how tracker reads it: the detected format, the
    endpoints asked, what was found, and the updates first contact would announce (those of
    incidents still open, oldest first). Touches no database; exits 1 when the page cannot
    be read, with the reason.

    \b
    Examples:
      tracker probe https://www.githubstatus.com
      tracker probe https://status.openai.com --format incidentio
      tracker probe https://status.example.com --json | jq '.first_contact[].incident'
    """
    from urllib.parse import urlsplit

    from .preview import preview

    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(f"{url!r} is not an http(s) URL", ctx=ctx, param_hint="URL")
    seen = preview(url.strip(), fmt.lower(), timeout=timeout)
    outcome = seen.outcome
    if outcome.error is not None:
        hint = ""
        # The page answered, but not in this format: say which format reads it, if one does.
        others = outcome.views[0].suggested if outcome.views else []
        if others:
            hint = f" (it reads as {' or '.join(others)}: try --format {others[0]})"
        raise ExitError(f"{url}: {outcome.error}{hint}")
    if as_json:
        click.echo(json.dumps(seen.as_dict(), indent=2))
        return
    how = {"option": "as given", "url": "named by the URL", "probe": "detected by probing the page"}[seen.found_by]
    click.echo(f"format: {seen.format} ({how})")
    click.echo("asked:")
    for v in outcome.views:
        click.echo(f"  {v.url}  " + (f"failed: {clean(v.error, limit=200)}" if v.error else "ok"))
    c = seen.counts
    click.echo(f"found: {c['incidents']} incidents ({c['open_incidents']} open), {c['updates']} updates "
               f"in {outcome.ms} ms")
    for reason in (outcome.parsed.skipped if outcome.parsed else [])[:10]:
        click.echo(f"  skipped: {clean(reason, limit=200)}")
    n = len(seen.announce)
    click.echo(f"first contact would announce {n} update{'s' if n != 1 else ''}" + (":" if n else
               " (no incident is open; the history would be recorded silently)"))
    for inc, u in seen.announce:
        first_line = (u.message or "").strip().splitlines()[0] if (u.message or "").strip() else ""
        click.echo(f"  {_hms(u.created_at)}  {clean(u.status, limit=20):<13}  {clean(inc.title, limit=70)}"
                   + (f" — {clean(first_line, limit=100)}" if first_line else ""))


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
              help="Only incidents created or updated since WHEN (an incident opened earlier and "
              "still moving is in): a date, an ISO date-time, or an age such as 7d or 12h.")
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
    if as_json and as_csv:
        raise click.UsageError("--json and --csv cannot be used together: choose one", ctx=ctx)
    settings = load_settings(ctx, config_path, database)
    _selected(ctx, settings, provider_ids)  # an unknown id is a usage error, as for `run`
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
        # a maintenance the page stopped listing before its window (docs/contract.md §4)
        i["created_at"][:16].replace("T", " "), i["provider_id"],
        i["status"] + (" (unlisted)" if i.get("unlisted_at") else ""), i["impact"],
        str(i["update_count"]), clean(i["title"], limit=80),
    ] for i in found]
    click.echo(_table(["STARTED (UTC)", "PROVIDER", "STATUS", "IMPACT", "UPDATES", "TITLE"], rows))


@cli.group(context_settings=CONTEXT)
def notify() -> None:
    """Notification destinations ([[notify]] in the config file): their backlog, and a test."""


@notify.command(name="list", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@config_options
@click.pass_context
@handle_errors
def notify_list(ctx: click.Context, as_json: bool, config_path: str | None, database: str | None) -> None:
    """List the destinations with their backlog: deliveries waiting, delivered, dropped, and
    the failing one longest retried (read-only; URLs and secrets are never shown).

    \b
    Examples:
      tracker notify list
      tracker notify list --json | jq '.[] | select(.waiting > 0)'
    """
    from .notify.queue import summary

    settings = load_settings(ctx, config_path, database)
    store = _open_readonly(settings)
    try:
        counts = summary(store.conn) if store else {}
    finally:
        store and store.close()
    items = []
    for d in settings.notify:
        c = counts.pop(d.name, {})
        items.append({**d.describe(), "waiting": c.get("waiting") or 0, "delivered": c.get("delivered") or 0,
                      "dropped": c.get("dropped") or 0, "oldest_waiting_since": c.get("oldest_queued_at"),
                      "last_delivered_at": c.get("last_delivered_at"), "failing": c.get("failing")})
    for name, c in counts.items():  # deliveries of a destination no longer configured
        items.append({"name": name, "type": None, "target": "not configured", "waiting": c.get("waiting") or 0,
                      "delivered": c.get("delivered") or 0, "dropped": c.get("dropped") or 0,
                      "oldest_waiting_since": c.get("oldest_queued_at"),
                      "last_delivered_at": c.get("last_delivered_at"), "failing": c.get("failing")})
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    if not items:
        click.echo("No [[notify]] destination configured (see docs/notifications.md).", err=True)
        return
    rows = []
    for it in items:
        failing = it["failing"]
        state = "ok" if not failing else (f"retrying ×{failing['attempts']}: "
                                          f"{clean(failing['last_error'] or '', limit=50)}")
        rows.append([it["name"], it["type"] or "-", clean(it["target"], limit=50), str(it["waiting"]),
                     (it["oldest_waiting_since"] or "-")[:19].replace("T", " "), str(it["delivered"]),
                     str(it["dropped"]), state])
    click.echo(_table(["NAME", "TYPE", "TARGET", "WAITING", "OLDEST WAITING (UTC)", "DELIVERED", "DROPPED",
                       "STATE"], rows))


@notify.command(name="test", context_settings=CONTEXT)
@click.argument("name")
@config_options
@click.pass_context
@handle_errors
def notify_test(ctx: click.Context, name: str, config_path: str | None, database: str | None) -> None:
    """Send one sample message to the destination NAME (a [[notify]] table's `name`, by
    default its type: slack, webhook, webhook-2, …) now, and say whether it was taken.
    Exits 0 when it was, 1 when not. Touches no database. A pager is sent a test alert and
    then its resolution (PagerDuty: trigger and resolve; Opsgenie: create and close), so
    nothing is left open.

    \b
    Examples:
      tracker notify test slack
      tracker notify test ops-mail --config /etc/tracker/tracker.toml
    """
    from .notify.payloads import sample
    from .notify.transport import DeliveryFailed, send

    settings = load_settings(ctx, config_path, database)
    known = {d.name: d for d in settings.notify}
    if name not in known:
        raise click.BadParameter(
            f"{name!r} is not a configured destination ("
            + (f"configured: {', '.join(known)}" if known else "the config has no [[notify]] table") + ")",
            ctx=ctx, param_hint="NAME")
    dest = known[name]
    steps = {"pagerduty": ("trigger", "resolve"), "opsgenie": ("create", "close")}.get(dest.type, (None,))
    record = sample(dest.name)
    done = []
    for action in steps:
        try:
            send(dest, record, None, action)
        except DeliveryFailed as e:
            left = " (the test alert was opened and is still open: resolve it by hand)" if done else ""
            step = f"{action} " if action else ""
            raise ExitError(f"notify {name!r} ({dest.type}, {dest.target}): {step}not delivered: "
                            f"{e.error}{left}") from None
        done.append(action)
    what = " and ".join(done) if done != [None] else "a test message"
    click.echo(f"Sent {what} to {name!r} ({dest.type}, {dest.target}).")


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
    database), then check the file's integrity (PRAGMA quick_check). On PostgreSQL they run
    under an advisory lock, so two hosts starting together apply each one once.

    \b
    A missing file is an error (a typo in --db would otherwise create an empty database);
    --create makes a new one. A PostgreSQL database must exist (createdb); its tables are
    created here.

    \b
    Examples:
      tracker db migrate --db /var/lib/tracker/tracker.db
      tracker db migrate --db ./new.db --create
      tracker db migrate --db postgresql://tracker@db.example.net/tracker
    (the password from PGPASSWORD or ~/.pgpass)
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


@db.command("copy", context_settings=CONTEXT)
@click.option("--from", "source", required=True, metavar="PATH|URL", help="The database to copy (read only).")
@click.option("--to", "target", required=True, metavar="PATH|URL",
              help="An empty database to copy it into (a new file is created, a PostgreSQL database migrated).")
@click.pass_context
@handle_errors
def copy_command(ctx: click.Context, source: str, target: str) -> None:
    """Copy a whole history into an empty database: every incident, update, edit, poll state
    and delivery, ids included, so that a single host's SQLite file can become the PostgreSQL
    database of a pair without announcing anything again.

    \b
    Stop the daemon first (systemctl stop tracker): what it records after the copy would
    stay behind. What was claimed but not yet announced is announced by whichever host takes
    it over; deliveries keep their place. One transaction: a failed copy leaves the target
    empty.

    \b
    Example:
      tracker db copy --from /var/lib/tracker/tracker.db --to postgresql://tracker@db.example.net/tracker
    """
    from .store import locate
    from .store.copy import copy

    src, dst = locate(source), locate(target)
    ctx.meta["tracker.database"] = str(dst)
    last = [0.0]

    def shown(table: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] > 1.0:
            last[0] = now
            click.echo(f"{table}: {done:,} of {total:,} rows", err=True)

    copied = copy(src, dst, progress=shown)
    click.echo(f"Copied {src} to {dst}: " + ", ".join(f"{n:,} {table}" for table, n in copied.items()))
