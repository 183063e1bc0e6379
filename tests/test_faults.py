"""Hostile and broken pages: every fault is a clear per-provider error, the healthy provider
beside them stays on schedule, and what a faulty page published meanwhile is announced once
it is readable again."""

from __future__ import annotations

import re

import pytest
from faults import run_matrix
from statusserver import FAULTS

# What poll_failed must say for each fault.
REASONS = {
    "500": r"^HTTP 500$",
    "503": r"^HTTP 503 \(Retry-After: 3\)$",
    "429": r"^HTTP 429 \(Retry-After: 3\)$",
    "hang": r"read timeout",
    "trickle": r"no complete answer within 2 s",
    "endless": r"body larger than 2097152 bytes",
    "gzipbomb": r"body larger than 2097152 bytes",
    "html": r"expected JSON, got text/html \"We.ll be back soon\" \(HTTP 200\)",
    "truncated": r"expected JSON, got application/json \(HTTP 200\)",
    "wrongshape": r"not a Statuspage incidents payload",
    "redirectloop": r"more than 5 redirects",
    "badscheme": r"not http\(s\)",
}


@pytest.mark.slow
def test_fault_matrix(tmp_path):
    assert set(REASONS) == set(FAULTS)
    result = run_matrix(tmp_path)
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    # The healthy provider: polled every second throughout, its news announced once.
    assert result.healthy_worst_gap < 3.0, result.healthy_worst_gap
    assert result.healthy_announced == result.healthy_expected
    for mode, outcome in result.outcomes.items():
        assert outcome.errors, f"{mode}: no poll_failed"
        assert all(re.search(REASONS[mode], e) for e in outcome.errors), (mode, outcome.errors)
        assert outcome.recovered_after is not None, f"{mode}: never recovered"
        # Nothing lost, nothing twice, oldest first.
        assert outcome.announced == outcome.expected, mode
