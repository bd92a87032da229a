"""The README's local-server example, as written, against llama.cpp's server.

The README registers ``http://127.0.0.1:8080/v1``; the session's server listens on a free port,
so a small relay on 8080 forwards to it (and shows which key went over the wire). The call and
the URL are read from the README itself, so a change there is tested here.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.realmodel]

MODEL_ALIAS = "smollm2"  # the server's --model_alias (this folder's conftest)
README = Path(__file__).resolve().parents[2] / "README.md"
_CALL = re.compile(r'`(orchnb\.openai_compatible\("local", "(http://127\.0\.0\.1:(\d+)/v1)"\))`')


def _pipe(a: socket.socket, b: socket.socket, seen: list[bytes]) -> None:
    try:
        while chunk := a.recv(65536):
            seen.append(chunk)
            b.sendall(chunk)
    except OSError:
        pass
    finally:
        for s in (a, b):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


class _Relay:
    """127.0.0.1:``port`` → ``target``; ``sent`` holds the bytes clients sent."""

    def __init__(self, port: int, target: tuple[str, int]):
        self.sent: list[bytes] = []
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.server.bind(("127.0.0.1", port))
        except OSError as e:
            self.server.close()
            pytest.skip(f"port {port} (the README's example) is taken here: {e}")
        self.server.listen(8)
        self.target = target
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b, seen in ((client, upstream, self.sent), (upstream, client, [])):
                threading.Thread(target=_pipe, args=(a, b, seen), daemon=True).start()

    def close(self) -> None:
        self.server.close()


def test_the_readmes_local_server_example_works_as_written(llama_server, ipython, monkeypatch):
    from orchnb.models import _provider

    text = " ".join(README.read_text(encoding="utf-8").split())
    found = _CALL.search(text)
    assert found, "README no longer shows openai_compatible(\"local\", \"http://127.0.0.1:...\")"
    call, url, port = found.group(1), found.group(2), int(found.group(3))
    assert "`model: local:NAME` (no key needed" in text
    # A key of the user's own in the environment is never sent to the local server.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-mine-not-for-local-servers")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setattr(_provider, "_INSTANCES", {})
    target = urlparse(llama_server)
    relay = _Relay(port, (target.hostname, target.port))
    try:
        ran = ipython.run_cell(f"import orchnb\n{call}")  # exactly the README's line, in a cell
        assert ran.success, ran.error_in_exec
        ipython.run_cell_magic("orch", "readme_local", (
            "pattern: chain\nsteps:\n"
            f"  - {{name: answer, model: 'local:{MODEL_ALIAS}', "
            "prompt: 'Say hello in one word: {{ input }}', max_tokens: 8}\n"))
        run = ipython.user_ns["readme_local"]("hi", cache=False)
    finally:
        relay.close()
    assert run.status == "ok", run.error
    assert isinstance(run.output, str)
    [span] = [s for s in run.trace.spans if s.kind == "model"]
    assert (span.provider, span.model) == ("local", MODEL_ALIAS)
    assert span.input_tokens > 0
    wire = b"".join(relay.sent)
    assert b"POST /v1/chat/completions" in wire, url
    assert b"sk-mine-not-for-local-servers" not in wire
