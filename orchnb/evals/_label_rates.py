"""People's labels beside an eval: each candidate's pass rate by people, and each judge's
agreement with them, on the rows people labelled (matched by row content)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..exceptions import SpecError
from ._agreement import agreement
from ._agreement_inputs import human_binary, keyed_report
from ._scores_report import mean_ci

if TYPE_CHECKING:
    import pandas as pd

    from ._labels import Labels


def _reports(source: Any) -> dict[str, Any]:
    reports = getattr(source, "reports", None)
    if isinstance(reports, dict):
        return reports
    return {str(getattr(source, "name", "report")): source}


def pass_rates(labels: Labels, source: Any, *, positive: Any = "pass") -> pd.DataFrame:
    """One row per candidate (or the one report): rows people labelled, their pass rate
    with a bootstrap interval, and for each LLM judge its κ and accuracy against them."""
    import numpy as np
    import pandas as pd

    df = labels.df
    by_key = df.drop_duplicates("key", keep="last").set_index("key")["label"]
    rows = []
    for name, report in _reports(source).items():
        keyed = keyed_report(report)
        mask = keyed["key"].isin(by_key.index).to_numpy()
        human = np.array([human_binary(by_key[k], positive) for k in keyed["key"][mask]],
                         dtype=float)
        rate, lo, hi = mean_ci(human) if human.size else (math.nan,) * 3
        row: dict[str, Any] = {"candidate": name, "labelled": int((~np.isnan(human)).sum()),
                               "people_pass": rate, "people_ci_low": lo, "people_ci_high": hi}
        given = [by_key[k] for k in keyed["key"][mask]]
        for s in report.scorers:
            if not s.get("llm"):
                continue
            try:
                a = agreement(report.scores[s["name"]][mask].tolist(), given, n_boot=0)
                kappa, acc = a.kappa, a.accuracy
            except SpecError:  # no row with both a score and a label
                kappa = acc = math.nan
            row[f"{s['name']}_kappa"], row[f"{s['name']}_accuracy"] = kappa, acc
        rows.append(row)
    return pd.DataFrame(rows).set_index("candidate")
