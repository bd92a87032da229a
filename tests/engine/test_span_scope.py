"""The engine owns span content: ``ctx.span(kind, name, input=...)`` and the scope's typed
setters; and forking is an engine capability through the run's ``rebuild`` callable."""

from __future__ import annotations

from typing import Any

import pytest

from orchnb import ForkError
from orchnb.engine import Run, RunContext, defaults
from orchnb.models import Message


def engine_run(body, *, rebuild=None, hooks=()) -> Run:
    options = defaults().merged(persist=False, progress=False, cache=False)
    return Run("p", "custom", {"q": 1}, body, options, hooks, rebuild=rebuild)


def spans_by_step(run: Run) -> dict[str, Any]:
    return {s.step: s for s in run.trace.spans}


def test_span_scope_records_input_and_what_the_setters_say():
    async def body(ctx: RunContext, x: Any) -> str:
        with ctx.span("step", "classify", input=x) as scope:
            scope.set_route("billing", raw_label="Billing!", confidence=0.75)
            scope.note(a=1)
            scope.note(b=2)
            scope.set_iteration(3)
            scope.set_output(["billing"])
        with ctx.span("tool", "lookup", input="id 7") as scope:
            scope.fail("not found", output="Error: not found")
        ctx.current_scope().note(eval=True)
        return "done"

    run = engine_run(body).run_sync()
    spans = spans_by_step(run)
    c = spans["classify"]
    assert (c.input, c.output, c.status) == ('{"q": 1}', '["billing"]', "ok")
    assert (c.route, c.raw_label, c.confidence, c.iteration) == ("billing", "Billing!", 0.75, 3)
    assert c.meta == {"a": 1, "b": 2}
    lookup = spans["lookup"]
    assert (lookup.status, lookup.error, lookup.output) == ("error", "not found",
                                                            "Error: not found")
    assert run.status == "ok"  # a failure the pattern handled does not fail the run
    assert spans["p"].meta == {"eval": True}


def test_an_exception_leaving_a_span_scope_ends_the_span_with_its_status():
    async def body(ctx: RunContext, x: Any) -> str:
        with ctx.span("step", "boom", input="x"):
            raise ValueError("bad row")

    run = engine_run(body)
    with pytest.raises(ValueError, match="bad row"):
        run.run_sync()
    boom = spans_by_step(run)["boom"]
    assert (boom.status, boom.error) == ("error", "ValueError: bad row")


def test_span_scope_refuses_column_assignments_and_passes_reads_through():
    async def body(ctx: RunContext, x: Any) -> str:
        with ctx.span("step", "old") as scope:
            with pytest.raises(AttributeError):
                scope.output = "set directly"  # span content is the engine's: use the setters
            assert scope.span_id == scope.span.span_id  # reads pass through
            scope.set_output("through the setter")
        return "ok"

    run = engine_run(body).run_sync()
    assert spans_by_step(run)["old"].output == "through the setter"


def test_no_pattern_or_eval_assigns_span_columns():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "orchnb"
    pattern = re.compile(r"\bspan\.(status|route|output|input|meta|confidence|iteration|"
                         r"raw_label|error)\s*(,|=(?!=))|current_span\(\)\.\w+\s*=(?!=)")
    found = [f"{p.relative_to(root)}:{i}" for folder in ("patterns", "evals", "memory")
             for p in (root / folder).rglob("*.py")
             for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not found, "span content is written through the engine's setters: " + ", ".join(found)


async def greet(ctx: RunContext, x: Any) -> str:
    with ctx.span("step", "greet", input=x) as scope:
        response = await ctx.call("sim:echo", [Message("user", f"hi {x['q']}")], step="greet")
        scope.set_output(response.text)
    return response.text


def test_fork_and_replay_build_the_new_run_through_the_rebuild_callable():
    asked: list[tuple[str | None, dict[str, Any], list[str]]] = []

    def rebuild(parent: Run, step: str | None, edits: Any, *, hooks: Any,
                **options: Any) -> Run:
        asked.append((step, dict(edits), sorted(options)))
        return Run("p", "custom", parent.input, greet, parent.options.merged(**options),
                   hooks, rebuild=rebuild)

    run = engine_run(greet, rebuild=rebuild).run_sync()
    fork = run.fork("greet", temperature=0)
    assert fork.status == "paused" and fork.forked_from == run.id
    assert fork.resume().output == run.output == "hi 1"
    report = run.replay()
    assert report.ok
    assert asked == [("greet", {"temperature": 0}, ["budget", "cache", "persist", "timeout"]),
                     (None, {}, ["persist", "progress"])]


def test_a_run_nobody_can_rebuild_says_how_to_fork_it():
    run = engine_run(greet).run_sync()
    with pytest.raises(ForkError, match=r"has no pipeline to fork: load it with orchnb\.load_run"):
        run.fork("greet")
    with pytest.raises(ForkError, match="has no pipeline to replay"):
        run.replay()
