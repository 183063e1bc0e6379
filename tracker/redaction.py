"""Keeping secrets out of what tracker prints (`tracker config`, logs): docs/contract.md §7 says
destination URLs and secrets never appear.

`redact(table)` returns a copy of a settings table (a dict, a dataclass, or lists of them) in
which
- a key naming a secret (`secret`, `password`, `token`, or ending in one of them, as
  `smtp_password`) has its value masked;
- `url` is masked inside a notify destination (`notify=True`, or any table under a `notify`
  key): a webhook URL is its own credential. A provider's `url` is a public page, kept;
- a `…_env` key keeps its value, the *name* of a variable, and any value anywhere in the table
  equal to what that variable holds is masked (the resolved secret, wherever it was put).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

MASK = "***"
SECRET_WORDS = ("secret", "password", "token")


def _is_secret_key(key: str) -> bool:
    k = key.lower()
    return any(k.endswith(w) for w in SECRET_WORDS)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    return value


def _env_targets(value: Any, environ: Mapping[str, str]) -> set[str]:
    """What every `…_env` key anywhere in `value` points at, where it is set."""
    found: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if k.lower().endswith("_env") and isinstance(v, str) and environ.get(v):
                found.add(environ[v])
            found |= _env_targets(v, environ)
    elif isinstance(value, list):
        for v in value:
            found |= _env_targets(v, environ)
    return found


def _mask_url(url: Any) -> Any:
    """Scheme and host stay (which service it is), the rest (the credential) goes."""
    if not isinstance(url, str) or not url:
        return url
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme and parts.hostname:
        return f"{parts.scheme}://{parts.hostname}/{MASK}"
    return MASK


def redact(value: Any, *, notify: bool = False, environ: Mapping[str, str] | None = None) -> Any:
    """A copy of `value` (plain dicts and lists) safe to print. `notify`: `value` is a notify
    destination (or a list of them)."""
    env = os.environ if environ is None else environ
    plain = _plain(value)
    targets = _env_targets(plain, env)

    def walk(v: Any, key: str | None, in_notify: bool) -> Any:
        if isinstance(v, dict):
            return {k: walk(item, k, in_notify or k.lower() == "notify") for k, item in v.items()}
        if isinstance(v, list):
            return [walk(item, key, in_notify) for item in v]
        if isinstance(v, str) and v.startswith("$") and v[1:].replace("_", "").isalnum():
            return v  # "$SLACK_WEBHOOK_URL": the name of the variable holding it, not the secret
        if key is not None and v not in (None, ""):
            if _is_secret_key(key):
                return MASK
            if in_notify and key.lower() == "url":
                return _mask_url(v)
        if isinstance(v, str) and v in targets:
            return MASK
        return v

    return walk(plain, None, notify)


__all__ = ["MASK", "redact"]
