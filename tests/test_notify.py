"""Notifications without a daemon (docs/contract.md §7): [[notify]] validation, what each
destination type receives (cut to the services' documented limits), the rate limiter, the
retry schedule, and failure texts that never carry a URL or a secret. The end-to-end tests
through the real `tracker` command are in test_notify_e2e.py."""

from __future__ import annotations

import hashlib
import hmac
import json
import random

import pytest
from notifyserver import Receiver, free_port

from tracker import config
from tracker.errors import ConfigError
from tracker.notify import payloads
from tracker.notify.destinations import Destination
from tracker.notify.transport import DeliveryFailed, send
from tracker.notify.worker import BACKOFF_MAX, RateLimit, retry_delay

SECRET_URL = "https://hooks.slack.com/services/T0SECRET/B0SECRET/XyZsEcReTtOkEn"
ENV = {"SLACK_WEBHOOK_URL": SECRET_URL, "HOOK_URL": "https://example.com/hooks/k3y-in-path",
       "HOOK_SECRET": "hmac-s3cret-value", "SMTP_USER": "tracker", "SMTP_PASSWORD": "smtp-pa55word"}

RECORD = {
    "event": "incident_update", "level": "info", "timestamp": "2026-07-25T12:31:52.000Z",
    "event_id": "github:pz7g535gbs6p:fx4blmxlhh4y", "kind": "incident", "provider": "GitHub",
    "provider_id": "github", "incident_id": "pz7g535gbs6p", "update_id": "fx4blmxlhh4y",
    "incident": "Actions run failures and delays", "status": "investigating", "impact": "critical",
    "components": ["Actions"], "message": "We are investigating reports of degraded availability for Actions",
    "created_at": "2026-07-25T12:31:51.013Z", "url": "https://www.githubstatus.com/incidents/pz7g535gbs6p",
}


def load(tmp_path, body: str, env: dict | None = None) -> config.Settings:
    path = tmp_path / "tracker.toml"
    path.write_text('[[providers]]\nname = "GitHub"\nurl = "https://www.githubstatus.com"\n' + body)
    return config.load(path, environ=ENV if env is None else env)


def error_of(tmp_path, body: str, env: dict | None = None) -> str:
    with pytest.raises(ConfigError) as e:
        load(tmp_path, body, env)
    text = str(e.value)
    assert "\n" not in text
    for secret in ENV.values():
        if len(secret) > 8:
            assert secret not in text
    return text


# -- [[notify]] ---------------------------------------------------------------------------------

def test_destinations_get_default_names_rates_and_hold_their_secrets_out_of_repr(tmp_path):
    s = load(tmp_path, '''
[[notify]]
type = "slack"
url_env = "SLACK_WEBHOOK_URL"
[[notify]]
type = "webhook"
url_env = "HOOK_URL"
secret_env = "HOOK_SECRET"
[[notify]]
type = "webhook"
url_env = "HOOK_URL"
providers = ["github"]
kinds = ["incident"]
min_impact = "major"
components = ["Actions"]
backfill = true
retention = "2h"
[[notify]]
name = "ops-mail"
type = "email"
smtp = "smtp.example.com:587"
from = "tracker@example.com"
to = ["ops@example.com", "oncall@example.com"]
username_env = "SMTP_USER"
password_env = "SMTP_PASSWORD"
''')
    slack, hook, hook2, mail = s.notify
    assert [d.name for d in s.notify] == ["slack", "webhook", "webhook-2", "ops-mail"]
    assert slack.url == SECRET_URL and slack.rate == (1, 1.0) and hook.rate is None
    assert hook.secret == "hmac-s3cret-value"
    assert hook2.providers == ("github",) and hook2.kinds == ("incident",) and hook2.min_impact == "major"
    assert hook2.backfill and hook2.retention == 7200 and not hook.backfill and hook.retention == 86400
    assert mail.starttls and mail.to == ("ops@example.com", "oncall@example.com") and mail.password == "smtp-pa55word"
    shown = repr(s) + "".join(json.dumps(d.describe()) for d in s.notify)
    for secret in ("T0SECRET", "XyZsEcReTtOkEn", "k3y-in-path", "hmac-s3cret-value", "smtp-pa55word"):
        assert secret not in shown
    assert "$SLACK_WEBHOOK_URL" in json.dumps(slack.describe())


@pytest.mark.parametrize(("body", "needle"), [
    ('type = "pager"\nurl_env = "X"', "notify #1.type: 'pager' is not one of webhook, slack, discord, teams, email"),
    ('type = "slack"\nurl_env = "SLACK_WEBHOOK_URL_UNSET"', "notify #1.url_env: SLACK_WEBHOOK_URL_UNSET is not set"),
    ('type = "slack"', "notify #1: give one of 'url_env'"),
    ('type = "slack"\nurl_env = "HOOK_SECRET"', "notify #1.url_env: HOOK_SECRET does not hold an http(s) URL"),
    ('type = "slack"\nurl = "ftp://x/y"', "notify #1.url: is not an http(s) URL"),
    ('type = "slack"\nurl_env = "SLACK_WEBHOOK_URL"\nsecret_env = "HOOK_SECRET"',
     "notify #1.secret_env: is for type webhook only, not slack"),
    ('type = "webhook"\nurl_env = "HOOK_URL"\nsecret_env = "NOPE"', "notify #1.secret_env: NOPE is not set"),
    ('type = "webhook"\nurl_env = "HOOK_URL"\nkinds = ["outage"]', "notify #1.kinds: 'outage' is not one of"),
    ('type = "webhook"\nurl_env = "HOOK_URL"\nmin_impact = "huge"', "notify #1.min_impact: 'huge' is not one of"),
    ('type = "webhook"\nurl_env = "HOOK_URL"\nproviders = ["gihub"]', "notify #1.providers: 'gihub' is neither"),
    ('type = "webhook"\nurl_env = "HOOK_URL"\ncomponents = "x"\nbackfill = "yes"', "notify #1.backfill: 'yes'"),
    ('type = "webhook"\nurl_env = "HOOK_URL"\nretention = "soon"', "notify #1.retention: 'soon' is not a duration"),
    ('type = "webhook"\nurl_env = "HOOK_URL"\nrate = "fast"', "notify #1.rate: 'fast' is not a rate"),
    ('type = "webhook"\nurl_env = "HOOK_URL"\ncolour = "red"', "notify #1: unknown key 'colour'"),
    ('type = "email"\nsmtp = "mail:25"\nfrom = "a@b.c"\nto = "d@e.f"\nusername_env = "SMTP_USER"\n'
     'password_env = "SMTP_PASSWORD"', "notify #1.starttls: is false: the password would cross"),
    ('type = "email"\nsmtp = "mail:25"\nfrom = "a@b.c"\nto = "nobody"', "notify #1.to: 'nobody' is not a mail address"),
])
def test_a_bad_notify_table_is_one_line_naming_file_key_and_value(tmp_path, body, needle):
    text = error_of(tmp_path, "[[notify]]\n" + body + "\n")
    assert text.startswith(str(tmp_path / "tracker.toml") + ": ")
    assert needle in text


def test_duplicate_names_are_refused(tmp_path):
    text = error_of(tmp_path, '[[notify]]\ntype = "webhook"\nurl_env = "HOOK_URL"\nname = "ops"\n'
                              '[[notify]]\ntype = "slack"\nurl_env = "SLACK_WEBHOOK_URL"\nname = "ops"\n')
    assert "notify #2 ('ops').name: duplicate destination name 'ops' (also notify #1)" in text


def test_filters_choose_records_like_the_providers_filters():
    d = Destination("d", "webhook", providers=("github",), kinds=("incident", "maintenance"), min_impact="major",
                    components=("actions",))
    assert d.wants(RECORD)
    assert not d.wants({**RECORD, "provider_id": "openai"})
    assert not d.wants({**RECORD, "impact": "minor"})
    assert d.wants({**RECORD, "impact": "minor", "kind": "maintenance"})  # min_impact judges incidents only
    assert not d.wants({**RECORD, "components": ["Pages"]})
    assert d.wants({**RECORD, "components": []}, touched={"Actions", "Pages"})  # the incident touches it
    assert not Destination("m", "webhook", kinds=("maintenance",)).wants(RECORD)
    assert not Destination("b", "webhook").wants({**RECORD, "backfill": True})
    assert Destination("b", "webhook", backfill=True).wants({**RECORD, "backfill": True})


# -- payloads -----------------------------------------------------------------------------------

LONG = ("<!channel> *bold* <https://evil.example|click> " + "x" * 9000 + "\n") * 2


def test_webhook_is_the_record_with_event_id_and_a_verifiable_signature():
    dest = Destination("w", "webhook", url="https://example.com/h", secret="hmac-s3cret-value")
    body, headers = payloads.webhook(RECORD, dest)
    assert json.loads(body) == RECORD
    assert headers["X-Tracker-Event-Id"] == RECORD["event_id"]
    expected = hmac.new(b"hmac-s3cret-value", body, hashlib.sha256).hexdigest()
    assert headers["X-Tracker-Signature"] == f"sha256={expected}"
    assert "X-Tracker-Signature" not in payloads.webhook(RECORD, Destination("w", "webhook", url="https://e/h"))[1]
    odd = payloads.header_value("p:ïd\r\nX-Evil: 1")
    assert odd.isascii() and "\n" not in odd and "\r" not in odd


def test_slack_blocks_hold_every_field_escape_page_text_and_respect_the_limits():
    msg = payloads.slack({**RECORD, "incident": "A <b>title</b> & more", "message": LONG})
    blocks = msg["blocks"]
    assert blocks[0]["type"] == "header" and len(blocks[0]["text"]["text"]) <= 150
    assert blocks[0]["text"]["text"] == "🔴 GitHub · investigating"
    assert blocks[1]["text"]["text"] == f"<{RECORD['url']}|*A &lt;b&gt;title&lt;/b&gt; &amp; more*>"
    fields = [f["text"] for f in blocks[2]["fields"]]
    assert fields == ["*Status*\ninvestigating", "*Impact*\ncritical", "*Provider*\nGitHub", "*Components*\nActions"]
    text = blocks[3]["text"]["text"]
    assert len(text) <= 3000 and "<!channel>" not in text and "&lt;!channel&gt;" in text and text.endswith("…")
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section" and "text" in b)
    assert RECORD["event_id"] in blocks[-1]["elements"][-1]["text"]
    assert msg["text"].startswith("🔴 [GitHub] investigating: A &lt;b&gt;")


def test_maintenance_inferred_closings_and_edits_look_different_everywhere():
    maintenance = {**RECORD, "kind": "maintenance", "impact": "maintenance", "status": "scheduled",
                   "scheduled_for": "2026-08-01T10:00:00.000Z", "scheduled_until": "2026-08-01T12:00:00.000Z"}
    closed = {**RECORD, "status": "resolved", "update_id": "closed", "inferred": True,
              "message": "No longer listed on the status page"}
    edited = {**RECORD, "event": "incident_update_edited", "event_id": RECORD["event_id"] + ":edit:0123456789ab",
              "previous_message": "We are looking into it"}
    s = payloads.slack(maintenance)
    assert s["blocks"][0]["text"]["text"].startswith("🛠️")
    assert "Scheduled maintenance: 2026-08-01 10:00 UTC → 2026-08-01 12:00 UTC" in json.dumps(s, ensure_ascii=False)
    s = payloads.slack(closed)
    assert s["blocks"][0]["text"]["text"].startswith("✅")
    assert "Closed by tracker: the incident is no longer listed" in s["blocks"][-1]["elements"][0]["text"]
    s = payloads.slack(edited)
    assert any("Before: We are looking into it" in e["text"] for b in s["blocks"] if b["type"] == "context"
               for e in b["elements"])
    assert payloads.discord(closed)["embeds"][0]["color"] == payloads.COLORS["closed"]
    assert payloads.discord(maintenance)["embeds"][0]["color"] == payloads.COLORS["maintenance"]
    assert "Closed by tracker" in json.dumps(payloads.teams(closed), ensure_ascii=False)
    assert payloads.headline(edited) == "[GitHub] investigating (edited): Actions run failures and delays"
    assert payloads.headline(maintenance).startswith("[GitHub] scheduled (maintenance): ")


def test_discord_embed_respects_its_limits_and_parses_no_mentions():
    body = payloads.discord({**RECORD, "incident": "T" * 400, "message": LONG, "components": ["c" * 80] * 40})
    embed = body["embeds"][0]
    assert body["allowed_mentions"] == {"parse": []}
    assert len(embed["title"]) <= 256 and len(embed["description"]) <= 4096
    assert all(len(f["value"]) <= 1024 and len(f["name"]) <= 256 for f in embed["fields"])
    total = (len(embed["title"]) + len(embed["description"]) + len(embed["footer"]["text"])
             + len(embed["author"]["name"]) + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"]))
    assert total <= 6000
    assert embed["url"] == RECORD["url"] and embed["color"] == payloads.COLORS["critical"]
    assert embed["timestamp"] == RECORD["created_at"] and embed["footer"]["text"] == RECORD["event_id"]


def test_teams_card_is_an_adaptive_card_1_4_under_the_size_limit():
    body = payloads.teams({**RECORD, "message": LONG * 3})
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert len(json.dumps(body).encode()) <= payloads.TEAMS_BYTES
    facts = {f["title"]: f["value"] for b in card["body"] if b["type"] == "FactSet" for f in b["facts"]}
    assert facts["Status"] == "investigating" and facts["Impact"] == "critical" and facts["Components"] == "Actions"
    assert card["actions"][0] == {"type": "Action.OpenUrl", "title": "Open on the status page", "url": RECORD["url"]}


def test_mail_is_plain_text_with_a_stable_message_id_per_destination_and_event():
    dest = Destination("ops", "email", smtp="mail:587", from_="Tracker <tracker@example.com>", to=("ops@example.com",))
    msg = payloads.email({**RECORD, "incident": "evil\r\nBcc: x@y.z"}, dest)
    assert msg["Subject"] == "[GitHub] investigating: evil Bcc: x@y.z"
    assert msg.get_content_type() == "text/plain"
    text = msg.get_content()
    assert "We are investigating reports of degraded availability for Actions" in text
    assert RECORD["url"] in text and "Components: Actions" in text
    again = payloads.email(RECORD, dest)
    assert again["Message-ID"] == payloads.email(RECORD, dest)["Message-ID"]
    assert again["Message-ID"].endswith("@example.com>")
    assert again["References"] == again["In-Reply-To"]  # the incident's thread
    other = payloads.email({**RECORD, "update_id": "x", "event_id": "github:pz7g535gbs6p:x"}, dest)
    assert other["Message-ID"] != again["Message-ID"] and other["References"] == again["References"]


# -- pacing ---------------------------------------------------------------------------------------

def test_rate_limit_is_a_sliding_window_with_pauses():
    now = [100.0]
    limit = RateLimit((5, 2.0), lambda: now[0])  # Discord: 5 per 2 s
    for _ in range(5):
        assert limit.delay() == 0
        limit.took()
    assert limit.delay() == pytest.approx(2.0)
    now[0] += 1.5
    assert limit.delay() == pytest.approx(0.5)
    now[0] += 0.5
    assert limit.delay() == 0
    limit.pause(30)
    assert limit.delay() == pytest.approx(30)
    assert RateLimit(None, lambda: now[0]).delay() == 0


def test_retry_delay_doubles_with_jitter_caps_and_honours_retry_after():
    rng = random.Random(1)
    for attempts in range(1, 30):
        base = min(BACKOFF_MAX, 0.5 * 2 ** (attempts - 1))
        assert base / 2 <= retry_delay(attempts, None, rng) <= base
    assert retry_delay(7, 12.0, rng) == 12.0
    assert retry_delay(1, 10**9, rng) == 3600.0


# -- failures in words, without secrets ----------------------------------------------------------

def test_failures_are_described_without_the_url():
    port = free_port()  # nothing listens there
    secret_path = "/services/T0SECRET/B0SECRET/XyZsEcReTtOkEn"
    dest = Destination("slack", "slack", url=f"http://127.0.0.1:{port}{secret_path}", timeout=1)
    with pytest.raises(DeliveryFailed) as e:
        send(dest, RECORD)
    assert e.value.error == "connection refused"
    with Receiver(port) as rcv:
        rcv.script.extend(["500", "429", "hang"])
        for expected in ("HTTP 500: (an HTML page)", "HTTP 429: (an HTML page)", "no answer within 1 s"):
            with pytest.raises(DeliveryFailed) as e:
                send(dest, RECORD)
            assert e.value.error == expected and "SECRET" not in e.value.error
        with pytest.raises(DeliveryFailed) as e:
            rcv.script.append("429")
            send(dest, RECORD)
        assert e.value.retry_after == 1.0
        assert send(dest, RECORD).status == 200
        (got,) = rcv.got
        assert got.path == secret_path and got.json["blocks"][0]["type"] == "header"
    assert dest.redact(f"oops {dest.url} and {secret_path}") == "oops <redacted> and <redacted>"
