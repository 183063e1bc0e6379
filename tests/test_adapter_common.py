"""What the adapters share (tracker/adapters/common.py): the one HTML-to-text reducer, the same
`parse` signature everywhere, and no adapter leaning on a sibling adapter.

The cross-format test feeds one body, built from real captures (a Slack 2026 note, the incident's
own component names as a list, and an AWS Health 2026 log message), through every adapter that
reduces HTML: each must announce the same text (docs/contract.md §3: "HTML reduced to text, the
same way for every format")."""

from __future__ import annotations

import ast
import copy
import html
import importlib
import inspect
import json
import pkgutil
import re
import time
from pathlib import Path

import pytest
from test_adapter_vendors import BETTERSTACK_DOCS, DOC_INCIDENT

import tracker.adapters
from tracker.adapters import aws, betterstack, feed, gcp, slack, statusio
from tracker.adapters.common import BULLET, MAX_TEXT, clean_text, html_to_text

FIXTURES = Path(__file__).parent / "fixtures"
ADAPTERS_DIR = Path(tracker.adapters.__file__).parent


def load(name: str):
    return json.loads((FIXTURES / name).read_bytes())


def adapter_modules() -> list[str]:
    """Every module of tracker/adapters that defines `parse` (history walks and the registry
    compose adapters; they are not adapters)."""
    names = []
    for info in pkgutil.iter_modules([str(ADAPTERS_DIR)]):
        tree = ast.parse((ADAPTERS_DIR / f"{info.name}.py").read_text(encoding="utf-8"))
        if any(isinstance(n, ast.FunctionDef) and n.name == "parse" for n in tree.body):
            names.append(info.name)
    return sorted(names)


# ---------------------------------------------------------------- the shape every adapter has


def test_every_format_module_is_found() -> None:
    assert {"aws", "betterstack", "feed", "gcp", "incidentio", "instatus", "slack", "statusio",
            "statuspage"} <= set(adapter_modules())


@pytest.mark.parametrize("name", adapter_modules())
def test_every_adapter_takes_the_same_keywords(name: str) -> None:
    parse = importlib.import_module(f"tracker.adapters.{name}").parse
    params = list(inspect.signature(parse).parameters.values())
    assert [(p.name, p.kind, p.default) for p in params[1:]] == [
        ("base_url", inspect.Parameter.KEYWORD_ONLY, None),
        ("now", inspect.Parameter.KEYWORD_ONLY, None),
    ]
    assert params[0].kind == inspect.Parameter.POSITIONAL_OR_KEYWORD


@pytest.mark.parametrize("name", adapter_modules())
def test_no_adapter_imports_a_sibling_adapter(name: str) -> None:
    tree = ast.parse((ADAPTERS_DIR / f"{name}.py").read_text(encoding="utf-8"))
    siblings = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module is None:  # from . import x
                siblings += [a.name for a in node.names]
            elif node.module != "common":
                siblings.append(node.module)
    assert siblings == [], f"{name}.py imports {siblings}; shared code belongs in common.py"


@pytest.mark.parametrize("name", adapter_modules())
def test_only_common_reduces_html(name: str) -> None:
    tree = ast.parse((ADAPTERS_DIR / f"{name}.py").read_text(encoding="utf-8"))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "html.parser" not in imported
    assert not {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))} & {
        "html_to_text", "_Reducer", "_html_parts", "_tidy"}


# ---------------------------------------------------------------- the reducer


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("<ul><li>one</li><li>two</li></ul>", f"{BULLET}one\n{BULLET}two"),
        ("<p>Intro:</p><ol><li>first<li>second</ol><p>End.</p>", f"Intro:\n\n{BULLET}first\n{BULLET}second\n\nEnd."),
        ("<p>a</p><p>b<br>c<br/><br />d</p>", "a\n\nb\nc\n\nd"),
        ("<div><h3>Title</h3>text</div>", "Title\n\ntext"),
        ("<table><tr><th>Region</th><th>State</th></tr><tr><td>eu-west-1</td><td>ok</td></tr></table>",
         "Region State\neu-west-1 ok"),
        ('See <a href="https://example.test/x">the notice</a>.', "See the notice (https://example.test/x)."),
        ('<a href="https://example.test/x">https://example.test/x</a>', "https://example.test/x"),
        ('<a href="mailto:ops@example.test">ops@example.test</a>', "ops@example.test"),
        ('<a href="/relative">here</a> and <a href="javascript:x()">there</a>', "here and there"),
        ("AT&amp;T &lt;b&gt; &#8211; &#x2014; caf&eacute;", "AT&T <b> – — café"),
        ("issues.&amp;nbsp;These", "issues. These"),  # escaped twice (Azure)
        ("<p>x<script>alert(1)</script><style>p{}</style><!-- note -->y</p>", "xy"),
        ("<p>rates < 1% and a <-> b</p>", "rates < 1% and a <-> b"),
        ("<![CDATA[<kept> as text]]>", "<kept> as text"),
        ("<p>  many   spaces\u00a0here  </p>\r\n<p>next</p>", "many spaces here\n\nnext"),
        ("<p>one</p><p></p><p><br></p><p>two</p>", "one\n\ntwo"),
        ("<p>\x1b[31mred\x1b[0m\x07 text\u202e</p>", "red text"),
        # Line breaks alone (most Statuspage markup), with and without spacing to tidy.
        ("First line.<br /><br />Second  line  with  runs.<br />Third", "First line.\n\nSecond line with runs.\nThird"),
        ("a<br /> b <br/>c ", "a\nb\nc"),
        ("a<BR>b\u3000c<br>", "a\nb c"),
        ("a<br>\tb", "a\nb"),
        ("x<br />y &amp; z<br/>", "x\ny & z"),
        ("a<br><br><br><br>b", "a\n\nb"),
        ("<br />lead", "lead"),
    ],
)
def test_html_to_text(markup: str, text: str) -> None:
    assert html_to_text(markup) == text


@pytest.mark.parametrize(
    "plain",
    [
        "Summary: Regions: (Asia, Western US) <-> (Eastern US, Europe).",
        "**Root Cause:** a change.\n\n  - indented item\n  - [contact us](https://example.test)",
        "x < y and y > z",
        "<https://example.test/markdown-autolink>",
    ],
)
def test_text_without_markup_keeps_its_spacing(plain: str) -> None:
    assert html_to_text(plain) == plain


def test_plain_text_is_tidied_only_at_line_ends() -> None:
    assert html_to_text("a  b  \r\nc\u00a0d\r\r\r\ne\t") == "a  b\nc d\n\ne"


def test_markup_can_be_forced_either_way() -> None:
    assert html_to_text("<b>bold</b>", markup=False) == "<b>bold</b>"
    assert html_to_text("a   b", markup=True) == "a b"


def test_clean_text_caps_and_refuses_non_strings() -> None:
    assert clean_text(None) == clean_text(3) == ""
    long = clean_text("<p>" + "x" * (MAX_TEXT + 10) + "</p>")
    assert long == "x" * MAX_TEXT + " […]"


@pytest.mark.parametrize(
    "hostile",
    [
        "<p>" + "<a" * 400_000,
        "<p>" + '<a href="https://x.test">' * 100_000 + "x" + "</a>" * 100_000,
        "<p>" + "<!--" * 200_000,
        "<div " + "x" * 1_000_000,
        "<p>" + "&amp;" * 200_000,
    ],
)
def test_hostile_markup_stays_linear(hostile: str) -> None:
    started = time.perf_counter()
    html_to_text(hostile)
    assert time.perf_counter() - started < 2.0


# ---------------------------------------------------------------- the same text in every format

SLACK_NOTE = load("slack-status-current-2026-09-01.json")["active_incidents"][0]["notes"][5]["body"]
AWS_MESSAGE = next(
    entry["message"]
    for event in load("aws-health-currentevents-2026-07-02.utf16be.json")
    for entry in event["event_log"]
    if "<a href" in entry["message"]
)
BODY = SLACK_NOTE + "<ul><li>Messaging</li><li>Workspace/Org Administration</li></ul>" + AWS_MESSAGE


def test_the_shared_body_is_reduced_as_expected() -> None:
    text = html_to_text(BODY)
    assert text.startswith("We're continuing our restoration efforts")
    assert "available.\n\n• Messaging\n• Workspace/Org Administration\n\nWe continue to work towards" in text
    assert "\n[4] https://aws.amazon.com/support" in text  # a link whose text is its address
    assert "<" not in text and "&nbsp;" not in text


def _feed() -> str:
    az = (FIXTURES / "azure-status-feed-2026-07-23.xml").read_text(encoding="utf-8")
    description = re.search(r"<description>&lt;p&gt;.*?</description>", az, re.S).group()
    [incident] = feed.parse(az.replace(description, f"<description>{html.escape(BODY)}</description>")).incidents
    return incident.updates[0].message


def _slack() -> str:
    payload = load("slack-status-current-2026-09-01.json")
    for note in payload["active_incidents"][0]["notes"]:
        note["body"] = BODY
    return slack.parse(payload).incidents[0].updates[0].message


def _aws() -> str:
    payload = load("aws-health-currentevents-2026-07-02.utf16be.json")
    for entry in payload[0]["event_log"]:
        entry["message"] = BODY
    return aws.parse(payload).incidents[0].updates[0].message


def _gcp() -> str:
    payload = load("gcp-incidents-2022-07-03.json")
    for update in payload[0]["updates"]:
        update["text"] = BODY
    return gcp.parse(payload).incidents[0].updates[0].message


def _statusio() -> str:
    payload = load("gitlab-statusio-status-2026-07-01.json")
    incident = copy.deepcopy(DOC_INCIDENT)
    incident["messages"][1]["details"] = BODY
    payload["result"]["incidents"].append(incident)
    return statusio.parse(payload).incidents[0].updates[1].message


def _betterstack() -> str:
    payload = copy.deepcopy(BETTERSTACK_DOCS)
    payload["included"][2]["attributes"]["message"] = BODY
    return betterstack.parse(payload).incidents[0].updates[0].message


@pytest.mark.parametrize("read", [_feed, _slack, _aws, _gcp, _statusio, _betterstack],
                         ids=["feed", "slack", "aws", "gcp", "statusio", "betterstack"])
def test_every_format_reduces_html_the_same_way(read) -> None:
    assert read() == html_to_text(BODY)


def test_text_without_control_characters_skips_text_clean_but_ends_the_same() -> None:
    """html_to_text calls text.clean only when a character it would change is present; the
    shortcut must give what clean would (random strings over the characters that matter)."""
    import random

    from tracker.text import clean

    rng = random.Random(0)
    alphabet = "ab \n\r\t\x1b[31m\x9b\x07\x7f\u200d\u202e\u2028\ufeff\xa0é"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        expected = re.sub(r"\n{3,}", "\n\n", clean(text.replace("\xa0", " "), multiline=True)).strip()
        assert html_to_text(text, markup=False) == expected, repr(text)
