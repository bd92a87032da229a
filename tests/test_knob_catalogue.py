"""Every knob is checked where it is written: a bad value raises orchnb's own exception (a
SpecError for definitions), naming the knob and its allowed range, before any call is paid for.

One case per knob and mistake; each says which exception and which words the message must hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import orchnb
from orchnb import (
    Agent,
    Budget,
    Chain,
    MapReduce,
    PlanExecute,
    RetryPolicy,
    Router,
    SpecError,
    Step,
    Team,
    TemplateError,
    ToolError,
    UnknownModelError,
)
from orchnb.engine import RunOptions
from orchnb.exceptions import OrchnbWarning
from orchnb.models import SimModel
from orchnb.testing import FakeProvider
from orchnb.tools import Tool


def _step(**kw: Any) -> Step:
    return Step(kw.pop("name", "s"), kw.pop("model", "sim:echo"),
                kw.pop("prompt", "{{ input }}"), **kw)


def _chain(**kw: Any) -> Chain:
    return Chain("c", [_step()], **kw)


def _router() -> Router:
    return Router("r", Step("cls", "sim:echo", "Label: {{ input }}"),
                  {"billing": _step(name="b"), "tech": _step(name="t")})


def _data(**cols: Any) -> pd.DataFrame:
    return pd.DataFrame(cols or {"text": ["refund", "crash"], "label": ["billing", "tech"]})


def _eval(**kw: Any) -> Any:
    return orchnb.evaluate(_router(), kw.pop("data", None) if "data" in kw else _data(),
                           progress=False, **kw)


def _dup_columns() -> pd.DataFrame:
    df = pd.DataFrame([["a", "billing", "x"]], columns=["text", "label", "text"])
    return df


def _yaml(body: str) -> Any:
    return orchnb.from_yaml(body)


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def _fetch(allow: list[str], url: str) -> Any:
    from orchnb.tools import http_get

    return asyncio.run(http_get(allow=allow).invoke({"url": url}))


def _search_links_out() -> Any:
    """A folder whose only file is a link to a file outside it (``notes.txt -> passwd``)."""
    from orchnb.tools import DocIndex

    with tempfile.TemporaryDirectory() as outside, tempfile.TemporaryDirectory() as docs:
        (Path(outside) / "passwd").write_text("root:x:0:0")
        (Path(docs) / "notes.txt").symlink_to(Path(outside) / "passwd")
        with warnings.catch_warnings():
            warnings.simplefilter("error", OrchnbWarning)
            return DocIndex([docs]).search("root")


def _mcp_exits() -> Any:
    pytest.importorskip("mcp")
    return orchnb.mcp_tools(sys.executable, ["-c", "import sys; sys.exit(5)"])


# id: (make, exception, fragments the message must contain)
CASES: dict[str, tuple[Callable[[], Any], type[Exception], tuple[str, ...]]] = {
    # -- Budget ---------------------------------------------------------------------------------
    "budget-max_calls-negative": (lambda: Budget(max_calls=-1), SpecError,
                                  ("max_calls", ">= 0", "-1")),
    "budget-max_calls-float": (lambda: Budget(max_calls=1.5), SpecError,
                               ("max_calls", "whole number")),
    "budget-max_tokens-negative": (lambda: Budget(max_tokens=-5), SpecError,
                                   ("max_tokens", ">= 0")),
    "budget-max_usd-negative": (lambda: Budget(max_usd=-1), SpecError, ("max_usd", ">= 0")),
    "budget-max_usd-text": (lambda: Budget(max_usd="lots"), SpecError, ("max_usd", "'lots'")),
    "budget-max_usd-nan": (lambda: Budget(max_usd=float("nan")), SpecError, ("max_usd",)),
    "budget-max_calls-bool": (lambda: Budget(max_calls=True), SpecError, ("max_calls",)),
    # -- RetryPolicy ----------------------------------------------------------------------------
    "retry-max_attempts-zero": (lambda: RetryPolicy(max_attempts=0), SpecError,
                                ("max_attempts", ">= 1", "no retries")),
    "retry-max_attempts-text": (lambda: RetryPolicy(max_attempts="3"), SpecError,
                                ("max_attempts", "whole number")),
    "retry-backoff-negative": (lambda: RetryPolicy(backoff=-1), SpecError, ("backoff", ">= 0")),
    "retry-max_backoff-below-backoff": (lambda: RetryPolicy(backoff=2, max_backoff=1),
                                        SpecError, ("max_backoff", "at least", "backoff")),
    "retry-max_retry_after-negative": (lambda: RetryPolicy(max_retry_after=-1), SpecError,
                                       ("max_retry_after", ">= 0")),
    "retry-jitter-text": (lambda: RetryPolicy(jitter="yes"), SpecError, ("jitter",)),
    # -- RunOptions / configure -----------------------------------------------------------------
    "options-timeout-negative": (lambda: RunOptions(timeout=-1), SpecError,
                                 ("timeout", "> 0", "-1")),
    "configure-timeout-negative": (lambda: orchnb.configure(timeout=-1), SpecError,
                                   ("timeout", "> 0")),
    "configure-timeout-zero": (lambda: orchnb.configure(timeout=0), SpecError,
                               ("timeout", "> 0", "not 0")),
    "configure-tool_timeout-zero": (lambda: orchnb.configure(tool_timeout=0), SpecError,
                                    ("tool_timeout", "> 0")),
    "configure-max_iterations-huge": (lambda: orchnb.configure(max_iterations=10**9),
                                      SpecError, ("max_iterations", "<= 10,000")),
    "retry-max_attempts-huge": (lambda: RetryPolicy(max_attempts=10**6), SpecError,
                                ("max_attempts", "<= 100")),
    "step-max_tokens-huge": (lambda: _step(max_tokens=10**12), SpecError,
                             ("max_tokens", "<= 10,000,000")),
    "configure-unknown": (lambda: orchnb.configure(retries=3), SpecError,
                          ("unknown option", "retries", "retry")),
    "configure-cache-text": (lambda: orchnb.configure(cache="yes"), SpecError,
                             ("cache", "True or False")),
    "configure-budget-number": (lambda: orchnb.configure(budget=5), SpecError,
                                ("budget", "orchnb.Budget")),
    "configure-retry-number": (lambda: orchnb.configure(retry=3), SpecError,
                               ("retry", "RetryPolicy")),
    "configure-max_iterations-zero": (lambda: orchnb.configure(max_iterations=0), SpecError,
                                      ("max_iterations", ">= 1")),
    # -- pipelines' options ---------------------------------------------------------------------
    "chain-timeout-negative": (lambda: _chain(timeout=-1), SpecError,
                               ("chain 'c'", "timeout", "> 0")),
    "chain-budget-dict": (lambda: _chain(budget={"max_calls": 1}), SpecError,
                          ("chain 'c'", "orchnb.Budget")),
    "chain-retry-number": (lambda: _chain(retry=2), SpecError, ("RetryPolicy",)),
    "run-timeout-negative": (lambda: _chain()("x", timeout=-1), SpecError, ("timeout", "> 0")),
    "run-budget-text": (lambda: _chain()("x", budget="cheap"), SpecError, ("orchnb.Budget",)),
    "run-timeout-zero-stream": (lambda: list(_chain().stream("x", timeout=0)), SpecError,
                                ("timeout",)),
    "chain-name-empty": (lambda: Chain("", [_step()]), SpecError, ("name", "non-empty")),
    "chain-no-steps": (lambda: Chain("c", []), SpecError, ("no steps",)),
    "chain-duplicate-steps": (lambda: Chain("c", [_step(), _step()]), SpecError,
                              ("two steps are named 's'",)),
    # -- Step -----------------------------------------------------------------------------------
    "step-name-empty": (lambda: _step(name=""), SpecError, ("Step(name=...)", "non-empty")),
    "step-name-none": (lambda: _step(name=None), SpecError, ("Step(name=...)",)),
    "step-temperature-negative": (lambda: _step(temperature=-1), SpecError,
                                  ("step 's'", "temperature", ">= 0")),
    "step-temperature-text": (lambda: _step(temperature="hot"), SpecError,
                              ("temperature", "'hot'")),
    "step-max_tokens-zero": (lambda: _step(max_tokens=0), SpecError, ("max_tokens", ">= 1")),
    "step-max_tokens-float": (lambda: _step(max_tokens=1.5), SpecError,
                              ("max_tokens", "whole number")),
    "step-parse-text": (lambda: _step(parse="json"), SpecError, ("parse", "function")),
    "step-stream-text": (lambda: _step(stream="yes"), SpecError, ("stream", "True or False")),
    "step-model-unknown": (lambda: _step(model="nosuch:model"), UnknownModelError,
                           ("nosuch",)),
    "step-fallback-unknown": (lambda: _step(fallback=["nosuch:model"]), UnknownModelError,
                              ("nosuch",)),
    "step-include": (lambda: _step(prompt="{% include 'other.txt' %}"), TemplateError,
                     ("include", "prompt")),
    "step-import": (lambda: _step(prompt="{% import 'm' as m %}{{ input }}"), TemplateError,
                    ("import",)),
    "step-undefined-variable": (lambda: _step(prompt="{{ nosuch }}"), TemplateError,
                                ("nosuch", "available")),
    # -- Router ---------------------------------------------------------------------------------
    "router-no-routes": (lambda: Router("r", _step(name="cls"), {}), SpecError, ("no routes",)),
    "router-default-unknown": (lambda: Router("r", _step(name="cls"), {"a": _step(name="a")},
                                              default="b"), SpecError,
                               ("default route 'b'", "known routes: a")),
    "embedding-threshold": (lambda: orchnb.EmbeddingClassifier({"a": ["x"]}, threshold=2),
                            SpecError, ("threshold", "-1", "to 1")),
    "judge-scale": (lambda: orchnb.judge("sim:echo", "ok", scale=1), SpecError,
                    ("scale", ">= 2", "e.g. 5")),
    "judge-concurrency": (lambda: orchnb.judge("sim:echo", "ok", concurrency=0), SpecError,
                          ("concurrency", ">= 1")),
    "embedding-k": (lambda: orchnb.EmbeddingClassifier({"a": ["x"]}, method="knn", k=0),
                    SpecError, ("k=", "whole number >= 1", "vote")),
    "embedding-C": (lambda: orchnb.EmbeddingClassifier({"a": ["x"]}, C=0), SpecError,
                    ("C=", "> 0", "regularisation")),
    "function-classifier-text": (lambda: orchnb.FunctionClassifier("classify"), SpecError,
                                 ("not a function",)),
    "llm-classifier-temperature": (lambda: orchnb.LLMClassifier("sim:echo", temperature=-1),
                                   SpecError, ("temperature", ">= 0")),
    "openai-compatible-url": (lambda: orchnb.openai_compatible("ollama", "localhost:11434"),
                              SpecError, ("base_url", "http(s) URL")),
    "openai-compatible-name": (lambda: orchnb.openai_compatible("my:llm", "http://x/v1"),
                               SpecError, ("name", "no ':'")),
    # -- MapReduce ------------------------------------------------------------------------------
    "mapreduce-concurrency-zero": (lambda: MapReduce("m", _step(), concurrency=0), SpecError,
                                   ("concurrency", "≥ 1")),
    "mapreduce-concurrency-bool": (lambda: MapReduce("m", _step(), concurrency=True),
                                   SpecError, ("concurrency",)),
    "mapreduce-on_error": (lambda: MapReduce("m", _step(), on_error="ignore"), SpecError,
                           ("on_error", "'skip'")),
    "mapreduce-retries-negative": (lambda: MapReduce("m", _step(), retries=-1), SpecError,
                                   ("retries", "≥ 0")),
    "mapreduce-chunk_tokens-zero": (lambda: MapReduce("m", _step(), chunk_tokens=0), SpecError,
                                    ("chunk_tokens",)),
    "mapreduce-reduce_tokens-zero": (lambda: MapReduce("m", _step(), reduce_tokens=0),
                                     SpecError, ("reduce_tokens",)),
    "mapreduce-chunker-text": (lambda: MapReduce("m", _step(), chunker="lines"), SpecError,
                               ("chunker", "function")),
    "mapreduce-concurrency-huge": (lambda: MapReduce("m", _step(), concurrency=10**9),
                                   SpecError, ("concurrency", "≤ 10,000", "1000000000")),
    "mapreduce-concurrency-float": (lambda: MapReduce("m", _step(), concurrency=8.0), SpecError,
                                    ("concurrency", "whole number")),
    "mapreduce-retries-huge": (lambda: MapReduce("m", _step(), retries=10**6), SpecError,
                               ("retries", "≤ 100")),
    "mapreduce-chunk_tokens-huge": (lambda: MapReduce("m", _step(), chunk_tokens=10**12),
                                    SpecError, ("chunk_tokens", "10,000,000")),
    # -- Agent ----------------------------------------------------------------------------------
    "agent-max_iterations-zero": (lambda: Agent("a", "sim:echo", [add], max_iterations=0),
                                  SpecError, ("max_iterations", "1")),
    "agent-max_iterations-huge": (lambda: Agent("a", "sim:echo", [add], max_iterations=10**9),
                                  SpecError, ("max_iterations", "≤ 10,000")),
    "agent-max_iterations-float": (lambda: Agent("a", "sim:echo", [add], max_iterations=1e9),
                                   SpecError, ("max_iterations", "whole number")),
    "agent-max_iterations-bool": (lambda: Agent("a", "sim:echo", [add], max_iterations=True),
                                  SpecError, ("max_iterations", "True")),
    "agent-tool_mode": (lambda: Agent("a", "sim:echo", [add], tool_mode="json"), SpecError,
                        ("tool_mode", "native, text or auto")),
    "agent-lambda-tool": (lambda: Agent("a", "sim:echo", [lambda x: x]), SpecError,
                          ("'<lambda>'", "name=")),
    "agent-duplicate-tools": (lambda: Agent("a", "sim:echo", [add, add]), SpecError,
                              ("two tools",)),
    "agent-temperature-negative": (lambda: Agent("a", "sim:echo", [add], temperature=-0.5),
                                   SpecError, ("temperature", ">= 0")),
    "agent-max_tokens-zero": (lambda: Agent("a", "sim:echo", [add], max_tokens=0), SpecError,
                              ("max_tokens", ">= 1")),
    "agent-tool-not-callable": (lambda: Agent("a", "sim:echo", ["add"]), SpecError,
                                ("'add'", "tool")),
    # -- PlanExecute / Team ---------------------------------------------------------------------
    "plan-max_replans-negative": (lambda: PlanExecute("p", _step(name="pl"), _step(name="ex"),
                                                      max_replans=-1), SpecError,
                                  ("max_replans", "≥ 0")),
    "plan-max_steps-zero": (lambda: PlanExecute("p", _step(name="pl"), _step(name="ex"),
                                                max_steps=0), SpecError, ("max_steps", "≥ 1")),
    "team-max_turns-zero": (lambda: Team("t", "sim:echo", {"a": _step(name="a")},
                                         max_turns=0), SpecError, ("max_turns", "≥ 1")),
    "plan-max_steps-huge": (lambda: PlanExecute("p", _step(name="pl"), _step(name="ex"),
                                                max_steps=10**9), SpecError,
                            ("max_steps", "≤ 10,000")),
    "team-max_turns-bool": (lambda: Team("t", "sim:echo", {"a": _step(name="a")},
                                         max_turns=True), SpecError, ("max_turns", "True")),
    "team-max_turns-huge": (lambda: Team("t", "sim:echo", {"a": _step(name="a")},
                                         max_turns=10**6), SpecError, ("max_turns", "≤ 10,000")),
    "team-no-agents": (lambda: Team("t", "sim:echo", {}), SpecError, ("no members",)),
    # -- tools ----------------------------------------------------------------------------------
    "tool-not-callable": (lambda: Tool("add"), SpecError, ("not a function",)),
    "tool-name-spaces": (lambda: Tool(add, name="add numbers"), SpecError,
                         ("'add numbers'", "64 letters")),
    "tool-decorator-lambda": (lambda: orchnb.tool(lambda a: a), SpecError, ("'<lambda>'",)),
    "http_get-other-port": (lambda: _fetch(["localhost:8001"], "http://localhost:9999/"),
                            ToolError, ("'localhost:9999'", "not on the allowlist", "nothing")),
    "http_get-bare-host-other-port": (lambda: _fetch(["example.com"], "http://example.com:81/"),
                                      ToolError, ("'example.com:81'", "not on the allowlist")),
    "http_get-port-range": (lambda: orchnb.tools.http_get(allow=["x.org:70000"]), SpecError,
                            ("port '70000'", "1 to 65535")),
    "http_get-max_bytes-huge": (lambda: orchnb.tools.http_get(allow=["x.org"], max_bytes=10**9),
                                SpecError, ("max_bytes", "10,000,000")),
    "doc_search-link-out": (_search_links_out, OrchnbWarning,
                            ("notes.txt", "outside", "not read")),
    "agent-max_tool_calls-zero": (lambda: Agent("a", "sim:echo", [add], max_tool_calls=0),
                                  SpecError, ("max_tool_calls", "≤ 1,000", "0")),
    "agent-max_tool_calls-huge": (lambda: Agent("a", "sim:echo", [add], max_tool_calls=10**9),
                                  SpecError, ("max_tool_calls", "≤ 1,000")),
    "yaml-max_tool_calls-huge": (lambda: _yaml("pattern: agent\nmodel: sim:echo\n"
                                               "max_tool_calls: 100000\n"),
                                 SpecError, ("line 3", "max_tool_calls", "1000")),
    "mcp-server-exits": (_mcp_exits, ToolError, ("failed to start", "exited with code 5")),
    # -- SimModel -------------------------------------------------------------------------------
    "sim-latency-negative": (lambda: SimModel("x", latency=-1), SpecError, ("latency", ">= 0")),
    "sim-latency-range": (lambda: SimModel("x", latency=(2, 1)), SpecError,
                          ("latency", "low <= high")),
    "sim-rule-regex": (lambda: SimModel("x", rules={"(": "a"}), SpecError,
                       ("rule '('", "regular expression")),
    "sim-name-colon": (lambda: SimModel("a:b"), SpecError, ("name", "sim:NAME")),
    "sim-fn-text": (lambda: SimModel("x", fn="upper"), SpecError, ("fn", "function")),
    "sim-priced_as": (lambda: SimModel("x", priced_as="gpt-4o"), SpecError, ("priced_as",)),
    # -- evaluate / compare_routers -------------------------------------------------------------
    "eval-concurrency-zero": (lambda: _eval(concurrency=0), SpecError,
                              ("evaluate", "concurrency", ">= 1")),
    "eval-concurrency-huge": (lambda: _eval(concurrency=10**9), SpecError,
                              ("concurrency", "<= 10,000")),
    "judge-concurrency-bool": (lambda: orchnb.judge("sim:echo", "ok", concurrency=True),
                               SpecError, ("concurrency",)),
    "eval-sample-zero": (lambda: _eval(sample=0), SpecError, ("sample", ">= 1")),
    "eval-n_boot-negative": (lambda: _eval(n_boot=-1), SpecError, ("n_boot", ">= 0")),
    "eval-n_boot-float": (lambda: _eval(n_boot=1.5), SpecError, ("n_boot", "whole number")),
    "eval-level-above-one": (lambda: _eval(level=1.5), SpecError, ("level", "between 0 and 1")),
    "eval-level-zero": (lambda: _eval(level=0), SpecError, ("level", "> 0")),
    "eval-baseline-unknown": (lambda: _eval(baseline="nosuch:model"), UnknownModelError,
                              ("baseline", "nosuch")),
    "eval-max_usd-negative": (lambda: _eval(max_usd=-1), SpecError, ("max_usd", ">= 0")),
    "eval-output_tokens-zero": (lambda: _eval(output_tokens=0), SpecError,
                                ("output_tokens", "> 0")),
    "eval-budget-dict": (lambda: _eval(budget={"max_usd": 1}), SpecError, ("orchnb.Budget",)),
    "eval-text-equals-label": (lambda: _eval(text="label"), SpecError, ("both name",)),
    "eval-labels-not-routes": (lambda: _eval(data=_data(text=["a", "b"], label=["x", "y"])),
                               SpecError, ("none of the labels", "routes: billing, tech")),
    "eval-numeric-labels": (lambda: _eval(data=_data(text=["a", "b"], label=[0, 1])),
                            SpecError, ("labels are numbers", ".map(")),
    "eval-duplicate-columns": (lambda: _eval(data=_dup_columns()), SpecError,
                               ("duplicate column", "text")),
    "compare-concurrency-zero": (lambda: orchnb.compare_routers([_router()], _data(),
                                                                concurrency=0, progress=False),
                                 SpecError, ("compare_routers", "concurrency")),
    "compare-labels-not-routes": (lambda: orchnb.compare_routers(
        {"a": _router()}, _data(text=["a"], label=["zzz"]), progress=False), SpecError,
        ("candidate 'a'", "none of the labels")),
    # -- FakeProvider ---------------------------------------------------------------------------
    "fake-latency-negative": (lambda: FakeProvider(latency=-1), SpecError,
                              ("latency", ">= 0")),
    "fake-port": (lambda: FakeProvider(port=70000), SpecError, ("port", "65535")),
    "fake-retry_after-negative": (lambda: FakeProvider(retry_after=-1), SpecError,
                                  ("retry_after",)),
    "fake-rate-above-one": (lambda: FakeProvider().fault_rates(rate_429=1.5), SpecError,
                            ("rate_429", "0 to 1")),
    "fake-fail_next-zero": (lambda: FakeProvider().fail_next(0, "429"), SpecError,
                            ("fail_next", ">= 1")),
    "fake-fault-kind": (lambda: FakeProvider().fail_next(1, "explode"), SpecError,
                        ("unknown fault kind",)),
    # -- YAML -----------------------------------------------------------------------------------
    "yaml-timeout-negative": (lambda: _yaml("pattern: chain\ntimeout: -1\nsteps:\n"
                                            "  - {name: a, model: sim:echo, prompt: hi}\n"),
                              SpecError, ("line 2", "timeout", "greater than 0")),
    "yaml-budget-negative": (lambda: _yaml("pattern: chain\nbudget: {max_usd: -1}\nsteps:\n"
                                           "  - {name: a, model: sim:echo, prompt: hi}\n"),
                             SpecError, ("budget.max_usd", "greater than or equal to 0")),
    "yaml-max_tokens-zero": (lambda: _yaml("pattern: chain\nsteps:\n  - {name: a, model: "
                                           "sim:echo, prompt: hi, max_tokens: 0}\n"),
                             SpecError, ("max_tokens", "greater than or equal to 1")),
    "yaml-fallback-unknown": (lambda: _yaml("pattern: chain\nsteps:\n  - {name: a, model: "
                                            "sim:echo, prompt: hi, fallback: [nosuch:x]}\n"),
                              UnknownModelError, ("fallback[0]", "nosuch")),
    "yaml-map-model-string": (lambda: _yaml(
        "pattern: mapreduce\nmap: sim:echo\n"),
        SpecError, ("line 2", "key 'map'", "'sim:echo' is a model", "prompt")),
    "yaml-classifier-unknown-model": (lambda: _yaml(
        "pattern: router\nclassifier: nosuch:x\nroutes:\n  a: {model: sim:echo, prompt: hi}\n"),
        UnknownModelError, ("classifier", "nosuch")),
    "yaml-mapreduce-concurrency-zero": (lambda: _yaml(
        "pattern: mapreduce\nconcurrency: 0\nmap: {model: sim:echo, prompt: hi}\n"),
        SpecError, ("concurrency", "greater than or equal to 1")),
    "yaml-mapreduce-concurrency-true": (lambda: _yaml(
        "pattern: mapreduce\nconcurrency: true\nmap: {model: sim:echo, prompt: hi}\n"),
        SpecError, ("line 2", "concurrency", "valid integer", "True")),
    "yaml-mapreduce-concurrency-huge": (lambda: _yaml(
        "pattern: mapreduce\nconcurrency: 1000000000\nmap: {model: sim:echo, prompt: hi}\n"),
        SpecError, ("line 2", "concurrency", "less than or equal to 10000")),
    "yaml-agent-max_iterations-float": (lambda: _yaml(
        "pattern: agent\nmodel: sim:echo\nmax_iterations: 1.0e+9\n"),
        SpecError, ("line 3", "max_iterations", "valid integer")),
    "yaml-agent-max_iterations-huge": (lambda: _yaml(
        "pattern: agent\nmodel: sim:echo\nmax_iterations: 1000000000\n"),
        SpecError, ("line 3", "max_iterations", "≤ 10,000")),
    "yaml-team-max_turns-float": (lambda: _yaml(
        "pattern: team\nsupervisor: sim:echo\nmax_turns: 2.0\n"
        "agents:\n  a: {model: sim:echo, prompt: hi}\n"),
        SpecError, ("line 3", "max_turns", "valid integer")),
    "yaml-budget-max_calls-bool": (lambda: _yaml(
        "pattern: chain\nbudget: {max_calls: true}\nsteps:\n"
        "  - {name: a, model: sim:echo, prompt: hi}\n"),
        SpecError, ("budget.max_calls", "valid integer")),
    "yaml-include": (lambda: _yaml("pattern: chain\nsteps:\n  - name: a\n    model: sim:echo\n"
                                   "    prompt: \"{% include 'x' %}\"\n"),
                     TemplateError, ("line 5", "include")),
}


@pytest.fixture(autouse=True)
def _restore_defaults():
    before = orchnb.engine.defaults()
    yield
    orchnb.engine._config._DEFAULTS[0] = before


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_knob_is_refused_where_it_is_written(case):
    make, exc, fragments = CASES[case]
    with pytest.raises(exc) as info:
        make()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{case}: {fragment!r} not in {message!r}"


REFUSED_FAST = ("http_get-other-port", "http_get-bare-host-other-port", "http_get-port-range",
                "http_get-max_bytes-huge", "doc_search-link-out", "agent-max_tool_calls-zero",
                "agent-max_tool_calls-huge", "yaml-max_tool_calls-huge")
"""Refusals that must take at most 100 ms (best of three: the first may import a module)."""


@pytest.mark.parametrize("case", REFUSED_FAST)
def test_a_refusal_takes_at_most_100_ms(case):
    make, exc, _ = CASES[case]
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        with pytest.raises(exc):
            make()
        best = min(best, time.perf_counter() - started)
    assert best <= 0.1, f"{case}: refused in {best * 1000:.0f} ms"


def test_tool_calls_over_the_cap_are_refused_fast():
    from orchnb.models import ModelResponse, SimModel, ToolCall, Usage

    ran = []

    def count(i: int) -> str:
        """Count."""
        ran.append(i)
        return "ok"

    def fn(request):
        if any(m.role == "tool" for m in request.messages):
            return "done"
        return ModelResponse(text="", tool_calls=[ToolCall(f"c{i}", "count", {"i": i})
                                                  for i in range(1_000)], usage=Usage(1, 1))

    SimModel("catalogue_flood", fn=fn).register()
    started = time.perf_counter()
    run = Agent("flood", "sim:catalogue_flood", [count], max_tool_calls=1)("x", cache=False)
    took = time.perf_counter() - started
    assert run.output == "done" and ran == [0]  # 999 refused, not run
    assert took / 999 <= 0.1, f"{took * 1000:.0f} ms for 999 refusals"


def test_the_catalogue_is_large():
    assert len(CASES) >= 60


def test_a_bad_run_option_makes_no_call(fake_env):
    chain = Chain("c", [Step("s", "openai:gpt-4o-mini", "{{ input }}")])
    for bad in ({"timeout": -1}, {"timeout": 0}, {"budget": Budget}):
        with pytest.raises(SpecError):
            chain("x", **bad)
    assert fake_env.requests == []


def test_a_200_with_a_broken_body_is_a_provider_error_not_an_attribute_error(fake_env):
    from orchnb import ProviderError

    fake_env.fail_next(3, "200", body={"id": "x", "object": "chat.completion", "created": 1,
                                       "choices": "not a list", "model": "m"})
    chain = Chain("c", [Step("s", "openai:gpt-4o-mini", "{{ input }}")],
                  retry=RetryPolicy(max_attempts=3, backoff=0.01), cache=False)
    with pytest.raises(ProviderError, match="not a valid answer"):
        chain("x")
    assert len(fake_env.requests) == 3  # retried like any malformed answer


@pytest.mark.parametrize("key", ["classifier", "planner", "supervisor"])
def test_yaml_takes_a_model_string_where_the_python_api_does(key):
    bodies = {
        "classifier": "pattern: router\nclassifier: sim:echo\nroutes:\n"
                      "  a: {model: sim:echo, prompt: hi}\n",
        "planner": "pattern: plan_execute\nplanner: sim:echo\n"
                   "executor: {model: sim:echo, prompt: hi}\n",
        "supervisor": "pattern: team\nsupervisor: sim:echo\n"
                      "agents:\n  a: {model: sim:echo, prompt: hi}\n",
    }
    pipe = orchnb.from_yaml(bodies[key])
    assert "sim:echo" in [m.id for m in pipe.models()]


# -- hostile input: refused (or read) fast, whatever its size ---------------------------------
# id: (make, exception or None (must return), fragments, seconds allowed). Refusals at
# definition are bounded at 100 ms (the bound, measured at a few ms); render-time
# budgets (1M loop iterations / 50k calls) and whole-reply parsers get a hang guard.
_BIG_REPLY = "blah " * 2_000_000 + "billing" + "x" * 50_000  # 10 MB, an over-long label
_YAML_50MB = ("pattern: chain\nsteps:\n  - {name: a, model: sim:echo, prompt: hi}\n# "
              + "x" * 50_000_000 + "\n")
_DEF = 0.1
_RENDER = 3.0


def _render(source: str, **variables: Any) -> str:
    from orchnb.patterns._template import KNOWN_VARIABLES, Prompt

    prompt = Prompt(source, owner="step 's': ", allowed=KNOWN_VARIABLES | frozenset(variables))
    return prompt.render(**variables)


HOSTILE: dict[str, tuple[Callable[[], Any], type[Exception] | None, tuple[str, ...], float]] = {
    "template-percent-width": (lambda: _step(prompt="{{ '%999999999s' % 'x' }}"),
                               TemplateError, ("step 's'", "line 1", "'%'", "1,000,000"), _DEF),
    "template-center": (lambda: _step(prompt="{{ 'x' | center(999999999) }}"), TemplateError,
                        ("step 's'", "center"), _DEF),
    "template-str-center": (lambda: _step(prompt="{{ 'x'.center(999999999) }}"),
                            TemplateError, ("step 's'", ".center()"), _DEF),
    "template-str-format": (lambda: _step(prompt="{{ '{:>999999999}'.format('x') }}"),
                            TemplateError, (".format()",), _DEF),
    "template-nested-range": (lambda: _step(prompt="{% for i in range(100000) %}{% for j in "
                                               "range(100000) %}{% endfor %}{% endfor %}"),
                              TemplateError, ("nested loops", "10,000,000,000"), _DEF),
    "template-lipsum": (lambda: _step(prompt="{{ lipsum(n=100000) }}"), TemplateError,
                        ("lipsum",), _DEF),
    "template-batch": (lambda: _step(prompt="{{ [1] | batch(999999999, 'x') | list }}"),
                       TemplateError, ("batch",), _DEF),
    "template-ljust-render": (lambda: _render("{{ input.ljust(999999999) }}", input="x"),
                              TemplateError, ("step 's'", "while rendering", ".ljust()"), _DEF),
    "template-nested-range-render": (lambda: _render(
        "{% for i in range(n) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        n=100000), TemplateError, ("1,000,000 loop iterations",), _RENDER),
    "template-doubling": (lambda: _render("{% set ns = namespace(s='xx') %}{% for i in "
                                          "range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"
                                          "{{ ns.s }}"), TemplateError, ("'~'",), _DEF),
    "template-macro-exponential": (lambda: _render(
        "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}"
        "{{ f(40) }}"), TemplateError, ("50,000 calls",), _RENDER),
    "template-set-block-loop": (lambda: _render(
        "{% set s %}{% for i in range(100000) %}{{ input }}{% endfor %}{% endset %}{{ 1 }}",
        input="x" * 1000), TemplateError, ("in all",), _RENDER),
    "template-join": (lambda: _render("{{ items | join(sep) }}", items=["x"] * 100_000,
                                      sep="y" * 100_000), TemplateError, ("join",), _DEF),
    "template-int-squaring": (lambda: _render(
        "{% set ns = namespace(x=10) %}{% for i in range(40) %}{% set ns.x = ns.x * ns.x %}"
        "{% endfor %}"), TemplateError, ("too large a number",), _DEF),
    "router-label-10mb": (lambda: orchnb.patterns._labels.parse_label(
        _BIG_REPLY, ["billing", "technical"]), None, (), _DEF),
    "yaml-50mb": (lambda: _yaml(_YAML_50MB), SpecError, ("50,000,", "1,000,000"), _DEF),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_input_is_refused_quickly_where_it_is_written(case):
    import time

    make, exc, fragments, bound = HOSTILE[case]
    with contextlib.suppress(Exception):  # the first use imports modules: not measured
        make()
    took = float("inf")
    for _ in range(3):  # the best of three: a busy machine may pause any one of them
        t = time.perf_counter()
        if exc is None:
            make()
            took = min(took, time.perf_counter() - t)
            continue
        with pytest.raises(exc) as info:
            make()
        took = min(took, time.perf_counter() - t)
        for fragment in fragments:
            assert fragment in str(info.value), f"{case}: {fragment!r} not in {info.value}"
    assert took < bound, f"{case}: {took * 1000:.0f} ms"


def test_an_over_long_label_word_is_not_a_prefix_match():
    from orchnb.patterns._labels import parse_label

    assert parse_label("billing" + "x" * 50_000, ["billing", "technical"]) is None
    assert parse_label("billings", ["billing", "technical"]) == "billing"  # inflection kept
    orchnb.sim_model("long-label", default="billing" + "x" * 50_000)
    router = Router("r", Step("cls", "sim:long-label", "{{ input }}"),
                    {"billing": Step("b", "sim:echo", "B {{ input }}"),
                     "other": Step("o", "sim:echo", "O {{ input }}")}, default="other")
    assert router("hi").output == "O hi"


def test_ordinary_templates_still_render_under_the_limits():
    source = ("{% for d in docs %}{{ loop.index }}. {{ d | center(12) }}{% endfor %} "
              "{{ '%5s' % 'x' }} {{ 'a' ~ 'b' }} {{ [1, 2] + [3] }} {{ 'ab' * 2 }} "
              "{{ '{:>4}'.format('x') }} {{ docs | join(', ') }} "
              "{{ lipsum(1, false, 5, 10) | length > 0 }}"
              "{% macro m(x) %}<{{ x }}>{% endmacro %}{{ m(1) }}")
    out = _render(source, docs=["a", "b"])
    assert out == "1.      a      2.      b           x ab [1, 2, 3] abab    x a, b True<1>"
