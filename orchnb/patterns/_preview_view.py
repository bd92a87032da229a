"""What ``pipe.preview(x)`` returns: a table of calls, an HTML and a text view, and a chart of
each agent's context growth per iteration."""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..engine import MATHJAX_OFF
from ..models import estimate_tokens
from ..trace import fmt_usd

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from ._preview import PreviewCall

_STATUS_COLORS = {"known": "#59A14F", "depends": "#F28E2B", "python": "#4E79A7",
                  "error": "#D62728"}
_MAX_HTML_ROWS = 60
_CLIP = 4000  # characters of one message shown in HTML / text


@dataclass
class AgentContext:
    """How an agent's context grows, one model call per iteration.

    Two sources, never mixed silently (the ``source`` column says which):

    * ``trace``: the input tokens its model calls really had, per iteration, in the latest
      finished run of the pipeline (or of the agent alone) that reached it;
    * ``simulated``: iteration 1 is the counted opening; each later iteration re-sends the
      conversation plus one tool call (estimated from the tools' parameters) and one
      observation of ``observation_tokens`` tokens (``pipe.preview(x, observation_tokens=N)``).
      Iterations past the last one a trace has are simulated from its last measured point, with
      the trace's own average growth.
    """

    agent: Any
    opening_tokens: int
    token_method: str
    observation_tokens: int

    def growth(self) -> int:
        """Simulated tokens one iteration adds: a tool-call turn and its observation."""
        calls = [estimate_tokens(t.name + json.dumps(dict.fromkeys(
            t.spec.parameters.get("properties", {}), "...")))
            for t in self.agent.tools.values()]
        call = round(sum(calls) / len(calls)) if calls else 10
        return 6 + call + self.observation_tokens  # 3 framing tokens per added message

    def measured(self, runs: list[Any]) -> tuple[str | None, list[int]]:
        """(run id, input tokens per iteration) of the latest finished run that has this
        agent's model calls; (None, []) if none has."""
        for run in reversed(runs):
            if not getattr(run, "done", False):
                continue
            by_iter: dict[int, list[int]] = {}
            for s in run.trace.spans:
                if (s.kind == "model" and s.step == self.agent.name and s.iteration
                        and s.input_tokens is not None):
                    by_iter.setdefault(int(s.iteration), []).append(int(s.input_tokens))
            if by_iter:
                last = max(by_iter)
                return run.id, [round(sum(v) / len(v)) if v else 0 for v in
                                (by_iter.get(i, []) for i in range(1, last + 1))]
        return None, []

    def rows(self, runs: list[Any]) -> list[dict[str, Any]]:
        run_id, seen = self.measured(runs)
        out: list[dict[str, Any]] = []
        for i, tokens in enumerate(seen, 1):
            out.append({"iteration": i, "input_tokens": tokens, "source": "trace",
                        "run_id": run_id})
        step = self.growth()
        if len(seen) >= 2:
            step = max(1, round((seen[-1] - seen[0]) / (len(seen) - 1)))
        last = seen[-1] if seen else self.opening_tokens - step
        for i in range(len(seen) + 1, self.agent.max_iterations + 1):
            last += step
            out.append({"iteration": i, "input_tokens": last, "source": "simulated",
                        "run_id": None})
        total = 0
        for row in out:
            total += row["input_tokens"]
            row.update(agent=self.agent.name, model=self.agent.model.id,
                       cumulative_input_tokens=total)
        return out


class Preview:
    """The calls a run would make, computed without making any (``pipe.preview(x)``).

    ``df`` has one row per call site (``path, step, kind, model, status, when, certain,
    calls, input_tokens, token_method, cost_usd, depends_on, messages, note``); ``context``
    one row per agent iteration; :meth:`context_chart` draws it. ``status`` is ``known``
    (final messages), ``depends`` (they take earlier outputs, shown as ``⟪…⟫``; tokens then a
    lower bound), ``python`` (code, not previewed) or ``error``.

    >>> p = pipe.preview("a text")     # doctest: +SKIP
    >>> p.df[["step", "status", "input_tokens", "cost_usd"]]   # doctest: +SKIP
    """

    def __init__(self, pipe: Any, input: Any, calls: list[PreviewCall],
                 agents: list[AgentContext], notes: list[str]):
        self.pipeline = pipe
        self.input = input
        self.calls = calls
        self.agents = agents
        self.notes = notes

    # -- numbers ---------------------------------------------------------------------------
    @property
    def input_tokens(self) -> int:
        """Input tokens of the model calls every successful run makes (lower bound)."""
        return sum((c.input_tokens or 0) * c.calls for c in self._sure())

    @property
    def cost_usd(self) -> float:
        """Input cost of the calls every successful run makes (a lower bound: outputs and
        conditional calls are not in it); NaN when a model's price is unknown."""
        return sum(c.cost_usd for c in self._sure() if c.cost_usd is not None)

    def _sure(self) -> list[PreviewCall]:
        return [c for c in self.calls if c.certain and c.input_tokens is not None]

    @property
    def df(self) -> pd.DataFrame:
        """One row per call site."""
        import pandas as pd

        rows = []
        for c in self.calls:
            rows.append({
                "path": c.path, "step": c.step, "kind": c.kind, "model": c.model,
                "status": c.status, "when": c.when, "certain": c.certain, "calls": c.calls,
                "input_tokens": c.input_tokens, "token_method": c.token_method,
                "cost_usd": c.cost_usd, "priced_as": c.priced_as,
                "max_output_tokens": c.max_output_tokens,
                "depends_on": ", ".join(c.depends_on),
                "messages": [m.to_dict() for m in c.messages], "note": c.note,
                "cacheable": c.cacheable, "cacheable_tokens": c.cacheable_tokens,
                "cache_min_tokens": c.cache_min_tokens})
        df = pd.DataFrame(rows, columns=[
            "path", "step", "kind", "model", "status", "when", "certain", "calls",
            "input_tokens", "token_method", "cost_usd", "priced_as", "max_output_tokens",
            "depends_on",
            "messages", "note", "cacheable", "cacheable_tokens", "cache_min_tokens"])
        return df.astype({"input_tokens": "Int64", "max_output_tokens": "Int64",
                          "cacheable_tokens": "Int64", "cache_min_tokens": "Int64"})

    @property
    def context(self) -> pd.DataFrame:
        """Each agent's input tokens per iteration (``source``: ``trace`` or ``simulated``)."""
        import pandas as pd

        runs = list(getattr(self.pipeline, "runs", []))
        rows = []
        for a in self.agents:
            extra = [r for r in getattr(a.agent, "runs", []) if r not in runs]
            rows += a.rows(extra + runs)
        return pd.DataFrame(rows, columns=["agent", "model", "iteration", "input_tokens",
                                           "cumulative_input_tokens", "source", "run_id"])

    def context_chart(self) -> go.Figure | None:
        """Input tokens sent per agent iteration (bars) and their running total (line); None
        when the pipeline has no agent."""
        if not self.agents:
            return None
        import plotly.graph_objects as go

        df = self.context
        fig = go.Figure()
        for name, part in df.groupby("agent", sort=False):
            for source, rows in part.groupby("source", sort=False):
                fig.add_bar(x=rows["iteration"], y=rows["input_tokens"],
                            name=f"{name}: {source}", opacity=1.0 if source == "trace" else 0.55,
                            hovertemplate="iteration %{x}<br>%{y:,} input tokens"
                                          f"<extra>{html.escape(str(name))} ({source})</extra>")
            fig.add_scatter(x=part["iteration"], y=part["cumulative_input_tokens"], yaxis="y2",
                            mode="lines+markers", name=f"{name}: cumulative",
                            hovertemplate="through iteration %{x}<br>%{y:,} input tokens"
                                          "<extra>cumulative</extra>")
        fig.update_layout(
            template="plotly_white", barmode="group", height=360,
            title="Agent context per iteration (input tokens re-sent each call)",
            xaxis={"title": "iteration", "dtick": 1},
            yaxis={"title": "input tokens of the call"},
            yaxis2={"title": "cumulative input tokens", "overlaying": "y", "side": "right",
                    "showgrid": False},
            legend={"orientation": "h", "y": -0.2})
        return fig

    # -- views -------------------------------------------------------------------------------
    def _summary(self) -> str:
        sure = self._sure()
        pending = [c for c in self.calls if c.status == "depends"]
        cost = self.cost_usd
        price = "unknown price" if math.isnan(cost) else fmt_usd(cost)
        method = sorted({c.token_method for c in sure if c.token_method})
        return (f"{len(sure)} model call site(s) every run makes: ≥ {self.input_tokens:,} input "
                f"tokens, input cost ≥ {price} (outputs not included); "
                f"{len(pending)} call site(s) take earlier outputs (shown as ⟪…⟫); "
                f"tokens: {', '.join(method) or '-'}; no call was made")

    def __repr__(self) -> str:
        lines = [f"Preview of {self.pipeline.name!r} ({self.pipeline.pattern}): {self._summary()}"]
        for c in self.calls:
            tokens = "" if c.input_tokens is None else (
                f" · {'≥ ' if c.status == 'depends' else ''}{c.input_tokens:,} tokens")
            calls = f" ×{c.calls}" if c.calls > 1 else ""
            when = f" [{c.when}]" if c.when else ""
            lines.append(f"\n● {c.path} ({c.kind}{', ' + c.model if c.model else ''}) "
                         f"{c.status.upper()}{calls}{tokens}{when}")
            if c.depends_on:
                lines.append(f"  depends on: {', '.join(c.depends_on)}")
            if c.note:
                lines.append(f"  note: {c.note}")
            for m in c.messages:
                body = m.content if len(m.content) <= _CLIP else m.content[:_CLIP] + " …"
                lines.append(f"  [{m.role}] " + body.replace("\n", "\n    "))
        lines += [f"\nnote: {n}" for n in self.notes]
        if self.agents:
            lines.append("\nagent context per iteration: preview.context / "
                         "preview.context_chart()")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        e = html.escape
        rows = []
        for c in self.calls[:_MAX_HTML_ROWS]:
            colour = _STATUS_COLORS.get(c.status, "#555")
            tokens = "" if c.input_tokens is None else (
                f"{'≥ ' if c.status == 'depends' else ''}{c.input_tokens:,}"
                + (f" ×{c.calls}" if c.calls > 1 else ""))
            cost = "" if c.cost_usd is None else (
                "unpriced" if math.isnan(c.cost_usd) else fmt_usd(c.cost_usd))
            msgs = "".join(
                f"<div style='margin:2px 0'><b>{e(m.role)}</b>"
                f"<pre style='white-space:pre-wrap;overflow-wrap:break-word;word-break:normal;"
                f"text-align:left;margin:0;background:#f6f8fa;padding:4px'>"
                f"{_highlight(m.content[:_CLIP] + (' …' if len(m.content) > _CLIP else ''))}"
                f"</pre></div>" for m in c.messages)
            deps = (f"<div>depends on: {e(', '.join(c.depends_on))}</div>"
                    if c.depends_on else "")
            note = f"<div style='color:#666'>{e(c.note)}</div>" if c.note else ""
            rows.append(
                f"<tr><td>{e(c.path)}</td><td>{e(c.kind)}</td><td>{e(c.model or '')}</td>"
                f"<td style='color:{colour};font-weight:600'>{e(c.status)}</td>"
                f"<td>{e(c.when)}</td><td style='text-align:right'>{tokens}</td>"
                f"<td style='text-align:right'>{cost}</td>"
                f"<td style='text-align:left;min-width:24em'><details><summary>"
                f"{len(c.messages)} message(s)</summary>{msgs}"
                f"</details>{deps}{note}</td></tr>")
        more = len(self.calls) - _MAX_HTML_ROWS
        if more > 0:
            rows.append(f"<tr><td colspan='8'>… {more} more rows in <code>.df</code></td></tr>")
        notes = "".join(f"<li>{e(n)}</li>" for n in self.notes)
        chart = ("<div>Agent context per iteration: <code>.context</code>, "
                 "<code>.context_chart()</code></div>" if self.agents else "")
        return (f"<div class='{MATHJAX_OFF} orchnb-preview'><b>Preview of "
                f"{e(self.pipeline.name)}</b> ({e(self.pipeline.pattern)}): {e(self._summary())}"
                "<table><tr><th>call</th><th>kind</th><th>model</th><th>status</th>"
                "<th>when</th><th>input tokens</th><th>input cost</th><th>messages</th></tr>"
                + "".join(rows) + "</table>"
                + (f"<ul style='color:#666'>{notes}</ul>" if notes else "") + chart + "</div>")

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display({"text/html": self._repr_html_(), "text/plain": repr(self)}, raw=True)
        if self.agents and _in_kernel():  # a terminal IPython would open a browser for it
            display(self.context_chart())


def _in_kernel() -> bool:
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _highlight(text: str) -> str:
    """Escaped text with ``⟪placeholders⟫`` marked, so what is not known yet stands out."""
    out = html.escape(text)
    return out.replace("⟪", "<mark style='background:#FFE0B2'>⟪").replace("⟫", "⟫</mark>")
