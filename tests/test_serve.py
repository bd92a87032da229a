"""python -m orchnb serve: a real server in a subprocess, a real HTTP client (httpx)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import orchnb

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

ROOT = Path(orchnb.__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # starts a Python process with uvicorn (several seconds)

TOOLS = '''
def picky(text):
    if "boom" in text:
        raise ValueError("boom is not allowed")
    return text
'''
PIPELINE = """
pattern: chain
name: greet
steps:
  - picky
  - {name: hello, model: "sim:echo", prompt: "Hello {{ input }}"}
"""


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "ORCHNB_HOME": str(home), "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    path = tmp_path_factory.mktemp("serve")
    (path / "tools.py").write_text(TOOLS)
    (path / "greet.yaml").write_text(PIPELINE)
    return path


@pytest.fixture(scope="module")
def server(workdir):
    """One server for the module (its start is the slow part), stopped after it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchnb", "serve", "greet.yaml", "--port", "0", "--tools",
         "tools.py"], cwd=workdir, env=_env(workdir / "home"), stderr=subprocess.PIPE,
        text=True)
    try:
        line = proc.stderr.readline()  # printed once the socket listens
        assert "serving 'greet'" in line, line + (proc.stderr.read() if proc.poll() else "")
        url = line.split(" on ")[1].split()[0]
        with httpx.Client(base_url=url, timeout=30) as client:
            yield client
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        proc.stderr.close()


def test_health(server):
    r = server.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "pipeline": "greet", "pattern": "chain"}


def test_run_answers_output_run_id_status_cost(server, workdir, monkeypatch):
    r = server.post("/run", json={"input": "world"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["output"] == "Hello world" and body["status"] == "ok"
    assert body["cost_usd"] == 0.0 and len(body["run_id"]) == 12
    monkeypatch.setenv("ORCHNB_HOME", str(workdir / "home"))
    spans = orchnb.traces()  # the server persisted the run where this test can read it
    assert (spans["run_id"] == body["run_id"]).any()


def test_a_failed_run_is_a_json_error_with_its_status(server):
    r = server.post("/run", json={"input": "boom"})
    assert r.status_code == 500
    body = r.json()
    assert body["status"] == "error" and "boom is not allowed" in body["error"]
    assert body["run_id"]


def test_bad_requests_are_json_errors(server):
    r = server.post("/run", content=b"not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["status"] == "bad_request"
    r = server.post("/run", json={"text": "x"})
    assert r.status_code == 400 and '"input"' in r.json()["error"]
    r = server.get("/nowhere")
    assert r.status_code == 404 and r.json()["status"] == "not_found"
    r = server.get("/run")
    assert r.status_code == 405 and r.json()["status"] == "method_not_allowed"


def test_serve_refuses_a_port_in_use(server, workdir, tmp_path):
    port = int(str(server.base_url).rsplit(":", 1)[1].strip("/"))
    result = subprocess.run([sys.executable, "-m", "orchnb", "serve", "greet.yaml", "--port",
                             str(port), "--tools", "tools.py"], cwd=workdir,
                            env=_env(tmp_path / "home"), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2, result.stderr
    assert "cannot listen on 127.0.0.1" in result.stderr and "Traceback" not in result.stderr
