"""One pricing rule: which price applies to a call (``call_cost``) and for estimates."""

from __future__ import annotations

import math

import pytest

from orchnb.exceptions import SpecError
from orchnb.models import SimModel, Usage, call_cost, cost_usd, price_ref, resolve_model

USAGE = Usage(1000, 100)


def test_a_sim_model_priced_as_a_real_one_costs_what_that_one_would():
    SimModel("pricing_borrow", default="x", priced_as="openai:gpt-4o-mini").register()
    m = resolve_model("sim:pricing_borrow")
    assert m.priced_as == "openai:gpt-4o-mini" == price_ref(m) == price_ref("sim:pricing_borrow")
    assert call_cost(m, USAGE) == cost_usd("openai", "gpt-4o-mini", USAGE)
    # The reported model does not matter for a sim model: it is priced as it says.
    assert call_cost(m, USAGE, reported_model="pricing_borrow") == call_cost(m, USAGE)
    assert call_cost(m, USAGE)[0] > 0


def test_a_plain_sim_model_is_free():
    m = resolve_model("sim:pricing_plain")
    assert call_cost(m, USAGE) == (0.0, True)
    assert m.priced_as is None and price_ref(m) is None


def test_an_unknown_price_is_nan_never_zero():
    cost, priced = call_cost(resolve_model("openai:no-such-model"), USAGE)
    assert math.isnan(cost) and priced is False
    cost, priced = call_cost(resolve_model("openai:no-such-model"), USAGE, "still-unknown")
    assert math.isnan(cost) and priced is False


def test_the_reported_model_is_priced_first():
    m = resolve_model("openai:my-alias")  # unknown by name, known by what the API reports
    cost, priced = call_cost(m, USAGE, reported_model="gpt-4o")
    assert priced and cost == cost_usd("openai", "gpt-4o", USAGE)[0]
    # gpt-4o reported for a gpt-4o-mini request: the reported one is what was served.
    mini = resolve_model("openai:gpt-4o-mini")
    assert call_cost(mini, USAGE, "gpt-4o") == cost_usd("openai", "gpt-4o", USAGE)


def test_an_unknown_reported_model_falls_back_to_the_requested_name():
    m = resolve_model("openai:gpt-4o-mini")
    assert call_cost(m, USAGE, reported_model="gpt-4o-mini-custom-snapshot") == cost_usd(
        "openai", "gpt-4o-mini", USAGE)
    assert call_cost(m, USAGE, reported_model="") == call_cost(m, USAGE)


def test_embeddings_use_the_same_rule():
    cost, priced = call_cost(resolve_model("openai:text-embedding-3-small"), Usage(1_000_000, 0))
    assert priced and cost == pytest.approx(0.02)


def test_price_ref_of_strings_and_models():
    assert price_ref("openai:gpt-4o-mini") == "openai:gpt-4o-mini"
    assert price_ref(resolve_model("anthropic:claude-haiku-4-5")) == "anthropic:claude-haiku-4-5"
    assert price_ref("sim:whatever") is None
    assert price_ref("nosuchprovider:m") == "nosuchprovider:m"  # priced as unknown


def test_priced_as_must_name_a_provider_and_model():
    with pytest.raises(SpecError, match="priced_as must be a 'provider:model'"):
        SimModel("pricing_bad", priced_as="gpt-4o-mini")
