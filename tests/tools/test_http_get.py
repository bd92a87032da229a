"""http_get: a host allowlist enforced before any request, bounded size and time."""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from orchnb.exceptions import SpecError, ToolError
from orchnb.tools import http_get
from orchnb.tools._http_get import host_allowed


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
        if self.path == "/hop":
            self.send_response(301)
            self.send_header("Location", "/page")
            self.end_headers()
            return
        if self.path == "/big":
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


@pytest.fixture
def server():
    _Handler.hits = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def get(tool, url):
    return asyncio.run(tool.invoke({"url": url}))


def test_fetches_allowed_hosts_as_text(server):
    out = get(http_get(allow=["127.0.0.1"]), server + "/page")
    assert out.startswith("HTTP 200 ") and "Title" in out and "Hello & welcome" in out
    assert "alert" not in out and "<p>" not in out


def test_host_outside_the_allowlist_is_refused_before_any_request(server):
    fetch = http_get(allow=["localhost"])
    with pytest.raises(ToolError, match=r"host '127\.0\.0\.1' is not on the allowlist"):
        get(fetch, server + "/page")
    with pytest.raises(ToolError, match="only http and https"):
        get(fetch, "file:///etc/passwd")
    with pytest.raises(ToolError, match="not on the allowlist"):
        get(http_get(allow=["127.0.0.1"]), "http://127.0.0.1@evil.example/")
    assert _Handler.hits == []


def test_redirects_only_to_allowed_hosts(server):
    fetch = http_get(allow=["127.0.0.1"])
    assert "Title" in get(fetch, server + "/hop")
    with pytest.raises(ToolError, match="host 'localhost' is not on the allowlist"):
        get(fetch, server + "/away")
    assert _Handler.hits == ["/hop", "/page", "/away"]


def test_body_is_capped_and_binary_is_not_shown(server):
    fetch = http_get(allow=["127.0.0.1"], max_bytes=1_000)
    out = get(fetch, server + "/big")
    assert out.count("x") == 1_000 and "[cut at 1,000 bytes]" in out
    assert "image/png content" in get(fetch, server + "/png")


def test_unreachable_host_is_an_error_the_model_can_read():
    with pytest.raises(ToolError, match=r"http_get: .*ConnectError"):
        get(http_get(allow=["127.0.0.1"], timeout=2), "http://127.0.0.1:9/")


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
