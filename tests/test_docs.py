"""The documentation documents everything (sqlite-utils' test_docs habit), and its links hold.

The click group is walked recursively at run time, so a command or option added later is
checked as soon as it exists. A command is documented when a line of `docs/` names it in full
(`tracker db migrate`); an option when its long flag is on such a line of its own command, or in
docs/configuration.md (the settings every command shares: --config, --db, --log-format, …). Every
configuration key is in docs/configuration.md or docs/notifications.md, every record the code
logs in docs/records.md's table, and every relative link and anchor in README.md and `docs/`
resolves. The README stays short: it points into `docs/`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tracker.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = {p.name: p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").glob("*.md"))}
LINES = [line for text in DOCS.values() for line in text.splitlines()]
CONFIGURATION = DOCS["configuration.md"]
README_MAX_LINES = 250


def commands(group: click.Command = cli, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """(path, command) for the group itself and every command under it, depth first."""
    yield path, group
    if isinstance(group, click.Group):
        ctx = click.Context(group, info_name="tracker")
        for name in group.list_commands(ctx):
            sub = group.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from commands(sub, (*path, name))


def long_flags(command: click.Command) -> list[str]:
    return [flag for p in command.params if isinstance(p, click.Option) and not p.hidden
            for flag in (*p.opts, *p.secondary_opts) if flag.startswith("--")]


def _word(text: str) -> str:
    """`text` as a whole word: not followed by a letter, digit or dash."""
    return re.escape(text) + r"(?![\w-])"


def lines_naming(path: tuple[str, ...]) -> list[str]:
    """README lines that name the command `tracker <path>`; for the group itself, lines where
    `tracker` is followed by one of its own options (`tracker --version`)."""
    if path:
        name = re.compile(r"(?<![\w-])" + _word(" ".join(("tracker", *path))))
    else:
        name = re.compile(r"(?<![\w-])tracker \[?-")
    return [line for line in LINES if name.search(line)]


COMMANDS = [(" ".join(path) or "(the group)", path, cmd) for path, cmd in commands()]


def test_the_walk_finds_the_commands() -> None:
    found = {name for name, _, _ in COMMANDS}
    assert {"run", "backfill", "providers", "incidents", "catalog", "db", "db migrate"} <= found


@pytest.mark.parametrize(("name", "path", "command"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_command_is_in_the_docs(name: str, path: tuple[str, ...], command: click.Command) -> None:
    assert lines_naming(path), f"docs/ never names `tracker {name}`: add it to docs/commands.md"


@pytest.mark.parametrize(("name", "path", "command"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_option_is_in_the_docs(name: str, path: tuple[str, ...], command: click.Command) -> None:
    lines = "\n".join(lines_naming(path))
    missing = [flag for flag in long_flags(command)
               if not re.search(r"(?<![\w-])" + _word(flag), lines)
               and not re.search(r"(?<![\w-])" + _word(flag), CONFIGURATION)]
    assert missing == [], (
        f"`{' '.join(('tracker', *path))}` options missing from docs/ (on a line naming the command, "
        f"or in docs/configuration.md): {missing}"
    )


def test_shell_completion_is_documented_and_works() -> None:
    assert "_TRACKER_COMPLETE=bash_source tracker" in DOCS["commands.md"]
    result = CliRunner().invoke(cli, [], prog_name="tracker", env={"_TRACKER_COMPLETE": "bash_source"})
    assert result.exit_code == 0
    assert "_tracker_completion" in result.output and "complete " in result.output


# -- records ---------------------------------------------------------------------------------

TRACKER = Path(__file__).resolve().parent.parent / "tracker"
LOG_METHODS = {"debug", "info", "warning", "error", "critical", "exception"}


def logged_records() -> dict[str, list[str]]:
    """Every record name the code writes, found statically: the first argument of each
    `<logger>.debug/info/warning/error(...)` call that is a string literal, and the event names
    given to `emit()` (its default included). name -> ["tracker/file.py:line", ...]"""
    import ast

    found: dict[str, list[str]] = {}
    for path in sorted(TRACKER.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        where = f"tracker/{path.relative_to(TRACKER)}"
        for node in ast.walk(tree):
            names: list[ast.expr] = []
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
                if node.func.attr in LOG_METHODS:
                    names.append(node.args[0])
            if isinstance(node, ast.Call):
                func = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if func == "emit":
                    names += node.args[2:3] + [k.value for k in node.keywords if k.arg == "event"]
            if isinstance(node, ast.FunctionDef) and node.name == "emit":
                names += [d for a, d in zip(reversed(node.args.args), reversed(node.args.defaults))
                          if a.arg == "event"]
            for arg in names:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.setdefault(arg.value, []).append(f"{where}:{node.lineno}")
    return found


RECORDS = logged_records()


def documented_records() -> set[str]:
    """The names in the first column of docs/records.md's records table (`| record | level | …`)."""
    table = re.search(r"^\| record \| level \|.*?\n((?:\|.*\n)+)", DOCS["records.md"], re.M)
    assert table, "docs/records.md has no records table (| record | level | when |)"
    return {name for row in table.group(1).splitlines()[1:]
            for name in re.findall(r"`([a-z_]+)`", row.split("|")[1])}


def test_the_record_scan_finds_the_records() -> None:
    assert {"incident_update", "poll_failed", "first_contact", "polls_stuck", "store_failed"} <= set(RECORDS)


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_every_logged_record_is_in_the_records_table(name: str) -> None:
    assert name in documented_records(), (
        f"the record {name!r} (logged at {', '.join(RECORDS[name])}) is missing from docs/records.md's table")


def test_the_records_table_lists_no_record_the_code_never_writes() -> None:
    assert documented_records() - set(RECORDS) == set()


# -- configuration keys ----------------------------------------------------------------------


def config_keys() -> list[str]:
    from tracker import config
    from tracker.notify import destinations

    return sorted(config.TOP_KEYS | config.PROVIDER_KEYS | destinations.ALL_KEYS)


@pytest.mark.parametrize("key", config_keys())
def test_every_config_key_is_documented(key: str) -> None:
    where = CONFIGURATION + DOCS["notifications.md"]
    assert re.search(r"(?<![\w-])" + re.escape(key) + r"(?![\w-])", where), (
        f"the config key {key!r} is in neither docs/configuration.md nor docs/notifications.md")


# -- links and length -------------------------------------------------------------------------

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not line.startswith("#"):
            continue
        base = slug(line.lstrip("#"))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def relative_links() -> list[tuple[str, str]]:
    """(file, target) of every relative link in README.md and docs/, outside code blocks."""
    found = []
    for name, text in [("README.md", README), *((f"docs/{n}", t) for n, t in DOCS.items())]:
        prose = re.sub(r"```.*?```", "", text, flags=re.S)
        for target in _LINK.findall(prose):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # not http:, mailto:, file:
                found.append((name, target))
    return found


LINKS = relative_links()


def test_the_link_scan_finds_links() -> None:
    assert ("README.md", "docs/records.md") in LINKS and len(LINKS) > 20


@pytest.mark.parametrize(("source", "target"), LINKS, ids=[f"{s}->{t}" for s, t in LINKS])
def test_every_relative_link_resolves(source: str, target: str) -> None:
    path, _, anchor = target.partition("#")
    base = (ROOT / source).parent
    file = (base / path).resolve() if path else ROOT / source
    assert file.exists(), f"{source}: link to {target!r}: no such file"
    if anchor:
        assert anchor in anchors(file.read_text(encoding="utf-8")), f"{source}: link to {target!r}: no such anchor"


def test_the_readme_is_short_and_points_into_the_docs() -> None:
    assert len(README.splitlines()) <= README_MAX_LINES
    for name in ("getting-started.md", "configuration.md", "records.md", "formats.md", "notifications.md",
                 "operating.md", "performance.md", "contract.md"):
        assert f"docs/{name}" in README, f"README.md does not link docs/{name}"
