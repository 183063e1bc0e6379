"""Adapters: one pure function per page format, payload in, incidents out.

Every adapter has the signature `parse(payload, *, base_url) -> ParseResult`: no I/O, no
clock, no database. Malformed items are skipped with a warning in `ParseResult.skipped`; a
payload of the wrong shape raises ParseError.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..models import ParseResult
from . import statuspage

Adapter = Callable[..., ParseResult]

ADAPTERS: dict[str, Adapter] = {
    "statuspage": statuspage.parse,
}


def get_adapter(kind: str) -> Adapter:
    try:
        return ADAPTERS[kind]
    except KeyError:
        raise KeyError(f"no adapter for format {kind!r}") from None


__all__ = ["ADAPTERS", "get_adapter", "Any"]
