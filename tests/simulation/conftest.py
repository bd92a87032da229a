"""The simulation test's fixtures (its Hypothesis profiles are registered in tests/conftest.py,
so ``--hypothesis-profile=soak`` works from the project root too)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _quiet():
    """No progress bars (they are a subscriber like any other, but slow a tight loop)."""
    import orchnb
    from orchnb.engine import _config

    before = _config._DEFAULTS[0]
    orchnb.configure(progress=False)
    yield
    _config._DEFAULTS[0] = before
