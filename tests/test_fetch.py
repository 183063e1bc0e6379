"""HTTP boundary: requests-mock for status codes and headers; a real socket on 127.0.0.1 for
what only a real connection shows (deadlines, decoded size, compression)."""

from __future__ import annotations

import gzip
import socket
import threading
import time

import pytest
import requests

from tracker import __version__
from tracker.errors import FetchError
from tracker.fetch import Fetcher, HTTPStatusError

URL = "https://status.example.test/api/v2/incidents.json"


def test_sends_user_agent_and_conditional_headers_and_handles_304(requests_mock):
    requests_mock.get(URL, status_code=304, headers={"ETag": '"abc"'})
    got = Fetcher().get(URL, etag='"abc"', last_modified="Tue, 01 Sep 2026 00:00:00 GMT")
    assert got.not_modified and got.body is None
    sent = requests_mock.last_request.headers
    assert sent["If-None-Match"] == '"abc"'
    assert sent["If-Modified-Since"] == "Tue, 01 Sep 2026 00:00:00 GMT"
    assert sent["User-Agent"].startswith(f"tracker/{__version__} ")


def test_200_returns_body_and_validators(requests_mock):
    requests_mock.get(URL, content=b'{"incidents": []}',
                      headers={"ETag": 'W/"1"', "Last-Modified": "x", "Content-Type": "application/json"})
    got = Fetcher().get(URL)
    assert (got.status, got.body, got.etag, got.last_modified) == (200, b'{"incidents": []}', 'W/"1"', "x")


@pytest.mark.parametrize("status", [404, 429, 500, 502, 503])
def test_error_statuses_raise_with_retry_after(requests_mock, status):
    requests_mock.get(URL, status_code=status, headers={"Retry-After": "120"})
    with pytest.raises(HTTPStatusError) as e:
        Fetcher().get(URL)
    assert e.value.status == status and e.value.retry_after == "120"
    assert str(e.value) == f"HTTP {status} (Retry-After: 120)"


@pytest.mark.parametrize(
    "exc, words",
    [
        (requests.exceptions.ConnectTimeout, "connect timeout"),
        (requests.exceptions.ReadTimeout, "read timeout"),
        (requests.exceptions.ConnectionError("Name or service not known"), "connection failed"),
        (requests.exceptions.TooManyRedirects, "redirects"),
    ],
)
def test_transport_errors_become_one_line_fetch_errors(requests_mock, exc, words):
    requests_mock.get(URL, exc=exc)
    with pytest.raises(FetchError, match=words) as e:
        Fetcher().get(URL)
    assert "\n" not in str(e.value)


def test_redirect_loop_is_cut(requests_mock):
    requests_mock.get(URL, status_code=302, headers={"Location": URL})
    with pytest.raises(FetchError, match="more than 5 redirects"):
        Fetcher().get(URL)


class RawServer:
    """A socket server on 127.0.0.1 that answers every connection with `respond(conn)`."""

    def __init__(self, respond):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.respond = respond
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/api/v2/incidents.json"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                try:
                    self.respond(conn)
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


def test_redirect_to_another_scheme_is_refused():
    srv = RawServer(lambda conn: conn.sendall(
        b"HTTP/1.1 302 Found\r\nLocation: file:///etc/passwd\r\nContent-Length: 0\r\n\r\n"))
    try:
        with pytest.raises(FetchError, match="not http"):
            Fetcher().get(srv.url)
    finally:
        srv.close()


def test_a_trickling_server_is_cut_off_at_the_total_deadline():
    def trickle(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
        for _ in range(40):  # one byte every 0.1 s: never trips the read timeout, bounded at 4 s
            conn.sendall(b" ")
            time.sleep(0.1)

    srv = RawServer(trickle)
    try:
        started = time.monotonic()
        with pytest.raises(FetchError, match="within 1 s"):
            Fetcher(timeout=1.0).get(srv.url)
        assert time.monotonic() - started < 2.5
    finally:
        srv.close()


def test_the_size_cap_counts_decoded_bytes_so_a_gzip_bomb_stops_at_the_cap():
    bomb = gzip.compress(b" " * (20 * 1024 * 1024))  # 20 MiB of spaces in about 20 KiB

    def send_bomb(conn):
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
            + f"Content-Length: {len(bomb)}\r\n\r\n".encode() + bomb
        )

    srv = RawServer(send_bomb)
    try:
        with pytest.raises(FetchError, match="larger than 1048576 bytes"):
            Fetcher(max_bytes=1024 * 1024).get(srv.url)
    finally:
        srv.close()


def test_a_server_that_never_answers_hits_the_read_timeout():
    srv = RawServer(lambda conn: time.sleep(3))
    try:
        started = time.monotonic()
        with pytest.raises(FetchError, match="read timeout after 1 s"):
            Fetcher(timeout=1.0).get(srv.url)
        assert time.monotonic() - started < 2.5
    finally:
        srv.close()


def test_each_thread_gets_its_own_session():
    f = Fetcher()
    sessions = []
    threads = [threading.Thread(target=lambda: sessions.append(f.session())) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(s) for s in sessions}) == 3
    assert f.session() is f.session()
    f.close()
