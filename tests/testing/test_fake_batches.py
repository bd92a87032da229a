"""The fake server's batch APIs, driven by the real SDKs as orchnb's batch clients call them."""

from __future__ import annotations

import json
import time

import anthropic
import openai
import pytest

from orchnb.testing import FakeProvider


def oa(fake: FakeProvider) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-fake", max_retries=0)


def an(fake: FakeProvider) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="sk-ant-fake",
                               max_retries=0)


def _openai_batch(client: openai.OpenAI, texts: list[str]):
    lines = "\n".join(json.dumps({
        "custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": t}]}})
        for i, t in enumerate(texts))
    f = client.files.create(file=("b.jsonl", lines.encode(), "application/jsonl"),
                            purpose="batch")
    assert f.purpose == "batch" and f.bytes == len(lines.encode())
    return client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                 completion_window="24h")


def _anthropic_batch(client: anthropic.Anthropic, texts: list[str]):
    return client.messages.batches.create(requests=[
        {"custom_id": f"r{i}", "params": {"model": "claude-haiku-4-5", "max_tokens": 20,
                                          "messages": [{"role": "user", "content": t}]}}
        for i, t in enumerate(texts)])


def test_openai_batch_output_and_error_files(fake):
    fake.batches.delay = None  # until finish_batches()
    fake.batches.fail_when(lambda r: r.last_user == "bad", status=400, message="nope")
    client = oa(fake)
    b = _openai_batch(client, ["a", "bad", "c"])
    assert client.batches.retrieve(b.id).status == "in_progress"
    fake.finish_batches()
    b = oa(fake).batches.retrieve(b.id)  # a new client (a restarted kernel) finds it
    assert b.status == "completed"
    assert (b.request_counts.completed, b.request_counts.failed, b.request_counts.total) == (
        2, 1, 3)
    ok = [json.loads(x) for x in client.files.content(b.output_file_id).text.splitlines()]
    assert [x["custom_id"] for x in ok] == ["r0", "r2"]
    assert ok[0]["response"]["body"]["choices"][0]["message"]["content"] == "fake reply to: a"
    bad = json.loads(client.files.content(b.error_file_id).text)
    assert bad["custom_id"] == "r1" and bad["response"]["status_code"] == 400
    assert bad["response"]["body"]["error"]["message"] == "nope"
    assert fake.batches.creates == 1


def test_anthropic_batch_results_each_outcome(fake):
    fake.batches.delay = 0.02
    fake.batches.fail_when(lambda r: r.last_user == "x", "errored", status=529)
    fake.batches.fail_when(lambda r: r.last_user == "late", "expired")
    client = an(fake)
    b = _anthropic_batch(client, ["a", "x", "late"])
    assert b.processing_status == "in_progress" and b.request_counts.processing == 3
    time.sleep(0.03)
    b = client.messages.batches.retrieve(b.id)
    assert b.processing_status == "ended"
    assert (b.request_counts.succeeded, b.request_counts.errored,
            b.request_counts.expired) == (1, 1, 1)
    results = {r.custom_id: r.result for r in client.messages.batches.results(b.id)}
    assert results["r0"].type == "succeeded"
    assert results["r0"].message.content[0].text == "fake reply to: a"
    assert results["r1"].type == "errored" and results["r1"].error.error.type == "overloaded_error"
    assert results["r2"].type == "expired"


def test_cancel_and_unknown_batches(fake):
    fake.batches.delay = None
    client = an(fake)
    b = client.messages.batches.cancel(_anthropic_batch(client, ["a", "b"]).id)
    assert b.processing_status == "ended" and b.request_counts.canceled == 2
    o = oa(fake)
    ob = o.batches.cancel(_openai_batch(o, ["a"]).id)
    assert ob.status == "cancelled" and ob.request_counts.failed == 1
    with pytest.raises(openai.NotFoundError):
        o.batches.retrieve("batch_nope")
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve("msgbatch_nope")
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    conn.request("GET", f"/v1/batches/{ob.id}")  # no key: refused like a chat call
    assert conn.getresponse().status == 401


def test_counts_grow_while_a_batch_runs(fake):
    fake.batches.delay = 0.2
    client = oa(fake)
    b = _openai_batch(client, [str(i) for i in range(10)])
    time.sleep(0.1)
    counts = client.batches.retrieve(b.id).request_counts
    assert 0 < counts.completed < 10  # half-way: the provider's own progress
    with pytest.raises(ValueError, match="outcome"):
        fake.batches.fail_when(lambda r: True, "lost")
