"""The readable text of an HTML page, in time linear in the page's length.

Pages come from the wire, so no pattern here may retry a start after a long scan (the old
``<!--.*?-->`` took 50 s on 200 KB of ``<!--``): each one either ends at its closing mark or
runs to the end of the page (``|\\Z``), as a browser reads an unclosed comment, script or tag,
and so every character is scanned a bounded number of times per pass. ``[^>]*+`` is
possessive for the same reason.

>>> html_text("<p>Fish &amp; chips</p><script>x()</script><!-- hidden -->Done")
'Fish & chips\\nDone'
"""

from __future__ import annotations

import html
import re

_COMMENT = re.compile(r"(?s)<!--.*?(?:-->|\Z)")
_HIDDEN = re.compile(r"(?is)<(script|style|noscript|template)\b.*?(?:</\1\s*+>|\Z)")
_BREAK = re.compile(r"(?i)<(?:br|hr|/?(?:p|div|h[1-6]|li|tr|ul|ol|table|pre|blockquote|"
                    r"section|article|header|footer))\b[^>]*+(?:>|\Z)")
_TAG = re.compile(r"<[/!?]?[A-Za-z][^>]*+(?:>|\Z)")
_BLANKS = re.compile(r"[ \t\r\f\v\u00a0]+")


def html_text(page: str) -> str:
    """``page`` without comments, scripts, styles and tags; block ends become line breaks."""
    page = _COMMENT.sub(" ", page)
    page = _HIDDEN.sub(" ", page)
    page = _BREAK.sub("\n", page)
    page = _TAG.sub(" ", page)
    return _tidy(html.unescape(page))


def _tidy(text: str) -> str:
    """Runs of blanks to one space, lines stripped, at most one empty line in a row."""
    lines: list[str] = []
    for line in text.split("\n"):
        line = _BLANKS.sub(" ", line).strip()
        if line or (lines and lines[-1]):
            lines.append(line)
    return "\n".join(lines).strip()
