"""Structured output: Step(output=...) through the real SDKs (loopback) and the sim fallback."""

from __future__ import annotations

import json

import pytest
from _helpers import add, scripted, spans
from pydantic import BaseModel

import orchnb
from orchnb import Agent, Chain, MapReduce, PlanExecute, Step
from orchnb.exceptions import ProviderError, SpecError, StructuredOutputError
from orchnb.patterns import from_yaml
from orchnb.testing import FakeReply


class Invoice(BaseModel):
    """An invoice's key fields."""

    vendor: str
    amount: float


MODELS = ["openai:gpt-4o-mini", "anthropic:claude-haiku-4-5"]


def extract_chain(model: str, **step) -> Chain:
    return Chain("bill", [
        Step("extract", model, "Extract the invoice: {{ input }}", output=Invoice, **step),
        Step("say", "sim:echo", "Pay {{ steps.extract.amount }} to {{ steps.extract.vendor }}"),
    ])


@pytest.mark.parametrize("model", MODELS)
def test_step_output_is_the_validated_object_and_later_templates_read_its_fields(fake_env, model):
    fake_env.script([{"vendor": "Acme", "amount": "12.5"}])
    run = extract_chain(model)("Acme bills 12.50")
    assert run.status == "ok", run.error
    assert run.output == "Pay 12.5 to Acme"
    [req] = fake_env.requests
    assert req.output_schema["properties"].keys() == {"vendor", "amount"}
    assert req.output_name == "Invoice"
    step = spans(run, "step", "extract")[0]
    assert json.loads(step.output) == {"vendor": "Acme", "amount": 12.5}
    assert step.meta == {"output_schema": "Invoice"}


def test_openai_gets_a_strict_response_format(fake_env):
    fake_env.script([{"vendor": "Acme", "amount": 1}])
    extract_chain("openai:gpt-4o-mini")("x")
    fmt = fake_env.requests[0].body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["additionalProperties"] is False


def test_openai_schema_with_optional_fields_is_sent_not_strict(fake_env):
    class Loose(BaseModel):
        name: str
        note: str = ""

    fake_env.script([{"name": "x"}])
    run = Chain("c", [Step("s", "openai:gpt-4o-mini", "{{ input }}", output=Loose)])("x")
    assert run.output == Loose(name="x")
    assert fake_env.requests[0].body["response_format"]["json_schema"]["strict"] is False


def test_anthropic_forces_the_answer_tool(fake_env):
    fake_env.script([{"vendor": "Acme", "amount": 3}])
    run = Chain("c", [Step("s", "anthropic:claude-haiku-4-5", "{{ input }}",
                           output=Invoice)])("x")
    assert run.output == Invoice(vendor="Acme", amount=3)
    body = fake_env.requests[0].body
    assert body["tool_choice"] == {"type": "tool", "name": "Invoice"}
    assert fake_env.requests[0].output_via == "tool_choice"


@pytest.mark.parametrize("model", MODELS)
def test_invalid_answer_gets_one_repair_call_showing_answer_and_error(fake_env, model):
    fake_env.script([{"vendor": "Acme"}, {"vendor": "Acme", "amount": 7}])
    run = extract_chain(model)("x")
    assert run.status == "ok", run.error
    assert run.output == "Pay 7.0 to Acme"
    repair = fake_env.requests[1]
    assert "amount" in repair.last_user and "does not fit" in repair.last_user
    shown = [m for m in repair.messages if m["role"] == "assistant"]
    assert json.loads(shown[-1]["content"]) == {"vendor": "Acme"}
    assert len(spans(run, "model", "extract")) == 2


@pytest.mark.parametrize("model", MODELS)
def test_two_invalid_answers_raise_structured_output_error_with_raw_text(fake_env, model):
    fake_env.script([FakeReply(text="not json at all"), FakeReply(text="still {broken")])
    with pytest.raises(StructuredOutputError) as info:
        extract_chain(model)("x")
    err = info.value
    assert err.step == "extract" and err.schema == "Invoice"
    assert err.raw == "still {broken"  # the last answer, kept
    assert "Invoice" in str(err) and "extract" in str(err)
    assert isinstance(err, orchnb.RunError)


def test_wrong_json_through_the_anthropic_tool_twice(fake_env):
    fake_env.script([{"vendor": 1}, {"amount": "many"}])
    with pytest.raises(StructuredOutputError) as info:
        extract_chain("anthropic:claude-haiku-4-5")("x")
    assert json.loads(info.value.raw) == {"amount": "many"}
    assert "vendor" in info.value.problems


@pytest.mark.parametrize("model", MODELS)
def test_schema_the_provider_rejects_names_step_and_schema(fake_env, model):
    vendor = {"message": "Invalid schema for response_format", "type": "invalid_request_error"}
    body = ({"error": vendor} if model.startswith("openai")
            else {"type": "error", "error": vendor})
    fake_env.fail_next(1, "400", body=body)
    with pytest.raises(ProviderError) as info:
        extract_chain(model)("x")
    text = str(info.value)
    assert "extract" in text and "'Invoice'" in text and "Invalid schema" in text
    assert info.value.status == 400
    assert len(fake_env.requests) == 1  # not retried


def test_streamed_structured_step(fake_env):
    fake_env.script([{"vendor": "Acme", "amount": 2}, {"vendor": "Bo", "amount": 4}])
    for model in MODELS:
        chunks = list(Chain("c", [Step("s", model, "{{ input }}", output=Invoice,
                                       stream=True)]).stream("x"))
        text = "".join(c.text for c in chunks)
        assert json.loads(text)["amount"] in (2, 4)


def test_cache_key_includes_the_schema(fake_env):
    class Other(BaseModel):
        vendor: str

    fake_env.script([{"vendor": "A", "amount": 1}, {"vendor": "B"}])
    a = Chain("c", [Step("s", "openai:gpt-4o-mini", "same", output=Invoice)], cache=True)("x")
    b = Chain("c", [Step("s", "openai:gpt-4o-mini", "same", output=Other)], cache=True)("x")
    assert a.output == Invoice(vendor="A", amount=1) and b.output == Other(vendor="B")
    assert len(fake_env.requests) == 2


# -- without native structured output: the schema in the prompt, then parse -------------------
def test_sim_model_is_asked_in_the_prompt_and_parsed():
    seen: list = []
    model = scripted("inv1", "Sure! ```json\n{\"vendor\": \"Sim\", \"amount\": 5}\n```",
                     seen=seen)
    run = Chain("c", [Step("s", model, "{{ input }}", output=Invoice)])("x")
    assert run.output == Invoice(vendor="Sim", amount=5)
    assert seen[0].output_schema is None
    assert "JSON schema (Invoice)" in seen[0].messages[0].content


def test_sim_json_reply_and_repair():
    model = scripted("inv2", {"json": {"vendor": "x"}}, {"json": {"vendor": "x", "amount": 1}})
    assert Chain("c", [Step("s", model, "{{ input }}", output=Invoice)])("x").output.amount == 1


def test_inline_json_schema_gives_plain_dicts():
    schema = {"title": "Tags", "type": "object", "properties": {
        "tags": {"type": "array", "items": {"type": "string"}}}, "required": ["tags"]}
    model = scripted("tags1", {"json": {"tags": [1]}}, {"json": {"tags": ["a", "b"]}})
    run = Chain("c", [Step("s", model, "{{ input }}", output=schema)])("x")
    assert run.output == {"tags": ["a", "b"]}


# -- every pattern ------------------------------------------------------------------------------
def test_map_step_returns_objects_and_reduce_sees_them():
    n = iter(range(1, 10))
    orchnb.sim_model("inv_map", fn=lambda r: {"json": {"vendor": "v", "amount": next(n)}})
    pipe = MapReduce("m", Step("read", "sim:inv_map", "{{ input }}", output=Invoice),
                     lambda outputs: sum(o.amount for o in outputs), concurrency=2)
    run = pipe(["a", "b", "c"])
    assert run.output == 6.0


def test_plan_executor_step_returns_objects():
    planner = scripted("planner_s", '{"steps": ["first", "second"]}')
    n = iter(range(1, 10))
    orchnb.sim_model("exec_s", fn=lambda r: {"json": {"vendor": "v", "amount": next(n)}})
    pipe = PlanExecute("p", Step("plan", planner, "Plan: {{ input }}"),
                       Step("do", "sim:exec_s", "{{ input }}", output=Invoice))
    run = pipe("task")
    assert run.status == "ok", run.error
    outs = [s.output for s in spans(run, "step", "do")]
    assert all(json.loads(o)["vendor"] == "v" for o in outs)


@pytest.mark.parametrize("model", MODELS)
def test_agent_final_answer_is_structured_over_the_wire(fake_env, model):
    fake_env.script([FakeReply(tool_calls=[("add", {"a": 2, "b": 3})]),
                     {"vendor": "Calc", "amount": 5}])
    run = Agent("a", model, [add], output=Invoice)("add 2 and 3")
    assert run.status == "ok", run.error
    assert run.output == Invoice(vendor="Calc", amount=5)
    assert all(r.output_name == "Invoice" for r in fake_env.requests)
    if model.startswith("anthropic"):
        assert fake_env.requests[0].body["tool_choice"] == {"type": "any"}


def test_text_mode_agent_final_answer_is_parsed_and_repaired():
    model = scripted("agent_s", 'Action: add\nAction Input: {"a": 1, "b": 1}',
                     "Final Answer: the total is 2",
                     '{"vendor": "me", "amount": 2}')
    run = Agent("a", model, [add], output=Invoice, tool_mode="text")("1+1")
    assert run.status == "ok", run.error
    assert run.output == Invoice(vendor="me", amount=2)


# -- YAML ------------------------------------------------------------------------------------
def test_yaml_output_names_a_pydantic_model_in_the_namespace(fake_env):
    fake_env.script([{"vendor": "Y", "amount": 9}])
    pipe = from_yaml("""
pattern: chain
steps:
  - name: extract
    model: openai:gpt-4o-mini
    prompt: "{{ input }}"
    output: Invoice
  - {name: say, model: "sim:echo", prompt: "{{ steps.extract.vendor }}"}
""", namespace={"Invoice": Invoice})
    assert pipe("x").output == "Y"


def test_yaml_inline_schema_and_bad_names_fail_before_any_call():
    pipe = from_yaml("""
pattern: chain
steps:
  - model: "sim:echo"
    prompt: '{"n": 1}'
    output: {type: object, properties: {n: {type: integer}}, required: [n]}
""")
    assert pipe("x").output == {"n": 1}
    with pytest.raises(SpecError, match=r"line 6.*'Invoce' is not defined.*Invoice"):
        from_yaml("""
pattern: chain
steps:
  - model: "sim:echo"
    prompt: x
    output: Invoce
""", namespace={"Invoice": Invoice})
    with pytest.raises(SpecError, match="not a pydantic model"):
        from_yaml("pattern: chain\nsteps:\n  - {model: 'sim:echo', prompt: x, output: f}\n",
                  namespace={"f": print})
    with pytest.raises(SpecError, match="not a valid JSON schema"):
        from_yaml("pattern: chain\nsteps:\n  - {model: 'sim:echo', prompt: x, "
                  "output: {type: 12}}\n")


def test_yaml_agent_output():
    model = scripted("agent_y", '{"vendor": "z", "amount": 0}')
    pipe = from_yaml(f"""
pattern: agent
model: "{model}"
tools: [add]
output: Invoice
""", namespace={"add": add, "Invoice": Invoice})
    assert pipe("x").output == Invoice(vendor="z", amount=0)


def test_output_and_parse_together_is_a_spec_error():
    with pytest.raises(SpecError, match="output= or parse="):
        Step("s", "sim:echo", "x", output=Invoice, parse=str.upper)
