"""``http_get(allow=[...])``: a tool that fetches web pages from hosts the user allows.

A URL whose host is not on the allowlist is refused before any request is made (the refusal
is the model's observation); redirects are followed only to allowed hosts; the body read is
capped in bytes and the whole fetch in seconds.
"""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Iterable
from typing import Any

from ..exceptions import SpecError, ToolError
from ._tool import Tool

MAX_REDIRECTS = 5


def _host_rule(entry: str) -> str:
    rule = str(entry).strip().lower().rstrip(".")
    if "://" in rule:  # a URL given instead of a host: keep its host
        rule = rule.split("://", 1)[1].split("/", 1)[0].split("@")[-1]
    if rule.startswith("[") or rule.count(":") > 1:  # an IPv6 literal
        rule = rule.strip("[]")
    elif ":" in rule:
        rule = rule.split(":", 1)[0]
    if not rule or any(c in rule for c in " /\\?#"):
        raise SpecError(f"http_get: {entry!r} is not a host name; allow hosts such as "
                        "'example.com' or '*.example.com'", key="allow")
    return rule


def host_allowed(host: str, rules: Iterable[str]) -> bool:
    """Whether ``host`` is on the allowlist: exact names, ``*.domain`` for a domain and its
    subdomains.

    >>> host_allowed("docs.python.org", ["*.python.org"])
    True
    >>> host_allowed("python.org.evil", ["python.org"])
    False
    """
    host = host.lower().rstrip(".")
    for rule in rules:
        if rule.startswith("*."):
            if host == rule[2:] or host.endswith(rule[1:]):
                return True
        elif host == rule:
            return True
    return False


class HttpGet:
    """The fetcher behind :func:`http_get` (allowlist, caps, redirects)."""

    def __init__(self, allow: Iterable[str], *, timeout: float = 10.0,
                 max_bytes: int = 200_000, text_only: bool = True):
        if isinstance(allow, str):
            allow = [allow]
        self.allow = [_host_rule(a) for a in allow]
        if not self.allow:
            raise SpecError("http_get: allow= names no host; give the hosts the model may "
                            "fetch from, e.g. allow=['en.wikipedia.org']", key="allow")
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise SpecError(f"http_get: timeout must be seconds > 0, got {timeout!r}",
                            key="timeout")
        if not (isinstance(max_bytes, int) and max_bytes > 0):
            raise SpecError(f"http_get: max_bytes must be a whole number > 0, got "
                            f"{max_bytes!r}", key="max_bytes")
        self.timeout, self.max_bytes, self.text_only = float(timeout), max_bytes, text_only

    def check(self, url: str) -> Any:
        """The parsed URL, or :class:`ToolError` when it may not be fetched (no request)."""
        import httpx

        try:
            parsed = httpx.URL(str(url).strip())
        except Exception:
            raise ToolError(f"http_get: {str(url)[:100]!r} is not a URL") from None
        if parsed.scheme not in ("http", "https"):
            raise ToolError(f"http_get: only http and https URLs can be fetched, not "
                            f"{str(url)[:100]!r}")
        if not host_allowed(parsed.host, self.allow):
            raise ToolError(f"http_get: host '{parsed.host}' is not on the allowlist "
                            f"({', '.join(self.allow)}); nothing was fetched. Use a URL on an "
                            "allowed host")
        return parsed

    async def fetch(self, url: str) -> str:
        """GET ``url`` (allowed hosts only) and return the status line and the text."""
        import httpx

        target = self.check(url)
        try:
            async with asyncio.timeout(self.timeout):
                async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False,
                                             trust_env=False) as client:
                    for _ in range(MAX_REDIRECTS + 1):
                        async with client.stream("GET", target) as response:
                            if response.is_redirect and "location" in response.headers:
                                target = self.check(str(target.join(
                                    response.headers["location"])))
                                continue
                            body, cut = await self._read(response)
                            return self._render(response, str(target), body, cut)
                    raise ToolError(f"http_get: more than {MAX_REDIRECTS} redirects from {url}")
        except TimeoutError:
            raise ToolError(f"http_get: {url} did not answer within {self.timeout:g}s") from None
        except httpx.HTTPError as e:
            raise ToolError(f"http_get: {url}: {type(e).__name__}: {e}") from None

    async def _read(self, response: Any) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_bytes:
                return b"".join(chunks)[:self.max_bytes], True
        return b"".join(chunks), False

    def _render(self, response: Any, url: str, body: bytes, cut: bool) -> str:
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        head = f"HTTP {response.status_code} {url}"
        textual = (not kind or kind.startswith("text/") or kind.endswith(("json", "xml"))
                   or kind in ("application/javascript",))
        if self.text_only and not textual:
            return f"{head}\n({kind} content, {len(body):,} bytes, not shown)"
        text = body.decode(response.encoding or "utf-8", errors="replace")
        if "html" in kind:  # text/html, application/xhtml+xml: the page's text, not its markup
            text = _html_text(text)
        note = f"\n[cut at {self.max_bytes:,} bytes]" if cut else ""
        return f"{head}\n\n{text}{note}"


def _html_text(page: str) -> str:
    """The readable text of an HTML page: scripts, styles and tags dropped."""
    page = re.sub(r"(?is)<(script|style|noscript)\b.*?</\1\s*>", " ", page)
    page = re.sub(r"(?s)<!--.*?-->", " ", page)
    page = re.sub(r"(?i)<(br|/p|/div|/h[1-6]|/li|/tr)\b[^>]*>", "\n", page)
    text = html.unescape(re.sub(r"(?s)<[^>]+>", " ", page))
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()


def http_get(allow: Iterable[str], *, name: str = "http_get", timeout: float = 10.0,
             max_bytes: int = 200_000) -> Tool:
    """A tool that GETs a URL on an allowed host and returns its text (HTML reduced to text).

    A URL on any other host is refused before a request is made, and the refusal is what the
    model observes; redirects to other hosts are refused the same way. At most ``max_bytes``
    are read, and the fetch takes at most ``timeout`` seconds.

    >>> from orchnb.tools import http_get
    >>> fetch = http_get(allow=["en.wikipedia.org", "*.python.org"])
    >>> fetch.name
    'http_get'
    """
    getter = HttpGet(allow, timeout=timeout, max_bytes=max_bytes)

    async def fetch(url: str) -> str:
        return await getter.fetch(url)

    fetch.__doc__ = (f"Fetch a web page (http/https GET) and return its text. Allowed hosts: "
                     f"{', '.join(getter.allow)[:300]}.")
    tool = Tool(fetch, name=name)
    tool.getter = getter  # type: ignore[attr-defined]
    return tool
