"""pipe.preview(x) and %orch run --dry-run: every call's messages, tokens and cost, no call."""

from __future__ import annotations

import math
import threading

import pytest
from _helpers import add, spans

from orchnb import Agent, Chain, MapReduce, PlanExecute, Router, Step, Team
from orchnb.models import Message, SimModel, Usage, _tokens, call_cost, resolve_model


@pytest.fixture(autouse=True)
def fresh_encodings(monkeypatch):
    """Each test decides for itself what tiktoken can load; by default nothing (as offline),
    so that no test tries to download an encoding."""
    monkeypatch.setattr(_tokens, "_encodings", {})
    try:
        import tiktoken
    except ImportError:
        return

    def offline(name):
        raise ConnectionError("tests download nothing")

    monkeypatch.setattr(tiktoken, "get_encoding", offline)


@pytest.fixture
def agent_model():
    policy = Agent.sim_policy([("add", {"a": 2, "b": 3}), ("add", {"a": 5, "b": 1})],
                              "It is {observation}.")
    SimModel("preview-calc", fn=policy).register()
    return "sim:preview-calc"


def brief(model: str = "sim:echo") -> Chain:
    return Chain("brief", [
        Step("summarize", model, "Summarize: {{ input }}", system="Be brief."),
        Step("classify", model, "Kind of document? {{ steps.summarize }} (was: {{ run_input }})"),
    ])


def test_preview_of_a_chain_shows_known_and_dependent_messages_and_makes_no_run():
    pipe = brief()
    p = pipe.preview("an invoice for 3 chairs")
    first, second = p.calls
    assert first.status == "known" and first.certain
    assert [m.content for m in first.messages] == ["Be brief.",
                                                   "Summarize: an invoice for 3 chairs"]
    assert second.status == "depends" and second.depends_on == ["steps.summarize"]
    assert second.messages[0].content == ("Kind of document? ⟪output of summarize⟫ "
                                          "(was: an invoice for 3 chairs)")
    assert pipe.runs == []


def test_sim_token_counts_are_the_usage_the_run_then_reports():
    pipe = brief()
    p = pipe.preview("an invoice for 3 chairs")
    run = pipe("an invoice for 3 chairs")
    measured = [s.input_tokens for s in spans(run, kind="model")]
    assert p.calls[0].input_tokens == measured[0]
    assert p.calls[0].token_method == "estimate"
    # The second prompt is a lower bound: the placeholder is not counted.
    assert p.calls[1].input_tokens < measured[1]


def test_preview_over_the_real_sdk_sends_no_request_and_prices_the_input(fake_env):
    pipe = brief("openai:gpt-4o-mini")
    p = pipe.preview("an invoice for 3 chairs")
    assert len(fake_env.requests) == 0
    first = p.calls[0]
    cost, priced = call_cost(resolve_model("openai:gpt-4o-mini"), Usage(first.input_tokens, 0))
    assert priced and first.cost_usd == pytest.approx(cost) and cost > 0
    assert first.priced_as == "openai:gpt-4o-mini"
    assert p.cost_usd == pytest.approx(sum(c.cost_usd for c in p.calls))
    pipe("an invoice")  # the same pipeline does reach the server when run
    assert len(fake_env.requests) == 2


def test_unknown_prices_are_nan_not_zero(fake_env):
    p = Chain("c", [Step("a", "openai:no-such-model-xyz", "{{ input }}")]).preview("hi")
    assert math.isnan(p.calls[0].cost_usd) and math.isnan(p.cost_usd)
    assert len(fake_env.requests) == 0


def test_openai_models_are_counted_with_tiktoken_when_its_encoding_loads(monkeypatch):
    tiktoken = pytest.importorskip("tiktoken")
    # A byte-level encoding built here: its count is the bytes, so the test needs no download.
    enc = tiktoken.Encoding("o200k_base", pat_str=r"\S+|\s+",
                            mergeable_ranks={bytes([i]): i for i in range(256)},
                            special_tokens={})
    monkeypatch.setattr(tiktoken, "get_encoding", lambda name: enc)
    model = resolve_model("openai:gpt-4o-mini")
    count = _tokens.count_tokens(model, [Message("system", "ab"), Message("user", "cdef")])
    assert count.method == "tiktoken:o200k_base" and count.exact and count.note == ""
    assert count.tokens == (2 + 3) + (4 + 3) + 3
    p = Chain("c", [Step("a", "openai:gpt-4o-mini", "{{ input }}")]).preview("héllo")
    assert p.calls[0].token_method == "tiktoken:o200k_base"
    assert p.calls[0].input_tokens == len("héllo".encode()) + 3 + 3


def test_tiktoken_that_cannot_download_falls_back_to_the_estimate_and_says_so(monkeypatch):
    tiktoken = pytest.importorskip("tiktoken")
    calls = []

    def offline(name):
        calls.append(name)
        raise ConnectionError("no network")

    monkeypatch.setattr(tiktoken, "get_encoding", offline)
    p = brief("openai:gpt-4o").preview("x" * 40)
    assert {c.token_method for c in p.calls} == {"estimate"}
    assert any("could not be loaded" in n and "TIKTOKEN_CACHE_DIR" in n for n in p.notes)
    assert calls == ["o200k_base"]  # tried once per process, not once per call
    assert p.calls[0].input_tokens == (len("Be brief.") + len("Summarize: " + "x" * 40) + 3
                                       ) // 4 + 6


def test_a_tiktoken_download_that_hangs_cannot_hang_the_preview(monkeypatch):
    tiktoken = pytest.importorskip("tiktoken")
    release = threading.Event()
    monkeypatch.setattr(tiktoken, "get_encoding", lambda name: release.wait(10))
    monkeypatch.setattr(_tokens, "TIKTOKEN_LOAD_SECONDS", 0.05)
    try:
        p = brief("openai:gpt-4o").preview("hi")
    finally:
        release.set()
    assert p.calls[0].token_method == "estimate"
    assert any("took over" in n for n in p.notes)


def test_router_preview_classifier_is_known_routes_are_conditional():
    SimModel("preview-triage", rules={"refund": "billing"}, default="technical").register()
    router = Router("triage", classifier="sim:preview-triage", routes={
        "billing": Step("billing", "sim:echo", "Billing team: {{ input }}"),
        "technical": brief(),
    }, default="technical")
    p = router.preview("I want a refund")
    clf = p.calls[0]
    assert clf.kind == "classifier" and clf.status == "known" and clf.certain
    assert "billing, technical" in clf.messages[0].content
    billing = next(c for c in p.calls if c.step == "billing")
    assert not billing.certain and billing.when == "if route 'billing'"
    assert billing.status == "known"  # a route sees the router's input, known already
    nested = [c for c in p.calls if c.path.startswith("triage › brief")]
    assert [c.status for c in nested] == ["known", "depends"]
    assert all("(the default)" in c.when for c in nested)
    assert p.input_tokens == clf.input_tokens  # only the classifier is certain


def test_mapreduce_preview_has_one_call_per_item_and_a_dependent_reduce():
    mr = MapReduce("shout", map=Step("up", "sim:echo", "Shout: {{ input }}"),
                   reduce=Step("join", "sim:echo",
                               "Join: {% for o in outputs %}{{ o }}; {% endfor %}"))
    p = mr.preview(["a", "b", "c"])
    maps = [c for c in p.calls if c.step == "up"]
    assert [c.messages[0].content for c in maps] == ["Shout: a", "Shout: b", "Shout: c"]
    assert [c.when for c in maps] == ["item 1 of 3", "item 2 of 3", "item 3 of 3"]
    reduce = p.calls[-1]
    assert reduce.status == "depends" and reduce.depends_on == ["outputs"]
    assert "⟪output of up for item 3⟫" in reduce.messages[0].content
    assert any("splits into 3 items" in n for n in p.notes)


def test_python_steps_are_listed_not_run():
    ran = []

    def shout(x):
        ran.append(x)
        return x.upper()

    p = Chain("c", [shout, Step("after", "sim:echo", "Got {{ input }}")]).preview("hi")
    assert [c.status for c in p.calls] == ["python", "depends"]
    assert p.calls[1].messages[0].content == "Got ⟪output of shout⟫"
    assert ran == []


def test_agent_preview_first_iteration_known_context_growth_simulated_then_measured(
        agent_model):
    agent = Agent("calc", agent_model, [add], system="You add numbers.", max_iterations=5)
    p = agent.preview("what is 2 + 3, plus 1?")
    first, later = p.calls
    assert first.status == "known" and first.when == "iteration 1"
    assert later.status == "depends" and later.calls == 4 and not later.certain
    ctx = p.context
    assert list(ctx["source"]) == ["simulated"] * 5
    assert ctx["input_tokens"].iloc[0] == first.input_tokens
    assert ctx["input_tokens"].is_monotonic_increasing
    assert ctx["cumulative_input_tokens"].iloc[-1] == ctx["input_tokens"].sum()

    run = agent("what is 2 + 3, plus 1?")
    measured = [s.input_tokens for s in spans(run, kind="model")]
    assert first.input_tokens == measured[0]
    ctx = agent.preview("what is 2 + 3, plus 1?").context
    assert list(ctx["source"]) == ["trace"] * 3 + ["simulated"] * 2
    assert list(ctx["input_tokens"][:3]) == measured
    assert set(ctx["run_id"].dropna()) == {run.id}
    fig = agent.preview("x").context_chart()
    assert {t.name for t in fig.data} >= {"calc: trace", "calc: simulated", "calc: cumulative"}


def test_plan_execute_preview_planner_known_executor_and_replanner_depend(agent_model):
    pe = PlanExecute("pe", "sim:echo", Agent("calc", agent_model, [add]), max_replans=1)
    p = pe.preview("compute (2+3)*2")
    planner = p.calls[0]
    assert planner.step == "planner" and planner.status == "known"
    assert "compute (2+3)*2" in planner.messages[0].content
    executor = [c for c in p.calls if c.step == "calc"]
    assert executor[0].messages[-1].content == "⟪a plan step⟫"
    replanner = p.calls[-1]
    assert replanner.step == "replanner" and set(replanner.depends_on) == {"history", "plan"}


def test_team_preview_first_supervisor_turn_known_members_conditional():
    team = Team("t", "sim:echo", {"writer": Step("w", "sim:echo", "Draft: {{ task }}")},
                max_turns=3)
    p = team.preview("a haiku")
    first, member, later = p.calls
    assert first.status == "known" and "(empty)" in first.messages[0].content
    assert member.when == "when the supervisor picks 'writer'" and not member.certain
    assert later.status == "depends" and later.calls == 3


def test_a_template_that_cannot_render_before_the_run_is_shown_not_raised():
    pipe = Chain("c", [Step("first", "sim:echo", "{{ input }}"),
                       Step("pick", "sim:echo", "{{ steps.first.split()[7] }}")])
    p = pipe.preview("x")
    assert p.calls[1].status == "error" and "cannot render yet" in p.calls[1].note
    assert p.calls[1].messages[0].content == "{{ steps.first.split()[7] }}"


def test_preview_df_html_and_text():
    p = brief().preview("an invoice")
    df = p.df
    assert list(df["status"]) == ["known", "depends"]
    assert {"path", "messages", "input_tokens", "token_method", "cost_usd", "when"} <= set(df)
    html = p._repr_html_()
    assert html.startswith("<div class='tex2jax_ignore mathjax_ignore")
    assert "<mark" in html and "⟪output of summarize⟫" in html
    text = repr(p)
    assert "KNOWN" in text and "DEPENDS" in text and "no call was made" in text


def test_missing_api_key_is_a_note_not_an_error():
    p = brief("openai:gpt-4o-mini").preview("hi")
    assert any("OPENAI_API_KEY" in n for n in p.notes)


def test_dry_run_magic_previews_without_calling(ipython, fake_env):
    ipython.run_cell_magic("orch", "dry", """
pattern: chain
steps:
  - {name: summarize, model: "openai:gpt-4o-mini", prompt: "Summarize: {{ input }}"}
  - {name: title, model: "openai:gpt-4o-mini", prompt: "Title for: {{ steps.summarize }}"}
""")
    p = ipython.run_line_magic("orch", 'run dry "a long report" --dry-run')
    assert [c.status for c in p.calls] == ["known", "depends"]
    assert p.calls[0].messages[0].content == "Summarize: a long report"
    assert len(fake_env.requests) == 0
    assert ipython.user_ns["dry"].runs == []


def test_notebook_display_shows_the_table_and_the_agent_chart(ipython, agent_model,
                                                              monkeypatch):
    import plotly.io as pio
    from IPython.core.displaypub import CapturingDisplayPublisher

    from orchnb.patterns import _preview_view

    p = Agent("calc", agent_model, [add]).preview("2 + 3?")

    def shown() -> list[dict]:
        publisher, ipython.display_pub = ipython.display_pub, CapturingDisplayPublisher()
        try:
            p._ipython_display_()
            return [o["data"] for o in ipython.display_pub.outputs]
        finally:
            ipython.display_pub = publisher

    terminal = shown()  # a terminal shell: the table only
    assert len(terminal) == 1 and "orchnb-preview" in terminal[0]["text/html"]
    monkeypatch.setattr(_preview_view, "_in_kernel", lambda: True)
    monkeypatch.setattr(pio.renderers, "default", "plotly_mimetype")
    kernel = shown()
    assert "application/vnd.plotly.v1+json" in kernel[1]


def test_preview_html_shows_prompts_left_aligned_and_unknown_prices_as_unpriced():

    pipe = Chain("pv", [Step("a", "openai:no-such-model-xyz", "Summarize {{ input }}")])
    html = pipe.preview("a long text to summarize")._repr_html_()
    assert "text-align:left" in html and "word-break:normal" in html
    assert "unpriced" in html and ">unknown<" not in html
