"""Hypothesis profiles for the simulation test: ``ci`` (the default, 2,000 scenarios) and
``soak`` (50,000): ``pytest tests/simulation --hypothesis-profile=soak``.

``max_examples`` here is the total over the simulation tests; each test takes its share.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, settings

_COMMON = {
    "deadline": None,  # a scenario's own bound is checked inside it, with its own slack
    "database": None,  # CI runs explore afresh; a failure prints its seed and blob to replay
    "print_blob": True,
    # No "explain" phase: it reruns a failing scenario hundreds of times (a minute for a hang).
    "phases": (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                              HealthCheck.data_too_large],
}
settings.register_profile("ci", max_examples=2000, **_COMMON)
settings.register_profile("soak", max_examples=50_000, **_COMMON)
if settings.get_current_profile_name() == "default":
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _quiet():
    """No progress bars (they are a subscriber like any other, but slow a tight loop)."""
    import orchnb
    from orchnb.engine import _config

    before = _config._DEFAULTS[0]
    orchnb.configure(progress=False)
    yield
    _config._DEFAULTS[0] = before
