"""Parse every real capture with its format's adapter: incidents, updates, parse time.
Prints a Markdown table; asserts nothing.

    python tests/benchmarks/bench_adapters.py
"""

from __future__ import annotations

import json
import re
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tracker.adapters import FORMATS  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
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
        spec = FORMATS[fmt]
        payload = body if spec.raw else json.loads(body)
        extra = {"now": "2026-11-23T00:00:00.000Z"} if fmt == "incidentio" else {}
        result = spec.parse(payload, base_url="https://example.test", **extra)
        runs = max(3, min(200, int(0.3 / max(1e-6, timeit.timeit(lambda: spec.parse(payload, **extra), number=1)))))
        best = min(timeit.repeat(lambda: spec.parse(payload, **extra), number=runs, repeat=3)) / runs
        updates = sum(len(i.updates) for i in result.incidents)
        print(f"| {path.name} | {fmt} | {len(body):,} | {len(result.incidents)} | {updates} | {best * 1000:.2f} |")


if __name__ == "__main__":
    main()
