"""http_get: a host-and-port allowlist enforced before any request and at every redirect hop,
bounded size and time, a linear HTML reader, and the SDKs' own HTTP client."""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from orchnb.exceptions import SpecError, ToolError
from orchnb.tools import http_get
from orchnb.tools._html_text import html_text
from orchnb.tools._http_get import HttpGet, host_allowed


class _Handler(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self):
        type(self).hits.append(self.path)
        port = self.server.server_address[1]
        if self.path == "/away":  # a redirect to a host that is not allowed
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{port}/page")
            self.end_headers()
            return
        if self.path == "/other-port":  # same host, a port that is not allowed
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.server.other_port}/page")
            self.end_headers()
            return
        if self.path == "/comments":  # the quadratic-regex page: 200 KB of '<!--'
            body, kind = b"<!--" * 50_000, "text/html"
        elif self.path == "/hop":
            self.send_response(301)
            self.send_header("Location", "/page")
            self.end_headers()
            return
        elif self.path == "/big":
            body = b"x" * 50_000
            kind = "text/plain"
        elif self.path == "/png":
            body, kind = b"\x89PNG....", "image/png"
        else:
            body = (b"<html><head><style>p{}</style><script>alert(1)</script></head><body>"
                    b"<h1>Title</h1><p>Hello &amp; welcome</p></body></html>")
            kind = "text/html; charset=utf-8"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _serve():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    return httpd, thread


@pytest.fixture
def servers():
    """Two loopback servers (two ports of one host): (allowed URL, other URL)."""
    _Handler.hits = []
    (one, t1), (two, t2) = _serve(), _serve()
    one.other_port, two.other_port = two.server_address[1], one.server_address[1]
    yield tuple(f"http://127.0.0.1:{s.server_address[1]}" for s in (one, two))
    for httpd, thread in ((one, t1), (two, t2)):
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def server(servers):
    return servers[0]


def allow(url: str) -> list[str]:
    """The allowlist entry for exactly this server's host and port."""
    return [url.split("://", 1)[1]]


def get(tool, url):
    return asyncio.run(tool.invoke({"url": url}))


def test_fetches_allowed_hosts_as_text(server):
    out = get(http_get(allow=allow(server)), server + "/page")
    assert out.startswith("HTTP 200 ") and "Title" in out and "Hello & welcome" in out
    assert "alert" not in out and "<p>" not in out


def test_host_outside_the_allowlist_is_refused_before_any_request(server):
    fetch = http_get(allow=["localhost:*"])
    with pytest.raises(ToolError, match=r"'127\.0\.0\.1:\d+' is not on the allowlist"):
        get(fetch, server + "/page")
    with pytest.raises(ToolError, match="only http and https"):
        get(fetch, "file:///etc/passwd")
    with pytest.raises(ToolError, match="not on the allowlist"):
        get(http_get(allow=["127.0.0.1"]), "http://127.0.0.1@evil.example/")
    assert _Handler.hits == []


def test_redirects_only_to_allowed_hosts(server):
    fetch = http_get(allow=allow(server))
    assert "Title" in get(fetch, server + "/hop")
    with pytest.raises(ToolError, match=r"'localhost:\d+' is not on the allowlist"):
        get(fetch, server + "/away")
    assert _Handler.hits == ["/hop", "/page", "/away"]


def test_body_is_capped_and_binary_is_not_shown(server):
    fetch = http_get(allow=allow(server), max_bytes=1_000)
    out = get(fetch, server + "/big")
    assert out.count("x") == 1_000 and "[cut at 1,000 bytes]" in out
    assert "image/png content" in get(fetch, server + "/png")


def test_unreachable_host_is_an_error_the_model_can_read():
    with pytest.raises(ToolError, match=r"http_get: .*ConnectError"):
        get(http_get(allow=["127.0.0.1:9"], timeout=2), "http://127.0.0.1:9/")


def test_allowlist_rules_and_bad_options():
    assert host_allowed("a.b.example.com", ["*.example.com"])
    assert host_allowed("example.com", ["*.example.com"])
    assert not host_allowed("badexample.com", ["*.example.com"])
    assert not host_allowed("example.com.evil.org", ["example.com"])
    assert http_get(allow=["https://Docs.Python.org/3/"]).getter.allow == ["docs.python.org"]
    with pytest.raises(SpecError, match="names no host"):
        http_get(allow=[])
    with pytest.raises(SpecError, match="not a host name"):
        http_get(allow=["a b"])
    with pytest.raises(SpecError, match="timeout"):
        http_get(allow=["x.org"], timeout=0)


def test_a_port_in_the_allowlist_is_the_only_port_allowed(servers):
    allowed, other = servers
    fetch = http_get(allow=allow(allowed))
    assert "Title" in get(fetch, allowed + "/page")
    with pytest.raises(ToolError, match=r"'127\.0\.0\.1:\d+' is not on the allowlist"):
        get(fetch, other + "/page")
    with pytest.raises(ToolError, match="not on the allowlist"):  # a redirect hop to the other
        get(fetch, allowed + "/other-port")
    assert _Handler.hits == ["/page", "/other-port"]  # the other port was never asked


def test_a_host_without_a_port_means_the_schemes_default_port():
    rules = HttpGet(["example.com", "*.python.org:*", "[::1]:8001"])
    for url in ("http://example.com/", "https://example.com/a", "http://example.com:80/",
                "http://docs.python.org:8080/", "http://[::1]:8001/"):
        rules.check(url)
    for url in ("http://example.com:8080/", "https://example.com:80/", "http://[::1]:9999/",
                "http://[::1]/"):
        with pytest.raises(ToolError, match="not on the allowlist"):
            rules.check(url)
    assert rules.allow == ["example.com", "*.python.org:*", "[::1]:8001"]


def test_200_kb_of_comment_openers_is_read_in_linear_time(server):
    started = time.perf_counter()
    out = get(http_get(allow=allow(server), max_bytes=300_000), server + "/comments")
    assert out.startswith("HTTP 200") and "<!--" not in out
    assert time.perf_counter() - started < 2  # was 50 s (a quadratic regex), on the loop


@pytest.mark.parametrize("page", ["<!--" * 250_000, "<" * 1_000_000, "<a" * 500_000,
                                  "<script>" * 125_000, "<br" * 333_000, "</script " * 100_000])
def test_the_html_reader_is_linear_on_hostile_pages(page):
    started = time.perf_counter()
    html_text(page)
    assert time.perf_counter() - started < 3  # 1 MB; a quadratic reader takes minutes


def test_html_text_keeps_the_text_and_drops_the_markup():
    page = ("<html><head><title>T</title><style>p{}</style></head><body><h1>Title</h1>"
            "<p>a &lt; b</p><!-- gone --><script>x()</script><p>unclosed <!-- rest")
    assert html_text(page) == "T\nTitle\n\na < b\n\nunclosed"


def test_a_large_page_is_read_off_the_event_loop(server, monkeypatch):
    threads = []
    import orchnb.tools._http_get as module

    def spy(text):
        threads.append(threading.current_thread().name)
        return html_text(text)

    monkeypatch.setattr(module, "html_text", spy)
    monkeypatch.setattr(module, "PARSE_OFF_LOOP", 10)
    get(http_get(allow=allow(server)), server + "/page")
    assert threads and threads[0] != threading.main_thread().name


def test_works_without_httpx_using_the_sdks_client(server, monkeypatch):
    monkeypatch.setitem(sys.modules, "httpx", None)  # the base install has only httpx2
    assert "Title" in get(http_get(allow=allow(server)), server + "/page")


def test_bad_ports_and_sizes_are_refused_where_written():
    with pytest.raises(SpecError, match=r"port 'abc'.*1 to 65535"):
        http_get(allow=["x.org:abc"])
    with pytest.raises(SpecError, match="max_bytes"):
        http_get(allow=["x.org"], max_bytes=10**9)
    with socket.socket() as s:  # a free port: nothing listens, the refusal needs no network
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ToolError, match="not on the allowlist"):
        get(http_get(allow=["127.0.0.1:1"]), f"http://127.0.0.1:{port}/")
