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
