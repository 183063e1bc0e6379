"""Print the fault matrix: for each fault a status page can show (tests/statusserver.py
FAULTS), what tracker logged, how long after the page healed it recovered, and the healthy
provider's worst pause between two polls. The same scenario tests/test_faults.py asserts on.

    python tests/benchmarks/fault_matrix.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from faults import FAULT_SECONDS, run_matrix  # noqa: E402
from statusserver import FAULTS  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        result = run_matrix(Path(tmp))
    print(f"One daemon, interval 1 s, timeout 2 s, 8 workers; every fault held {FAULT_SECONDS:g} s "
          f"while each page published {len(result.healthy_expected)} updates; exit code {result.exit_code}, "
          f"{result.seconds} s in all.\n")
    print("| fault | what the page does | poll_failed says | records | recovered after | announced / published |")
    print("|---|---|---|---:|---:|---|")
    for mode, o in result.outcomes.items():
        reason = o.errors[0] if o.errors else "-"
        got = f"{len(o.announced)} / {len(o.expected)}" + ("" if o.announced == o.expected else " MISMATCH")
        print(f"| {mode} | {FAULTS[mode]} | {reason[:70]} | {o.failed_records} | "
              f"{o.recovered_after if o.recovered_after is not None else 'never'} s | {got} |")
    print(f"\nHealthy provider: worst pause between two polls {result.healthy_worst_gap} s "
          f"(interval 1 s); announced {len(result.healthy_announced)} / {len(result.healthy_expected)}.")


if __name__ == "__main__":
    main()
