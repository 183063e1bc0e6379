"""HTTP boundary: requests-mock for status codes and headers; a real socket on 127.0.0.1 for
what only a real connection shows (deadlines, decoded size, compression)."""

from __future__ import annotations

import gzip
import ipaddress
import socket
import threading
import time

import pytest
import requests

from tracker import __version__
from tracker.errors import FetchError
from tracker.fetch import Fetcher, HTTPStatusError, describe_body

from statusserver import StatusServer

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
    assert len(requests_mock.request_history) == 6  # the request and 5 redirects followed


def test_redirects_are_followed_with_the_conditional_headers(requests_mock):
    requests_mock.get(URL, status_code=301, headers={"Location": "/v2/incidents.json"})
    requests_mock.get("https://status.example.test/v2/incidents.json", content=b"{}", headers={"ETag": '"2"'})
    got = Fetcher().get(URL, etag='"1"')
    assert (got.status, got.body, got.url) == (200, b"{}", "https://status.example.test/v2/incidents.json")
    assert [r.headers.get("If-None-Match") for r in requests_mock.request_history] == ['"1"', '"1"']


# -- redirects to loopback, private and link-local addresses (docs/contract.md §4) ------------------------

def fake_dns(monkeypatch, names: dict[str, str]) -> list[str]:
    """socket.getaddrinfo answering `names` (name -> address) and refusing every other name
    that is not an address literal, without a packet sent; returns the names looked up."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        host = host.decode() if isinstance(host, bytes) else host
        asked.append(host)
        if host in names:
            return real(names[host], port, *args, **kwargs)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.mark.parametrize("target, kind", [
    ("http://169.254.169.254/latest/meta-data", "link-local"),  # AWS/GCP/Azure instance metadata
    ("http://10.1.2.3/", "private"),
    ("http://172.16.0.1:8500/v1/kv/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://127.0.0.1:6379/", "loopback"),
    ("http://0.0.0.0:8080/", "unspecified"),
    ("http://[::1]/", "loopback"),
    ("http://[fd00:ec2::254]/latest/meta-data", "private"),  # fc00::/7: AWS's IPv6 metadata
    ("http://[fe80::1]/", "link-local"),
    ("http://[::ffff:169.254.169.254]/", "link-local"),  # IPv4-mapped
    ("http://[64:ff9b::a9fe:a9fe]/", "link-local"),  # NAT64 of 169.254.169.254
    ("http://100.64.0.1/", "non-public"),  # carrier-grade NAT
])
def test_a_redirect_to_a_private_or_link_local_address_is_refused_before_any_request(requests_mock, target, kind):
    requests_mock.get(URL, status_code=302, headers={"Location": target})
    reached = requests_mock.get(target, text="ami-id\ninstance-id\n")
    with pytest.raises(FetchError) as e:
        Fetcher().get(URL)
    assert str(e.value) == f"redirected to {target}: a {kind} address (refused)"
    assert not reached.called
    assert [r.url for r in requests_mock.request_history] == [URL]


def test_a_redirect_to_a_name_that_resolves_to_a_private_address_is_refused(requests_mock, monkeypatch):
    asked = fake_dns(monkeypatch, {"metadata.example.test": "169.254.169.254"})
    target = "http://metadata.example.test/computeMetadata/v1/"
    requests_mock.get(URL, status_code=307, headers={"Location": target})
    reached = requests_mock.get(target, text="secret")
    with pytest.raises(FetchError) as e:
        Fetcher().get(URL)
    assert str(e.value) == (f"redirected to {target}: metadata.example.test is 169.254.169.254, "
                            "a link-local address (refused)")
    assert not reached.called and "metadata.example.test" in asked


def test_a_private_hop_later_in_a_chain_is_refused_there(requests_mock, monkeypatch):
    fake_dns(monkeypatch, {"cdn.example.test": "151.101.1.1"})
    requests_mock.get(URL, status_code=302, headers={"Location": "https://cdn.example.test/a"})
    requests_mock.get("https://cdn.example.test/a", status_code=302, headers={"Location": "http://10.1.2.3/"})
    reached = requests_mock.get("http://10.1.2.3/", text="internal")
    with pytest.raises(FetchError, match=r"^redirected to http://10\.1\.2\.3/: a private address \(refused\)$"):
        Fetcher().get(URL)
    assert not reached.called and len(requests_mock.request_history) == 2


def test_a_redirect_to_a_public_address_is_followed(requests_mock, monkeypatch):
    fake_dns(monkeypatch, {"mirror.example.test": "151.101.1.1"})
    requests_mock.get(URL, status_code=302, headers={"Location": "https://mirror.example.test/i.json"})
    requests_mock.get("https://mirror.example.test/i.json", content=b"[]")
    assert Fetcher().get(URL).body == b"[]"


def test_a_page_configured_on_a_private_address_may_redirect_to_one(requests_mock):
    # Tests, labs and intranets: the configured URL is on 127.0.0.1, so its redirects to
    # loopback (another port) and to other private addresses are its own business.
    origin = "http://127.0.0.1:8080/api/v2/incidents.json"
    requests_mock.get(origin, status_code=302, headers={"Location": "http://127.0.0.1:8081/moved.json"})
    requests_mock.get("http://127.0.0.1:8081/moved.json", status_code=302, headers={"Location": "http://10.1.2.3/x"})
    requests_mock.get("http://10.1.2.3/x", content=b"{}")
    got = Fetcher().get(origin)
    assert (got.body, got.url) == (b"{}", "http://10.1.2.3/x")
    # Unless the caller says otherwise, per request or per Fetcher.
    with pytest.raises(FetchError, match="10.1.2.3/x: a private address"):
        Fetcher().get(origin, allow_private=False)
    with pytest.raises(FetchError, match="10.1.2.3/x: a private address"):
        Fetcher(allow_private=False).get(origin)
    # And a public origin may be told that private targets are fine (an operator's choice).
    requests_mock.get(URL, status_code=302, headers={"Location": "http://10.1.2.3/x"})
    assert Fetcher().get(URL, allow_private=True).body == b"{}"


def test_a_configured_loopback_url_redirecting_to_loopback_works_over_real_sockets():
    target = RawServer(lambda conn: conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"))
    origin = RawServer(lambda conn: conn.sendall(
        b"HTTP/1.1 302 Found\r\nLocation: " + target.url.encode() + b"\r\nContent-Length: 0\r\n\r\n"))
    try:
        # By name: "localhost" resolves (from /etc/hosts) to loopback, so the origin is private.
        got = Fetcher().get(origin.url.replace("127.0.0.1", "localhost"))
        assert (got.status, got.body, got.url) == (200, b"{}", target.url)
    finally:
        origin.close()
        target.close()


def test_the_refusal_names_a_url_fit_for_a_log_line(requests_mock):
    target = "http://user:pw@169.254.169.254/" + "a" * 300 + "\x1b[2J"
    requests_mock.get(URL, status_code=302, headers={"Location": target})
    with pytest.raises(FetchError) as e:
        Fetcher().get(URL)
    message = str(e.value)
    assert message.startswith("redirected to http://169.254.169.254/aaa") and "pw" not in message
    assert "\x1b" not in message and message.endswith("…: a link-local address (refused)")
    assert len(message) < 200


# -- failures in words a person can act on ------------------------------------------------------

def test_a_name_that_does_not_resolve_says_so(monkeypatch):
    # RFC 6761: .invalid never resolves. The resolver is faked so that no packet leaves and
    # a slow resolver cannot stall the test.
    asked = fake_dns(monkeypatch, {})
    started = time.monotonic()
    with pytest.raises(FetchError) as e:
        Fetcher().get("https://status.openai.invalid/api/v2/incidents.json")
    assert str(e.value) == "cannot resolve status.openai.invalid (Name or service not known)"
    assert asked == ["status.openai.invalid"] and time.monotonic() - started < 2


def test_a_resolver_that_does_not_answer_says_so(monkeypatch):
    def getaddrinfo(*args, **kwargs):
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(FetchError) as e:
        Fetcher().get("https://status.openai.com/api/v2/incidents.json")
    assert str(e.value) == "cannot resolve status.openai.com (Temporary failure in name resolution)"


def test_a_refused_connection_names_host_and_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nobody listens there now
    with pytest.raises(FetchError) as e:
        Fetcher().get(f"http://127.0.0.1:{port}/api/v2/incidents.json")
    assert str(e.value) == f"connection refused by 127.0.0.1:{port}"


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


def test_a_redirect_body_is_read_only_when_short_and_only_until_the_deadline():
    """requests reads a redirect's whole body even when told not to follow it (to prepare
    Response.next), with no cap and no deadline. tracker reads one only when it is short, and
    only until the request's deadline: a huge one is never pulled in, a trickling one cannot
    hold a worker past the deadline."""
    target = RawServer(lambda conn: conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"))
    sent = [0]
    huge_done = threading.Event()  # the server has stopped sending (the client left, or all was sent)

    def huge(conn):  # a chunked 302 body of up to 64 MiB
        try:
            conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: " + target.url.encode()
                         + b"\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in range(1024):
                conn.sendall(b"10000\r\n" + b"x" * 0x10000 + b"\r\n")
                sent[0] += 0x10000
        finally:
            huge_done.set()

    def trickle(conn):  # a short 302 body sent a byte every 0.1 s (bounded: 4 s)
        conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: " + target.url.encode() + b"\r\nContent-Length: 100\r\n\r\n")
        for _ in range(40):
            conn.sendall(b" ")
            time.sleep(0.1)

    srv, slow = RawServer(huge), RawServer(trickle)
    try:
        assert Fetcher(allow_private=True).get(srv.url).body == b"{}"
        # The client left: the server's next writes fail and the rest is never sent. (Waited
        # for: the server thread may not have noticed yet when the redirect's answer is in.)
        assert huge_done.wait(10)
        assert sent[0] < 16 * 1024 * 1024
        started = time.monotonic()
        with pytest.raises(FetchError, match="within 1 s"):
            Fetcher(timeout=1.0, allow_private=True).get(slow.url)
        assert time.monotonic() - started < 2.5
    finally:
        for s in (srv, slow, target):
            s.close()


def test_redirect_to_another_scheme_is_refused():
    srv = RawServer(lambda conn: conn.sendall(
        b"HTTP/1.1 302 Found\r\nLocation: file:///etc/passwd\r\nContent-Length: 0\r\n\r\n"))
    try:
        with pytest.raises(FetchError, match="not http"):
            Fetcher().get(srv.url)
    finally:
        srv.close()


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_server_that_never_answers_hits_the_read_timeout():
    srv = RawServer(lambda conn: time.sleep(3))
    try:
        started = time.monotonic()
        with pytest.raises(FetchError, match="read timeout after 1 s"):
            Fetcher(timeout=1.0).get(srv.url)
        assert time.monotonic() - started < 2.5
    finally:
        srv.close()


def test_a_short_error_or_redirect_answer_leaves_its_connection_open_for_the_next_request():
    """A probe's 404 is read to its end, so the page's own request that follows reuses the
    connection (on a real page: no second TLS handshake); so is a redirect's body. A long error
    body is not read: that connection is dropped."""
    with StatusServer() as srv:  # /proxy/x is no route: a short 404
        srv.route("/api/v2/incidents.json").body = b"{}"
        srv.route("/old").location = srv.base + "/api/v2/incidents.json"
        big = srv.route("/big")
        big.status, big.error_body = 500, b"x" * (2 * 1024 * 1024)
        f = Fetcher()
        try:
            with pytest.raises(HTTPStatusError, match="404"):
                f.get(srv.base + "/proxy/x")
            assert f.get(srv.base + "/api/v2/incidents.json").body == b"{}"
            assert f.get(srv.base + "/old").body == b"{}"
            assert srv.connections == 1
            with pytest.raises(HTTPStatusError, match="500"):
                f.get(srv.base + "/big")
            assert f.get(srv.base + "/api/v2/incidents.json").body == b"{}"
            assert srv.connections == 2
        finally:
            f.close()


# -- describe_body: what a wrong answer was, in a few words -------------------------------------

CHALLENGE = b"""<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>
<meta http-equiv="refresh" content="390"><style>body{font:1em sans-serif}</style>
<script>(function(){window._cf_chl_opt={cvId: '3'}})();</script></head>
<body><div class="main-wrapper"><h1>status.openai.com</h1><p>Checking your browser</p></div></body></html>"""


@pytest.mark.parametrize("body, ctype, expected", [
    (CHALLENGE, "text/html; charset=UTF-8", 'text/html "Just a moment..."'),
    (b"<html><head><script>var x = '<title>no</title>';</script><style>p{}</style></head>"
     b"<body><!-- <title>hidden</title> --><h1>Service &amp; API</h1>\n<p>under\tmaintenance</p></body></html>",
     "text/html", 'text/html "Service & API under maintenance"'),
    (b"<html><title>  Attention \x1b[31mRequired!\n | Cloudflare \xe2\x80\xae </title></html>", "text/html",
     'text/html "Attention [31mRequired! | Cloudflare"'),
    (b"<title>Caf\xe9 &lt;down&gt;</title>", "text/html; charset=iso-8859-1", 'text/html "Caf\u00e9 <down>"'),
    (b"<title></title><p>a < b and c</p>", "text/html", 'text/html "a < b and c"'),
    (b'{"incidents": [{"id": "abc", "name": "truncat', "application/json",
     'application/json "{\"incidents\": [{\"id\": \"abc\", \"name\": \"truncat"'),
    (b"<html><body>" + b"word " * 100 + b"</body></html>", "", 'no content type "' + "word " * 11 + 'word…"'),
    (b"", "text/html", "text/html (empty body)"),
    (b"<html><head></head><body><script>only()</script></body></html>", "text/html", "text/html"),
])
def test_describe_body(body, ctype, expected):
    assert describe_body(body, ctype) == expected


def test_describe_body_is_linear_on_hostile_markup():
    for body in (b"<title>" + b"<a" * 1_000_000, b"<script>" * 300_000, b"<!--" * 500_000,
                 b"<title" * 300_000, b"< " * 1_000_000, b"<b>" * 600_000):
        started = time.monotonic()
        text = describe_body(body, "text/html")
        assert time.monotonic() - started < 0.5, body[:20]
        assert len(text) <= len("text/html") + 64 and "\n" not in text
