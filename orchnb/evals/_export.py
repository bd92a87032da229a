"""Reports that travel: ``report.to_html(path)`` writes one self-contained HTML file.

The report's own HTML (tables, decision sentence), then its Plotly charts. plotly.js is
embedded once, inline, in the first chart (``include_plotlyjs=True``); the others reuse it. No
script or stylesheet is fetched from the network, so the file opens offline, attached to a CI
run or an e-mail.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import SpecError

if TYPE_CHECKING:
    import plotly.graph_objects as go


def html_document(title: str, body: str, charts: list[go.Figure]) -> str:
    """A whole HTML page: ``body`` then each chart, plotly.js inline once."""
    figs = [fig.to_html(full_html=False, include_plotlyjs=(i == 0),
                        config={"displaylogo": False}) for i, fig in enumerate(charts)]
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>" + html.escape(title)
            + "</title><style>body{font-family:system-ui,sans-serif;margin:24px;max-width:"
            "1200px}table{border-collapse:collapse}td,th{padding:2px 8px}</style></head><body>"
            + body + "".join(f"<div class='chart'>{f}</div>" for f in figs)
            + "</body></html>")


class Exportable:
    """Mixed into the reports: :meth:`to_html`."""

    name: str

    def _repr_html_(self) -> str:
        raise NotImplementedError

    def charts(self) -> list[Any]:
        return []

    def to_html(self, path: str | Path) -> Path:
        """Write the report (tables, decision, charts with plotly.js embedded) to one
        self-contained HTML file that opens without a network; returns the path.

        >>> report.to_html("eval.html")   # doctest: +SKIP
        """
        target = Path(path)
        page = html_document(f"orchnb · {self.name}", self._repr_html_(), self.charts())
        try:
            target.write_text(page, encoding="utf-8")
        except OSError as e:
            raise SpecError(f"to_html: cannot write {target}: {e.strerror or e}") from None
        return target
