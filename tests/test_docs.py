"""The README documents every command and every option (sqlite-utils' test_docs habit).

The click group is walked recursively at run time, so a command or option added later is
checked as soon as it exists. A command is documented when a README line names it in full
(`tracker db migrate`); an option when its long flag is on such a line of its own command, or
in the README's Configuration section (the settings every command shares: --config, --db,
--log-format, …). Options and commands marked hidden are not checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tracker.cli import cli

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
LINES = README.splitlines()


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


CONFIGURATION = _section("Configuration")


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
def test_every_command_is_in_the_readme(name: str, path: tuple[str, ...], command: click.Command) -> None:
    assert lines_naming(path), f"README.md never names `tracker {name}`: add it to the Commands table"


@pytest.mark.parametrize(("name", "path", "command"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_option_is_in_the_readme(name: str, path: tuple[str, ...], command: click.Command) -> None:
    lines = "\n".join(lines_naming(path))
    missing = [flag for flag in long_flags(command)
               if not re.search(r"(?<![\w-])" + _word(flag), lines)
               and not re.search(r"(?<![\w-])" + _word(flag), CONFIGURATION)]
    assert missing == [], (
        f"`{' '.join(('tracker', *path))}` options missing from README.md (on a line naming the command, "
        f"or in the Configuration section): {missing}"
    )


def test_shell_completion_is_documented_and_works() -> None:
    assert "_TRACKER_COMPLETE=bash_source tracker" in README
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
    """The names in the first column of the README's records table (`| record | level | …`)."""
    table = re.search(r"^\| record \| level \|.*?\n((?:\|.*\n)+)", README, re.M)
    assert table, "README.md has no records table (| record | level | when |)"
    return {name for row in table.group(1).splitlines()[1:]
            for name in re.findall(r"`([a-z_]+)`", row.split("|")[1])}


def test_the_record_scan_finds_the_records() -> None:
    assert {"incident_update", "poll_failed", "first_contact", "polls_stuck", "store_failed"} <= set(RECORDS)


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_every_logged_record_is_in_the_readme_table(name: str) -> None:
    assert name in documented_records(), (
        f"the record {name!r} (logged at {', '.join(RECORDS[name])}) is missing from README.md's records table")


def test_the_readme_table_lists_no_record_the_code_never_writes() -> None:
    assert documented_records() - set(RECORDS) == set()
