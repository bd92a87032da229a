"""``Labels``: people's labels on rows, as data (``.df``, CSV, Parquet) and as error analysis.

Labels live in the store (``_label_store``), keyed by row content, so a ``Labels(name)`` made
in a new kernel finds what was labelled before. Error analysis groups the failing rows into
categories: each tag is a category; a note without a tag falls in the category of its most
shared word (the word most notes have in common), the usual first pass of "open coding" that
people then tidy with :meth:`Labels.merge` and :meth:`Labels.rename` (stored too).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import SpecError
from ..trace import plural
from . import _label_store as store
from ._label_rates import pass_rates

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

_WORD = re.compile(r"[a-z][a-z'-]{2,}")
_STOP = (
    "the and for but not with this that too was were are has have had its from into than "
    "then they them there their out off very much more most some any all can could would "
    "should will just also only over under about what when which who why how does did done "
    "answer answers output row rows model judge")
STOPWORDS = frozenset(_STOP.split())
UNCATEGORISED = "(no note)"


def note_words(note: Any) -> list[str]:
    """The words of a note that may name a category (lower case, no stopwords)."""
    text = note.lower() if isinstance(note, str) else ""
    return [w for w in dict.fromkeys(_WORD.findall(text)) if w not in STOPWORDS]


def note_categories(notes: Sequence[str], context: Sequence[str] = ()) -> list[str]:
    """Each note's category: its word that most of the notes (and ``context``, the other
    notes of the set) share; ties go to the earlier word.

    >>> note_categories(["too long", "far too long and rude", "rude tone", "wrong date"])
    ['long', 'long', 'rude', 'wrong']
    """
    words = [note_words(n) for n in notes]
    counts = Counter(w for ws in words for w in ws)
    counts.update(w for n in context for w in note_words(n))
    return [max(ws, key=lambda w: (counts[w], -ws.index(w))) if ws else UNCATEGORISED
            for ws in words]


class Labels:
    """People's labels of one set (``name``), kept in ``labels.sqlite`` in ORCHNB_HOME.

    ``df`` (key, label, note, tags, input, output, expected, created, updated, and the row's
    other columns), ``add(row, label, note=, tags=)``, ``to_csv`` / ``to_parquet``; error
    analysis: ``categories()``, ``rows(category)``, ``merge(...)``, ``rename(...)``,
    ``plot_categories()``.

    >>> labels = Labels("support")                        # doctest: +SKIP
    >>> labels.add({"input": "q", "output": "a"}, "fail", note="wrong date", tags=["dates"])
    ...                                                   # doctest: +SKIP
    """

    def __init__(self, name: str = "default", *, keys: Sequence[str] | None = None,
                 fail: Any = "fail"):
        if not isinstance(name, str) or not name.strip():
            raise SpecError("Labels: name the label set, e.g. Labels('support-bot')")
        self.name = name
        self.keys = None if keys is None else list(keys)
        """Only these rows (a labelling session's); None: every label of the set."""
        self.fail = fail
        """The label (or labels) that mark a failure, for ``categories()``."""

    # -- a reference (what an experiment saves: the labels stay in the store) --------------------
    def ref(self) -> dict[str, Any]:
        """The set's name, its rows' keys and the failing label(s), JSON-safe: enough for
        :meth:`from_ref` to find these labels again in the store."""
        fail = self.fail
        fail = ([str(f) for f in fail] if isinstance(fail, (list, tuple, set, frozenset))
                else str(fail))
        return {"name": self.name, "keys": self.keys, "fail": fail}

    @classmethod
    def from_ref(cls, ref: Mapping[str, Any]) -> Labels:
        """The labels a :meth:`ref` names (as they are in the store now)."""
        keys = ref.get("keys")
        return cls(str(ref.get("name") or "default"),
                   keys=None if keys is None else [str(k) for k in keys],
                   fail=ref.get("fail", "fail"))

    # -- data -----------------------------------------------------------------------------------
    def add(self, row: Mapping[str, Any], label: Any, *, note: str | None = None,
            tags: Sequence[str] | str | None = None, key: str | None = None) -> str:
        """Label ``row`` (input, output, expected, ...); returns its key. ``label=None``
        removes its label."""
        return store.save_label(self.name, row, label, note=note, tags=tags, key=key)

    def given(self) -> dict[str, dict[str, Any]]:
        """The labels of the set's rows by key: ``{"label", "note", "tags"}``."""
        keep = None if self.keys is None else set(self.keys)
        return {r["key"]: {"label": r["label"], "note": r["note"] or "", "tags": r["tags"]}
                for r in store.read_labels(self.name) if keep is None or r["key"] in keep}

    clean_tags = staticmethod(store.clean_tags)

    @property
    def df(self) -> pd.DataFrame:
        """One row per label, oldest first (``tags`` a list of strings)."""
        import pandas as pd

        recs = store.read_labels(self.name)
        if self.keys is not None:
            order = {k: i for i, k in enumerate(self.keys)}
            recs = sorted((r for r in recs if r["key"] in order), key=lambda r: order[r["key"]])
        extra = sorted({c for r in recs for c in r["extra"]} - set(store.COLUMNS))
        rows = [{**{c: r[c] for c in store.COLUMNS}, **{c: r["extra"].get(c) for c in extra}}
                for r in recs]
        df = pd.DataFrame(rows, columns=[*store.COLUMNS, *extra])
        for c in ("created", "updated"):
            df[c] = pd.to_datetime(df[c], unit="s", utc=True)
        return df

    def __len__(self) -> int:
        return len(self.df)

    def counts(self) -> dict[str, int]:
        """Rows per label."""
        return {str(k): int(v) for k, v in self.df["label"].value_counts().items()}

    def to_csv(self, path: str | Path) -> Path:
        """Write ``df`` to CSV (tags joined with ``;``)."""
        df = self.df
        df["tags"] = df["tags"].map(lambda ts: ";".join(ts))
        df.to_csv(path, index=False)
        return Path(path)

    def to_parquet(self, path: str | Path) -> Path:
        """Write ``df`` to Parquet (needs pyarrow)."""
        try:
            self.df.to_parquet(path, index=False)
        except ImportError as e:
            raise SpecError(f"Labels.to_parquet needs pyarrow: pip install pyarrow ({e})"
                            ) from None
        return Path(path)

    def pass_rates(self, source: Any, *, positive: Any = "pass") -> pd.DataFrame:
        """People's verdicts beside an eval report or a comparison (``orchnb.compare``):
        per candidate, the rows labelled, people's pass rate with its interval, and each LLM
        judge's κ and accuracy against them (rows matched by content).

        >>> labels.pass_rates(experiment)     # doctest: +SKIP
        """
        return pass_rates(self, source, positive=positive)

    # -- error analysis -------------------------------------------------------------------------
    def _failing(self) -> pd.DataFrame:
        df = self.df
        bad = self.fail if isinstance(self.fail, (list, tuple, set)) else [self.fail]
        return df[df["label"].isin([str(b) for b in bad])]

    def categorised(self) -> pd.DataFrame:
        """The failing rows, one per (row, category): a row with two tags is in both."""
        import pandas as pd

        df = self._failing().reset_index(drop=True)
        mapping = store.read_mapping(self.name)
        untagged = [i for i, ts in enumerate(df["tags"]) if not ts]
        tagged = [n or "" for n, ts in zip(df["note"], df["tags"]) if ts]
        from_notes = dict(zip(untagged, note_categories([df["note"][i] or "" for i in untagged],
                                                        tagged)))
        pairs = []
        for i, ts in enumerate(df["tags"]):
            for cat in (ts or [from_notes[i]]):
                pairs.append((i, _resolve(cat, mapping)))
        out = df.iloc[[i for i, _ in pairs]].copy() if pairs else df.iloc[0:0].copy()
        out.insert(0, "category", [c for _, c in pairs])
        return out.drop_duplicates(["key", "category"]).reset_index(drop=True) if pairs else (
            pd.DataFrame(columns=["category", *df.columns]))

    def categories(self, examples: int = 3) -> pd.DataFrame:
        """Failure categories, largest first: ``count``, ``share`` (of failing rows) and the
        first ``examples`` notes (or outputs)."""
        import pandas as pd

        rows = self.categorised()
        failing = len(self._failing())
        out = []
        for cat, g in rows.groupby("category", sort=False):
            texts = [n if isinstance(n, str) and n else str(o)[:80]
                     for n, o in zip(g["note"], g["output"])]
            out.append({"category": cat, "count": len(g),
                        "share": len(g) / failing if failing else math.nan,
                        "examples": texts[:examples]})
        df = pd.DataFrame(out, columns=["category", "count", "share", "examples"])
        return df.sort_values(["count", "category"], ascending=[False, True]).set_index(
            "category")

    def rows(self, category: str) -> pd.DataFrame:
        """The failing rows of one category."""
        cats = self.categorised()
        if category not in set(cats["category"]):
            known = ", ".join(sorted(set(cats["category"]))) or "none yet"
            raise SpecError(f"Labels {self.name!r}: no category {category!r}; known: {known}")
        return cats[cats["category"] == category].drop(columns=["category"])

    def merge(self, categories: Sequence[str], into: str) -> Labels:
        """Fold ``categories`` into one named ``into`` (stored: it survives a restart)."""
        if isinstance(categories, str):
            categories = [categories]
        for c in categories:
            if c != into:
                store.save_mapping(self.name, c, into)
        return self

    def rename(self, old: str, new: str) -> Labels:
        """Call category ``old`` ``new`` from now on (stored)."""
        return self.merge([old], new)

    def plot_categories(self) -> go.Figure:
        """Failure categories as horizontal bars (count, with the share in the hover)."""
        import plotly.graph_objects as go

        cats = self.categories().iloc[::-1]
        fig = go.Figure(go.Bar(x=cats["count"], y=cats.index.tolist(), orientation="h",
                               marker_color="#e45756",
                               customdata=cats["share"], hovertemplate="%{y}: %{x} rows "
                               "(%{customdata:.0%} of failures)<extra></extra>"))
        fig.update_layout(title=f"{self.name}: failure categories", xaxis_title="rows",
                          template="plotly_white", height=max(260, 40 * len(cats) + 120))
        return fig

    def __repr__(self) -> str:
        counts = self.counts()
        bits = ", ".join(f"{k} {v}" for k, v in counts.items())
        return f"<Labels {self.name!r}: {plural(sum(counts.values()), 'label')} ({bits})>"


def _resolve(cat: str, mapping: Mapping[str, str]) -> str:
    seen = {cat}
    while cat in mapping and mapping[cat] not in seen:  # merges may chain; never loop
        cat = mapping[cat]
        seen.add(cat)
    return cat
