"""python -m orchnb run: a pipeline YAML in a plain process (subprocesses, as users run it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import orchnb

ROOT = Path(orchnb.__file__).resolve().parent.parent

TOOLS = '''
from orchnb.models import SimModel

SimModel("cli-triage", rules={"refund|charge": "billing"}, default="technical").register()


def shout(text):
    return text.upper()


def picky(text):
    if "boom" in text:
        raise ValueError("boom is not allowed")
    return text
'''

CHAIN = """
pattern: chain
name: greet
steps:
  - {name: hello, model: "sim:echo", prompt: "Hello {{ input }}"}
  - shout
"""


@pytest.fixture
def work(tmp_path):
    (tmp_path / "tools.py").write_text(TOOLS)
    (tmp_path / "greet.yaml").write_text(CHAIN)
    return tmp_path


def orchnb_cli(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, "-m", "orchnb", *args], cwd=cwd, env=env,
                          input=stdin, capture_output=True, text=True, timeout=120)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    err = result.stderr.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("orchnb: ")
    return err


def test_run_prints_the_output_and_traces_the_run(work):
    result = orchnb_cli("run", "greet.yaml", "--input", "world", "--tools", "tools.py", cwd=work)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "HELLO WORLD\n"
    assert "ok · 1 calls" in result.stderr and "(simulated)" in result.stderr
    run_id = result.stderr.split("run ")[1].split()[0]
    spans = orchnb.traces()  # the same ORCHNB_HOME: the subprocess persisted its spans
    assert set(spans.loc[spans["run_id"] == run_id, "pipeline"]) == {"greet"}


def test_run_json_record_and_stdin_input(work):
    result = orchnb_cli("run", "greet.yaml", "--input", "-", "--json", "--tools", "tools.py",
                        cwd=work, stdin="from stdin")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["output"] == "HELLO FROM STDIN" and record["status"] == "ok"
    assert record["cost_usd"] == 0.0 and len(record["run_id"]) == 12


def test_inputs_jsonl_runs_once_per_line_and_writes_jsonl(work):
    (work / "in.jsonl").write_text('"first"\n\n{"input": "second", "id": 7}\n')
    result = orchnb_cli("run", "greet.yaml", "--inputs", "in.jsonl", "--module", "tools",
                        cwd=work)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["output"] for r in records] == ["HELLO FIRST", "HELLO SECOND"]
    assert records[1]["id"] == 7 and records[1]["line"] == 3
    assert len({r["run_id"] for r in records}) == 2


def test_a_bad_line_fails_its_record_and_the_exit_status_only(work):
    (work / "in.jsonl").write_text('"fine"\nnot json\n{"no_input": 1}\n')
    result = orchnb_cli("run", "greet.yaml", "--inputs", "in.jsonl", "--tools", "tools.py",
                        "--output", "out.jsonl", cwd=work)
    assert result.returncode == 1
    assert one_line_error(result) == "orchnb: 2 of 3 runs failed (their records have 'error')"
    records = [json.loads(x) for x in (work / "out.jsonl").read_text().splitlines()]
    assert [r["status"] for r in records] == ["ok", "error", "error"]
    assert "invalid JSON" in records[1]["error"] and "'input' key" in records[2]["error"]


def test_router_yaml_from_to_yaml_runs_in_the_plain_process(work):
    from orchnb import Router, Step

    tools = {}
    exec(TOOLS, tools)  # registers sim:cli-triage in this process too
    router = Router("support", classifier="sim:cli-triage", routes={
        "billing": Step("billing", "sim:echo", "Billing: {{ input }}"),
        "technical": tools["shout"]}, default="technical")
    router.to_yaml(work / "support.yaml")
    result = orchnb_cli("run", "support.yaml", "--input", "I want a refund", "--tools",
                        "tools.py", cwd=work)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Billing: I want a refund\n"


def test_missing_yaml_file_is_one_line_and_exit_2(work):
    result = orchnb_cli("run", "nope.yaml", "--input", "x", cwd=work)
    assert result.returncode == 2
    assert one_line_error(result) == "orchnb: cannot read nope.yaml: No such file or directory"


def test_unknown_callable_names_it_and_the_options(work):
    result = orchnb_cli("run", "greet.yaml", "--input", "x", cwd=work)
    assert result.returncode == 2
    err = one_line_error(result)
    assert "'shout'" in err and "--tools" in err and "line 6" in err


def test_bad_yaml_and_bad_tools_file_are_one_line(work):
    (work / "bad.yaml").write_text("pattern: chain\nsteps: [\n")
    assert "invalid YAML" in one_line_error(orchnb_cli("run", "bad.yaml", "--input", "x",
                                                       cwd=work))
    (work / "broken.py").write_text("raise RuntimeError('no')\n")
    result = orchnb_cli("run", "greet.yaml", "--input", "x", "--tools", "broken.py", cwd=work)
    assert result.returncode == 2
    assert one_line_error(result) == "orchnb: --tools broken.py: it raised RuntimeError: no"


def test_a_failed_run_exits_1_with_one_line(work):
    (work / "picky.yaml").write_text("pattern: chain\nsteps: [picky]\n")
    result = orchnb_cli("run", "picky.yaml", "--input", "boom", "--tools", "tools.py",
                        cwd=work)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert lines[-1].startswith("orchnb: run ") and "boom is not allowed" in lines[-1]


def test_budget_options_cap_the_run(work):
    result = orchnb_cli("run", "greet.yaml", "--input", "x", "--tools", "tools.py",
                        "--max-calls", "0", "--json", cwd=work)
    assert result.returncode == 1
    record = json.loads(result.stdout)
    assert record["status"] == "budget_exceeded" and "call budget" in record["error"]


def test_help_says_where_callables_come_from(work):
    result = orchnb_cli("run", "--help", cwd=work)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "--module" in text and "--tools" in text and "looked up in --module" in text
    assert orchnb_cli(cwd=work).returncode == 2  # no command: usage, exit 2
