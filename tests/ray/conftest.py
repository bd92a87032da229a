"""A local Ray cluster (2 CPUs) for the whole session, shut down at the end."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'orchnb[ray]'")
    import logging

    for attempt in (1, 2):  # a loaded CI machine can miss Ray's startup deadline once
        try:
            if not ray.is_initialized():
                ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                         logging_level=logging.ERROR)
            break
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise
    # Functions defined in test modules travel by value (workers cannot import them).
    import sys

    for name in ("test_ray_executor",):
        if name in sys.modules:
            ray.cloudpickle.register_pickle_by_value(sys.modules[name])
    yield ray
    ray.shutdown()
