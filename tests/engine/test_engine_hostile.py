"""Hostile answers through the engine and the real SDKs: usage the server did not report is
estimated and budgeted (streamed or not), a body that is not UTF-8 is retried like a malformed
one, and a reply holding a lone surrogate is a normal answer (cached and answered again)."""

from __future__ import annotations

import pytest

from orchnb import Budget, BudgetExceeded, Chain, MapReduce, ProviderError, RetryPolicy, Step

FAST_RETRY = RetryPolicy(max_attempts=3, backoff=0.01, max_backoff=0.05)
MODELS = ["openai:gpt-4o-mini", "anthropic:claude-haiku-4-5"]
REPLY = "a reply of some length, about forty characters or so. " * 3


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "plain"])
def test_token_budget_stops_calls_whose_server_reports_no_usage(fake_env, model, stream):
    fake_env.send_usage = False  # as llama.cpp's server: no usage, not even when asked
    fake_env.responder = lambda r: REPLY
    step = Step("s", model, "Summarize: {{ input }} " + "x" * 300, stream=stream)
    pipe = MapReduce("m", step, concurrency=1, on_error="skip")
    with pytest.raises(BudgetExceeded) as info:
        pipe([f"doc {i}" for i in range(6)], budget=Budget(max_tokens=100), cache=False)
    assert len(fake_env.requests) == 1  # before: all 6 ran, each 0/0 tokens
    calls = info.value.run.trace.df.query("kind == 'model'")
    assert len(calls) == 1
    span = calls.iloc[0]
    assert span.usage_estimated == True  # noqa: E712 (a nullable boolean)
    assert span.input_tokens > 50 and span.output_tokens == (len(REPLY) + 3) // 4
    assert "token budget of 100" in str(info.value)


@pytest.mark.parametrize("model", MODELS)
def test_reported_usage_is_not_flagged(fake_env, model):
    run = Chain("c", [Step("s", model, "{{ input }}", stream=True)], cache=False)("hi")
    span = run.trace.df.query("kind == 'model'").iloc[0]
    assert span.input_tokens > 0 and span.usage_estimated is not True


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "plain"])
def test_a_body_that_is_not_utf8_is_retried(fake_env, model, stream):
    fake_env.fail_next(1, "bad_utf8")
    fake_env.script(["corrupted on the way", "fine"])
    pipe = Chain("u", [Step("a", model, "{{ input }}", stream=stream)], retry=FAST_RETRY,
                 cache=False)
    run = pipe("doc")
    assert run.output == "fine"
    assert run.trace.df.query("kind == 'model'").attempt.iloc[0] == 2


def test_a_body_that_is_never_utf8_fails_as_a_provider_error(fake_env):
    fake_env.fail_next(3, "bad_utf8")
    pipe = Chain("u", [Step("a", "openai:gpt-4o-mini", "{{ input }}")], retry=FAST_RETRY,
                 cache=False)
    with pytest.raises(ProviderError) as info:
        pipe("doc")
    assert "not valid UTF-8" in str(info.value) and "3 attempts" in str(info.value)


@pytest.mark.parametrize("model", MODELS)
def test_a_reply_with_a_lone_surrogate_is_an_answer_and_is_cached(fake_env, model):
    text = "bad \ud800 and nul \x00 end"
    fake_env.script([text])
    # persist=False: storing such text is the trace store's part (tested there)
    pipe = Chain("s", [Step("a", model, "{{ input }}")], cache=True, persist=False)
    assert pipe("doc \ud800").output == text
    again = pipe("doc \ud800")
    assert again.output == text and len(fake_env.requests) == 1  # from the cache
    # spans, not .df: the DataFrame's text columns are the trace side's part
    assert [s.cached for s in again.trace.spans if s.kind == "model"] == [True]


@pytest.mark.parametrize("model", MODELS)
def test_a_lone_surrogate_chained_into_the_next_prompt_is_sent_replaced(fake_env, model):
    fake_env.script(["half \ud800 a pair", "done"])
    pipe = Chain("s", [Step("a", model, "{{ input }}"),
                       Step("b", model, "Check: {{ steps.a }}")], cache=False, persist=False)
    assert pipe("doc").output == "done"  # before: a raw UnicodeEncodeError from the SDK
    assert fake_env.requests[1].last_user == "Check: half \ufffd a pair"
