"""Configuration: resolution order (docs/contract.md §2) and one-line errors with exit code 78.

Every test runs with the TRACKER_* variables removed, HOME / XDG_STATE_HOME inside tmp_path and
tmp_path as the working directory, so nothing is read from or written to the real environment.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tracker import config, read
from tracker.cli import cli
from tracker.config import ConfigError, Provider, Settings

ENV_VARS = ("TRACKER_CONFIG", "TRACKER_DB", "TRACKER_LOG_FORMAT", "TRACKER_LOG_LEVEL",
            "STATE_DIRECTORY", "XDG_STATE_HOME")

ONE_PROVIDER = '[[providers]]\nname = "GitHub"\nurl = "https://www.githubstatus.com"\n'


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def write(tmp_path: Path, text: str, name: str = "tracker.toml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def assert_config_error(result: Result, *needles: str) -> str:
    """Exit 78, exactly one line on stderr, `Error: …` naming every needle, no traceback."""
    assert result.exit_code == 78, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit)
    assert result.stdout == ""
    assert result.stderr.endswith("\n")
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("Error: ")
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in line, (needle, line)
    return line


# --------------------------------------------------------------------------------------------
# Errors: file problems


def test_missing_file_option(runner, tmp_path):
    path = tmp_path / "nope.toml"
    line = assert_config_error(runner.invoke(cli, ["db", "migrate", "--config", str(path)]),
                               str(path), "no such config file")
    assert not line.startswith("Error: TRACKER_CONFIG")
    assert not (tmp_path / "state").exists()  # nothing ran


def test_missing_file_env(runner, tmp_path, monkeypatch):
    path = tmp_path / "nope.toml"
    monkeypatch.setenv("TRACKER_CONFIG", str(path))
    line = assert_config_error(runner.invoke(cli, ["db", "migrate"]), str(path), "no such config file")
    assert line.startswith("Error: TRACKER_CONFIG: ")


def test_option_config_wins_over_env(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKER_CONFIG", str(tmp_path / "nope.toml"))
    good = write(tmp_path, 'database = "from-file.db"\n')
    result = runner.invoke(cli, ["db", "migrate", "--create", "--config", str(good)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].startswith(f"{tmp_path / 'from-file.db'}: schema up to date")


def test_unreadable_path_is_a_directory(runner, tmp_path):
    directory = tmp_path / "conf.d"
    directory.mkdir()
    assert_config_error(runner.invoke(cli, ["db", "migrate", "--config", str(directory)]),
                        str(directory), "cannot read config file")
    with pytest.raises(ConfigError, match="cannot read config file"):
        config.load(directory)


def test_not_utf8(runner, tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('[[providers]]\nname = "Caf\xe9"\nurl = "https://status.example.com"\n'.encode("latin-1"))
    assert_config_error(runner.invoke(cli, ["db", "migrate", "--config", str(path)]), str(path), "UTF-8")


@pytest.mark.parametrize("text", [
    "interval = \n",
    "[[providers]\nname = 'x'\n",
    'interval = 60\ninterval = 60\n',
    'name = "unterminated\n',
])
def test_invalid_toml(runner, tmp_path, text):
    path = write(tmp_path, text)
    assert_config_error(runner.invoke(cli, ["db", "migrate", "--config", str(path)]),
                        str(path), "invalid TOML", "line ")


@pytest.mark.parametrize("args", [["db", "migrate"], ["providers"], ["incidents"], ["run", "--once"], ["run"]])
def test_every_command_stops_on_a_bad_config(runner, tmp_path, args):
    path = write(tmp_path, "interval = \n")
    assert_config_error(runner.invoke(cli, [*args, "--config", str(path)]), str(path), "invalid TOML")
    assert not (tmp_path / "state").exists()


# --------------------------------------------------------------------------------------------
# Errors: keys, types, values

BAD = [
    # (id, file text, words the one line must contain besides the path)
    ("unknown-top-key", "intervall = 60\n", ["intervall", "unknown key"]),
    ("unknown-top-table", "[provider]\nname = 'x'\n", ["provider", "unknown key"]),
    ("unknown-provider-key", ONE_PROVIDER + 'urls = "https://x.example"\n', ["provider #1", "'urls'", "unknown key"]),
    ("interval-text", 'interval = "x"\n', ["interval", "'x'"]),
    ("interval-zero", "interval = 0\n", ["interval", "0 is not a positive number"]),
    ("interval-negative", "interval = -5\n", ["interval", "-5"]),
    ("interval-bool", "interval = true\n", ["interval", "True"]),
    ("interval-inf", "interval = inf\n", ["interval", "inf"]),
    ("interval-nan", "interval = nan\n", ["interval", "nan"]),
    ("workers-zero", "workers = 0\n", ["workers", "0"]),
    ("workers-float", "workers = 1.5\n", ["workers", "1.5"]),
    ("workers-text", 'workers = "8"\n', ["workers", "'8'"]),
    ("workers-huge", "workers = 100000\n", ["workers", "100000"]),
    ("timeout-zero", "timeout = 0\n", ["timeout", "0"]),
    ("providers-string", 'providers = "openai"\n', ["providers", "array of tables"]),
    ("providers-list-of-strings", 'providers = ["https://status.openai.com"]\n', ["providers", "array of tables"]),
    ("providers-table", '[providers]\nname = "OpenAI"\nurl = "https://status.openai.com"\n', ["providers", "array of tables"]),
    ("providers-empty", "providers = []\n", ["providers", "empty"]),
    ("components-string", ONE_PROVIDER + 'components = "API"\n', ["provider #1", "components", "'API'"]),
    ("components-numbers", ONE_PROVIDER + "components = [1, 2]\n", ["provider #1", "components", "[1, 2]"]),
    ("components-blank", ONE_PROVIDER + 'components = ["API", " "]\n', ["components", "' '"]),
    ("missing-name", '[[providers]]\nurl = "https://www.githubstatus.com"\n', ["provider #1", "'name'"]),
    ("missing-url", '[[providers]]\nname = "GitHub"\n', ["provider #1", "'GitHub'", "'url'"]),
    ("name-empty", '[[providers]]\nname = ""\nurl = "https://www.githubstatus.com"\n', ["name", "''"]),
    ("name-number", '[[providers]]\nname = 5\nurl = "https://www.githubstatus.com"\n', ["name", "5"]),
    ("url-ftp", '[[providers]]\nname = "X"\nurl = "ftp://status.example.com"\n', ["url", "'ftp://status.example.com'", "http(s)"]),
    ("url-no-scheme", '[[providers]]\nname = "OpenAI"\nurl = "status.openai.com"\n', ["url", "'status.openai.com'", "http(s)"]),
    ("url-no-host", '[[providers]]\nname = "X"\nurl = "https://"\n', ["url", "'https://'"]),
    ("url-number", '[[providers]]\nname = "X"\nurl = 443\n', ["url", "443"]),
    ("duplicate-slug", ONE_PROVIDER + '[[providers]]\nname = "github"\nurl = "https://githubstatus.com"\n',
     ["provider #2", "id", "duplicate", "'github'", "provider #1"]),
    ("duplicate-explicit-id",
     '[[providers]]\nname = "A"\nid = "status"\nurl = "https://a.example"\n'
     '[[providers]]\nname = "B"\nid = "status"\nurl = "https://b.example"\n',
     ["provider #2", "'B'", "id", "duplicate", "'status'"]),
    ("bad-id-upper", ONE_PROVIDER + 'id = "Git Hub"\n', ["provider #1", "id", "'Git Hub'"]),
    ("bad-id-dash", ONE_PROVIDER + 'id = "-github"\n', ["id", "'-github'"]),
    ("bad-id-long", ONE_PROVIDER + f'id = "{"a" * 65}"\n', ["id", "a" * 65]),
    ("bad-id-number", ONE_PROVIDER + "id = 7\n", ["id", "7"]),
    ("bad-format", ONE_PROVIDER + 'format = "rss"\n', ["provider #1", "format", "'rss'"]),
    ("bad-provider-interval", ONE_PROVIDER + 'interval = "fast"\n', ["provider #1", "interval", "'fast'"]),
    ("bad-provider-interval-zero", ONE_PROVIDER + "interval = 0\n", ["provider #1", "interval", "0"]),
    ("bad-log-format", 'log_format = "xml"\n', ["log_format", "'xml'"]),
    ("bad-log-level", 'log_level = "loud"\n', ["log_level", "'loud'"]),
    ("bad-database", "database = 5\n", ["database", "5"]),
    ("closing-grace-word", 'closing_grace = "soon"\n', ["closing_grace", "'soon'", "duration"]),
    ("closing-grace-negative", ONE_PROVIDER + "closing_grace = -1\n", ["provider #1", "closing_grace", "-1"]),
    ("closing-grace-bool", ONE_PROVIDER + "closing_grace = true\n", ["provider #1", "closing_grace", "True"]),
    ("closing-grace-unit", ONE_PROVIDER + 'closing_grace = "2d"\n', ["closing_grace", "'2d'"]),
    ("empty-database", 'database = ""\n', ["database", "''"]),
]


@pytest.mark.parametrize("text, needles", [pytest.param(t, n, id=i) for i, t, n in BAD])
def test_bad_value_cli(runner, tmp_path, text, needles):
    path = write(tmp_path, text)
    assert_config_error(runner.invoke(cli, ["db", "migrate", "--config", str(path)]), str(path), *needles)
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("text, needles", [pytest.param(t, n, id=i) for i, t, n in BAD])
def test_bad_value_load(tmp_path, text, needles):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config.load(path)
    message = str(info.value)
    assert info.value.exit_code == 78
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    for needle in needles:
        assert needle in message


def test_bad_value_from_env_config_is_prefixed(runner, tmp_path, monkeypatch):
    path = write(tmp_path, 'interval = "x"\n')
    monkeypatch.setenv("TRACKER_CONFIG", str(path))
    line = assert_config_error(runner.invoke(cli, ["providers"]), str(path), "interval", "'x'")
    assert line.startswith(f"Error: TRACKER_CONFIG: {path}: ")


# --------------------------------------------------------------------------------------------
# log options: bad TRACKER_ variable = 78, bad option = click usage error (2)


@pytest.mark.parametrize("var, option", [("TRACKER_LOG_FORMAT", "--log-format"), ("TRACKER_LOG_LEVEL", "--log-level")])
def test_bad_log_env_is_a_config_error(runner, monkeypatch, tmp_path, var, option):
    monkeypatch.setenv(var, "xml")
    line = assert_config_error(runner.invoke(cli, ["run", "--once"]), var, "'xml'")
    assert line.startswith(f"Error: {var}: ")
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("option", ["--log-format", "--log-level"])
def test_bad_log_option_is_a_usage_error(runner, tmp_path, option):
    result = runner.invoke(cli, ["run", "--once", option, "xml"])
    assert result.exit_code == 2, result.output
    assert "Usage: " in result.stderr
    assert f"Invalid value for {option}: 'xml'" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "state").exists()


def test_good_log_option_overrides_bad_env(runner, monkeypatch, tmp_path):
    """The option wins, so the bad variable is never looked at (stopped by a bad file)."""
    monkeypatch.setenv("TRACKER_LOG_FORMAT", "xml")
    path = write(tmp_path, "interval = 0\n")
    result = runner.invoke(cli, ["run", "--once", "--log-format", "json", "--config", str(path)])
    line = assert_config_error(result, str(path), "interval")
    assert "TRACKER_LOG_FORMAT" not in line


# --------------------------------------------------------------------------------------------
# Resolution order through the CLI: database (`tracker db migrate` prints the path it used)


def migrate(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(cli, ["db", "migrate", "--create", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stderr == ""
    last = result.stdout.splitlines()[-1]
    assert last.endswith(": schema up to date") or last.endswith(": schema up to date (nothing to apply)")
    return last.rsplit(": schema up to date", 1)[0]


def test_db_default_is_xdg_state_home(runner, tmp_path):
    expected = tmp_path / "state" / "tracker" / "tracker.db"
    assert migrate(runner) == str(expected)
    assert expected.is_file()
    # second run: nothing left to apply
    result = runner.invoke(cli, ["db", "migrate"])
    assert result.stdout == f"{expected}: schema up to date (nothing to apply)\n"


def test_db_default_falls_back_to_home(runner, tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_STATE_HOME")
    expected = tmp_path / "home" / ".local" / "state" / "tracker" / "tracker.db"
    assert migrate(runner) == str(expected)
    assert expected.is_file()


def test_db_default_empty_xdg_falls_back_to_home(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", "")
    assert migrate(runner) == str(tmp_path / "home" / ".local" / "state" / "tracker" / "tracker.db")


def test_db_default_state_directory_first_entry(runner, tmp_path, monkeypatch):
    first, second = tmp_path / "lib" / "tracker", tmp_path / "lib" / "other"
    monkeypatch.setenv("STATE_DIRECTORY", f"{first}:{second}")
    assert migrate(runner) == str(first / "tracker.db")
    assert (first / "tracker.db").is_file()
    assert not second.exists()
    assert not (tmp_path / "state").exists()  # STATE_DIRECTORY beats XDG_STATE_HOME


def test_db_file_beats_default(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "lib"))
    path = write(tmp_path, f'database = "{tmp_path / "file.db"}"\n')
    assert migrate(runner, "--config", str(path)) == str(tmp_path / "file.db")


def test_db_relative_in_file_is_relative_to_the_file(runner, tmp_path, monkeypatch):
    path = write(tmp_path, 'database = "data/tracker.db"\n', name="etc/tracker/tracker.toml")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    expected = tmp_path / "etc" / "tracker" / "data" / "tracker.db"
    assert migrate(runner, "--config", str(path)) == str(expected)
    assert expected.is_file()
    assert not (elsewhere / "data").exists()


def test_db_tilde_in_file_is_home(runner, tmp_path):
    path = write(tmp_path, 'database = "~/db/tracker.db"\n')
    assert migrate(runner, "--config", str(path)) == str(tmp_path / "home" / "db" / "tracker.db")


def test_db_env_beats_file(runner, tmp_path, monkeypatch):
    path = write(tmp_path, f'database = "{tmp_path / "file.db"}"\n')
    monkeypatch.setenv("TRACKER_DB", str(tmp_path / "env.db"))
    assert migrate(runner, "--config", str(path)) == str(tmp_path / "env.db")
    assert not (tmp_path / "file.db").exists()


def test_db_option_beats_env_and_file(runner, tmp_path, monkeypatch):
    path = write(tmp_path, f'database = "{tmp_path / "file.db"}"\n')
    monkeypatch.setenv("TRACKER_DB", str(tmp_path / "env.db"))
    assert migrate(runner, "--config", str(path), "--db", str(tmp_path / "opt.db")) == str(tmp_path / "opt.db")
    assert not (tmp_path / "env.db").exists() and not (tmp_path / "file.db").exists()


def test_db_env_config_is_read(runner, tmp_path, monkeypatch):
    path = write(tmp_path, f'database = "{tmp_path / "file.db"}"\n')
    monkeypatch.setenv("TRACKER_CONFIG", str(path))
    assert migrate(runner) == str(tmp_path / "file.db")


# --------------------------------------------------------------------------------------------
# Resolution order through the CLI: log format / level as `tracker run` hands them on


@pytest.fixture
def local_page(tmp_path):
    """A config whose only provider is a real capture served from 127.0.0.1."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from pages import load
    from statusserver import StatusServer

    with StatusServer() as srv:
        srv.route("/p/api/v2/incidents.json", load("github-incidents-unresolved-2026-04-17.json"))
        yield f'[[providers]]\nname = "GitHub"\nurl = "{srv.base}/p"\n'


def run_output(runner, *args) -> list[str]:
    result = runner.invoke(cli, ["run", "--once", "--db", "t.db", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout.splitlines()


def is_json(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def test_log_defaults_json_when_not_a_terminal_at_info(runner, local_page, tmp_path):
    lines = run_output(runner, "--config", str(write(tmp_path, local_page)))
    assert lines and all(is_json(line) for line in lines)
    assert json.loads(lines[0])["event"] == "tracker_started"


def test_log_file_beats_default(runner, local_page, tmp_path):
    path = write(tmp_path, 'log_format = "JSON"\nlog_level = "warning"\n' + local_page)
    assert run_output(runner, "--config", str(path)) == []  # nothing at warning or above


def test_log_env_beats_file(runner, local_page, tmp_path, monkeypatch):
    path = write(tmp_path, 'log_format = "json"\nlog_level = "warning"\n' + local_page)
    monkeypatch.setenv("TRACKER_LOG_FORMAT", "console")
    monkeypatch.setenv("TRACKER_LOG_LEVEL", "Info")
    lines = run_output(runner, "--config", str(path))
    assert lines and not any(is_json(line) for line in lines)
    assert any("tracker_started" in line for line in lines)
    assert any("GitHub · incident" in line for line in lines)  # the console block of an update


def test_log_option_beats_env(runner, local_page, tmp_path, monkeypatch):
    path = write(tmp_path, local_page)
    monkeypatch.setenv("TRACKER_LOG_FORMAT", "console")
    monkeypatch.setenv("TRACKER_LOG_LEVEL", "debug")
    lines = run_output(runner, "--config", str(path), "--log-format", "json", "--log-level", "info")
    assert lines and all(is_json(line) for line in lines)
    assert "poll" not in [json.loads(line)["event"] for line in lines]  # a debug record


# --------------------------------------------------------------------------------------------
# Resolution with config.load directly


def test_load_without_file_is_the_builtin_default(tmp_path):
    settings = config.load()
    assert isinstance(settings, Settings)
    assert settings.config_path is None
    [provider] = settings.providers
    assert (provider.id, provider.name, provider.url) == ("openai", "OpenAI", "https://status.openai.com")
    assert provider.interval == 60
    assert provider.format == "incidentio"  # read natively: the real update text (docs/contract.md §1)
    assert read.endpoints(provider, read.configured_format(provider)) == [
        "https://status.openai.com/proxy/status.openai.com",  # the native summary
        "https://status.openai.com/api/v2/incidents.json",  # the compatible copy, same ids
    ]
    assert (settings.log_format, settings.log_level, settings.interval, settings.workers) == ("auto", "info", 60, 8)
    assert settings.database == tmp_path / "state" / "tracker" / "tracker.db"
    assert settings.warnings == ()
    assert config.load("") == settings


def test_file_without_providers_key_uses_the_builtin_default(tmp_path):
    path = write(tmp_path, "workers = 2\n")
    settings = config.load(path)
    assert settings.config_path == path
    assert settings.workers == 2
    assert [(p.id, p.url) for p in settings.providers] == [("openai", "https://status.openai.com")]


def test_load_option_beats_file_beats_default(tmp_path):
    path = write(tmp_path, 'log_format = "console"\nlog_level = "error"\ndatabase = "/srv/file.db"\n')
    from_file = config.load(path)
    assert (from_file.log_format, from_file.log_level, from_file.database) == ("console", "error", Path("/srv/file.db"))
    given = config.load(path, database=tmp_path / "opt.db", log_format="json", log_level="debug")
    assert (given.log_format, given.log_level, given.database) == ("json", "debug", tmp_path / "opt.db")
    # empty strings mean "not given"
    empty = config.load(path, database="", log_format="", log_level="")
    assert (empty.log_format, empty.log_level, empty.database) == ("console", "error", Path("/srv/file.db"))


def test_load_default_database_from_environ_argument(tmp_path):
    assert config.load(environ={"STATE_DIRECTORY": "/var/lib/tracker:/var/lib/x"}).database == Path(
        "/var/lib/tracker/tracker.db")
    assert config.load(environ={"XDG_STATE_HOME": "/xdg"}).database == Path("/xdg/tracker/tracker.db")
    assert config.load(environ={"STATE_DIRECTORY": "", "XDG_STATE_HOME": "/xdg"}).database == Path(
        "/xdg/tracker/tracker.db")
    assert config.load(environ={}).database == tmp_path / "home" / ".local" / "state" / "tracker" / "tracker.db"


def test_default_database_path_reads_os_environ(tmp_path, monkeypatch):
    assert config.default_database_path() == tmp_path / "state" / "tracker" / "tracker.db"
    monkeypatch.setenv("STATE_DIRECTORY", "/run/a:/run/b")
    assert config.default_database_path() == Path("/run/a/tracker.db")


def test_relative_database_with_relative_config_path(tmp_path):
    write(tmp_path, 'database = "tracker.db"\n', name="conf/tracker.toml")
    settings = config.load("conf/tracker.toml")  # cwd is tmp_path
    assert settings.database == Path("conf/tracker.db")
    assert settings.database.resolve() == tmp_path / "conf" / "tracker.db"


def test_absolute_database_in_file_is_kept(tmp_path):
    path = write(tmp_path, 'database = "/var/lib/tracker/tracker.db"\n', name="conf/tracker.toml")
    assert config.load(path).database == Path("/var/lib/tracker/tracker.db")


def test_full_example_from_the_spec(tmp_path):
    path = write(tmp_path, """
interval = 60        # default seconds between polls of one provider
workers = 8          # threads in the pool

[[providers]]
name = "OpenAI"
url = "https://status.openai.com"
id = "openai"
format = "statuspage"
interval = 30
components = ["API", "ChatGPT"]
""")
    settings = config.load(path)
    assert settings.providers == (
        Provider(id="openai", name="OpenAI", url="https://status.openai.com", format="statuspage",
                 interval=30, components=("API", "ChatGPT")),
    )
    assert settings.providers[0].component_filter == frozenset({"api", "chatgpt"})
    assert settings.warnings == ()  # 30 s is polite


@pytest.mark.parametrize("name, slug", [
    ("GitHub Actions", "github-actions"),
    ("OpenAI", "openai"),
    ("  Atlassian / Jira Cloud  ", "atlassian-jira-cloud"),
    ("status.dropbox.com", "status-dropbox-com"),
])
def test_id_defaults_to_slug_of_name(tmp_path, name, slug):
    path = write(tmp_path, f'[[providers]]\nname = "{name}"\nurl = "https://status.example.com"\n')
    [provider] = config.load(path).providers
    assert provider.id == slug
    assert provider.name == name.strip()
    assert config.slugify(name) == slug


def test_explicit_id_is_kept(tmp_path):
    path = write(tmp_path, ONE_PROVIDER + 'id = "gh.status_1"\n')
    assert config.load(path).providers[0].id == "gh.status_1"


def test_same_name_with_different_ids_is_fine(tmp_path):
    path = write(tmp_path, ONE_PROVIDER + 'id = "gh-a"\n' + ONE_PROVIDER + 'id = "gh-b"\n')
    assert [p.id for p in config.load(path).providers] == ["gh-a", "gh-b"]


def test_per_provider_interval_overrides_top_level(tmp_path):
    path = write(tmp_path, (
        "interval = 120\n"
        '[[providers]]\nname = "A"\nurl = "https://a.example"\n'
        '[[providers]]\nname = "B"\nurl = "https://b.example"\ninterval = 45.5\n'
    ))
    settings = config.load(path)
    assert settings.interval == 120
    assert [(p.id, p.interval) for p in settings.providers] == [("a", 120), ("b", 45.5)]
    assert settings.warnings == ()


def test_short_interval_gives_a_politeness_warning(tmp_path):
    path = write(tmp_path, (
        "interval = 10\n"
        '[[providers]]\nname = "A"\nurl = "https://a.example"\n'
        '[[providers]]\nname = "B"\nurl = "https://b.example"\ninterval = 60\n'
        '[[providers]]\nname = "C"\nurl = "https://c.example"\ninterval = 29.5\n'
    ))
    settings = config.load(path)
    assert [p.interval for p in settings.providers] == [10, 60, 29.5]
    # One warning per run naming every fast provider, not one per provider (contract §2).
    (warning,) = settings.warnings
    assert "'a' (10 s)" in warning and "'c' (29.5 s)" in warning and "30 s" in warning
    assert "'b'" not in warning
    # a warning, not an error: the command still runs
    assert "\n" not in warning
    # --provider keeps the warning to the providers chosen
    (only_c,) = config.select(settings, ("c", "b")).warnings
    assert "'c' (29.5 s)" in only_c and "'a'" not in only_c
    assert config.select(settings, ("b",)).warnings == ()


def test_interval_workers_timeout_from_the_environment(tmp_path):
    path = write(tmp_path, "interval = 120\nworkers = 4\n" + ONE_PROVIDER)
    env = {"TRACKER_INTERVAL": "45", "TRACKER_WORKERS": "2", "TRACKER_TIMEOUT": "7.5"}
    settings = config.load(path, environ=env)
    assert (settings.interval, settings.workers, settings.timeout) == (45, 2, 7.5)
    assert settings.providers[0].interval == 45
    assert settings.sources["interval"] == "env TRACKER_INTERVAL" and settings.sources["timeout"] == "env TRACKER_TIMEOUT"
    assert config.load(path).sources["workers"] == "file"


@pytest.mark.parametrize(("var", "value", "needle"), [
    ("TRACKER_INTERVAL", "soon", "TRACKER_INTERVAL: 'soon' is not a positive number"),
    ("TRACKER_WORKERS", "0", "TRACKER_WORKERS: 0 is not a whole number from 1 to 256"),
    ("TRACKER_TIMEOUT", "-1", "TRACKER_TIMEOUT: -1 is not a positive number"),
])
def test_bad_interval_workers_timeout_variable_is_a_config_error(runner, tmp_path, monkeypatch, var, value, needle):
    monkeypatch.setenv(var, value)
    monkeypatch.setenv("TRACKER_CONFIG", str(write(tmp_path, ONE_PROVIDER)))
    result = runner.invoke(cli, ["providers", "--db", str(tmp_path / "t.db")])
    assert result.exit_code == 78
    assert result.stderr.strip() == f"Error: {needle}"


@pytest.mark.parametrize("where", ["option", "env", "file"])
def test_warn_is_accepted_for_warning(runner, tmp_path, monkeypatch, where):
    args = ["config", "--json"]
    if where == "option":
        args += ["--log-level", "WARN"]
    elif where == "env":
        monkeypatch.setenv("TRACKER_LOG_LEVEL", "warn")
    else:
        args += ["--config", str(write(tmp_path, 'log_level = "warn"\n' + ONE_PROVIDER))]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["settings"]["log_level"]["value"] == "warning"


def test_interval_of_exactly_30_is_polite(tmp_path):
    path = write(tmp_path, "interval = 30\n" + ONE_PROVIDER)
    assert config.load(path).warnings == ()


def test_provider_values_are_normalised(tmp_path):
    path = write(tmp_path, (
        '[[providers]]\nname = "  GitHub "\nurl = " https://www.githubstatus.com/ "\n'
        'format = "StatusPage"\ncomponents = [" Actions ", "API Requests"]\n'
    ))
    [p] = config.load(path).providers
    assert (p.name, p.url, p.format, p.components) == (
        "GitHub", "https://www.githubstatus.com/", "statuspage", ("Actions", "API Requests"))
    assert read.endpoints(p, read.configured_format(p)) == ["https://www.githubstatus.com/api/v2/incidents.json"]


def test_url_ending_in_json_is_polled_as_is(tmp_path):
    path = write(tmp_path, '[[providers]]\nname = "CF"\nurl = "https://www.cloudflarestatus.com/api/v2/summary.json"\n')
    [p] = config.load(path).providers
    assert read.configured_format(p) == "statuspage"
    assert read.endpoints(p, "statuspage") == ["https://www.cloudflarestatus.com/api/v2/summary.json"]


def test_cli_providers_lists_the_resolved_config(runner, tmp_path):
    path = write(tmp_path, "interval = 90\n" + ONE_PROVIDER + 'components = ["Actions"]\n')
    result = runner.invoke(cli, ["providers", "--json", "--config", str(path)])
    assert result.exit_code == 0, result.output
    [item] = json.loads(result.stdout)
    assert (item["id"], item["name"], item["url"], item["interval"], item["components"]) == (
        "github", "GitHub", "https://www.githubstatus.com", 90, ["Actions"])
    assert item["last_result"] is None
    assert not (tmp_path / "state").exists()  # a read command does not create the database


# --------------------------------------------------------------------------------------------
# Found by these tests and fixed


def test_unknown_key_with_newline_stays_one_line(runner, tmp_path):
    path = write(tmp_path, '"interval\\nworkers" = 1\n')
    assert_config_error(runner.invoke(cli, ["db", "migrate", "--config", str(path)]), str(path), "unknown key")


def test_top_level_interval_applies_to_the_builtin_default_provider(tmp_path):
    settings = config.load(write(tmp_path, "interval = 120\n"))
    assert settings.providers[0].interval == 120
    fast = config.load(write(tmp_path, "interval = 10\n", name="fast.toml"))
    assert fast.providers[0].interval == 10
    assert len(fast.warnings) == 1


# --------------------------------------------------------------------------------------------
# closing_grace (docs/contract.md §4)


@pytest.mark.parametrize("given, seconds", [("0", 0.0), ("90", 90.0), ("30.5", 30.5), ('"90s"', 90.0),
                                            ('"10m"', 600.0), ('"1h"', 3600.0), ('"0s"', 0.0)])
def test_closing_grace_is_seconds_or_a_duration(tmp_path, given, seconds):
    [p] = config.load(write(tmp_path, ONE_PROVIDER + f"closing_grace = {given}\n")).providers
    assert p.closing_grace == seconds


def test_closing_grace_top_level_is_every_providers_default_and_config_shows_it(runner, tmp_path):
    path = write(tmp_path, 'closing_grace = "10m"\n' + ONE_PROVIDER
                 + '[[providers]]\nname = "DO"\nurl = "https://status.digitalocean.com/api/v2/summary.json"\n'
                 + 'closing_grace = 0\n[[providers]]\nname = "Slack"\ncatalog = "slack"\n')
    github, do, slack = config.load(path).providers
    assert (github.closing_grace, do.closing_grace, slack.closing_grace) == (600.0, 0.0, 600.0)
    shown = runner.invoke(cli, ["config", "--json", "--config", str(path)])
    assert shown.exit_code == 0, shown.output
    assert {p["id"]: p["closing_grace"] for p in json.loads(shown.output)["providers"]} == {
        "github": 600.0, "do": 0.0, "slack": 600.0}
    table = runner.invoke(cli, ["config", "--config", str(path)]).output
    assert re.search(r"^do\s+DO\s+auto\s+60s\s+0s\s", table, re.M)


def test_without_closing_grace_each_format_has_its_own(runner, tmp_path):
    path = write(tmp_path, '[[providers]]\nname = "DO"\nurl = "https://status.digitalocean.com/api/v2/summary.json"\n'
                 '[[providers]]\nname = "Slack"\ncatalog = "slack"\n'
                 '[[providers]]\nname = "Somewhere"\nurl = "https://status.example.com"\n')
    shown = json.loads(runner.invoke(cli, ["config", "--json", "--config", str(path)]).output)
    # statuspage (named by the URL): 1 h; slack: 10 min; a page only detection can tell: by format
    assert [p["closing_grace"] for p in shown["providers"]] == [3600.0, 600.0, None]
