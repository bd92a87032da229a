"""``orchnb.label(source)``: a widget to label rows one at a time, saved as they are given.

The rows and the labels given so far are synced traits; each label, note or tag the person
gives comes back as a message and is written to the labels store at once (keyed by row
content), so nothing is lost with the kernel and a re-run of the cell shows the labels again.
``.df`` reads them back; error analysis is on ``.labels`` (a :class:`~orchnb.evals.Labels`).
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets as t

from ..evals import Labels, label_rows
from ..exceptions import SpecError
from ..trace import plural
from ._static import StaticFallback
from ._traceview import NO_MATH

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

_HERE = pathlib.Path(__file__).parent


class LabelWidget(StaticFallback, anywidget.AnyWidget):
    """Rows to label one at a time (see :func:`label`); ``.df`` has the labels given."""

    _esm = _HERE / "label.js"
    _css = _HERE / "label.css"

    items = t.List().tag(sync=True)
    """The rows shown: key, input, output, expected, score, reason, trajectory, extra."""
    scale = t.List(t.Unicode()).tag(sync=True)
    given = t.Dict().tag(sync=True)
    """Labels given so far, by row key: ``{"label", "note", "tags"}``."""
    index = t.Int(0).tag(sync=True)
    title = t.Unicode("").tag(sync=True)
    saved = t.Int(0).tag(sync=True)
    """Labels written to the store by this widget (a message the front end can wait on)."""

    def __init__(self, rows: list[tuple[dict[str, Any], dict[str, Any]]], *, name: str,
                 scale: Sequence[str], fail: Any, title: str = ""):
        items = [item for _, item in rows]
        self._by_key = {item["key"]: row for row, item in rows}
        self.labels = Labels(name, keys=[it["key"] for it in items], fail=fail)
        """The labels of these rows, with error analysis (``categories()``...)."""
        given = self.labels.given()
        first = next((i for i, it in enumerate(items) if it["key"] not in given), 0)
        super().__init__(items=items, scale=[str(s) for s in scale], given=given, index=first,
                         title=title or name)
        self.on_msg(self._on_msg)

    def _on_msg(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        if not isinstance(content, dict) or content.get("type") != "label":
            return
        key = str(content.get("key", ""))
        if key not in self._by_key:
            return  # a stale front end; nothing to save
        label = content.get("label")
        if label is not None and str(label) not in self.scale:
            return
        note = str(content.get("note") or "")[:2000]
        tags = Labels.clean_tags(content.get("tags"))
        self.give(key, label, note=note, tags=tags)

    def give(self, key: str, label: str | None, *, note: str = "",
             tags: Sequence[str] = ()) -> None:
        """Label the row ``key`` (what a keypress does); ``None`` removes its label."""
        row = {k: v for k, v in self._by_key[key].items() if k != "trajectory"}
        self.labels.add(row, label, note=note, tags=tags, key=key)
        given = dict(self.given)
        if label is None:
            given.pop(key, None)
        else:
            given[key] = {"label": str(label), "note": note, "tags": list(tags)}
        with self.hold_sync():
            self.given = given
            self.saved = self.saved + 1

    @property
    def df(self) -> pd.DataFrame:
        """The labels of these rows (read back from the store), in the order shown."""
        return self.labels.df

    def categories(self, examples: int = 3) -> pd.DataFrame:
        """Failure categories of these rows (:meth:`Labels.categories`)."""
        return self.labels.categories(examples)

    def plot_categories(self) -> go.Figure:
        return self.labels.plot_categories()

    def __repr__(self) -> str:
        return (f"<label {self.labels.name!r}: {len(self.given)} of "
                f"{plural(len(self.items), 'row')} labelled>")


    def static_html(self) -> str:
        """Progress as plain HTML (where widgets cannot render)."""
        import html

        counts: dict[str, int] = {}
        for g in self.given.values():
            counts[g["label"]] = counts.get(g["label"], 0) + 1
        bits = ", ".join(f"{html.escape(k)} {v}" for k, v in counts.items())
        return (f"<div class='{NO_MATH}'>Labelling <b>{html.escape(self.title)}</b>: "
                f"{len(self.given)} of {plural(len(self.items), 'row')} labelled"
                f"{' (' + bits + ')' if bits else ''}</div>")


def label(source: Any, *, scale: Sequence[str] = ("pass", "fail"), sample: str = "random",
          n: int | None = 100, name: str | None = None, seed: int = 0,
          input: str | None = None, output: str | None = None, expected: str | None = None,
          fail: Any = None) -> LabelWidget:
    """Label rows by hand, one at a time, in a widget: an eval report's rows, a comparison's,
    a trace DataFrame's runs or any DataFrame's.

    Each row shows its input, output, expected answer, the judge's score and reason (if
    any) and, for agents, the trajectory. Keys: ``1``/``2``/… the ``scale``'s values,
    ``j``/``k`` next / previous, ``s`` skip, ``n`` the note, ``t`` the tags. Labels are
    saved as they are given (``labels.sqlite`` in ORCHNB_HOME, keyed by row content, in the
    set ``name``), so they survive a kernel restart and come back when the cell re-runs.
    ``sample``: ``"random"``, ``"stratified:COLUMN"``, ``"disagreements"`` or ``"all"``;
    ``n`` rows (None: all).

    >>> labels = orchnb.label(report, n=50)        # doctest: +SKIP
    >>> labels.df; labels.categories()              # doctest: +SKIP
    >>> judge.calibrate(labels)                     # doctest: +SKIP
    """
    scale = [str(s) for s in scale]
    if len(scale) < 2 or len(set(scale)) != len(scale) or len(scale) > 9:
        raise SpecError(f"label: scale={scale!r}; give 2 to 9 distinct values, e.g. "
                        f"('pass', 'fail') or ('1', '2', '3')")
    rows = label_rows(source, sample=sample, n=n, seed=seed, input=input, output=output,
                      expected=expected)
    if not rows:
        raise SpecError("label: the source has no rows to label")
    own = getattr(source, "name", None)
    set_name = name or (own if isinstance(own, str) and own else "default")
    return LabelWidget(rows, name=set_name, scale=scale,
                       fail=fail if fail is not None else scale[-1])
