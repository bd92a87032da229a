"""What :class:`~orchnb.evals.Comparison` and :class:`~orchnb.evals.Experiment` share: reports
by candidate name, read like a mapping (``exp["chain"]``, ``list(exp)``, ``len(exp)``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

R = TypeVar("R")


class ReportSet(Generic[R]):
    """Candidates' reports by name, in the order they were evaluated."""

    reports: dict[str, R]

    def __getitem__(self, name: str) -> R:
        return self.reports[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.reports)

    def __len__(self) -> int:
        return len(self.reports)
