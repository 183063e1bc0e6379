"""What a user sees in each lifecycle and incident.io scenario: the real `tracker` command against
real captures on 127.0.0.1, printing the records (a few JSON lines each). Prints, asserts nothing
(tests/test_lifecycle.py and tests/test_incidentio_views.py assert the same scenarios).

    python tests/benchmarks/show_events.py
"""

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import Tracker, updates_of, write_config  # noqa: E402
from openai_pages import copy_at, moments, summary_at, week  # noqa: E402
from statusserver import StatusServer  # noqa: E402
from test_real_pages import DO_MOMENTS, FLICKER, cloudflare, do_history, do_summary, github_resolved  # noqa: E402

F = Path(__file__).resolve().parents[1] / "fixtures"
d = Path(tempfile.mkdtemp())

def show(records, names=("incident_update", "incident_update_edited", "url_changed", "components_unknown", "view_failed", "first_contact"), limit=2):
    out = [r for r in records if r["event"] in names]
    for r in out[:limit]:
        print("   ", json.dumps(r)[:700])
    if len(out) > limit: print(f"    … {len(out) - limit} more")

with StatusServer() as server:
    # 1. GitHub summary afternoon; at 21:42 the incident has left, and the page's incidents.json
    # has its resolution (the text and time of its history.atom)
    server.route("/gh/api/v2/incidents.json", github_resolved())
    route = server.route("/gh/api/v2/summary.json")
    cfg = write_config(d / "gh.toml", [{"name": "GitHub", "id": "github", "url": f"{server.base}/gh/api/v2/summary.json"}])
    t = Tracker(cfg, d / "gh.db")
    for m in ["T1348Z", "T1503Z", "T2110Z", "T2142Z", "T2142Z"]:
        route.set_json(json.loads((F / f"github-summary-2026-08-17{m}.json").read_bytes()))
        code, recs, err = t.once()
        print(f"== summary.json at {m}: {len(updates_of(recs))} incident_update")
        if m == "T2142Z": show(recs, ("incident_update",), 1)
    # 2. edit
    r2 = server.route("/ghi/api/v2/incidents.json")
    page = json.loads((F / "github-incidents-2026-07-31.json").read_bytes())
    r2.set_json(page)
    cfg2 = write_config(d / "ghi.toml", [{"name": "GitHub", "id": "github", "url": f"{server.base}/ghi"}])
    t2 = Tracker(cfg2, d / "ghi.db"); t2.once()
    for inc in page["incidents"]:
        for u in inc["incident_updates"]:
            if "We are investigating" in u["body"]:
                u["body"] = u["body"].replace("We are investigating", "We are still investigating"); break
        else: continue
        break
    r2.set_json(page)
    print("== an edited body")
    show(t2.once()[1], ("incident_update_edited",), 1)
    # 3. moved page
    server.route("/dbx/api/v2/incidents.json", json.loads((F / "dropbox-incidents-2024-01-03.json").read_bytes()))
    cfg3 = write_config(d / "ghi.toml", [{"name": "GitHub", "id": "github", "url": f"{server.base}/dbx"}])
    print("== the provider's url changed")
    show(Tracker(cfg3, d / "ghi.db").once()[1], ("url_changed", "first_contact"), 2)
    # 4. kinds / maintenance window / typo
    server.route("/cf/api/v2/summary.json", json.loads((F / "cloudflare-summary-2025-11-18T1444Z.json").read_bytes()))
    for name, entry in [("kinds incident", {"kinds": ["incident"]}), ("kinds maintenance", {"kinds": ["maintenance"]}), ("components typo", {"components": ["Dashbord"]})]:
        cfg4 = write_config(d / "cf.toml", [{"name": "Cloudflare", "url": f"{server.base}/cf/api/v2/summary.json", **entry}])
        recs = Tracker(cfg4, d / f"cf-{name}.db").once()[1]
        print(f"== Cloudflare first contact with {name}: {len(updates_of(recs))} announced")
        show(recs, ("incident_update", "components_unknown"), 1)
    # 5. OpenAI: an update from each view
    raws = week("W32"); ts = moments(raws)
    s, c = server.route("/openai/proxy/127.0.0.1"), server.route("/openai/api/v2/incidents.json")
    cfg5 = write_config(d / "oa.toml", [{"name": "OpenAI", "id": "openai", "url": f"{server.base}/openai", "format": "incidentio"}])
    t5 = Tracker(cfg5, d / "oa.db")
    first = raws[-1]; ups = sorted(first["incident_updates"], key=lambda u: u["created_at"])
    s.set_json(summary_at(raws, ups[1]["created_at"])); c.set_json(copy_at(raws, ups[0]["created_at"]))
    print("== OpenAI, an update only the native summary had yet (the copy lagging)")
    recs = t5.once()[1]
    show(recs, ("incident_update",), 2)
    s.set_json(summary_at(raws, ups[-1]["created_at"])); c.set_json(copy_at(raws, ups[-1]["created_at"]))
    print("== OpenAI, the resolution: only in the compatible copy (the incident left the summary)")
    recs = t5.once()[1]
    show([r for r in recs if r.get("update_id") == ups[-1]["id"]], ("incident_update",), 1)
    print("requests per poll: summary", s.requests, "copy", c.requests, "over 2 polls")
    # 6. DigitalOcean: an open incident missing from one version of summary.json (a stale copy)
    summary, history = server.route("/do/api/v2/summary.json"), server.route("/do/api/v2/incidents.json")
    t6 = Tracker(write_config(d / "do.toml", [{"name": "DigitalOcean", "id": "do",
                                              "url": f"{server.base}/do/api/v2/summary.json"}]), d / "do.db")
    listed = None
    for m in DO_MOMENTS:
        page = do_summary(m)
        listed = next((i for i in page["incidents"] if i["id"] == FLICKER), listed)
        summary.set_json(page)
        history.set_json(do_history(listed, page["page"], resolved=m == DO_MOMENTS[-1]))
        before = history.requests
        recs = t6.once()[1]
        print(f"== DigitalOcean summary.json at {m}: {len(updates_of(recs))} incident_update, "
              f"{history.requests - before} request(s) to incidents.json")
        show(recs, ("incident_update",), 2)
    # 7. Cloudflare: three scheduled maintenances and one under way leave the list ten minutes on
    route7 = server.route("/cf7/api/v2/summary.json", cloudflare("2025-11-18T14:42:37.468Z"))
    t7 = Tracker(write_config(d / "cf7.toml", [{"name": "Cloudflare", "id": "cf",
                                               "url": f"{server.base}/cf7/api/v2/summary.json"}]), d / "cf7.db")
    t7.once()
    route7.set_json(cloudflare("2025-11-18T14:52:37.468Z", drop=("zqvgdwg2v0ql", "9j37fvy02xpn", "kkwnsqyc4rkp",
                                                                "vs8f5417pcp7")))
    recs = t7.once()[1]
    print(f"== Cloudflare, four maintenances left the list: {len(updates_of(recs))} incident_update")
    show(recs, ("incident_update", "maintenance_unlisted", "view_failed"), 5)
