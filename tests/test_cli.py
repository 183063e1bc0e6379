"""The read commands over a real database filled from a real capture."""

from __future__ import annotations

import json
import re
import shlex

import click
import pytest
from click.testing import CliRunner
from pages import load

from tracker import times
from tracker.adapters import statuspage
from tracker.cli import cli
from tracker.config import Provider
from tracker.policy import Policy
from tracker.store import PollRecord, Store

OPENAI = Provider(id="openai", name="OpenAI", url="https://status.openai.com")


@pytest.fixture
def db(tmp_path):
    """The OpenAI capture (25 incidents, one still open) recorded as a first poll would."""
    path = tmp_path / "t.db"
    store = Store.open(path)
    store.sync_providers([OPENAI])
    parsed = statuspage.parse(load("openai-incidents-2025-11-15.json"), base_url=OPENAI.url)
    store.record(OPENAI.id, parsed.incidents, now=times.now_iso(), source="run", policy=Policy.for_provider(OPENAI),
                 lease=("t", times.now_iso()), poll=PollRecord("statuspage", {}))
    store.close()
    return path


def invoke(*args):
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_incidents_json_lists_every_incident_newest_first_with_updates(db):
    found = json.loads(invoke("incidents", "--db", str(db), "--json").stdout)
    payload = load("openai-incidents-2025-11-15.json")
    newest_first = sorted(payload["incidents"], key=lambda i: i["created_at"], reverse=True)
    assert [i["incident_id"] for i in found] == [i["id"] for i in newest_first]
    first = found[0]
    assert first["provider"] == "OpenAI" and first["title"] == newest_first[0]["name"]
    assert [u["update_id"] for u in first["updates"]] == [
        u["id"] for u in reversed(newest_first[0]["incident_updates"])
    ]


def test_incidents_open_since_limit_and_provider_filters(db):
    payload = load("openai-incidents-2025-11-15.json")
    opened = json.loads(invoke("incidents", "--db", str(db), "--json", "--open").stdout)
    assert [i["incident_id"] for i in opened] == [i["id"] for i in payload["incidents"] if i["status"] != "resolved"]
    since = "2025-11-10"
    recent = json.loads(invoke("incidents", "--db", str(db), "--json", "--since", since).stdout)
    assert len(recent) == sum(1 for i in payload["incidents"] if i["created_at"] >= since) > 0
    assert len(json.loads(invoke("incidents", "--db", str(db), "--json", "--limit", "3").stdout)) == 3
    assert json.loads(invoke("incidents", "--db", str(db), "--json", "--provider", "github").stdout) == []
    assert json.loads(invoke("incidents", "--db", str(db), "--json", "--since", "1d").stdout) == []  # a 2025 capture


def test_incidents_table_has_a_row_per_incident(db):
    lines = invoke("incidents", "--db", str(db)).stdout.splitlines()
    assert lines[0].split()[:2] == ["STARTED", "(UTC)"]
    assert len(lines) == 1 + 25


def test_bad_since_is_a_usage_error(db):
    result = CliRunner().invoke(cli, ["incidents", "--db", str(db), "--since", "yesterday"])
    assert result.exit_code == 2 and "is not a date" in result.stderr


def test_providers_shows_last_poll_and_counts(db):
    (item,) = json.loads(invoke("providers", "--db", str(db), "--json").stdout)
    assert item["id"] == "openai" and item["last_result"] == "ok" and item["failures"] == 0
    assert (item["incidents"], item["open_incidents"], item["updates"]) == (25, 1, 82)
    table = invoke("providers", "--db", str(db)).stdout
    assert "openai" in table and "25 (1 open)" in table


def test_read_commands_do_not_create_a_database(tmp_path):
    missing = tmp_path / "none.db"
    result = CliRunner().invoke(cli, ["incidents", "--db", str(missing)])
    assert result.exit_code == 0 and "No incidents recorded yet." in result.stderr
    assert "never polled" in invoke("providers", "--db", str(missing)).stdout
    assert not missing.exists()


def _commands(group=cli, path=()):
    """(path, command) for the group and every command under it, found at run time."""
    from test_docs import commands

    return commands(group, path)


HELP_PAGES = list(_commands())


@pytest.mark.parametrize(("path", "command"), HELP_PAGES, ids=[" ".join(p) or "tracker" for p, _ in HELP_PAGES])
def test_help_teaches_with_examples(path, command):
    """What the docstrings promise: a command's --help shows examples of that very command
    (each one parses), lists every option, and names every option's environment variable; a
    group's --help lists its commands."""
    out = invoke(*path, "--help").stdout
    flat = " ".join(out.split())  # the help is wrapped at 100 columns
    options = out.split("\nOptions:\n", 1)[1] if "\nOptions:\n" in out else ""
    for param in command.params:
        if not isinstance(param, click.Option) or param.hidden:
            continue
        for flag in (*param.opts, *param.secondary_opts):  # "  -V, --version", "  --x / --no-x"
            assert re.search(rf"(?m)^\s+(?:-{{1,2}}[\w-]+(?:, | / ))*{re.escape(flag)}(?![\w-])", options), (
                f"{flag} missing from the options of `tracker {' '.join(path)} --help`")
        if param.envvar:
            names = ", ".join([param.envvar] if isinstance(param.envvar, str) else param.envvar)
            assert f"[env var: {names}]" in flat, f"{names} not shown in `tracker {' '.join(path)} --help`"
    if isinstance(command, click.Group):
        listed = out.split("\nCommands:\n", 1)[1]
        ctx = click.Context(command, info_name="tracker")
        for name in command.list_commands(ctx):
            if not command.get_command(ctx, name).hidden:
                assert re.search(rf"(?m)^\s+{re.escape(name)}\s", listed), (
                    f"{name} not listed in `tracker {' '.join(path)} --help`")
        return
    block = re.search(r"(?m)^  Examples?:\n((?:    .*\n)+)", out)
    assert block, f"`tracker {' '.join(path)} --help` has no Examples: block"
    examples = [line.strip() for line in block.group(1).splitlines()]
    prefix = " ".join(("tracker", *path))
    for example in examples:
        assert re.match(rf"{re.escape(prefix)}(?: |$)", example), f"{example!r} is not an example of `{prefix}`"
        # The command's own words, before a pipe, a redirection, a comment or a following
        # command (`tracker health && curl …`), must parse.
        words = shlex.split(re.split(r"\s(?:[|>#;]|&&)", example, maxsplit=1)[0])[1 + len(path):]
        command.make_context(prefix, words)
