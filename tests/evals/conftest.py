"""Routers on sim models for the eval tests: keyword classifiers priced as real models."""

from __future__ import annotations

import re

import pytest

import orchnb
from orchnb.patterns import EmbeddingClassifier, Router

RULES = [
    (r"refund|charge|invoice|bill|paid|pay", "billing"),
    (r"crash|error|app|bug|api|wifi", "technical"),
    (r"password|account|login|log in|email", "account"),
    (r"deliver|order|ship|parcel|package|track", "shipping"),
]
PROMPT = ("Route the message to one of: {{ labels | join(', ') }}. Answer with the label only.\n"
          "Message: {{ input }}")


def keyword_model(name, rules=RULES, *, priced_as="openai:gpt-4o-mini", default="no idea"):
    """A sim classifier that reads the message after 'Message:' and answers by regex rules."""
    compiled = [(re.compile(p, re.IGNORECASE), label) for p, label in rules]

    def answer(request):
        text = request.messages[-1].content.split("Message:", 1)[-1]
        return next((label for p, label in compiled if p.search(text)), default)

    return orchnb.SimModel(name, fn=answer, priced_as=priced_as).register()


def routes():
    orchnb.SimModel("eval-small", default="Happy to help with that.",
                    priced_as="openai:gpt-4o-mini").register()
    orchnb.SimModel("eval-big", default="Here is a careful, detailed answer.",
                    priced_as="openai:gpt-4o").register()
    return {
        "billing": orchnb.Step("billing_team", "sim:eval-small", "Billing: {{ input }}"),
        "technical": orchnb.Step("tech_team", "sim:eval-big",
                                 "You are a senior engineer. Solve: {{ input }}"),
        "account": orchnb.Step("account_team", "sim:eval-small", "Account: {{ input }}"),
        "shipping": orchnb.Step("shipping_team", "sim:eval-small", "Shipping: {{ input }}"),
        "other": orchnb.Step("other_team", "sim:eval-small", "Other: {{ input }}"),
    }


def _make_router(name="triage", model="eval-kw", rules=RULES, *, priced_as="openai:gpt-4o-mini",
                default="other", **options):
    keyword_model(model, rules, priced_as=priced_as)
    return Router(name, classifier=orchnb.Step("classify", f"sim:{model}", PROMPT),
                  routes=routes(), default=default, **options)


EXAMPLES = {
    "billing": ["I was charged twice, refund me", "send me the invoice", "my payment failed"],
    "technical": ["the app crashes on start", "error 500 from the API", "wifi keeps dropping"],
    "account": ["reset my password", "delete my account", "change my login email"],
    "shipping": ["where is my parcel", "the delivery is late", "track my order"],
    "other": ["do you have job openings", "what are your opening hours", "thank you"],
}


def _make_embedding_router(name="semantic", threshold=0.25):
    clf = EmbeddingClassifier(EXAMPLES, "sim", threshold=threshold)
    return Router(name, classifier=clf, routes=routes(), default="other")


@pytest.fixture
def tickets():
    from orchnb.evals import load_tickets

    return load_tickets()


@pytest.fixture
def small(tickets):
    """A 60-row sample: every label, some ambiguous rows."""
    return tickets.groupby("label", group_keys=False).head(12).reset_index(drop=True)


@pytest.fixture
def make_router():
    """``make_router(name, model, rules, priced_as=..., default=...)``: a keyword router."""
    return _make_router


@pytest.fixture
def make_embedding_router():
    """``make_embedding_router(name, threshold)``: a router on the sim hashing embedder."""
    return _make_embedding_router


@pytest.fixture
def triage():
    return _make_router()
