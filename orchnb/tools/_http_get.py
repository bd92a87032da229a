"""``http_get(allow=[...])``: a tool that fetches web pages from hosts the user allows.

A URL whose host and port are not on the allowlist is refused before any request is made (the
refusal is the model's observation); each redirect hop is checked the same way before it is
followed; the body read is capped in bytes and the whole fetch in seconds. HTML is reduced to
text by a linear scanner, on a worker thread when the page is large.

The HTTP client is the one the openai and anthropic SDKs bring (``httpx2``; ``httpx`` for
older SDKs), so the tool works on the base install.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ..exceptions import OrchnbError, SpecError, ToolError
from ._html_text import html_text
from ._tool import Tool

MAX_REDIRECTS = 5
MAX_BYTES_LIMIT = 10_000_000
"""The largest ``max_bytes`` one fetch may read (the text goes to a model's context)."""
PARSE_OFF_LOOP = 64_000
"""Pages longer than this (characters) are reduced to text on a worker thread."""
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class AllowRule:
    """One allowlist entry: a host (``*.`` for a domain and its subdomains) and a port.

    ``port`` is a number (that port only), ``"*"`` (any port) or ``None``: the scheme's
    default port only (80 for http, 443 for https), as a browser reads ``example.com``.
    """

    host: str
    port: int | str | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    def allows(self, scheme: str, host: str, port: int | None) -> bool:
        """Whether a URL with this scheme, host and port (None: the default) is allowed."""
        if not host_allowed(host, [self.host]):
            return False
        effective = DEFAULT_PORTS.get(scheme) if port is None else port
        if self.port == "*":
            return True
        if self.port is None:
            return effective == DEFAULT_PORTS.get(scheme)
        return effective == self.port


def _host_rule(entry: str) -> AllowRule:
    rule = str(entry).strip().lower()
    if "://" in rule:  # a URL given instead of a host: keep its host and port
        rule = rule.split("://", 1)[1].split("/", 1)[0].split("@")[-1]
    port: str | None = None
    if rule.startswith("["):  # [IPv6] or [IPv6]:port
        host, _, rest = rule[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                host = ""
            port = rest[1:]
    elif rule.count(":") > 1:  # a bare IPv6 literal: no port can be given this way
        host = rule
    else:
        host, sep, port_text = rule.partition(":")
        port = port_text if sep else None
    host = host.rstrip(".")
    if not host or any(c in host for c in " /\\?#@[]"):
        raise SpecError(f"http_get: {entry!r} is not a host name; allow hosts such as "
                        "'example.com', '*.example.com' or 'localhost:8001'", key="allow")
    return AllowRule(host, _port(entry, port))


def _port(entry: str, text: str | None) -> int | str | None:
    if text is None:
        return None
    if text == "*":
        return "*"
    if not (text.isascii() and text.isdigit() and 0 < int(text) < 65536):
        raise SpecError(f"http_get: {entry!r} has the port {text!r}; a port is a number "
                        "from 1 to 65535, or '*' for any port", key="allow")
    return int(text)


def host_allowed(host: str, rules: Iterable[str]) -> bool:
    """Whether ``host`` matches a host pattern: exact names, ``*.domain`` for a domain and its
    subdomains (ports are :class:`AllowRule`'s business).

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


def http_client() -> ModuleType:
    """The HTTP library the SDKs depend on: ``httpx2`` (openai ≥ 3, anthropic ≥ 2), else
    ``httpx`` (older SDKs). Both have the same API."""
    try:
        import httpx2

        return httpx2
    except ImportError:
        pass
    try:
        import httpx

        return httpx
    except ImportError:
        raise OrchnbError("http_get needs httpx2 or httpx (the openai SDK brings one); "
                          "pip install httpx2") from None


class HttpGet:
    """The fetcher behind :func:`http_get` (allowlist of hosts and ports, caps, redirects)."""

    def __init__(self, allow: Iterable[str], *, timeout: float = 10.0,
                 max_bytes: int = 200_000, text_only: bool = True):
        if isinstance(allow, str):
            allow = [allow]
        self.rules = [_host_rule(a) for a in allow]
        if not self.rules:
            raise SpecError("http_get: allow= names no host; give the hosts the model may "
                            "fetch from, e.g. allow=['en.wikipedia.org']", key="allow")
        self.allow = [str(r) for r in self.rules]
        """The allowlist as written back: ``host``, ``host:port`` or ``host:*``."""
        if isinstance(timeout, bool) or not (isinstance(timeout, (int, float))
                                             and 0 < timeout <= 600):
            raise SpecError(f"http_get: timeout must be seconds > 0 (at most 600), got "
                            f"{timeout!r}", key="timeout")
        if isinstance(max_bytes, bool) or not (isinstance(max_bytes, int)
                                               and 0 < max_bytes <= MAX_BYTES_LIMIT):
            raise SpecError(f"http_get: max_bytes must be a whole number from 1 to "
                            f"{MAX_BYTES_LIMIT:,}, got {max_bytes!r}", key="max_bytes")
        self.timeout, self.max_bytes, self.text_only = float(timeout), max_bytes, text_only

    def check(self, url: Any) -> Any:
        """The parsed URL, or :class:`ToolError` when it may not be fetched (no request)."""
        httpx = http_client()
        try:
            parsed = url if isinstance(url, httpx.URL) else httpx.URL(str(url).strip())
        except Exception:
            raise ToolError(f"http_get: {str(url)[:100]!r} is not a URL") from None
        if parsed.scheme not in ("http", "https"):
            raise ToolError(f"http_get: only http and https URLs can be fetched, not "
                            f"{str(url)[:100]!r}")
        if not any(r.allows(parsed.scheme, parsed.host, parsed.port) for r in self.rules):
            where = parsed.host if parsed.port is None else f"{parsed.host}:{parsed.port}"
            raise ToolError(f"http_get: '{where}' is not on the allowlist "
                            f"({', '.join(self.allow)}); nothing was fetched. Use a URL on an "
                            "allowed host and port")
        return parsed

    async def fetch(self, url: str) -> str:
        """GET ``url`` (allowed hosts and ports only) and return the status line and text."""
        httpx = http_client()
        target = self.check(url)
        try:
            async with asyncio.timeout(self.timeout):
                async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False,
                                             trust_env=False) as client:
                    for _ in range(MAX_REDIRECTS + 1):
                        async with client.stream("GET", target) as response:
                            if response.is_redirect and "location" in response.headers:
                                # Each hop is checked before it is followed.
                                target = self.check(target.join(response.headers["location"]))
                                continue
                            body, cut = await self._read(response)
                            return await self._render(response, str(target), body, cut)
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

    async def _render(self, response: Any, url: str, body: bytes, cut: bool) -> str:
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        head = f"HTTP {response.status_code} {url}"
        textual = (not kind or kind.startswith("text/") or kind.endswith(("json", "xml"))
                   or kind in ("application/javascript",))
        if self.text_only and not textual:
            return f"{head}\n({kind} content, {len(body):,} bytes, not shown)"
        text = _decode(body, response)
        if "html" in kind:  # text/html, application/xhtml+xml: the page's text, not its markup
            # A large page is reduced on a thread so the run's loop (and widgets) stay live.
            text = (await asyncio.to_thread(html_text, text) if len(text) > PARSE_OFF_LOOP
                    else html_text(text))
        note = f"\n[cut at {self.max_bytes:,} bytes]" if cut else ""
        return f"{head}\n\n{text}{note}"


def _decode(body: bytes, response: Any) -> str:
    try:
        return body.decode(response.encoding or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")


def http_get(allow: Iterable[str], *, name: str = "http_get", timeout: float = 10.0,
             max_bytes: int = 200_000) -> Tool:
    """A tool that GETs a URL on an allowed host and port and returns its text (HTML reduced
    to text).

    An allowlist entry is ``host`` (the scheme's default port only: 80 for http, 443 for
    https), ``host:port`` (that port only), ``host:*`` (any port), or ``*.domain`` in any of
    these forms (the domain and its subdomains). A URL anywhere else is refused before a
    request is made, and the refusal is what the model observes; each redirect hop is checked
    the same way before it is followed. At most ``max_bytes`` are read, and the fetch takes at
    most ``timeout`` seconds.

    >>> from orchnb.tools import http_get
    >>> fetch = http_get(allow=["en.wikipedia.org", "*.python.org", "localhost:8001"])
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
