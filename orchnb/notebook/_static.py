"""The plain-HTML copy every orchnb widget carries for places widgets cannot render."""

from __future__ import annotations

from typing import Any


class StaticFallback:
    """Mixin for an anywidget: its mime bundle's ``text/html`` is :meth:`static_html`, so an
    exported notebook, GitHub or nbconvert shows the widget's content instead of nothing.

    >>> class View(StaticFallback, anywidget.AnyWidget):   # doctest: +SKIP
    ...     def static_html(self) -> str:
    ...         return "<b>3 spans</b>"
    """

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        data, meta = bundle if isinstance(bundle, tuple) else (bundle or {}, {})
        data = {**data, "text/html": self.static_html()}
        return (data, meta) if isinstance(bundle, tuple) else data

    def static_html(self) -> str:
        """The widget's content as plain HTML."""
        raise NotImplementedError
