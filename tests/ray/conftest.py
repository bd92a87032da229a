"""A local Ray cluster (2 CPUs) for the whole session, shut down at the end; with RAY_ADDRESS
set, the tests connect to that cluster instead (and leave it running)."""

from __future__ import annotations

import logging
import os
import sys

import pytest


@pytest.fixture(scope="session")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'orchnb[ray]'")
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    address = os.environ.get("RAY_ADDRESS")
    for attempt in (1, 2):  # a loaded CI machine can miss Ray's startup deadline once
        try:
            if address:
                ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
            else:
                ray.init(num_cpus=2, **quiet)
            break
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise
    # Functions defined in test modules travel by value (workers cannot import them).
    for name in ("test_ray_executor",):
        if name in sys.modules:
            ray.cloudpickle.register_pickle_by_value(sys.modules[name])
    yield ray
    ray.shutdown()
