"""The magics through a real IPython InteractiveShell."""

from __future__ import annotations

import pytest

from orchnb import Pipeline, SpecError, UnknownModelError

BRIEF = """pattern: chain
steps:
  - name: summarize
    model: sim:echo
    prompt: "Summarize: {{ input }}"
  - name: classify
    model: sim:echo
    prompt: "Kind? {{ steps.summarize }}"
"""


@pytest.fixture
def ip(ipython):
    return ipython


def test_cell_magic_binds_a_pipeline(ip):
    ip.run_cell_magic("orch", "brief", BRIEF)
    assert isinstance(ip.user_ns["brief"], Pipeline)
    assert ip.user_ns["brief"]("doc").output == "Kind? Summarize: doc"


def test_run_magic_takes_quoted_text_or_a_variable(ip):
    ip.run_cell_magic("orch", "brief", BRIEF)
    run = ip.run_line_magic("orch", 'run brief "an invoice"')
    assert run.output == "Kind? Summarize: an invoice"
    ip.user_ns["doc"] = "a contract"
    assert ip.run_line_magic("orch", "run brief doc").output == "Kind? Summarize: a contract"


def test_step_magic_starts_then_steps(ip):
    ip.run_cell_magic("orch", "brief", BRIEF)
    run = ip.run_line_magic("orch", 'step brief "x"')
    assert run.status == "paused" and run.calls == 0
    ip.run_line_magic("orch", "step brief")
    assert run.calls == 1
    ip.run_line_magic("orch", "step brief")
    assert run.status == "ok"
    with pytest.raises(SpecError, match="no paused run"):
        ip.run_line_magic("orch", "step brief")


def test_traces_magic_returns_the_store(ip):
    ip.run_cell_magic("orch", "brief", BRIEF)
    ip.run_line_magic("orch", 'run brief "y"')
    df = ip.run_line_magic("orch", "traces brief")
    assert (df.pipeline == "brief").all() and len(df) >= 5


def test_bad_cell_reports_line_and_key(ip):
    with pytest.raises(UnknownModelError) as info:
        ip.run_cell_magic("orch", "bad", BRIEF.replace("sim:echo", "nope", 1))
    assert info.value.line == 5 and info.value.key == "steps[0].model"
    assert "bad" not in ip.user_ns


def test_errors_for_unknown_pipeline_and_command(ip):
    with pytest.raises(SpecError, match="not a pipeline"):
        ip.run_line_magic("orch", "run missing x")
    with pytest.raises(SpecError, match="unknown command"):
        ip.run_line_magic("orch", "frobnicate")
    with pytest.raises(SpecError, match="identifier"):
        ip.run_cell_magic("orch", "", BRIEF)


def test_spec_errors_render_without_traceback(ip):
    result = ip.run_cell("%%orch bad\npattern: chian\n")
    assert isinstance(result.error_in_exec, SpecError)
    assert result.error_in_exec._render_traceback_()[0].endswith(
        "line 2, key 'pattern': unknown pattern 'chian'; choose one of " +
        result.error_in_exec.message.split("choose one of ")[1])


def test_load_run_rebuilds_an_orch_pipeline_with_the_notebooks_tools(ip):
    ip.run_cell('''
from orchnb import Agent, SimModel
def add_up(a: int, b: int) -> int:
    """Add two integers."""
    return a + b
SimModel("mg-calc", fn=Agent.sim_policy([("add_up", {"a": 2, "b": 3})], "Done: {observation}")
         ).register()
''').raise_error()
    ip.run_cell_magic("orch", "helper", "pattern: agent\nmodel: sim:mg-calc\ntools: [add_up]\n")
    run = ip.user_ns["helper"]("2 + 3?")
    ip.user_ns["rid"] = run.id
    ip.run_cell("import orchnb\nloaded = orchnb.load_run(rid)\n"
                "fork = loaded.fork('add_up').resume()").raise_error()
    fork = ip.user_ns["fork"]
    assert fork.output == "Done: 5" and fork.forked_from == run.id
    assert ip.user_ns["loaded"].owner is not ip.user_ns["helper"]  # rebuilt from the YAML


def test_an_unknown_tool_name_suggests_the_notebooks_function_not_ipythons(ip):
    ip.run_cell("def lookup_city(x: str) -> str:\n    '''Look a city up.'''\n    return x\n")
    result = ip.run_cell("%%orch helper2\npattern: agent\nmodel: sim:echo\ntools: [lookup_ctiy]\n")
    text = str(result.error_in_exec)
    assert "did you mean 'lookup_city'?" in text and "line 4" in text
    for name in ("exit", "quit", "get_ipython", "open"):
        assert f" {name}," not in text and f" {name})" not in text, text
