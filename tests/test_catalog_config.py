"""Catalog providers in the config file, on the command line, and `tracker catalog`."""

from __future__ import annotations

import json

from click.testing import CliRunner

from tracker import config
from tracker.cli import cli


def write(tmp_path, text):
    path = tmp_path / "t.toml"
    path.write_text(text)
    return path


def test_a_catalog_entry_gives_name_url_and_format_and_keys_beside_it_win(tmp_path):
    path = write(tmp_path, '[[providers]]\ncatalog = "github"\n\n'
                           '[[providers]]\ncatalog = "openai"\ninterval = 120\ncomponents = ["API"]\nid = "oai"\n')
    github, openai = config.load(path).providers
    assert (github.id, github.name, github.url, github.format) == (
        "github", "GitHub", "https://www.githubstatus.com", "statuspage")
    assert (openai.id, openai.format, openai.interval, openai.components) == ("oai", "incidentio", 120, ("API",))


def test_an_unknown_catalog_id_is_a_config_error(tmp_path):
    path = write(tmp_path, '[[providers]]\ncatalog = "no-such-page"\n')
    result = CliRunner().invoke(cli, ["db", "migrate", "--config", str(path), "--db", str(tmp_path / "t.db")])
    assert result.exit_code == 78
    assert result.stderr.strip() == (f"Error: {path}: provider #1.catalog: 'no-such-page' is not in the catalog "
                                     "(`tracker catalog WORD` searches it)")


def test_select_takes_configured_ids_first_then_the_catalog(tmp_path):
    settings = config.load(write(tmp_path, '[[providers]]\nname = "GitHub"\nurl = "https://example.test"\n'))
    chosen = config.select(settings, ("github", "cloudflare"))
    assert [(p.id, p.url) for p in chosen.providers] == [
        ("github", "https://example.test"), ("cloudflare", "https://www.cloudflarestatus.com")]


def test_run_with_an_unknown_provider_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["run", "--once", "--provider", "nope", "--db", str(tmp_path / "t.db")])
    assert result.exit_code == 2 and "'nope' not configured" in result.stderr and "not in the catalog" in result.stderr


def test_catalog_command_lists_and_searches():
    everything = json.loads(CliRunner().invoke(cli, ["catalog", "--json"]).stdout)
    assert len(everything) >= 300
    found = CliRunner().invoke(cli, ["catalog", "github"]).stdout.splitlines()
    assert found[0].split() == ["ID", "NAME", "FORMAT", "LISTS", "URL"]
    [github] = [line.split() for line in found[1:] if line.split()[0] == "github"]
    assert github[:3] == ["github", "GitHub", "statuspage"] and int(github[3]) >= 2  # the evidence, counted
    [entry] = [e for e in everything if e["id"] == "github"]
    assert "sentry" in entry["lists"] and "answered-2026" in entry["lists"]
    result = CliRunner().invoke(cli, ["catalog", "zzzz-nothing"])
    assert result.exit_code == 0 and "No catalog entry matches" in result.stderr
