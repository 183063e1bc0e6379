"""Connections that live across polls (docs/contract.md §1), over real sockets on 127.0.0.1:
one connection per host whichever worker polls it, a reconnect that resumes the host's TLS
session, the server's keep-alive honoured, a connection the server closed replaced without a
failed poll, pools of hosts no longer polled dropped, and the count of connections opened as
Prometheus serves it. HTTPS servers use certificates of a throwaway CA (trustme)."""

from __future__ import annotations

import ssl
import threading
import time
import urllib.request
from contextlib import ExitStack

import pytest
import trustme

from tracker import metrics
from tracker.fetch import Fetcher

from statusserver import StatusServer

PAGE = b'{"incidents": []}'


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
def tls(ca, tmp_path, monkeypatch):
    """A server context for 127.0.0.1, and the CA trusted the way an operator would do it."""
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))

    def server_context() -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        return context

    return server_context


def serve(srv: StatusServer, path: str = "/api/v2/incidents.json") -> str:
    srv.route(path).body = PAGE
    return srv.base + path


def test_a_hosts_connection_is_kept_across_polls_whichever_thread_polls_it():
    """40 hosts (more than the 10 pools a requests adapter keeps), each polled three times by
    three different threads: one connection per host, not one per poll."""
    with ExitStack() as stack:
        servers = [stack.enter_context(StatusServer()) for _ in range(40)]
        urls = [serve(s) for s in servers]
        f = Fetcher(workers=3)
        f.keep(urls)
        errors = []

        def poll_all() -> None:
            for url in urls:
                try:
                    assert f.get(url).body == PAGE
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(e)

        for _ in range(3):
            t = threading.Thread(target=poll_all)
            t.start()
            t.join()
        f.close()
    assert errors == []
    assert [s.connections for s in servers] == [1] * 40
    assert sum(f.opened().values()) == 40 and {how for _, how in f.opened()} == {"plain"}


@pytest.mark.parametrize("tickets, expected", [
    (True, {("127.0.0.1", "full"): 1, ("127.0.0.1", "resumed"): 2}),  # the first a full handshake, then resumed
    (False, {("127.0.0.1", "full"): 3}),  # a server that keeps no sessions: what resumption saves, by contrast
])
def test_a_reconnect_resumes_the_hosts_tls_session(tls, tickets, expected):
    context = tls()
    if not tickets:
        context.options |= ssl.OP_NO_TICKET
        context.num_tickets = 0
    with StatusServer(tls=context, idle=0.3) as srv:  # the server closes connections idle 0.3 s
        url = serve(srv)
        f = Fetcher()
        try:
            for _ in range(3):
                assert f.get(url).body == PAGE
                time.sleep(0.5)
        finally:
            f.close()
    assert srv.connections == 3 and srv.resumed == expected.get(("127.0.0.1", "resumed"), 0)
    assert f.opened() == expected


def test_a_connection_idle_past_the_servers_keep_alive_is_closed_not_used():
    """`Keep-Alive: timeout=1`: a connection idle one second is closed by tracker before the next
    poll (never sent on while the server may be closing it), and swept between polls."""
    with StatusServer(keep_alive="timeout=1") as srv:
        url = serve(srv)
        f = Fetcher()
        try:
            f.get(url)
            f.get(url)  # at once: the same connection
            assert srv.connections == 1
            time.sleep(1.0)
            f.get(url)  # idle 1 s: a new connection, the old one closed by us
            assert srv.connections == 2
            time.sleep(1.0)
            assert f.sweep() == 1  # between polls: nothing kept that the server would drop
            deadline = time.monotonic() + 2
            while srv.closed < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert srv.closed == 2
        finally:
            f.close()


def test_a_server_that_drops_idle_connections_silently_is_learned():
    """No Keep-Alive header: the idle time after which a kept connection was found dropped is
    learned, and from then on such a connection is closed before it is used."""
    with StatusServer(idle=0.5) as srv:
        url = serve(srv)
        f = Fetcher()
        try:
            f.get(url)
            time.sleep(0.8)
            f.get(url)  # found dropped after 0.8 s: reconnects, learns "at most 0.8 s"
            assert srv.connections == 2
            time.sleep(0.8)
            assert f.sweep() == 1
            f.get(url)
            assert srv.connections == 3
        finally:
            f.close()


def test_a_kept_connection_closed_as_the_request_goes_out_costs_no_failed_poll():
    with StatusServer() as srv:
        url = serve(srv)
        srv.routes["/api/v2/incidents.json"].drop_kept = True  # the 2nd request on a connection: closed
        f = Fetcher()
        try:
            assert f.get(url).body == PAGE
            assert f.get(url).body == PAGE  # retried once, on a new connection
        finally:
            f.close()
    assert srv.connections == 2 and srv.routes["/api/v2/incidents.json"].requests == 3


def test_the_pools_of_hosts_no_longer_polled_are_dropped():
    with StatusServer() as kept, StatusServer() as dropped:
        a, b = serve(kept), serve(dropped)
        f = Fetcher()
        try:
            f.keep([a, b])
            f.get(a), f.get(b)
            f.keep([a])  # a reload without the second provider
            deadline = time.monotonic() + 2
            while dropped.closed < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert (dropped.closed, kept.closed) == (1, 0)
            f.get(a)
            assert kept.connections == 1
        finally:
            f.close()


def test_connections_opened_are_served_as_a_prometheus_counter(tls):
    with StatusServer(tls=tls(), idle=0.3) as srv:
        url = serve(srv)
        f = Fetcher()
        server = metrics.serve("127.0.0.1:0", None)
        try:
            metrics.connections(f.opened)
            f.get(url)
            time.sleep(0.5)
            f.get(url)
            text = urllib.request.urlopen(f"http://{server.address}/metrics", timeout=5).read().decode()
        finally:
            server.close()
            metrics.install(metrics.Sink())
            f.close()
    assert 'tracker_connections_opened_total{host="127.0.0.1",tls="full"} 1.0' in text
    assert 'tracker_connections_opened_total{host="127.0.0.1",tls="resumed"} 1.0' in text


def test_a_kept_tls_connection_serves_poll_after_poll_with_its_idle_buffers_freed(tls):
    """Between polls an idle TLS connection's record buffers are handed back to OpenSSL
    (tracker.pools._TLSBuffers); the connection goes on serving. The layout check that lets it
    do so passes on this interpreter (else the 16 KB a connection would go unsaved, silently)."""
    from tracker.pools import _free_tls_buffers

    assert _free_tls_buffers.free is not None
    with StatusServer(tls=tls()) as srv:
        url = serve(srv)
        f = Fetcher()
        try:
            etag = f.get(url).etag
            for _ in range(5):
                assert f.get(url, etag=etag).not_modified
            assert f.get(url).body == PAGE
        finally:
            f.close()
    assert srv.connections == 1 and f.opened() == {("127.0.0.1", "full"): 1}
