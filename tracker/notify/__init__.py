"""Notifications (docs/contract.md §7): every announced update and edit, sent to each
`[[notify]]` destination whose filters it passes, durably through the database.

    destinations.py  the [[notify]] tables, validated into frozen Destination values
    payloads.py      what each type receives (webhook JSON, Slack Block Kit, Discord embed,
                     Teams Adaptive Card, a plain-text mail); pure functions
    transport.py     one HTTP POST or one SMTP mail; failures in words without secrets
    queue.py         the deliveries table: queued with the outbox's mark, leased per lane
    worker.py        the delivery threads (one per destination) and their lifecycle

Only the destinations are imported here: config.py needs them, and nothing more.
"""

from __future__ import annotations

from .destinations import Destination, parse

__all__ = ["Destination", "parse"]
