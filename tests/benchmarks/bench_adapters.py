"""Parse every real capture with its format's adapter: incidents, updates, parse time.
Prints a Markdown table; asserts nothing. Calls the adapter modules directly (every one is
`parse(payload, *, base_url=None, now=None)`), so only parsing is timed.

    python tests/benchmarks/bench_adapters.py
"""

from __future__ import annotations

import importlib
import json
import re
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NOW = "2026-11-23T00:00:00.000Z"
FORMAT_OF = [
    (r"instatus", "instatus"),
    (r"incidentio-proxy", "incidentio"),
    (r"^(github|dropbox|atlassian|hyper|openai)-incidents|^github-incident-|summary-", "statuspage"),
    (r"\.(atom|xml)$", "feed"),
    (r"^gcp-", "gcp"),
    (r"^aws-", "aws"),
    (r"^slack-", "slack"),
    (r"statusio", "statusio"),
]


def main() -> None:
    print("| fixture | format | bytes | incidents | updates | parse ms |")
    print("|---|---|---:|---:|---:|---:|")
    for path in sorted(FIXTURES.iterdir()):
        fmt = next((f for pattern, f in FORMAT_OF if re.search(pattern, path.name)), None)
        if fmt is None:
            continue
        body = path.read_bytes()
        parse = importlib.import_module(f"tracker.adapters.{fmt}").parse
        payload = body if fmt == "feed" else json.loads(body)  # feeds take the raw bytes
        result = parse(payload, base_url="https://example.test", now=NOW)
        runs = max(3, min(200, int(0.3 / max(1e-6, timeit.timeit(lambda: parse(payload, now=NOW), number=1)))))
        best = min(timeit.repeat(lambda: parse(payload, now=NOW), number=runs, repeat=3)) / runs
        updates = sum(len(i.updates) for i in result.incidents)
        print(f"| {path.name} | {fmt} | {len(body):,} | {len(result.incidents)} | {updates} | {best * 1000:.2f} |")


if __name__ == "__main__":
    main()
