"""What :func:`~orchnb.agreement` accepts, read into one frame of labelled rows.

Judge side: a sequence (or Series) of scores / labels, or an eval report (its judge column).
People's side: a sequence of labels, a DataFrame with a ``label`` column, or anything with a
``.df`` of labels (:class:`~orchnb.evals.Labels`, the :func:`orchnb.label` widget). A report
and a labels table are matched by the hash of each row's content, so the order of either
does not matter; two plain sequences are matched by position.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..exceptions import SpecError
from ._label_store import row_key

if TYPE_CHECKING:
    import pandas as pd

SKIPPED = ("", "skip", "skipped", "none", "nan")


def human_binary(value: Any, positive: Any = "pass") -> float:
    """1.0 for a passing label, 0.0 for any other label, NaN for none (skipped)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    wanted = positive if isinstance(positive, (set, frozenset, list, tuple)) else (positive,)
    if isinstance(value, (bool, int, float)) and not isinstance(value, str):
        if any(isinstance(w, str) for w in wanted):
            return 1.0 if value else 0.0
        return 1.0 if value in wanted else 0.0
    text = str(value).strip()
    if text.lower() in SKIPPED:
        return math.nan
    return 1.0 if text in {str(w) for w in wanted} else 0.0


def judge_binary(value: Any, threshold: float = 0.5, positive: Any = "pass") -> float:
    """A judge's verdict: its score passes at ``threshold`` or above (labels as people's)."""
    if value is None or isinstance(value, str):
        return human_binary(value, positive)
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.nan
    return math.nan if math.isnan(v) else float(v >= threshold)


def report_judge_column(report: Any, scorer: str | None = None) -> str:
    """The judge's column of an eval report: ``scorer``, else its first LLM scorer."""
    names = [s["name"] for s in report.scorers]
    if scorer is not None:
        if scorer not in names:
            raise SpecError(f"agreement: the report has no scorer {scorer!r}; it has "
                            f"{', '.join(names)}")
        return scorer
    llm = [s["name"] for s in report.scorers if s.get("llm")]
    return (llm or names)[0]


def keyed_report(report: Any, scorer: str | None = None) -> pd.DataFrame:
    """A report's rows with their content key and the judge's score (and reason)."""
    col = report_judge_column(report, scorer)
    df = report.scores
    out = df[[c for c in ("input", "output", "expected") if c in df.columns]].copy()
    out["judge_score"] = df[col].to_numpy(dtype=float)
    if f"{col}_reason" in df.columns:
        out["judge_reason"] = df[f"{col}_reason"].to_numpy()
    out["key"] = [row_key(r.get("input"), r.get("output"), r.get("expected"))
                  for r in out.to_dict("records")]
    return out


def labels_frame(human: Any) -> pd.DataFrame | None:
    """People's labels as a DataFrame with a ``label`` column, or None for a plain sequence."""
    import pandas as pd

    df = getattr(human, "df", None)
    if isinstance(df, pd.DataFrame):
        return df
    if isinstance(human, pd.DataFrame):
        if "label" not in human.columns:
            raise SpecError("agreement: a DataFrame of labels needs a 'label' column")
        return human
    return None


def labelled_frame(judge_scores: Any, human_labels: Any, *, rows: pd.DataFrame | None,
                   threshold: float, positive: Any) -> pd.DataFrame:
    """One row per labelled row: judge_score, judge (1/0/NaN), human_label, human (1/0/NaN),
    and the rows' own columns."""
    import pandas as pd

    labels = labels_frame(human_labels)
    if hasattr(judge_scores, "scores") and hasattr(judge_scores, "scorers"):
        frame = keyed_report(judge_scores)
        if labels is not None:
            if "key" not in labels.columns:
                raise SpecError("agreement: an eval report is matched to labels by row "
                                "content; give labels with a 'key' column (orchnb.label)")
            by_key = labels.drop_duplicates("key", keep="last").set_index("key")
            frame = frame[frame["key"].isin(by_key.index)].copy()
            for c in ("label", "note", "tags"):
                if c in by_key.columns:
                    frame["human_label" if c == "label" else c] = by_key.loc[frame["key"],
                                                                             c].to_numpy()
        else:
            frame["human_label"] = _same_length(human_labels, len(frame))
    else:
        scores = _same_length(judge_scores, None)
        if labels is not None:
            # What a judge said when the row was labelled is kept with the label; the
            # scores given here are the ones measured.
            frame = labels.reset_index(drop=True).drop(columns=[
                c for c in ("judge_score", "judge", "human", "split", "agree")
                if c in labels.columns])
            frame["human_label"] = frame["label"]
            frame = frame.drop(columns=["label"])
        else:
            frame = pd.DataFrame({"human_label": _same_length(human_labels, len(scores))})
        if len(frame) != len(scores):
            raise SpecError(f"agreement: {len(scores)} judge scores for {len(frame)} labels; "
                            f"give one score per labelled row, in the same order")
        frame.insert(0, "judge_score", scores)
    if rows is not None:
        if len(rows) != len(frame):
            raise SpecError(f"agreement: rows= has {len(rows)} rows for {len(frame)} labels")
        for c in rows.columns:
            if c not in frame.columns:
                frame[c] = rows[c].to_numpy()
    frame = frame.reset_index(drop=True)
    frame["judge"] = [judge_binary(v, threshold, positive) for v in frame["judge_score"]]
    frame["human"] = [human_binary(v, positive) for v in frame["human_label"]]
    return frame


def _same_length(values: Any, n: int | None) -> list[Any]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise SpecError(f"agreement: expected a sequence of scores or labels, got "
                        f"{type(values).__name__}")
    out = list(values.tolist() if hasattr(values, "tolist") else values)
    if n is not None and len(out) != n:
        raise SpecError(f"agreement: {len(out)} labels for {n} judged rows; give one per row, "
                        f"in the same order")
    return out
