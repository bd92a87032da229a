"""Every test runs with its own ORCHNB_HOME and no real API keys."""

from __future__ import annotations

import pytest

_KEYS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
         "ORCHNB_CACHE", "ORCHNB_PERSIST")


@pytest.fixture(autouse=True)
def orchnb_home(tmp_path, monkeypatch):
    """An isolated ORCHNB_HOME (traces and cache) and a clean provider environment."""
    for key in _KEYS:
        monkeypatch.delenv(key, raising=False)
    home = tmp_path / "orchnb-home"
    monkeypatch.setenv("ORCHNB_HOME", str(home))
    return home
