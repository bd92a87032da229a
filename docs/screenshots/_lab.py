"""JupyterLab in headless Chromium for the screenshot scripts beside this file: a server of its
own (config, settings and ORCHNB_HOME in a temporary folder) and one browser context."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "browser"))


class _Temp:
    """What the browser tests' ``_serve`` needs of pytest's ``tmp_path_factory``."""

    def __init__(self, base: Path):
        self.base, self.n = base, 0

    def mktemp(self, name: str) -> Path:
        self.n += 1
        path = self.base / f"{name}{self.n}"
        path.mkdir(parents=True)
        return path


@contextmanager
def lab_browser() -> Iterator[tuple[dict[str, Any], Any]]:
    """``(lab, context)``: the server's ``url`` / ``token`` / ``root`` and a Playwright
    context (1100 × 1400, 60 s timeouts); both are closed on leaving."""
    from conftest import CHROME_ARGS, CHROMIUM, _serve
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        servers = _serve(_Temp(Path(tmp)), "lab", [
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"])
        lab = next(servers)
        try:
            with sync_playwright() as pw:
                context = pw.chromium.launch_persistent_context(
                    str(Path(tmp) / "profile"), executable_path=CHROMIUM, headless=True,
                    args=CHROME_ARGS, viewport={"width": 1100, "height": 1400})
                context.set_default_timeout(60_000)
                try:
                    yield lab, context
                finally:
                    context.close()
        finally:
            next(servers, None)
