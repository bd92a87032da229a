"""Fork and replay for every pattern, nested ones included (sim models that count calls)."""

from __future__ import annotations

from collections import deque

from _helpers import add

from orchnb import Agent, Chain, FunctionStep, MapReduce, PlanExecute, Router, Step, Team
from orchnb.models import SimModel


def counted(name: str, *replies: str, default: str | None = None) -> tuple[str, list[str], deque]:
    """``sim:NAME`` answering ``replies`` in order (then ``default`` or an echo), and the list
    of the prompts it was called with."""
    seen: list[str] = []
    queue = deque(replies)

    def answer(request):
        seen.append(request.messages[-1].content)
        return queue.popleft() if queue else (default or f"{name}: {seen[-1][:30]}")

    SimModel(name, fn=answer).register()
    return f"sim:{name}", seen, queue


def replayed(run) -> list[bool]:
    return [bool(s.replayed) for s in sorted(run.trace.spans, key=lambda s: s.start)
            if s.kind in ("model", "tool")]


def test_plan_execute_fork_at_the_second_plan_step():
    planner, plans, _ = counted("fk_plan", '["search", "summarize"]')
    model, seen, _ = counted("fk_exec")
    pe = PlanExecute("pe", Step("planner", planner, "Plan: {{ input }}"),
                     Step("exec", model, "Do {{ input }}"), cache=False)
    parent = pe("write a brief")
    assert parent.replay().ok and len(seen) == 2 and len(plans) == 1
    fork = parent.fork("execute", iteration=2).resume()
    assert len(plans) == 1 and seen[2:] == ["Do summarize"]
    assert replayed(fork) == [True, True, False]
    edited = parent.fork("exec", prompt="Now {{ input }}").resume()
    assert seen[3:] == ["Now search", "Now summarize"] and len(plans) == 1
    assert edited.status == "ok"


def test_team_fork_at_a_member_replays_the_supervisor_and_the_agent():
    boss, turns, queue = counted("fk_boss", "math: add 2 and 3", "writer", "FINISH: 5")
    SimModel("fk_calc", fn=Agent.sim_policy([("add", {"a": 2, "b": 3})], "sum={observation}")
             ).register()
    writer_model, written, _ = counted("fk_writer")
    team = Team("t", Step("supervisor", boss, "Next? {{ workspace }}"),
                {"math": Agent("math", "sim:fk_calc", [add]),
                 "writer": Step("writer", writer_model, "Write up: {{ workspace }}")},
                cache=False)
    parent = team("what is 2+3?")
    assert parent.output == "5" and len(turns) == 3 and len(written) == 1
    queue.append("FINISH: five")
    fork = parent.fork("writer", prompt="Shorter: {{ workspace }}").resume()
    assert fork.output == "five"
    assert len(turns) == 4 and written[1].startswith("Shorter:")
    # supervisor ×2, the agent's two model calls and its tool call: replayed
    assert replayed(fork) == [True, True, True, True, True, False, False]


def test_nested_map_of_chains_inside_a_chain_forks_inside_the_map():
    model, seen, _ = counted("fk_nested")
    inner = Chain("per_item", [Step("a", model, "A {{ input }}"),
                               Step("b", model, "B {{ steps.a }}")])
    outer = Chain("outer", [
        FunctionStep("items", lambda x: [f"{v}!" for v in x]),
        MapReduce("each", map=inner, reduce=" + ".join, concurrency=3),
        Step("final", model, "Final {{ steps.each }}"),
    ], cache=False)
    parent = outer(["x", "y", "z"])
    assert len(seen) == 7 and parent.replay().ok
    fork = parent.fork("b", item=1, prompt="BB {{ steps.a }}").resume()
    new = seen[7:]
    # item 1's `b` and what began after it are new (with the edit); the rest is replayed
    assert "BB fk_nested: A y!" in new and new[-1].startswith("Final ")
    assert len(new) < 5
    assert fork.output.startswith("fk_nested: Final ")


def test_router_whose_route_is_a_chain():
    clf, _, _ = counted("fk_clf", default="deep")
    model, seen, _ = counted("fk_route")
    router = Router("r", classifier=Step("clf", clf, "{{ input }}"),
                    routes={"deep": Chain("deep", [Step("d1", model, "D1 {{ input }}"),
                                                   Step("d2", model, "D2 {{ steps.d1 }}")]),
                            "quick": Step("quick", model, "Q {{ input }}")}, cache=False)
    parent = router("hello")
    fork = parent.fork("d2", model="sim:echo").resume()
    assert len(seen) == 2 and fork.output.startswith("D2 fk_route: D1 hello")
    assert replayed(fork) == [True, True, False]
