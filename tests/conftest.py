"""Every test runs with its own ORCHNB_HOME and no real API keys."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, settings

# Hypothesis profiles of the simulation test (tests/simulation): ``ci``, the default, 2,000
# scenarios in all; ``soak``, 50,000 (``pytest tests/simulation --hypothesis-profile=soak``).
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


_KEYS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
         "ORCHNB_CACHE", "ORCHNB_PERSIST")


@pytest.fixture(autouse=True)
def orchnb_home(tmp_path, monkeypatch):
    """An isolated ORCHNB_HOME (traces and cache) and a clean provider environment."""
    for key in _KEYS:
        monkeypatch.delenv(key, raising=False)
    home = tmp_path / "orchnb-home"
    monkeypatch.setenv("ORCHNB_HOME", str(home))
    yield home
    # Each home's store keeps a writer thread: hundreds of them left open slowed the
    # CPU-bound tests that run late (the simulation took 3x as long in the full suite).
    from orchnb.trace import close_stores

    close_stores(tmp_path)


@pytest.fixture
def fake_env(monkeypatch):
    """A started FakeProvider, with the SDKs' environment variables pointing at it."""
    from orchnb.models import _provider
    from orchnb.testing import FakeProvider

    with FakeProvider(latency=0.0, seed=0, hang=5.0) as server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        # Provider instances read the environment when they create their clients; start fresh.
        monkeypatch.setattr(_provider, "_INSTANCES", {})
        yield server


@pytest.fixture(scope="session")
def ipython():
    """The process's one IPython shell (IPython allows one), with orchnb's magics loaded."""
    from IPython.testing.globalipapp import start_ipython

    shell = start_ipython()
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    shell.run_line_magic("load_ext", "orchnb")
    return shell
