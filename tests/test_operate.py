"""Operating commands (docs/contract.md §6): `health`, `config`, `probe`, what `providers`
and `incidents` show and refuse, and the daemon saying what it is doing (backoff at start,
a --provider id that SIGHUP turns into the catalog's page)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import structlog
from click.testing import CliRunner
from conftest import write_config
from pages import load

from tracker import times
from tracker.adapters import statuspage
from tracker.cli import cli
from tracker.config import Provider
from tracker.ledger import Ledger
from tracker.outbox import Outbox
from tracker.policy import Policy
from tracker.redaction import MASK, redact
from tracker.store import PollRecord, Store

OPENAI = Provider(id="openai", name="OpenAI", url="https://status.openai.com")
def now() -> datetime:
    """The time when the test runs (not when the module was collected: the suite takes minutes)."""
    return datetime.now(timezone.utc)


def ago(**delta) -> str:
    return times.iso(now() - timedelta(**delta))


def record_poll(path, when: str, provider: Provider = OPENAI) -> None:
    """The OpenAI capture recorded as a successful poll at `when`."""
    store = Store.open(path)
    store.sync_providers([provider])
    parsed = statuspage.parse(load("openai-incidents-2025-11-15.json"), base_url=provider.url)
    store.record(provider.id, parsed.incidents, now=when, source="run", policy=Policy.for_provider(provider),
                 lease=("t", when), poll=PollRecord("statuspage", {}))
    store.close()


def fail(path, n: int, when: str, error: str = "HTTP 503", until: str | None = None) -> None:
    store = Store.open(path)
    for _ in range(n):
        store.record_failure("openai", error, when, until)
    store.close()


def invoke(*args, code: int = 0, env: dict | None = None):
    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exit_code == code, (result.output, result.exception)
    return result


# -- health --------------------------------------------------------------------------------

def test_health_is_ok_when_every_provider_succeeded_recently(tmp_path):
    db = tmp_path / "t.db"
    record_poll(db, ago(seconds=30))
    out = invoke("health", "--db", str(db)).stdout
    assert out.startswith("ok: 1 provider, each polled successfully within its max age")
    report = json.loads(invoke("health", "--db", str(db), "--json").stdout)
    assert report["healthy"] is True and report["database"] == str(db)
    (p,) = report["providers"]
    assert p["id"] == "openai" and p["healthy"] and p["max_age_seconds"] == 180 and 29 <= p["age_seconds"] < 60


def test_health_fails_with_one_line_per_late_provider(tmp_path):
    db = tmp_path / "t.db"
    last_ok = ago(minutes=14)
    record_poll(db, last_ok)
    fail(db, 5, ago(minutes=1))
    result = invoke("health", "--db", str(db), code=1)
    (line,) = result.stdout.splitlines()
    when = last_ok[:19].replace("T", " ")  # the same instant: computing it again may cross a second
    assert line == f"openai: last success {when} UTC (14 min ago; max age 3 min), 5 failures: HTTP 503"
    # A failing provider whose last success is recent enough is not late.
    invoke("health", "--db", str(db), "--max-age", "20m")
    invoke("health", "--db", str(db), "--max-age", "600", code=1)
    report = json.loads(invoke("health", "--db", str(db), "--json", code=1).stdout)
    assert report["healthy"] is False and report["providers"][0]["failures"] == 5


def test_health_names_a_provider_never_polled(tmp_path):
    db = tmp_path / "t.db"
    record_poll(db, ago(seconds=5))
    config = write_config(tmp_path / "t.toml", [
        {"name": "OpenAI", "url": OPENAI.url}, {"name": "GitHub", "url": "https://www.githubstatus.com"}])
    result = invoke("health", "--db", str(db), "--config", str(config), code=1)
    assert result.stdout.splitlines() == [
        "github: never polled successfully (not polled yet: is `tracker run` running on this database?)"]


def test_health_without_a_database_is_unhealthy_and_creates_nothing(tmp_path):
    missing = tmp_path / "none.db"
    result = invoke("health", "--db", str(missing), code=1)
    assert result.stderr.startswith(f"Error: unhealthy: no database at {missing}")
    assert not missing.exists()


def test_health_bad_max_age_is_a_usage_error(tmp_path):
    result = invoke("health", "--db", str(tmp_path / "t.db"), "--max-age", "soon", code=2)
    assert "'soon' is not a duration such as 90s, 10m, 2h or 1d" in result.stderr


# -- config --------------------------------------------------------------------------------

def test_config_shows_each_setting_and_where_it_came_from(tmp_path):
    config = write_config(tmp_path / "t.toml", [{"name": "GitHub", "url": "https://www.githubstatus.com"}],
                          workers=4, log_level="warn")
    env = {"TRACKER_INTERVAL": "45", "TRACKER_DB": str(tmp_path / "env.db")}
    shown = json.loads(invoke("config", "--config", str(config), "--log-format", "json", "--json", env=env).stdout)
    s = shown["settings"]
    assert s["config_path"] == {"value": str(config), "source": "option --config"}
    assert s["database"] == {"value": str(tmp_path / "env.db"), "source": "env TRACKER_DB"}
    assert s["log_format"] == {"value": "json", "source": "option --log-format"}
    assert s["log_level"] == {"value": "warning", "source": f"file {config}"}
    assert s["workers"] == {"value": 4, "source": f"file {config}"}
    assert s["interval"] == {"value": 45, "source": "env TRACKER_INTERVAL"}
    assert s["timeout"] == {"value": 20.0, "source": "default"}
    assert s["metrics_listen"] == {"value": None, "source": "default"}
    (p,) = shown["providers"]
    assert (p["id"], p["url"], p["interval"]) == ("github", "https://www.githubstatus.com", 45)
    table = invoke("config", "--config", str(config), env=env).stdout
    assert "interval        45" in table and "env TRACKER_INTERVAL" in table and "github" in table


def test_config_exits_78_on_a_bad_config(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('interval = "often"\n')
    result = invoke("config", "--config", str(bad), code=78)
    assert result.stderr == f"Error: {bad}: interval: 'often' is not a positive number\n"


def test_config_never_prints_a_secret(tmp_path):
    url = "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX"
    config = tmp_path / "t.toml"
    config.write_text('[[notify]]\ntype = "slack"\nurl_env = "SLACK_URL"\n'
                      '[[notify]]\ntype = "webhook"\nurl = "https://example.com/hook?token=abc123"\n'
                      'secret_env = "HOOK_SECRET"\n')
    env = {"SLACK_URL": url, "HOOK_SECRET": "s3cr3t-value"}
    for args in (["--json"], []):
        out = invoke("config", "--config", str(config), *args, env=env).stdout
        assert "XXXXSECRETXXXX" not in out and "abc123" not in out and "s3cr3t-value" not in out
        assert "SLACK_URL" in out  # the variable is named, so the operator knows where it comes from


def test_redact_masks_secret_keys_notify_urls_and_env_targets():
    table = {
        "providers": [{"name": "GitHub", "url": "https://www.githubstatus.com"}],
        "notify": [{"type": "webhook", "url": "https://example.com/hook/abc", "secret_env": "S",
                    "resolved_secret": "from-the-env", "smtp_password": "pw", "api_token": "t"}],
        "password": "hunter2",
    }
    shown = redact(table, environ={"S": "from-the-env"})
    assert shown["providers"][0]["url"] == "https://www.githubstatus.com"  # a public page: kept
    n = shown["notify"][0]
    assert n["url"] == f"https://example.com/{MASK}" and n["secret_env"] == "S"
    assert n["resolved_secret"] == n["smtp_password"] == n["api_token"] == shown["password"] == MASK
    assert redact({"note": "from-the-env"}, environ={"X_ENV": "y"}) == {"note": "from-the-env"}
    assert redact({"a_env": "S", "copy": "from-the-env"}, environ={"S": "from-the-env"})["copy"] == MASK


# -- probe ---------------------------------------------------------------------------------

def test_probe_shows_format_endpoints_and_what_first_contact_would_announce(server, tmp_path):
    payload = load("openai-incidents-2025-11-15.json")
    server.route("/o/api/v2/incidents.json", payload)
    out = invoke("probe", f"{server.base}/o").stdout.splitlines()
    assert out[0] == "format: statuspage (detected by probing the page)"
    assert out[1:3] == ["asked:", f"  {server.base}/o/api/v2/incidents.json  ok"]
    assert out[3].startswith("found: 25 incidents (1 open), 82 updates")
    opened = next(i for i in payload["incidents"] if i["status"] != "resolved")
    n = len(opened["incident_updates"])
    assert out[4] == f"first contact would announce {n} update{'s' if n != 1 else ''}:"
    assert all(opened["name"] in line for line in out[5:]) and len(out[5:]) == n
    shown = json.loads(invoke("probe", f"{server.base}/o", "--format", "statuspage", "--json").stdout)
    assert shown["format"] == "statuspage" and shown["found_by"] == "option"
    assert (shown["incidents"], shown["open_incidents"], shown["updates"]) == (25, 1, 82)
    times_ = [u["created_at"] for u in shown["first_contact"]]
    assert times_ == sorted(times_) and {u["incident_id"] for u in shown["first_contact"]} == {opened["id"]}
    assert not list(tmp_path.glob("**/*.db"))  # no database anywhere


def test_probe_exits_1_with_the_error_when_the_page_cannot_be_read(server):
    server.route("/down/api/v2/incidents.json").fault = "500"
    result = invoke("probe", f"{server.base}/down", "--format", "statuspage", code=1)
    assert result.stderr.startswith(f"Error: {server.base}/down: HTTP 500")
    assert "is not an http(s) URL" in invoke("probe", "ftp://example.com", code=2).stderr


# -- providers and incidents -------------------------------------------------------------

def test_providers_shows_last_success_and_next_poll_due(tmp_path):
    db = tmp_path / "t.db"
    polled = now() - timedelta(minutes=5)
    record_poll(db, times.iso(polled))
    (item,) = json.loads(invoke("providers", "--db", str(db), "--json").stdout)
    assert item["last_ok_at"] == times.iso(polled)
    assert item["next_poll_at"] == times.iso(polled + timedelta(minutes=1))  # an interval (60 s) after the last poll
    until = times.iso(now() + timedelta(minutes=3))
    fail(db, 3, ago(seconds=10), until=until)
    (item,) = json.loads(invoke("providers", "--db", str(db), "--json").stdout)
    assert item["next_poll_at"] == until and item["last_ok_at"] == times.iso(polled)
    table = invoke("providers", "--db", str(db)).stdout
    assert "LAST SUCCESS" in table and "NEXT POLL" in table and until[:19].replace("T", " ") in table


def test_incidents_rejects_unknown_providers_and_json_with_csv(tmp_path):
    db = tmp_path / "t.db"
    record_poll(db, ago(seconds=1))
    result = invoke("incidents", "--db", str(db), "--provider", "nosuch", code=2)
    assert "'nosuch' not configured (configured: openai)" in result.stderr
    invoke("incidents", "--db", str(db), "--provider", "openai")
    invoke("incidents", "--db", str(db), "--provider", "github")  # a catalog id, as for `run`
    result = invoke("incidents", "--db", str(db), "--json", "--csv", code=2)
    assert "--json and --csv cannot be used together" in result.stderr


def test_incidents_since_means_created_or_updated_since(tmp_path):
    db = tmp_path / "t.db"
    record_poll(db, ago(seconds=1))
    payload = load("openai-incidents-2025-11-15.json")
    # An incident created before the cut whose last update is after it is "since" the cut.
    moving = next(i for i in payload["incidents"]
                  if min(u["created_at"] for u in i["incident_updates"]) < max(u["created_at"] for u in i["incident_updates"]))
    cut = times.parse(max(u["created_at"] for u in moving["incident_updates"]))
    found = json.loads(invoke("incidents", "--db", str(db), "--since", cut, "--json").stdout)
    assert moving["id"] in {i["incident_id"] for i in found}
    assert all(i["created_at"] >= cut or (i["updated_at"] or "") >= cut
               or any(u["created_at"] >= cut for u in i["updates"]) for i in found)
    assert len(found) < len(payload["incidents"])


# -- saying what it is doing ---------------------------------------------------------------

def test_a_provider_still_backing_off_at_start_is_said_once(tmp_path):
    db = tmp_path / "t.db"
    record_poll(db, ago(minutes=20))
    until = times.iso(now() + timedelta(minutes=4))
    fail(db, 3, ago(seconds=30), until=until)
    store = Store.open(db)
    try:
        with structlog.testing.capture_logs() as logs:
            Ledger(store, structlog.get_logger(), Outbox(store, structlog.get_logger())).load([OPENAI])
            Ledger(store, structlog.get_logger(), Outbox(store, structlog.get_logger()),
                   source="once").load([OPENAI])  # run --once polls it anyway: nothing to say
    finally:
        store.close()
    (said,) = [e for e in logs if e["event"] == "provider_backing_off"]
    assert said["provider_id"] == "openai" and said["until"] == until and said["failures"] == 3
    assert said["log_level"] == "info" and 200 < said["retry_in"] <= 240


def test_sighup_says_when_a_provider_id_now_comes_from_the_catalog(tmp_path, monkeypatch):
    """`run --provider github` with github configured; the config loses github; SIGHUP's reload
    still finds the id, in the catalog: the switch to the catalog's URL is a warning."""
    import tracker.poller

    config = write_config(tmp_path / "t.toml", [
        {"name": "GitHub", "url": "http://127.0.0.1:9/mirror", "id": "github"},
        {"name": "Other", "url": "http://127.0.0.1:9/other"}])
    seen = {}

    class FakePoller:  # the loop is not under test: it reloads once, as SIGHUP does
        def __init__(self, settings, store, log, *, source, reload):
            self.settings, self.reload = settings, reload

        def run(self):
            seen["before"] = self.settings.providers
            write_config(config, [{"name": "Other", "url": "http://127.0.0.1:9/other"}])
            seen["after"] = self.reload().providers
            return 0

    monkeypatch.setattr(tracker.poller, "Poller", FakePoller)
    result = invoke("run", "--provider", "github", "--config", str(config), "--db", str(tmp_path / "t.db"),
                    "--log-format", "json")
    assert [p.url for p in seen["before"]] == ["http://127.0.0.1:9/mirror"]
    assert [p.url for p in seen["after"]] == ["https://www.githubstatus.com"]
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    (warned,) = [r for r in records if r["event"] == "provider_from_catalog"]
    assert warned["level"] == "warning" and warned["provider_id"] == "github"
    assert warned["url"] == "https://www.githubstatus.com"


@pytest.mark.parametrize("level", ["warn", "WARN", "warning"])
def test_warn_is_a_log_level(tmp_path, level):
    shown = json.loads(invoke("config", "--log-level", level, "--json").stdout)
    assert shown["settings"]["log_level"]["value"] == "warning"


def test_probe_suggests_the_format_that_reads_a_page_of_another_platform(server):
    server.route("/s/api/v2/incidents.json", load("slack-status-current-2024-02-27T1725Z.json"))
    result = invoke("probe", f"{server.base}/s", "--format", "statuspage", code=1)
    assert "not a Statuspage incidents payload" in result.stderr
    assert result.stderr.rstrip().endswith("(it reads as slack: try --format slack)")
