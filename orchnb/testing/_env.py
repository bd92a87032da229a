"""Pointing the SDKs at a test server for a while, and back."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

from ..models import fresh_providers


@contextlib.contextmanager
def pointed_at(env: Mapping[str, str]) -> Iterator[None]:
    """Within the block ``env`` is set and providers are made anew from it; the environment
    and the providers from before come back after.

    >>> with pointed_at({"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}):
    ...     os.environ["OPENAI_BASE_URL"]
    'http://127.0.0.1:9/v1'
    """
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with fresh_providers():
            yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
