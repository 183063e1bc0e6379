"""The incident.io adapter on the real captures: OpenAI's and Groq's native summaries, and
OpenAI's ongoing incident as its page embedded it."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from test_formats_e2e import openai_incident

from tracker.adapters import incidentio
from tracker.errors import ParseError

FIXTURES = Path(__file__).parent / "fixtures"
NOW = "2026-10-06T00:00:00.000Z"


def load(name):
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def test_openai_all_operational_summary_has_no_incidents():
    assert incidentio.parse(load("openai-incidentio-proxy-2026-10-06.json"), now=NOW).incidents == []


def test_openai_reopened_incident_with_its_real_text():
    summary = load("openai-incidentio-proxy-2026-10-06.json")["summary"]
    result = incidentio.parse({"incidents": [openai_incident()], "summary": summary},
                              base_url="https://status.openai.com", now=NOW)
    (inc,) = result.incidents
    assert (inc.incident_id, inc.title, inc.status, inc.impact, inc.kind) == (
        "01KKWW47249GJZZP9ZGR1PTHV5", "Elevated errors for sign-in and account creation", "monitoring", "minor",
        "incident")
    assert inc.url == "https://status.openai.com/incidents/01KKWW47249GJZZP9ZGR1PTHV5"
    assert [u.status for u in inc.updates] == ["identified", "monitoring", "resolved", "identified", "monitoring"]
    assert inc.updates[0].message == ("We have identified that users are experiencing elevated errors for sign-ins "
                                      "and account creations.\n\nWe are working on implementing a mitigation.")
    assert inc.updates[0].created_at == "2026-03-17T02:42:00.000Z"  # back-dated before publication
    assert inc.created_at == "2026-03-17T02:42:00.000Z"
    assert inc.components == ("Login (ChatGPT)",)  # OpenAI has two components named Login
    assert inc.is_open


def test_groq_stale_maintenance_and_its_markdown():
    payload = load("groq-incidentio-proxy-2026-10-06.json")
    (m,) = incidentio.parse(payload, now=NOW).incidents
    assert (m.kind, m.impact, m.status) == ("maintenance", "maintenance", "completed")  # window ended 2025-11-03
    (m_then,) = incidentio.parse(payload, now="2025-10-25T00:00:00.000Z").incidents
    assert m_then.status == "scheduled" and m_then.is_open
    (u,) = m.updates
    assert u.status == "scheduled" and u.message.startswith("When: Monday, Nov 3, 2025\n\n• 00:00 to 03:00 UTC")
    assert m.components == ("meta-llama/llama-4-maverick-17b-128e-instruct",)
    no_plain = copy.deepcopy(payload)
    del no_plain["summary"]["scheduled_maintenances"][0]["updates"][0]["message_string"]
    (m2,) = incidentio.parse(no_plain, now=NOW).incidents
    assert m2.updates[0].message.startswith("**When:** Monday, Nov 3, 2025")  # the markdown rendering


@pytest.mark.parametrize("payload", [[], {"page": {}}, {"incidents": {}}, {"summary": []}, "x"])
def test_wrong_shape_is_a_parse_error(payload):
    with pytest.raises(ParseError):
        incidentio.parse(payload)


def test_a_statuspage_payload_is_not_taken_for_incidentio():
    with pytest.raises(ParseError, match="not an incident.io status page payload"):
        incidentio.parse(load("github-incidents-2026-07-31.json"))


@pytest.mark.parametrize("name, copy", [
    ("openai-incidents-2025-11-15.json", True),
    ("openai-summary-2025-11-14.json", True),
    ("dropbox-incidents-2024-01-03.json", False),
    ("github-incidents-2026-07-31.json", False),
    ("github-incidents-unresolved-2026-04-17.json", False),
    ("github-summary-2026-07-31.json", False),
    ("atlassian-incidents-2024-01-31.json", False),
    ("hyper-incidents-2023-04-10.json", False),
    ("cloudflare-summary-2025-11-18T1444Z.json", False),
])
def test_incidentio_copy_of_the_statuspage_api_is_told_by_its_ids(name, copy):
    """`format = "auto"` reads a page as Statuspage first: incident.io's copy must say whose it is."""
    from tracker.adapters import ADAPTERS

    payload = json.loads((FIXTURES / name).read_bytes())
    assert incidentio.is_compatible_copy(payload) is copy
    assert ADAPTERS["statuspage"](payload).served_by == ("incidentio" if copy else None)
    # The archived weeks hold the copy's incidents without their page object: the ids tell.
    if name == "openai-incidents-2025-11-15.json":
        week = json.loads((FIXTURES / "openai-compat-incidents-weekly-2026-W31.json").read_bytes())
        assert incidentio.is_compatible_copy({"incidents": [item["raw"] for item in week]})
