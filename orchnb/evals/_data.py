"""Labelled data for evals: any DataFrame, CSV / JSON Lines / Parquet file, list of records, and
the support-ticket set shipped with orchnb."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import SpecError
from ._checks import check_columns

if TYPE_CHECKING:
    import pandas as pd

TICKET_LABELS = ("billing", "technical", "account", "shipping", "other")


def load_tickets() -> pd.DataFrame:
    """The support-ticket set shipped with orchnb: 333 messages written for the project
    (CC0), columns ``id, text, label, ambiguous``; labels billing, technical, account,
    shipping, other.

    >>> df = load_tickets()
    >>> len(df), sorted(df.label.unique())
    (333, ['account', 'billing', 'other', 'shipping', 'technical'])
    """
    from importlib.resources import files

    import pandas as pd

    with (files("orchnb") / "data" / "support_tickets.csv").open("rb") as f:
        df = pd.read_csv(f, dtype={"id": str, "text": str, "label": str})
    df["ambiguous"] = df["ambiguous"].astype(bool)
    return df


def load_data(data: Any, *, text: str = "text", label: str | None = "label") -> pd.DataFrame:
    """A DataFrame with the ``text`` and ``label`` columns checked: from a DataFrame, a path to
    a ``.csv`` / ``.jsonl`` / ``.json`` / ``.parquet`` file, a list of dicts or of
    ``(text, label)`` pairs. Other columns are kept. ``label=None``: no label column (a
    pipeline eval whose scorers need no expected answer); a list of strings is then the texts.

    >>> load_data([("refund please", "billing")]).columns.tolist()
    ['text', 'label']
    """
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        df = data
    elif isinstance(data, (str, Path)):
        df = _read_file(Path(data))
    elif isinstance(data, Sequence) and data and isinstance(data[0], Mapping):
        df = pd.DataFrame(list(data))
    elif isinstance(data, Sequence) and data and isinstance(data[0], (tuple, list)):
        df = pd.DataFrame([tuple(r) for r in data], columns=[text, label or "expected"])
    elif label is None and isinstance(data, Sequence) and data and isinstance(data[0], str):
        df = pd.DataFrame({text: list(data)})
    else:
        raise SpecError(f"evaluate: cannot read labelled data from {type(data).__name__}; "
                        f"give a DataFrame, a CSV path or a list of (text, label) pairs")
    check_columns("evaluate", df)
    cols = [c for c in (text, label) if c is not None]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        which = ("text" if missing[0] == text else "expected" if label != "label" else "label")
        raise SpecError(f"evaluate: column {missing[0]!r} is not in the data; columns: "
                        f"{', '.join(map(str, df.columns))}. Name the right one with "
                        f"{which}='COLUMN'")
    if len(df) == 0:
        raise SpecError("evaluate: the data has no rows")
    for col in cols:
        bad = df.index[df[col].isna()].tolist()
        if bad:
            raise SpecError(f"evaluate: column {col!r} is empty in {len(bad)} row(s) (index "
                            f"{', '.join(map(str, bad[:5]))}{'…' if len(bad) > 5 else ''}); "
                            f"drop them first, e.g. data.dropna(subset=[{col!r}])")
    return df


def _read_file(path: Path) -> pd.DataFrame:
    import pandas as pd

    if not path.exists():
        raise SpecError(f"evaluate: no file at {str(path)!r}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path)
    if suffix in (".jsonl", ".ndjson"):
        return pd.read_json(path, lines=True)
    if suffix == ".json":
        return pd.read_json(path)
    if suffix == ".parquet":
        return pd.read_parquet(path)
    raise SpecError(f"evaluate: cannot read {path.name!r}; use a .csv, .jsonl, .json or "
                    f".parquet file, or pass a DataFrame")
