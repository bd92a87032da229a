"""In IPython, an error a user meets while running (a provider's 4xx/5xx, a refused connection,
a timeout, a budget, an interrupt) shows as one block that says what, where and what to do, not
a traceback through orchnb; ``%xmode verbose`` or ``configure(debug=True)`` brings it back."""

from __future__ import annotations

import re

import pytest

import orchnb
from orchnb import Chain, Step

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _shown(ip, code: str) -> tuple[BaseException, list[str]]:
    result = ip.run_cell(code)
    error = result.error_in_exec
    assert error is not None
    return error, [_ANSI.sub("", line) for line in error._render_traceback_()]


@pytest.fixture
def ip_fake(ipython, fake_env):
    pipe = Chain("errs", [Step("draft", "openai:gpt-4o-mini", "{{ input }}")], cache=False)
    ipython.push({"orchnb": orchnb, "pipe": pipe})
    yield ipython, fake_env
    ipython.run_line_magic("xmode", "context")
    orchnb.configure(debug=False)


@pytest.mark.parametrize("kind, words", [
    ("404", "Check the model name and the base URL"),
    ("500", "try again later"),
    ("401", "Check the key in OPENAI_API_KEY"),
])
def test_a_provider_error_is_one_block_with_what_where_and_what_to_do(ip_fake, kind, words):
    ip, fake = ip_fake
    fake.fail_next(5, kind)
    error, lines = _shown(ip, "pipe('x')")
    assert isinstance(error, orchnb.ProviderError)
    assert len(lines) <= 4 and "Traceback" not in "\n".join(lines)
    text = "\n".join(lines)
    assert f"HTTP {kind}" in text and words in text  # what, and what to do
    assert "step 'draft'" in text and f"run {error.run.id} of 'errs'" in text  # where
    assert fake.openai_base_url in text  # which server answered
    assert "%xmode verbose" in text


def test_budget_and_a_refused_connection_are_one_block_too(ip_fake, monkeypatch):
    ip, _ = ip_fake
    error, lines = _shown(ip, "pipe('x', budget=orchnb.Budget(max_calls=0))")
    assert isinstance(error, orchnb.BudgetExceeded) and len(lines) <= 4
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    error, lines = _shown(ip, "pipe('x')")
    assert "connection failed" in lines[0] and "Is it running at that URL" in lines[0]
    assert len(lines) <= 4


def test_xmode_verbose_or_debug_brings_the_traceback_back(ip_fake):
    ip, fake = ip_fake
    fake.fail_next(5, "404")
    ip.run_line_magic("xmode", "verbose")
    _, lines = _shown(ip, "pipe('x')")
    assert len(lines) > 10 and any("_result" in line for line in lines)
    ip.run_line_magic("xmode", "context")
    orchnb.configure(debug=True)
    fake.fail_next(5, "404")
    _, lines = _shown(ip, "pipe('x')")
    assert len(lines) > 10
    orchnb.configure(debug=False)
    fake.fail_next(5, "404")
    _, lines = _shown(ip, "pipe('x')")
    assert len(lines) <= 4
