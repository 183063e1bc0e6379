"""Prometheus metrics (docs/contract.md §8): what the daemon is doing, for scraping.

The ledger, the outbox and (later) the notifiers report through the module functions below
(`poll`, `announced`, `delivery`, …) whether or not metrics are on: until `serve()` installs
a Prometheus sink they go to a no-op, so the callers never test a flag. Everything is kept in
a private `CollectorRegistry` (never prometheus_client's global one), served by
prometheus_client's own WSGI server in a daemon thread.

Metrics, per provider (label `provider_id`):

    tracker_provider_up                               1 when its last poll read the page, else 0
    tracker_provider_consecutive_failures             failed polls in a row
    tracker_provider_last_success_timestamp_seconds   unix time of its last successful poll
    tracker_polls_total{result}                       ok | not_modified | error | unrecorded
    tracker_updates_announced_total                   incident_update records logged
    tracker_poll_duration_seconds                     histogram of reading the page

per destination (label `destination`, reported by the notifiers):

    tracker_deliveries_total{result}                  deliveries by result
    tracker_delivery_backlog                          deliveries waiting, at scrape time

per host polled (labels `host`, `tls`: plain, full or resumed), read from the fetcher at scrape
time:

    tracker_connections_opened_total                  connections opened (reconnect churn)

and `tracker_outbox_size`: updates recorded for announcement but not yet emitted, counted at
scrape time with a read-only connection of its own (the scrape runs in the server's thread;
the daemon's connection belongs to the main thread).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import ConfigError, TrackerError

# Seconds: a 304 takes milliseconds, a large page a second or two, a timeout `timeout` (20 s).
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)


@dataclass(frozen=True)
class Listen:
    """Where to serve /metrics: host ("" for every address) and port."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_listen(value: str) -> Listen:
    """"HOST:PORT", "[::1]:PORT" or ":PORT" (every address). ValueError says what is wrong."""
    text = value.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT (for example 127.0.0.1:9464 or :9464)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{value!r}: write an IPv6 address in brackets, as [::1]:9464")
    return Listen(host, int(port_text))


class Sink:
    """Where reports go when metrics are off: nowhere."""

    def poll(self, provider_id: str, result: str, seconds: float, failures: int,
             last_ok_at: str | None) -> None:
        pass

    def provider(self, provider_id: str, failures: int, last_ok_at: str | None) -> None:
        pass

    def forget(self, provider_id: str) -> None:
        pass

    def announced(self, provider_id: str, count: int = 1) -> None:
        pass

    def delivery(self, destination: str, result: str) -> None:
        pass

    def backlog(self, source: Callable[[], dict[str, int]] | None) -> None:
        pass

    def connections(self, source: Callable[[], dict[tuple[str, str], int]] | None) -> None:
        pass


def _unix(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class PrometheusSink(Sink):
    """The metrics of one process, in a registry of its own."""

    def __init__(self, database: str | Path | None = None):
        import prometheus_client
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        # No `*_created` series beside every counter: they double the output and say nothing
        # a dashboard uses (a process-wide switch; this is the process's only registry).
        getattr(prometheus_client, "disable_created_metrics", lambda: None)()
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        label = ["provider_id"]
        self.up = Gauge("tracker_provider_up", "1 when the provider's last poll read its page, else 0",
                        label, registry=r)
        self.failures = Gauge("tracker_provider_consecutive_failures",
                              "Failed polls of the provider in a row", label, registry=r)
        self.last_ok = Gauge("tracker_provider_last_success_timestamp_seconds",
                             "Unix time of the provider's last successful poll", label, registry=r)
        self.polls = Counter("tracker_polls", "Polls by result (ok, not_modified, error, unrecorded)",
                             ["provider_id", "result"], registry=r)
        self.announcements = Counter("tracker_updates_announced",
                                     "incident_update records logged for the provider", label, registry=r)
        self.duration = Histogram("tracker_poll_duration_seconds", "Time taken to read the provider's page",
                                  label, buckets=DURATION_BUCKETS, registry=r)
        self.deliveries = Counter("tracker_deliveries", "Notification deliveries by result",
                                  ["destination", "result"], registry=r)
        self._backlog: Callable[[], dict[str, int]] | None = None
        self._connections: Callable[[], dict[tuple[str, str], int]] | None = None
        self._lock = threading.Lock()
        r.register(_ScrapeTime(self, database))

    def poll(self, provider_id: str, result: str, seconds: float, failures: int,
             last_ok_at: str | None) -> None:
        self.polls.labels(provider_id, result).inc()
        self.duration.labels(provider_id).observe(max(0.0, seconds))
        self.up.labels(provider_id).set(0 if result == "error" else 1)
        self.provider(provider_id, failures, last_ok_at)

    def provider(self, provider_id: str, failures: int, last_ok_at: str | None) -> None:
        self.failures.labels(provider_id).set(failures)
        when = _unix(last_ok_at)
        if when is not None:
            self.last_ok.labels(provider_id).set(when)

    def forget(self, provider_id: str) -> None:
        """A provider no longer configured (SIGHUP): drop its series."""
        for metric in (self.up, self.failures, self.last_ok, self.announcements, self.duration):
            try:
                metric.remove(provider_id)
            except KeyError:
                pass
        for result in ("ok", "not_modified", "error", "unrecorded"):
            try:
                self.polls.remove(provider_id, result)
            except KeyError:
                pass

    def announced(self, provider_id: str, count: int = 1) -> None:
        if count:
            self.announcements.labels(provider_id).inc(count)

    def delivery(self, destination: str, result: str) -> None:
        self.deliveries.labels(destination, result).inc()

    def backlog(self, source: Callable[[], dict[str, int]] | None) -> None:
        with self._lock:
            self._backlog = source

    def backlog_now(self) -> dict[str, int]:
        with self._lock:
            source = self._backlog
        return source() if source is not None else {}

    def connections(self, source: Callable[[], dict[tuple[str, str], int]] | None) -> None:
        with self._lock:
            self._connections = source

    def connections_now(self) -> dict[tuple[str, str], int]:
        with self._lock:
            source = self._connections
        return source() if source is not None else {}


class _ScrapeTime:
    """Values read when Prometheus asks: the outbox size and the delivery backlog."""

    def __init__(self, sink: PrometheusSink, database: Any = None):
        from .store import locate

        self.sink = sink
        self.database = locate(database) if database is not None else None

    def outbox_size(self) -> int | None:
        if self.database is None:
            return None

        def count(conn: Any) -> int:
            # Edits of announced updates go through the same outbox.
            return sum(conn.execute(f"SELECT count(*) FROM {t} WHERE announce = 1 AND emitted_at IS NULL")
                       .fetchone()[0] for t in ("updates", "edits"))

        from .store import read_once

        return read_once(self.database, count)

    def describe(self) -> Iterable[Any]:
        return []  # values are read at scrape time only

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        size = self.outbox_size()
        if size is not None:
            yield GaugeMetricFamily("tracker_outbox_size",
                                    "Updates recorded for announcement but not yet emitted", value=size)
        backlog = GaugeMetricFamily("tracker_delivery_backlog", "Notification deliveries waiting",
                                    labels=["destination"])
        try:
            waiting = self.sink.backlog_now()
        except Exception:  # the notifier's callback must not break the scrape
            waiting = {}
        for destination, n in sorted(waiting.items()):
            backlog.add_metric([destination], n)
        yield backlog
        opened = CounterMetricFamily("tracker_connections_opened",
                                     "Connections opened to status pages, by host and TLS handshake "
                                     "(plain: no TLS; full; resumed: the host's last TLS session)",
                                     labels=["host", "tls"])
        try:
            counts = self.sink.connections_now()
        except Exception:  # the fetcher's book must not break the scrape
            counts = {}
        for (host, how), n in sorted(counts.items()):
            opened.add_metric([host, how], n)
        yield opened


_sink: Sink = Sink()


def active() -> Sink:
    return _sink


def install(sink: Sink) -> Sink:
    """Make `sink` receive every report from now on; returns the previous one."""
    global _sink
    previous, _sink = _sink, sink
    return previous


def poll(provider_id: str, result: str, seconds: float, failures: int, last_ok_at: str | None) -> None:
    """One poll applied by the ledger."""
    _sink.poll(provider_id, result, seconds, failures, last_ok_at)


def provider(provider_id: str, failures: int, last_ok_at: str | None) -> None:
    """A provider's state as recorded, at start (so a restart keeps its last success time)."""
    _sink.provider(provider_id, failures, last_ok_at)


def forget(provider_id: str) -> None:
    _sink.forget(provider_id)


def announced(provider_id: str, count: int = 1) -> None:
    """`count` incident_update records logged for `provider_id`."""
    _sink.announced(provider_id, count)


def delivery(destination: str, result: str) -> None:
    """For the notifiers: one delivery to `destination` ended with `result` ("ok", "retry",
    "dropped", …)."""
    _sink.delivery(destination, result)


def connections(source: Callable[[], dict[tuple[str, str], int]] | None) -> None:
    """For the fetcher: `source()` returns {(host, handshake): connections opened}, read at each
    scrape (tracker_connections_opened_total)."""
    _sink.connections(source)


def backlog(source: Callable[[], dict[str, int]] | None) -> None:
    """For the notifiers: `source()` returns {destination: deliveries waiting}; it is called
    at each scrape, in the metrics server's thread (so it must not use the main thread's
    database connection)."""
    _sink.backlog(source)


class Server:
    """The /metrics endpoint: prometheus_client's WSGI server in a daemon thread."""

    def __init__(self, listen: Listen, sink: PrometheusSink):
        from prometheus_client import start_http_server

        self.listen = listen
        self.sink = sink
        try:
            started = start_http_server(listen.port, listen.host or "0.0.0.0", registry=sink.registry)
        except OSError as e:
            raise TrackerError(f"metrics: cannot listen on {listen}: {e.strerror or e}") from None
        self.httpd = started[0] if started else None  # prometheus_client < 0.17 returned nothing

    @property
    def address(self) -> str:
        if self.httpd is None:
            return str(self.listen)
        host, port = self.httpd.server_address[:2]
        return str(Listen(host, port))

    def close(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()


def serve(listen: Listen | str, database: str | Path | None) -> Server:
    """Start serving /metrics on `listen` and route every report to it. Raises TrackerError
    when the address cannot be bound, ConfigError when it is not HOST:PORT."""
    if isinstance(listen, str):
        try:
            listen = parse_listen(listen)
        except ValueError as e:
            raise ConfigError(f"metrics_listen: {e}") from None
    sink = PrometheusSink(database)
    server = Server(listen, sink)
    install(sink)
    return server


__all__ = ["Listen", "PrometheusSink", "Server", "Sink", "active", "announced", "backlog", "connections", "delivery",
           "forget", "install", "parse_listen", "poll", "provider", "serve"]
