"""Self-contained HTML for reports: headline numbers, tables and a colour-coded confusion matrix.

Plain HTML and inline CSS only (no JavaScript, no CDN): it renders the same in JupyterLab
offline, Notebook 7, VS Code, nbconvert's HTML and GitHub. The interactive Plotly charts are
separate figures (``report.plot_*()`` / ``report.show()``), shown through Plotly's own notebook
renderer, which ships with the ``plotly`` package and needs no network.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

from ..engine import MATHJAX_OFF
from ..trace import fmt_usd, plural

if TYPE_CHECKING:
    from ._candidates import Comparison
    from ._report import EvalReport

_e = html.escape
NO_MATH = MATHJAX_OFF
"""Classes on the root of every HTML output: JupyterLab's MathJax would otherwise typeset the
text between two amounts ("$0.0030 (… $0.0030)") as math."""
_BOX = ("display:inline-block;min-width:9em;margin:0 8px 8px 0;padding:6px 10px;"
        "border:1px solid #e1e4e8;border-radius:6px;vertical-align:top")
_TD = "padding:2px 8px;text-align:right"
_SIM = ("<span style='background:#fff3cd;padding:0 4px;border-radius:3px'>simulated models"
        "</span>")


def _pct(x: float, digits: int = 1) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}%}"


def _ms(x: float) -> str:
    if math.isnan(x):
        return "n/a"
    return f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:,.0f}"


def _box(title: str, value: str, sub: str = "") -> str:
    return (f"<div style='{_BOX}'><div style='color:#586069;font-size:85%'>{_e(title)}</div>"
            f"<div style='font-size:130%;font-weight:600'>{value}</div>"
            f"<div style='color:#586069;font-size:85%'>{sub}</div></div>")


def _saving(usd: float, pct: float) -> str:
    if math.isnan(usd):
        return "unknown"
    sign = "" if usd >= 0 else "−"
    text = f"{sign}{fmt_usd(abs(usd))}"
    return text + ("" if math.isnan(pct) else f" ({pct:.0f}%)")


def _macro_ci(r: EvalReport) -> str:
    if r.macro_f1_ci_note:
        return " · CI withheld: " + _e(r.macro_f1_ci_note.split(": ", 1)[1])
    lo, hi = r.macro_f1_ci
    return "" if math.isnan(lo) else f" · CI {lo:.3f}–{hi:.3f}"


def _paid_note(r: EvalReport) -> str:
    """What the cache (and batch mode) saved, under what the eval paid."""
    note = f"{plural(r.cached_calls, 'cached call')} saved {fmt_usd(r.saved_usd)}"
    if r.batch_calls:
        note += (f"; batch mode saved {fmt_usd(r.batch_saved_usd)} on "
                 f"{plural(r.batch_calls, 'batch call')}")
    if r.prompt_cache_note:
        note += f"; {r.prompt_cache_note}"
    return note


def report_html(r: EvalReport) -> str:
    lo, hi = r.accuracy_ci
    mode = "full pipeline" if r.full_pipeline else "classifier only"
    sim = f" {_SIM}" if r.simulated else ""
    est = " (routes estimated from tokens)" if r.routes_estimated else ""
    boxes = [
        _box("accuracy", _pct(r.accuracy),
             f"{r.bootstrap.level:.0%} CI {_pct(lo)}–{_pct(hi)}"),
        *([_box("accuracy on answered rows", _pct(r.accuracy_answered),
                _e(r._defaulted_text().split("; ", 1)[1]))] if r.defaulted else []),
        _box("macro F1", f"{r.macro_f1:.3f}", f"weighted {r.weighted_f1:.3f}"
             + ("" if "(no route)" not in r.labels else " · without (no route)")
             + _macro_ci(r)),
        _box("defaulted", f"{r.defaulted:,}", f"{_pct(r.defaulted_rate)} of rows"
             + (f" · {plural(r.errors, 'error')}" if r.errors else "")),
        _box("latency p50 / p95", f"{_ms(r.latency_p50_ms)} / {_ms(r.latency_p95_ms)} ms",
             f"in model calls p50 {_ms(r.service_p50_ms)} ms"),
        _box("cost per 1k queries", fmt_usd(r.cost_per_1k),
             f"classifier {fmt_usd(r.classifier_cost_per_1k)}{_e(est)}"),
        (_box(f"saving vs all → {r.expensive_route}", _saving(r.saving_usd, r.saving_pct),
              f"{r.expensive_share:.0%} of traffic sent there")
         if r.expensive_route is not None else
         _box("saving vs the dearest route", "undefined", _e(r.expensive_note))),
    ]
    if r.oos_label is not None:
        boxes.insert(1, _box(f"in scope / out of scope ({r.oos_label})",
                             f"{_pct(r.in_scope_accuracy)} / {_pct(r.oos_recall)}",
                             f"in-scope accuracy / OOS recall · OOS precision "
                             f"{_pct(r.oos_precision)} · AUROC {r.abstention_auroc:.3f}"))
    if r.setup_usd:
        boxes.append(_box("one-off: embedding the examples", fmt_usd(r.setup_usd),
                          "not in the cost per 1k queries"))
    if r.baseline:
        boxes.append(_box(f"saving vs {r.baseline}",
                          _saving(r.baseline_saving_usd, r.baseline_saving_pct)))
    boxes.append(_box("this eval paid", fmt_usd(r.cost_usd), _paid_note(r)))
    parts = [
        f"<div class='{NO_MATH}'><div style='font-size:115%;margin-bottom:6px'><b>Router eval · "
        f"{_e(r.name)}</b> · {plural(r.n, 'row')} · {mode}{sim}</div>",
        "".join(boxes),
        (f"<div style='margin:4px 0'>Classifier method: {_e(r.method_choice.sentence)}</div>"
         if r.method_choice is not None else ""),
        (f"<div style='color:#b31d28;margin:4px 0'>{plural(r.examples_in_data, 'row')} of the "
         f"data {'is' if r.examples_in_data == 1 else 'are'} among the classifier's own "
         f"examples: accuracy on them is flattering; evaluate on held-out rows.</div>"
         if r.examples_in_data else ""),
        "<div style='display:flex;flex-wrap:wrap;gap:24px;margin-top:4px'>",
        f"<div>{_per_route(r)}</div><div>{_confusion(r)}</div></div>",
        _misroutes(r),
        "<div style='color:#586069;font-size:85%;margin-top:6px'>Charts: "
        "<code>report.plot_confusion()</code>, <code>report.plot_routes()</code>, "
        "<code>report.plot_flow()</code>"
        + (", <code>report.plot_threshold()</code>" if r.predictions["similarity"].notna().any()
           else "")
        + "; all at once: <code>report.show()</code>. Rows: <code>report.predictions</code>."
        + (f" Estimated before running: {_e(str(r.estimate))}." if r.estimate else "")
        + "</div></div>",
    ]
    return "".join(parts)


def _per_route(r: EvalReport) -> str:
    rows = []
    for route, x in r.per_route.iterrows():
        bar = (f"<div style='background:#4E79A7;height:8px;width:{x.f1 * 80:.0f}px'></div>")
        rows.append(f"<tr><td>{_e(str(route))}</td><td style='{_TD}'>{x.precision:.2f}</td>"
                    f"<td style='{_TD}'>{x.recall:.2f}</td><td style='{_TD}'>{x.f1:.2f}</td>"
                    f"<td style='width:84px'>{bar}</td>"
                    f"<td style='{_TD}'>{int(x.support)}</td></tr>")
    for name, x in r.averages.iterrows():
        rows.append(f"<tr style='color:#586069'><td>{_e(str(name))}</td>"
                    f"<td style='{_TD}'>{x.precision:.2f}</td><td style='{_TD}'>{x.recall:.2f}"
                    f"</td><td style='{_TD}'>{x.f1:.2f}</td><td></td><td style='{_TD}'>"
                    f"{int(x.support)}</td></tr>")
    return ("<table><thead><tr><th>route</th><th>precision</th><th>recall</th><th>F1</th>"
            "<th></th><th>support</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _confusion(r: EvalReport) -> str:
    counts, share = r.confusion, r.confusion_normalized
    head = "".join(f"<th style='{_TD}'>{_e(str(c))}</th>" for c in counts.columns)
    body = []
    for label in counts.index:
        cells = []
        for col in counts.columns:
            n, s = int(counts.at[label, col]), float(share.at[label, col])
            rgb = "89,161,79" if label == col else "214,39,40"
            style = f"{_TD};background:rgba({rgb},{0.08 + 0.8 * s:.2f})" if n else _TD
            cells.append(f"<td style='{style}' title='{s:.0%} of {_e(str(label))}'>"
                         f"{n if n else ''}</td>")
        body.append(f"<tr><th style='text-align:left'>{_e(str(label))}</th>{''.join(cells)}</tr>")
    return ("<table><caption style='caption-side:top;text-align:left;color:#586069'>true label "
            "↓ × route taken →</caption><thead><tr><th></th>" + head + "</tr></thead><tbody>"
            + "".join(body) + "</tbody></table>")


def _misroutes(r: EvalReport, limit: int = 8) -> str:
    mis = r.misroutes
    if mis.empty:
        return "<div style='margin-top:6px'>No misroutes.</div>"
    rows = []
    for _, x in mis.head(limit).iterrows():
        text = str(x.text)
        text = text if len(text) <= 90 else text[:87] + "…"
        raw = "" if x.raw_label is None else str(x.raw_label)
        flag = " <i>(defaulted)</i>" if x.defaulted else ""
        rows.append(f"<tr><td style='text-align:left'>{_e(text)}</td><td>{_e(str(x.label))}</td>"
                    f"<td>{_e(str(x.route))}{flag}</td><td><code>{_e(raw[:60])}</code></td></tr>")
    more = f" (first {limit}; all in <code>report.misroutes</code>)" if len(mis) > limit else ""
    return (f"<details style='margin-top:6px'><summary>{plural(len(mis), 'misrouted row')}{more}"
            "</summary><table><thead><tr><th>text</th><th>label</th><th>route</th>"
            "<th>classifier said</th></tr></thead><tbody>" + "".join(rows)
            + "</tbody></table></details>")


def _defaulted(x: Any) -> str:
    """A comparison cell: defaulted rows, and accuracy on the answered ones when any did."""
    n = int(x.defaulted)
    return f"{n:,} (answered {_pct(x.answered_accuracy)})" if n else "0"


def comparison_html(c: Comparison) -> str:
    s = c.summary
    sim = f" {_SIM}" if bool(s["simulated"].any()) else ""
    head = ("<tr><th>router</th><th>classifier</th><th>accuracy (CI)</th><th>macro F1</th>"
            "<th>defaulted</th><th>p50 / p95 ms</th><th>cost / 1k</th><th>saving</th>"
            + ("<th>vs baseline</th>" if "baseline" in s.columns else "") + "<th>Pareto</th></tr>")
    rows = []
    for name, x in s.iterrows():
        star = "★" if x.pareto else ""
        base = (f"<td style='{_TD}'>{_saving(x.baseline_saving_usd, x.baseline_saving_pct)}</td>"
                if "baseline" in s.columns else "")
        rows.append(
            f"<tr><td><b>{_e(str(name))}</b></td><td>{_e(str(x.classifier))}</td>"
            f"<td style='{_TD}'>{_pct(x.accuracy)} ({_pct(x.ci_low)}–{_pct(x.ci_high)})</td>"
            f"<td style='{_TD}'>{x.macro_f1:.3f}</td><td style='{_TD}'>{_defaulted(x)}</td>"
            f"<td style='{_TD}'>{_ms(x.p50_ms)} / {_ms(x.p95_ms)}</td>"
            f"<td style='{_TD}'>{fmt_usd(x.cost_per_1k)}</td>"
            f"<td style='{_TD}'>{_saving(x.saving_usd, x.saving_pct)}</td>{base}"
            f"<td style='text-align:center'>{star}</td></tr>")
    n = int(s["rows"].iloc[0]) if len(s) else 0
    return (f"<div class='{NO_MATH}'><div style='font-size:115%;margin-bottom:6px'>"
            f"<b>Router comparison</b> · {plural(len(s), 'candidate')} · {plural(n, 'row')}"
            f"{sim}</div><table><thead>{head}</thead><tbody>"
            + "".join(rows) + "</tbody></table><div style='color:#586069;font-size:85%'>★ on the "
            "cost–accuracy Pareto front. Charts: <code>cmp.plot_cost_accuracy()</code>, "
            "<code>cmp.plot_quality_share()</code>; one router: <code>cmp['NAME']</code>.</div>"
            "</div>")
