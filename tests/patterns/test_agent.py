"""Agent (ReAct): tools, native and text tool calling, caps, failures, approval, stepping."""

from __future__ import annotations

import json

import pytest

import orchnb
from orchnb import Agent, Budget, BudgetExceeded, MaxIterationsExceeded, SpecError
from orchnb.models import Message, ModelResponse, SimModel, register_provider, resolve_model
from orchnb.testing import FakeProvider, FakeReply


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def explode(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"kaput: {reason}")


def sim(name: str, calls, answer: str = "It is {observation}.", seen=None) -> str:
    """Register a sim agent model; ``seen`` collects the requests it gets."""
    policy = Agent.sim_policy(calls, answer)

    def fn(request):
        if seen is not None:
            seen.append(request)
        return policy(request)

    SimModel(name, fn=fn).register()
    return f"sim:{name}"


def spans(run, kind=None):
    return [s for s in run.trace.spans if kind is None or s.kind == kind]


def test_agent_calls_a_tool_then_answers():
    seen = []
    agent = Agent("calc", sim("ag_calc", [("add", {"a": 2, "b": 3})], seen=seen), [add])
    run = agent("what is 2 + 3?", cache=False)
    assert (run.status, run.output) == ("ok", "It is 5.")
    # the conversation: assistant message carrying tool_calls, then a role="tool" message
    last = seen[-1].messages
    assert [m.role for m in last] == ["user", "assistant", "tool"]
    call = last[1].tool_calls[0]
    assert (call.name, call.arguments) == ("add", {"a": 2, "b": 3})
    assert (last[2].tool_call_id, last[2].name, last[2].content) == (call.id, "add", "5")
    assert [t.name for t in seen[0].tools] == ["add"]
    assert seen[0].tools[0].parameters["required"] == ["a", "b"]


def test_each_iteration_is_a_span_holding_its_model_and_tool_calls():
    agent = Agent("calc", sim("ag_iter", [("add", {"a": 1, "b": 1}), ("add", {"a": 2, "b": 2})]),
                  [add])
    run = agent("x", cache=False)
    root = spans(run, "run")[0]
    iterations = [s for s in spans(run, "step") if s.step == "calc"]
    assert [s.iteration for s in iterations] == [1, 2, 3]
    assert all(s.parent_id == root.span_id for s in iterations)
    by_id = {s.span_id: s for s in iterations}
    for s in spans(run, "model") + spans(run, "tool"):
        assert s.parent_id in by_id and by_id[s.parent_id].iteration == s.iteration
    assert [s.tool for s in spans(run, "tool")] == ["add", "add"]
    assert [s.output for s in iterations] == ["2", "4", "It is 4."]
    df = run.trace.df
    assert set(df[df.kind == "step"].iteration) == {1, 2, 3}


def test_text_mode_teaches_the_format_and_parses_messy_replies():
    seen = []
    replies = iter([
        '**Thought:** add\n**Action:** `add`\n**Action Input:**\n```json\n{"a": 2, "b": 3}\n```\n'
        "Observation: 6 (imagined)\nFinal Answer: 6",
        "Thought: got it\nFinal Answer: five",
    ])
    SimModel("ag_text", fn=lambda r: seen.append(r) or next(replies)).register()
    agent = Agent("calc", "sim:ag_text", [add], system="Be exact.", tool_mode="text")
    run = agent("2+3?", cache=False)
    assert run.output == "five"
    first, second = seen
    assert first.tools == []  # no native tools in text mode
    system = first.messages[0]
    assert system.role == "system" and system.content.startswith("Be exact.")
    assert "- add: Add two integers." in system.content and "Action Input:" in system.content
    assistant, observation = second.messages[-2:]
    assert assistant.role == "assistant" and "imagined" not in assistant.content
    assert (observation.role, observation.content) == ("user", "Observation: 5")
    assert spans(run, "tool")[0].input == json.dumps({"a": 2, "b": 3})


def test_text_mode_bad_format_is_told_to_the_model():
    replies = iter(["Thought: hmm, let me think", "Final Answer: ok"])
    seen = []
    SimModel("ag_bad", fn=lambda r: seen.append(r) or next(replies)).register()
    run = Agent("a", "sim:ag_bad", [add], tool_mode="text")("x", cache=False)
    assert run.output == "ok"
    assert seen[1].messages[-1].content.startswith("Observation: Invalid format:")


def test_text_mode_bare_input_goes_to_a_single_parameter_tool():
    def shout(text: str) -> str:
        """Upper-case a text."""
        return text.upper()

    replies = iter(["Action: shout\nAction Input: hello", "Final Answer: done"])
    SimModel("ag_bare", fn=lambda r: next(replies)).register()
    run = Agent("a", "sim:ag_bare", [shout], tool_mode="text")("x", cache=False)
    assert spans(run, "tool")[0].output == "HELLO"


def test_auto_mode_uses_text_for_providers_without_tool_calling():
    seen = []

    class Plain:
        name, simulated = "plain", True

        async def request(self, model, request):
            seen.append(request)
            text = "Action: add\nAction Input: {\"a\": 1, \"b\": 2}" if len(seen) == 1 else (
                "Final Answer: 3")
            return ModelResponse(text=text, simulated=True)

    register_provider("plainagent", lambda **kw: Plain())
    agent = Agent("a", "plainagent:m", [add])
    assert agent.native is False and Agent("b", "sim:x", [add]).native is True
    assert agent("x", cache=False).output == "3"
    assert "Action Input:" in seen[0].messages[0].content and seen[0].tools == []


def test_auto_mode_honours_a_react_action_written_as_text_by_a_native_model():
    replies = iter(['Action: add\nAction Input: {"a": 4, "b": 4}', "Eight."])
    SimModel("ag_mixed", fn=lambda r: next(replies)).register()
    run = Agent("a", "sim:ag_mixed", [add])("x", cache=False)
    assert run.output == "Eight." and spans(run, "tool")[0].output == "8"
    replies = iter(['Action: add\nAction Input: {"a": 4, "b": 4}'])
    strict = Agent("a", "sim:ag_mixed", [add], tool_mode="native")("x", cache=False)
    assert strict.output.startswith("Action: add") and not spans(strict, "tool")


def test_tool_exception_becomes_an_observation_not_a_crash():
    seen = []
    agent = Agent("a", sim("ag_boom", [("explode", {"reason": "why"})], "Sorry: {observation}",
                           seen), [explode])
    run = agent("x", cache=False)
    assert run.status == "ok"
    assert run.output == "Sorry: Error: explode raised RuntimeError: kaput: why"
    tool = spans(run, "tool")[0]
    assert (tool.status, tool.tool) == ("error", "explode") and "kaput" in tool.error
    assert seen[-1].messages[-1].role == "tool"


def test_invalid_arguments_are_validated_before_the_tool_runs():
    ran = []

    def count(n: int) -> int:
        """Count."""
        ran.append(n)
        return n

    run = Agent("a", sim("ag_args", [("count", {"n": "many"})], "{observation}"), [count])(
        "x", cache=False)
    assert ran == [] and "invalid arguments" in run.output and "n:" in run.output
    assert spans(run, "tool")[0].status == "error"


def test_unknown_tool_from_the_model_lists_the_available_tools():
    run = Agent("a", sim("ag_unknown", [("subtract", {"a": 1})], "{observation}"),
                [add, explode])("x", cache=False)
    assert run.output == "Error: unknown tool 'subtract'; available tools: add, explode"
    tool = spans(run, "tool")[0]
    assert (tool.tool, tool.status) == ("subtract", "error")


def test_malformed_json_arguments_become_an_observation():
    replies = iter([ModelResponse("", tool_calls=[orchnb.models.ToolCall(
        "c1", "add", {"_raw": '{"a": 1,'})]), "gave up"])
    seen = []
    SimModel("ag_raw", fn=lambda r: seen.append(r) or next(replies)).register()
    run = Agent("a", "sim:ag_raw", [add])("x", cache=False)
    assert run.output == "gave up"
    assert "not a JSON object" in seen[-1].messages[-1].content


def test_max_iterations_stops_with_a_clear_status():
    agent = Agent("looper", sim("ag_loop", [("add", {"a": 1, "b": 1})] * 50), [add],
                  max_iterations=3)
    with pytest.raises(MaxIterationsExceeded, match=r"agent 'looper'.*max_iterations=3") as info:
        agent("x", cache=False)
    run = info.value.run
    assert run.status == "max_iterations"
    assert len(spans(run, "model")) == 3 and len(spans(run, "tool")) == 3
    assert spans(run, "run")[0].status == "max_iterations"


def test_run_options_max_iterations_overrides_the_agents_own():
    agent = Agent("looper", sim("ag_loop2", [("add", {"a": 1, "b": 1})] * 50), [add])
    old = orchnb.engine.defaults()
    orchnb.configure(max_iterations=2)
    try:
        with pytest.raises(MaxIterationsExceeded, match="max_iterations=2"):
            agent("x", cache=False)
    finally:
        orchnb.configure(max_iterations=old.max_iterations)


def test_budget_stops_the_agent_loop():
    agent = Agent("a", sim("ag_budget", [("add", {"a": 1, "b": 1})] * 50), [add])
    with pytest.raises(BudgetExceeded) as info:
        agent("x", cache=False, budget=Budget(max_calls=2))
    run = info.value.run
    assert run.status == "budget_exceeded" and len(spans(run, "model")) == 2


def test_stepping_pauses_at_each_model_and_tool_call():
    agent = Agent("calc", sim("ag_step", [("add", {"a": 2, "b": 3})]), [add])
    run = agent.start("x", cache=False)
    seen = []
    while not run.done:
        boundary = run.pending[0]
        seen.append((boundary.kind, boundary.name))
        run.step()
    assert seen == [("model", "sim:ag_step"), ("tool", "add"), ("model", "sim:ag_step")]
    assert (run.status, run.output) == ("ok", "It is 5.")


def test_approval_approve_edit_and_reject():
    model = sim("ag_approve", [("add", {"a": 2, "b": 3})], "Result: {observation}")
    agent = Agent("calc", model, [add])
    run = agent.start("x", approve_tools=True, stepping=False, cache=False)
    assert run.status == "paused" and run.pending[0].request == {"a": 2, "b": 3}
    assert run.approve().output == "Result: 5"

    run = agent.start("x", approve_tools=True, stepping=False, cache=False)
    assert run.approve(arguments={"a": 40, "b": 2}).output == "Result: 42"
    assert spans(run, "tool")[0].input == json.dumps({"a": 40, "b": 2})

    run = agent.start("x", approve_tools=True, stepping=False, cache=False)
    run.reject("not now")
    assert run.output == "Result: The user rejected this call to add: not now"
    tool = spans(run, "tool")[0]
    assert tool.status == "error" and tool.error == "rejected by user"


def test_resume_never_approves_a_pending_tool_call():
    model = sim("ag_approve3", [("add", {"a": 2, "b": 3})], "Result: {observation}")
    run = Agent("calc", model, [add]).start("x", approve_tools=True, cache=False)
    run.resume()
    assert run.status == "paused" and run.pending[0].kind == "tool"
    assert spans(run, "tool") == []
    assert run.approve().output == "Result: 5"


def test_approval_with_stepping_pauses_at_model_calls_too():
    agent = Agent("calc", sim("ag_approve2", [("add", {"a": 2, "b": 3})]), [add])
    run = agent.start("x", approve_tools=True, cache=False)
    assert run.pending[0].kind == "model"
    run.step()
    assert run.pending[0].kind == "tool"
    run.approve(arguments={"a": 1, "b": 1})
    run.resume()
    assert run.output == "It is 2."


def test_prompt_and_system_are_templates():
    seen = []
    agent = Agent("a", sim("ag_tpl", [], "ok", seen), [add], system="Tools: {{ tools }}",
                  prompt="Q: {{ input }}")
    agent("hi", cache=False)
    assert [m.content for m in seen[0].messages] == ["Tools: ['add']", "Q: hi"]


def test_constructor_errors_name_the_key():
    with pytest.raises(SpecError, match="two tools are named 'add'"):
        Agent("a", "sim:x", [add, add])
    with pytest.raises(SpecError, match="tool_mode") as info:
        Agent("a", "sim:x", [add], tool_mode="json")  # type: ignore[arg-type]
    assert info.value.key == "tool_mode"
    with pytest.raises(SpecError, match="max_iterations"):
        Agent("a", "sim:x", [add], max_iterations=0)
    with pytest.raises(SpecError, match="tools"):  # a definition mistake: before any call
        Agent("a", "sim:x", ["not a function"])


def test_describe_draws_the_model_tool_loop():
    agent = Agent("calc", "sim:x", [add, explode], max_iterations=4)
    d = agent.describe()
    assert d["pattern"] == "agent" and [c["id"] for c in d["children"]] == ["calc", "add",
                                                                            "explode"]
    assert [c["kind"] for c in d["children"]] == ["llm", "tool", "tool"]
    edges = d["edges"]
    assert ("calc", "add", "call") in edges and ("add", "calc", "observe") in edges
    assert ("calc", "calc", "loop ≤ 4") in edges and ("calc", "__out__", "final answer") in edges
    assert "calc" in repr(agent) and "add" in repr(agent)


# -- through the real SDKs, over loopback HTTP -------------------------------------------------
@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_agent_over_real_sdk_with_native_tool_calls(api, monkeypatch):
    with FakeProvider() as fake:
        for key, value in fake.env().items():
            monkeypatch.setenv(key, value)
        base = fake.openai_base_url if api == "openai" else fake.anthropic_base_url
        model = resolve_model(f"{api}:fake-model", base_url=base, api_key="sk-fake")
        fake.script([FakeReply(tool_calls=[("add", {"a": 20, "b": 22})]), "The sum is 42."])
        run = Agent("calc", model, [add], system="Use tools.")("what is 20 + 22?", cache=False)
        assert (run.status, run.output) == ("ok", "The sum is 42.")
        first, second = fake.requests
        assert first.api == api and first.tools == ["add"]
        assert [m["role"] for m in second.messages] == ["system", "user", "assistant", "tool"]
        call = second.messages[2]["tool_calls"][0]
        assert (call["name"], call["arguments"]) == ("add", {"a": 20, "b": 22})
        assert second.messages[3]["tool_call_id"] == call["id"]
        assert second.messages[3]["content"] == "42"
        model_spans = spans(run, "model")
        assert [s.provider for s in model_spans] == [api, api]
        assert all(s.input_tokens for s in model_spans)


def test_agent_over_real_sdk_in_text_mode():
    with FakeProvider() as fake:
        model = resolve_model("openai:fake-model", base_url=fake.openai_base_url,
                              api_key="sk-fake")
        fake.script(['Thought: add\nAction: add\nAction Input: {"a": 1, "b": 2}',
                     "Final Answer: 3"])
        run = Agent("calc", model, [add], tool_mode="text")("1+2?", cache=False)
        assert run.output == "3"
        assert "tools" not in fake.requests[0].body
        assert fake.requests[1].messages[-1] == {"role": "user", "content": "Observation: 3"}


def test_messages_are_typed():
    # The model sees orchnb.models Message objects (not dicts) at every turn.
    seen = []
    Agent("a", sim("ag_typed", [("add", {"a": 1, "b": 1})], seen=seen), [add])("x", cache=False)
    assert all(isinstance(m, Message) for r in seen for m in r.messages)


def _flood(name: str, n: int) -> str:
    """A sim model whose first reply asks for ``n`` tool calls at once, then answers."""
    from orchnb.models import ToolCall, Usage

    def fn(request):
        if any(m.role == "tool" for m in request.messages):
            return "done"
        calls = [ToolCall(f"c{i}", "count", {"i": i}) for i in range(n)]
        return ModelResponse(text="", tool_calls=calls, usage=Usage(10, 10))

    SimModel(name, fn=fn).register()
    return f"sim:{name}"


def test_tool_calls_beyond_the_per_reply_cap_are_refused_not_run():
    ran = []

    def count(i: int) -> str:
        """Count a call."""
        ran.append(i)
        return "ok"

    model = _flood("ag_flood", 1_000)
    agent = Agent("flood", model, [count], max_tool_calls=5)
    run = agent("x", cache=False)
    assert (run.status, run.output) == ("ok", "done")
    assert sorted(ran) == [0, 1, 2, 3, 4]  # the cap, in the order the model asked
    tool = spans(run, "tool")
    assert len(tool) == 1_000 and sum(s.status == "error" for s in tool) == 995
    refused = [s for s in tool if s.status == "error"]
    assert "asked for 1000 tool calls and at most 5 run per reply" in refused[0].output


def test_the_default_cap_is_32_and_every_call_gets_an_answer():
    ran = []

    def count(i: int) -> str:
        """Count a call."""
        ran.append(i)
        return "ok"

    agent = Agent("flood", _flood("ag_flood_default", 40), [count])
    assert agent.max_tool_calls == 32 and "max_tool_calls=32" in repr(agent)
    run = agent("x", cache=False)
    assert len(ran) == 32 and run.output == "done"


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "8", 10**6])
def test_max_tool_calls_is_checked_where_it_is_written(bad):
    with pytest.raises(SpecError, match="max_tool_calls"):
        Agent("a", "sim:echo", [add], max_tool_calls=bad)


def test_max_tool_calls_in_yaml_and_back():
    from orchnb.patterns import from_yaml

    body = "pattern: agent\nmodel: sim:echo\ntools: [add]\nmax_tool_calls: 4\n"
    agent = from_yaml(body, name="a", namespace={"add": add})
    assert agent.max_tool_calls == 4
    assert "max_tool_calls: 4" in agent.to_yaml()
    assert from_yaml(agent.to_yaml(), name="b", namespace={"add": add}).max_tool_calls == 4
    assert "max_tool_calls" not in Agent("d", "sim:echo", [add]).to_yaml()
    for bad in ("0", "5000", "true", "2.5"):
        with pytest.raises(SpecError, match=r"line 4.*max_tool_calls"):
            from_yaml(body.replace("4\n", f"{bad}\n"), name="a", namespace={"add": add})
