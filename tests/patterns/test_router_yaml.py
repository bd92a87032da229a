"""Routers from ``%%orch`` YAML: LLM, embedding and function classifiers; errors with lines."""

from __future__ import annotations

import json

import pytest

from orchnb import SimModel, SpecError, TemplateError, UnknownModelError
from orchnb.patterns import EmbeddingClassifier, FunctionClassifier, LLMClassifier, from_yaml

LLM_ROUTER = """\
pattern: router
classifier:
  model: sim:yaml-triage
  prompt: |
    Pick one of {{ labels | join(", ") }}.
    Message: {{ input }}
routes:
  billing:
    model: sim:echo
    prompt: "Billing: {{ input }}"
  technical:
    pattern: chain
    steps:
      - {name: diagnose, model: "sim:echo", prompt: "Diagnose: {{ input }}"}
default: technical
"""


@pytest.fixture(autouse=True)
def yaml_triage():
    SimModel("yaml-triage", rules={"refund": "billing"}, default="hmm").register()


def test_llm_router_from_yaml_runs_and_flags_defaults():
    pipe = from_yaml(LLM_ROUTER, name="triage")
    assert isinstance(pipe.classifier, LLMClassifier)
    assert pipe("refund please").output == "Billing: refund please"
    run = pipe("my screen")
    assert run.output == "Diagnose: my screen"
    df = run.trace.df
    root = df[df.kind == "run"].iloc[0]
    assert root.route == "technical" and root.raw_label == "hmm"
    assert json.loads(root.meta)["defaulted"] is True


def test_embedding_router_from_yaml_with_threshold():
    pipe = from_yaml("""\
pattern: router
classifier:
  embed: sim
  threshold: 0.2
  examples:
    billing: [I want a refund, I was charged twice]
    technical: [the app crashes, I cannot log in]
routes:
  billing: {model: "sim:echo", prompt: "B {{ input }}"}
  technical: {model: "sim:echo", prompt: "T {{ input }}"}
  human: {model: "sim:echo", prompt: "H {{ input }}"}
default: human
""", name="semantic")
    assert isinstance(pipe.classifier, EmbeddingClassifier) and pipe.classifier.threshold == 0.2
    assert pipe("refund for the charge").output == "B refund for the charge"
    c = pipe.predict("zzz qqq")
    assert c.route == "human" and c.defaulted


def test_embedding_classifier_method_and_k_from_yaml():
    pipe = from_yaml("""\
pattern: router
classifier:
  embed: sim
  method: knn
  k: 3
  examples:
    billing: [I want a refund, I was charged twice, refund my order]
    technical: [the app crashes, I cannot log in, error on start]
routes:
  billing: {model: "sim:echo", prompt: "B {{ input }}"}
  technical: {model: "sim:echo", prompt: "T {{ input }}"}
""", name="voting")
    clf = pipe.classifier
    assert (clf.method, clf.k, clf.asked) == ("knn", 3, "knn")
    assert pipe.predict("a refund for the charge").route == "billing"
    assert "method: knn" in pipe.to_yaml() and "k: 3" in pipe.to_yaml()


def test_function_classifier_from_the_notebook_namespace():
    def by_keyword(text):
        return "billing" if "$" in text else "technical"

    pipe = from_yaml("""\
pattern: router
classifier: {python: by_keyword, name: keywords}
routes:
  billing: {model: "sim:echo", prompt: "B {{ input }}"}
  technical: {model: "sim:echo", prompt: "T {{ input }}"}
""", name="kw", namespace={"by_keyword": by_keyword})
    assert isinstance(pipe.classifier, FunctionClassifier) and pipe.classifier.name == "keywords"
    assert pipe("$5").output == "B $5"


def test_router_nested_in_a_chain_from_yaml():
    pipe = from_yaml("""\
pattern: chain
steps:
  - {name: clean, model: "sim:echo", prompt: "{{ input | lower }}"}
  - pattern: router
    name: triage
    classifier: {model: "sim:yaml-triage"}
    routes:
      billing: {model: "sim:echo", prompt: "B {{ input }}"}
      other: {model: "sim:echo", prompt: "O {{ input }}"}
    default: other
""", name="support")
    assert pipe("REFUND").output == "B refund"


BASE = "pattern: router\nclassifier: {model: 'sim:yaml-triage'}\n"
ROUTES = ("routes:\n  billing: {model: 'sim:echo', prompt: b}\n"
          "  technical: {model: 'sim:echo', prompt: t}\n")

ERRORS = [
    (BASE + ROUTES + "default: x\n", SpecError, 6, "default",
     "router 'triage': default route 'x' is not defined; known routes: billing, technical"),
    (BASE + "routes: {}\n", SpecError, 3, "routes", "has no routes"),
    (BASE + ROUTES + "defualt: billing\n", SpecError, 6, "defualt", "unknown key 'defualt'"),
    ("pattern: router\n" + ROUTES, SpecError, None, "classifier", "'classifier' is required"),
    ("pattern: router\nclassifier:\n  model: sim:x\n  embed: sim\n" + ROUTES, SpecError, 2,
     "classifier", "not model and embed"),
    ("pattern: router\nclassifier: {}\n" + ROUTES, SpecError, 2, "classifier",
     "either 'model'"),
    ("pattern: router\nclassifier:\n  model: gpt4\n" + ROUTES, UnknownModelError, 3,
     "classifier.model", "provider:model"),
    ("pattern: router\nclassifier:\n  model: sim:x\n  prompt: '{{ inptu }}'\n" + ROUTES,
     TemplateError, 4, "classifier.prompt", "inptu"),
    ("pattern: router\nclassifier:\n  model: sim:x\n  threshold: 0.3\n" + ROUTES, SpecError, 4,
     "classifier.threshold", "embedding classifiers"),
    ("pattern: router\nclassifier:\n  embed: sim\n" + ROUTES, SpecError, 2,
     "classifier.examples", "needs 'examples'"),
    ("pattern: router\nclassifier:\n  model: sim:x\n  method: knn\n" + ROUTES, SpecError, 4,
     "classifier.method", "embedding classifiers"),
    ("pattern: router\nclassifier:\n  embed: sim\n  method: svm\n  examples:\n"
     "    billing: [x]\n" + ROUTES, SpecError, 4, "classifier.method",
     "unknown method 'svm'; use one of nearest, centroid, knn, linear, hybrid or 'auto'"),
    ("pattern: router\nclassifier:\n  embed: sim\n  k: 0\n  examples:\n"
     "    billing: [x]\n" + ROUTES, SpecError, 4, "classifier.k", "whole number >= 1"),
    ("pattern: router\nclassifier:\n  embed: sim\n  C: -1\n  examples:\n"
     "    billing: [x]\n" + ROUTES, SpecError, 4, "classifier.C", "number > 0"),
    ("pattern: router\nclassifier:\n  embed: sim\n  examples:\n    sales: [buy now]\n" + ROUTES,
     SpecError, 5, "classifier.examples.sales", "examples for 'sales', which is not a route"),
    ("pattern: router\nclassifier:\n  embed: anthropic:claude-haiku-4-5\n  examples:\n"
     "    billing: [x]\n" + ROUTES, SpecError, 3, "classifier.embed", "cannot embed"),
    ("pattern: router\nclassifier:\n  embed: nope\n  examples:\n"
     "    billing: [x]\n" + ROUTES, UnknownModelError, 3, "classifier.embed", "provider:model"),
    ("pattern: router\nclassifier: {python: nope}\n" + ROUTES, SpecError, 2,
     "classifier.python", "'nope' is not defined"),
    (BASE + "routes:\n  billing:\n    model: sim:echo\n    prompt: '{{ steps.x }'\n",
     TemplateError, 6, "routes.billing.prompt", "syntax error"),
    (BASE + "routes:\n  billing:\n    modle: sim:echo\n", SpecError, 5,
     "routes.billing.modle", "unknown key 'modle'"),
]


@pytest.mark.parametrize(("body", "cls", "line", "key", "words"), ERRORS)
def test_router_yaml_errors_name_line_and_key(body, cls, line, key, words):
    with pytest.raises(cls) as e:
        from_yaml(body, name="triage")
    assert words in str(e.value)
    assert e.value.key == key
    assert e.value.line == line
