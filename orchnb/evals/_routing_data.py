"""Graded answers as data: what a quality router learns from and is evaluated on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..exceptions import SpecError

ROUTING_SETS = ("mmlu", "gsm8k")


def load_routing(name: str = "mmlu", *, full: bool | None = None) -> Any:
    """Graded answers of Mixtral-8x7B (weak) and gpt-4-1106-preview (strong) from RouteLLM
    (Apache-2.0): columns ``prompt, weak_correct, strong_correct`` (+ ``domain`` for MMLU).

    The package ships a slice (MMLU: 3,015 of 12,047 rows over 45 subjects; GSM8K: all 1,319
    problems, without the answer texts). ``full=True`` reads the whole set from
    ``shared/data/routing/`` beside the working directory or one of its parents (an error if
    absent); ``full=None`` does so when it is there, else the slice. ``df.attrs["source"]``
    says which was read.

    >>> df = load_routing("mmlu", full=False)
    >>> len(df), df.attrs["source"]
    (3015, 'orchnb slice')
    """
    import pandas as pd

    if name not in ROUTING_SETS:
        raise SpecError(f"load_routing: unknown set {name!r}; use one of "
                        f"{', '.join(ROUTING_SETS)}", key="name")
    shared = _shared() if full is not False else None
    if full and shared is None:
        raise SpecError("load_routing(full=True): no shared/data/routing/ beside the working "
                        "directory or its parents; use full=None to fall back to the slice",
                        key="full")
    if shared is not None:
        df = pd.read_csv(shared / f"{name}.csv")
        df.attrs["source"] = str(shared / f"{name}.csv")
        return df
    from importlib.resources import files

    with (files("orchnb") / "data" / f"routing_{name}.csv.gz").open("rb") as f:
        df = pd.read_csv(f, compression="gzip")
    df.attrs["source"] = "orchnb slice"
    return df


def _shared() -> Path | None:
    here = Path.cwd().resolve()
    for p in (here, *here.parents):
        d = p / "shared" / "data" / "routing"
        if (d / "mmlu.csv").exists():
            return d
    return None


def graded_answers(source: Any, *, text: str = "text", scores: Sequence[str] | None = None,
                   costs: Sequence[str] | None = None, scorer: str | None = None) -> Any:
    """A graded-answers table: ``text``, one ``<candidate>_score`` column per candidate and,
    when known, ``<candidate>_cost`` (dollars for that row, from the eval's trace at list
    price; None when a price is unknown).

    ``source`` is the result of ``orchnb.compare([...], data, scorers=...)`` (or a mapping
    ``{name: report}`` of ``orchnb.evaluate`` reports over the same rows), whose ``scorer``
    (the first by default) grades each candidate; or a user's own DataFrame, accepted as is
    once ``text`` and the ``scores`` (and ``costs``) columns are checked.

    >>> import pandas as pd
    >>> own = pd.DataFrame({"text": ["2+2?"], "weak_score": [1], "strong_score": [1]})
    >>> graded_answers(own, scores=["weak_score", "strong_score"]).shape
    (1, 3)
    """
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        need = [text, *(scores or ()), *(costs or ())]
        missing = [c for c in need if c not in source.columns]
        if missing:
            raise SpecError(f"graded_answers: the table lacks column(s) {missing}; it has "
                            f"{list(source.columns)[:12]}", key="source")
        return source
    reports = getattr(source, "reports", source)
    if not isinstance(reports, Mapping) or len(reports) < 2:
        raise SpecError("graded_answers: give the result of orchnb.compare([...]) over two or "
                        "more candidates, a {name: report} mapping, or a DataFrame",
                        key="source")
    out: dict[str, Any] = {}
    for name, report in reports.items():
        table = getattr(report, "scores", None)
        if not isinstance(table, pd.DataFrame):
            raise SpecError(f"graded_answers: candidate {name!r} has no per-row scores; "
                            f"evaluate it with scorers=[...]", key="source")
        col = scorer or report.scorer_names[0]
        if col not in table.columns:
            raise SpecError(f"graded_answers: candidate {name!r} has no scorer {col!r}; it has "
                            f"{report.scorer_names}", key="scorer")
        if "text" not in out:
            out["text"] = table["input"].astype(str).tolist()
        elif len(table) != len(out["text"]):
            raise SpecError(f"graded_answers: candidate {name!r} has {len(table)} rows, the "
                            f"first had {len(out['text'])}; evaluate all on the same rows",
                            key="source")
        out[f"{name}_score"] = table[col].astype(float).tolist()
        money = next((c for c in ("list_usd", "cost_usd") if c in table.columns), None)
        out[f"{name}_cost"] = (table[money].tolist() if money is not None
                               else [None] * len(table))
    return pd.DataFrame(out)
