"""Sending one record to one destination: an HTTP POST (webhook, Slack, Discord, Teams,
PagerDuty's Events API, Opsgenie's Alert API), a mail through SMTP, or a notification through
Apprise. Returns what the destination said about its rate limit, or raises
DeliveryFailed with an operator's description of the failure.

Error texts never hold the destination URL or a secret: requests' own messages name the URL,
so failures are described here in our words, and whatever is left passes through
`Destination.redact`.
"""

from __future__ import annotations

import json
import smtplib
import socket
import ssl
from dataclasses import dataclass

import requests

from .. import backoff
from ..text import clean
from .destinations import Destination
from .payloads import USER_AGENT, apprise_message, email, http_body, opsgenie, pagerduty

MAX_ANSWER = 64 * 1024  # bytes of a destination's answer read (an error text, a rate limit)


class DeliveryFailed(Exception):
    """The destination did not take the message. `retry_after`: seconds it asked us to wait
    (429/503 Retry-After); `pause`: seconds the whole destination should rest."""

    def __init__(self, error: str, retry_after: float | None = None):
        super().__init__(error)
        self.error = error
        self.retry_after = retry_after


@dataclass(frozen=True)
class Sent:
    """A message the destination took. `pause`: seconds before its next message (Discord's
    X-RateLimit-Remaining reached 0), else 0."""

    status: int | None = None
    pause: float = 0.0


def send(dest: Destination, record: dict, session: requests.Session | None = None, action: str | None = None) -> Sent:
    """Deliver `record` to `dest` once (for an alerting destination, as `action`: PagerDuty's
    trigger or resolve, Opsgenie's create, note or close). Raises DeliveryFailed."""
    try:
        if dest.type == "email":
            return _mail(dest, record)
        if dest.type == "apprise":
            return _apprise(dest, record)
        session = session or requests.Session()
        if dest.type == "pagerduty":
            event = pagerduty(record, action or "trigger", dest.routing_key or "")
            return _request(dest, session, dest.url or "", _json(event), {})
        if dest.type == "opsgenie":
            path, call = opsgenie(record, action or "create")
            return _request(dest, session, (dest.url or "") + path, _json(call),
                            {"Authorization": f"GenieKey {dest.api_key}"})
        body, extra = http_body(record, dest)
        return _request(dest, session, dest.url or "", body, extra)
    except DeliveryFailed as e:
        raise DeliveryFailed(dest.redact(e.error), e.retry_after) from None


def _json(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _answer_text(r: requests.Response) -> str:
    raw = b""
    try:
        for chunk in r.iter_content(8192):
            raw += chunk
            if len(raw) >= MAX_ANSWER:
                break
    except requests.RequestException:
        pass
    text = raw[:MAX_ANSWER].decode("utf-8", errors="replace")
    if "json" in r.headers.get("Content-Type", ""):
        try:
            data = json.loads(text)
            if isinstance(data, dict):
                text = str(data.get("message") or data.get("error") or data.get("detail") or text)
        except ValueError:
            pass
    if "<html" in text[:200].lower():
        return "(an HTML page)"
    return clean(text, limit=160)


def _retry_after(r: requests.Response, answer: str | None = None) -> float | None:
    wait = backoff.parse_retry_after(r.headers.get("Retry-After"))
    if wait is None and r.headers.get("X-RateLimit-Reset-After"):
        try:
            wait = max(0.0, float(r.headers["X-RateLimit-Reset-After"]))
        except ValueError:
            pass
    return wait


def _request(dest: Destination, session: requests.Session, url: str, body: bytes, extra: dict[str, str]) -> Sent:
    """POST `body` (JSON) to `url`; a 2xx answer is delivered."""
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT, **extra}
    try:
        r = session.post(url, data=body, headers=headers, allow_redirects=False, stream=True,
                         timeout=(min(5.0, dest.timeout), dest.timeout))
    except requests.exceptions.ConnectTimeout:
        raise DeliveryFailed(f"connect timed out after {min(5.0, dest.timeout):g} s") from None
    except requests.exceptions.ReadTimeout:
        raise DeliveryFailed(f"no answer within {dest.timeout:g} s") from None
    except requests.exceptions.SSLError:
        raise DeliveryFailed("TLS handshake failed (certificate or protocol)") from None
    except requests.exceptions.ConnectionError as e:
        raise DeliveryFailed(_connection_error(e)) from None
    except requests.RequestException as e:
        raise DeliveryFailed(f"request failed: {type(e).__name__}") from None
    with r:
        if 200 <= r.status_code < 300:
            pause = 0.0
            if r.headers.get("X-RateLimit-Remaining") == "0":
                pause = _retry_after(r) or 0.0
            for _ in r.iter_content(8192):  # read the answer so the connection is reused
                pass
            return Sent(r.status_code, pause)
        answer = _answer_text(r)
        if 300 <= r.status_code < 400:
            raise DeliveryFailed(f"HTTP {r.status_code}: redirects are not followed (is the URL current?)")
        wait = _retry_after(r) if r.status_code in (429, 503) else None
        raise DeliveryFailed(f"HTTP {r.status_code}" + (f": {answer}" if answer else ""), wait)


def _connection_error(e: requests.exceptions.ConnectionError) -> str:
    """Words for a failed connection, without the URL requests puts in its message."""
    seen: list[BaseException] = []
    inner: BaseException | None = e
    while inner is not None and inner not in seen:
        seen.append(inner)
        if isinstance(inner, ConnectionRefusedError):
            return "connection refused"
        if isinstance(inner, socket.gaierror):
            return "cannot resolve the host name"
        if isinstance(inner, ConnectionResetError):
            return "connection reset"
        nxt = getattr(inner, "reason", None)
        if not isinstance(nxt, BaseException):
            nxt = inner.args[0] if inner.args and isinstance(inner.args[0], BaseException) else None
        inner = nxt or inner.__cause__ or inner.__context__
    text = " ".join(str(e).split()).lower()
    if "refused" in text:
        return "connection refused"
    if "name or service not known" in text or "nodename nor servname" in text or "resolve" in text:
        return "cannot resolve the host name"
    if "remotedisconnected" in text or "aborted" in text or "reset" in text:
        return "connection closed before an answer"
    return "connection failed"


def _apprise(dest: Destination, record: dict) -> Sent:
    """One notification through Apprise (imported only when such a destination sends). Apprise
    says only whether the service took it; what it logged on the way is the reason given."""
    import logging

    import apprise

    quiet = logging.getLogger("apprise")
    quiet.propagate = False  # its records name services and hosts: only the reason below is kept
    title, body = apprise_message(record)
    service = apprise.Apprise()
    with apprise.LogCapture(level=apprise.logging.WARNING) as said:
        if not service.add(dest.url or ""):
            raise DeliveryFailed("Apprise does not understand the URL")
        taken = service.notify(title=title, body=body)
    if not taken:
        lines = [line for line in said.getvalue().splitlines() if line.strip()]
        raise DeliveryFailed("the service did not take it" + (f": {clean(lines[-1], limit=200)}" if lines else ""))
    return Sent()


def _mail(dest: Destination, record: dict) -> Sent:
    host, _, port_text = (dest.smtp or "").rpartition(":")
    port = int(port_text)
    msg = email(record, dest)
    try:
        if port == 465:
            client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=dest.timeout,
                                                    context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(host, port, timeout=dest.timeout)
        with client:
            client.ehlo()
            if dest.starttls and port != 465:
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if dest.username and dest.password:
                client.login(dest.username, dest.password)
            refused = client.send_message(msg)
        if refused:
            raise DeliveryFailed(f"SMTP refused {len(refused)} of {len(dest.to)} recipients")
        return Sent()
    except DeliveryFailed:
        raise
    except smtplib.SMTPAuthenticationError as e:
        raise DeliveryFailed(f"SMTP login refused ({e.smtp_code})") from None
    except smtplib.SMTPNotSupportedError:
        raise DeliveryFailed("the SMTP server does not offer STARTTLS (set starttls = false only on a trusted network)") from None
    except smtplib.SMTPResponseException as e:
        said = e.smtp_error.decode("utf-8", "replace") if isinstance(e.smtp_error, bytes) else str(e.smtp_error)
        raise DeliveryFailed(f"SMTP {e.smtp_code}: {clean(said, limit=160)}") from None
    except smtplib.SMTPRecipientsRefused as e:
        raise DeliveryFailed(f"SMTP refused every recipient ({len(e.recipients)})") from None
    except smtplib.SMTPServerDisconnected:
        raise DeliveryFailed("the SMTP server closed the connection") from None
    except ssl.SSLError as e:
        raise DeliveryFailed(f"TLS failed: {clean(e.reason or type(e).__name__, limit=120)}") from None
    except ConnectionRefusedError:
        raise DeliveryFailed(f"connection refused by {host}:{port}") from None
    except socket.gaierror:
        raise DeliveryFailed(f"cannot resolve {host}") from None
    except (socket.timeout, TimeoutError):
        raise DeliveryFailed(f"no answer from {host}:{port} within {dest.timeout:g} s") from None
    except (OSError, smtplib.SMTPException) as e:
        raise DeliveryFailed(f"SMTP failed: {clean(type(e).__name__ + ': ' + str(e), limit=160)}") from None


__all__ = ["DeliveryFailed", "Sent", "send"]
