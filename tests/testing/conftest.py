"""Fixtures for the fake server's own tests."""

from __future__ import annotations

import pytest

from orchnb.testing import FakeProvider


@pytest.fixture
def fake():
    """A started FakeProvider with no latency, stopped after the test."""
    with FakeProvider(latency=0.0, seed=0) as server:
        yield server
