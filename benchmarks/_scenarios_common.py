"""What every scenario shares: interleaved timing, statistics, machine facts, subprocesses.

Timings on a shared, noisy machine: contenders run in rotating order within one process, each
repetition times a batch of iterations, and results are medians with their spread (quartiles and
range). Ratios to the floor are taken between medians of the same run.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

Batch = Callable[[int], float]
"""Runs ``n`` iterations of one contender and returns the seconds they took (setup excluded)."""

PACKAGES = ("orchnb", "langgraph", "langchain-core", "openai", "httpx", "pandas", "numpy",
            "pyarrow", "jinja2", "pydantic")


@dataclass
class Result:
    """One contender's figures in one scenario (``value`` is the median, in ``unit``)."""

    contender: str
    value: float | None
    unit: str
    samples: list[float] = field(default_factory=list)
    p25: float | None = None
    p75: float | None = None
    low: float | None = None
    high: float | None = None
    ratio: float | None = None
    """``value`` over the floor's ``value`` (None for the floor itself or without a floor)."""
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, contender: str, samples: list[float], unit: str, note: str = "",
           **extra: Any) -> Result:
        s = sorted(samples)
        q = statistics.quantiles(s, n=4, method="inclusive") if len(s) > 1 else [s[0]] * 3
        return cls(contender, statistics.median(s), unit, [round(x, 6) for x in samples],
                   q[0], q[2], s[0], s[-1], note=note, extra=extra)

    @property
    def spread(self) -> float | None:
        """Half the interquartile range, as a fraction of the median."""
        if self.value in (None, 0) or self.p25 is None or self.p75 is None:
            return None
        return (self.p75 - self.p25) / 2 / self.value


@dataclass
class Scenario:
    """A scenario's results: contenders (the floor first, when there is one), targets, notes."""

    name: str
    title: str
    results: list[Result] = field(default_factory=list)
    floor: str | None = None
    notes: list[str] = field(default_factory=list)
    targets: list[dict[str, Any]] = field(default_factory=list)
    skipped: str | None = None
    seconds: float = 0.0

    def add(self, result: Result) -> Result:
        self.results.append(result)
        return result

    def get(self, contender: str) -> Result | None:
        return next((r for r in self.results if r.contender == contender), None)

    def finish(self) -> Scenario:
        """Fill in the ratios to the floor."""
        floor = self.get(self.floor) if self.floor else None
        for r in self.results:
            if floor is not None and r is not floor and floor.value and r.value is not None \
                    and r.unit == floor.unit:
                r.ratio = r.value / floor.value
        return self

    def target(self, what: str, value: float | None, limit: float, unit: str = "") -> None:
        """Record a target: met when ``value <= limit``."""
        self.targets.append({"target": what, "value": value, "limit": limit, "unit": unit,
                             "met": None if value is None else bool(value <= limit)})

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for r, rd in zip(self.results, d["results"]):
            rd["spread"] = r.spread
        return d


def interleave(contenders: dict[str, Batch], *, reps: int, n: int | dict[str, int],
               per: float = 1.0, warmup: int = 1) -> dict[str, list[float]]:
    """Time every contender ``reps`` times in rotating order; samples are seconds / (n * per).

    ``n`` iterations a batch (one number, or one per contender); ``per`` divides further (e.g.
    the steps of a chain, to report per-step figures). A garbage collection runs before each
    batch so one contender's garbage is not collected on another's time.
    """
    names = list(contenders)
    counts = n if isinstance(n, dict) else dict.fromkeys(names, n)
    for name in names:
        for _ in range(warmup):
            contenders[name](max(1, counts[name] // 10))
    samples: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        k = rep % len(names)
        for name in names[k:] + names[:k]:
            gc.collect()
            seconds = contenders[name](counts[name])
            samples[name].append(seconds / (counts[name] * per))
    return samples


def machine() -> dict[str, Any]:
    """The machine and software the figures come from."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "usable_cores": usable, "memory_gib": mem,
        "python": platform.python_version(), "implementation": platform.python_implementation(),
        "platform": platform.platform(), "packages": versions,
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }  # fmt: skip


def peak_rss_mib() -> float | None:
    """This process's own peak RSS (``VmHWM``: reset at exec, unlike ``ru_maxrss``)."""
    return _status_kib("VmHWM")


def rss_mib() -> float | None:
    """This process's current RSS."""
    return _status_kib("VmRSS")


def _status_kib(key: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def python_child(code: str, *, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    """Run ``code`` in a fresh interpreter (same venv) and return its stdout."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc.stdout


def clock() -> float:
    return time.perf_counter()
