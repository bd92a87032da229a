"""Fixtures for provider tests: a loopback FakeProvider the real SDKs talk to."""

from __future__ import annotations

import pytest

from orchnb.testing import FakeProvider


@pytest.fixture(autouse=True)
def _no_ambient_credentials(monkeypatch):
    # The root conftest clears the key variables; these would also satisfy the SDKs.
    for var in ("ANTHROPIC_AUTH_TOKEN", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def fake():
    """A started FakeProvider with no latency, stopped after the test."""
    with FakeProvider(latency=0.0, seed=0) as server:
        yield server
