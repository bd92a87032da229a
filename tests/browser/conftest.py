"""JupyterLab on 127.0.0.1 driven by Playwright through Debian's Chromium (see BROWSER-TESTS.md).

The server, its config/runtime/settings dirs, ORCHNB_HOME and the notebooks all live in one
session temp dir; nothing touches the user's Jupyter setup.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
TOKEN = "orchnb-browser-tests"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "playground"
CHROME_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage"]


def _skip_reason() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing: apt-get install -y chromium"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install playwright"
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        return "jupyterlab is not installed: pip install jupyterlab"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """A JupyterLab server: ``{"url", "token", "root" (the notebook dir)}``."""
    yield from _serve(tmp_path_factory, "lab", ["--LabApp.expose_app_in_browser=True",
                                                "--LabApp.check_for_updates_class="
                                                "jupyterlab.NeverCheckForUpdate"])


@pytest.fixture(scope="session")
def notebook7(tmp_path_factory):
    """A Jupyter Notebook 7 server, same shape as ``lab``."""
    try:
        import notebook  # noqa: F401
    except ImportError:
        pytest.skip("Notebook 7 is not installed: pip install 'notebook>=7'")
    yield from _serve(tmp_path_factory, "notebook",
                      ["--JupyterNotebookApp.expose_app_in_browser=True"])


def _serve(tmp_path_factory, app: str, extra: list[str]):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp(app)
    root = base / "notebooks"
    root.mkdir()
    dirs = {name: base / name for name in ("config", "runtime", "settings", "workspaces")}
    for d in dirs.values():
        d.mkdir()
    for plugin, settings in {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
    }.items():
        path = dirs["settings"] / plugin
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(dirs["config"]),
           "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
           "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
           "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
           "ORCHNB_HOME": str(base / "orchnb-home"), "PYTHONWARNINGS": "ignore"}
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        env.pop(key, None)
    port = _free_port()
    log = (base / f"{app}.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", app, "--no-browser", "--allow-root",
         "--ip=127.0.0.1", f"--port={port}", f"--ServerApp.token={TOKEN}",
         f"--ServerApp.root_dir={root}", *extra],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"jupyter {app} did not start; see {log.name}") from None
            time.sleep(0.2)
    yield {"url": url, "token": TOKEN, "root": root, "kind": app}
    _shutdown_kernels(url)
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _shutdown_kernels(url: str) -> None:
    """Stop the kernels first: the server's own shutdown waits for them a few seconds."""
    try:
        with urllib.request.urlopen(f"{url}/api/kernels?token={TOKEN}", timeout=5) as r:
            kernels = json.load(r)
        for k in kernels:
            req = urllib.request.Request(f"{url}/api/kernels/{k['id']}?token={TOKEN}",
                                         method="DELETE")
            urllib.request.urlopen(req, timeout=10).read()
    except OSError:
        pass


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    # Module scope: Playwright's sync API leaves an event loop marked running in this thread
    # while it lives, which would make every later test look as if it ran inside Jupyter.
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROME_ARGS,
            viewport={"width": 1400, "height": 1700})
        context.set_default_timeout(20_000)
        yield context
        context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS

