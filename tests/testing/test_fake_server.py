"""The loopback fake server, driven by the real SDKs and by raw HTTP (stdlib ``http.client``)."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import itertools
import json
import math
import subprocess
import sys
import time

import anthropic
import openai
import pytest

from orchnb.testing import EMBEDDING_DIM, FakeProvider, FakeReply

HI = [{"role": "user", "content": "hi there"}]


def oa(fake: FakeProvider, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-fake", max_retries=0, **kw)


def an(fake: FakeProvider, **kw) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=fake.anthropic_base_url, api_key="sk-ant-fake", max_retries=0, **kw
    )


def raw(fake: FakeProvider, method: str, path: str, body: dict | None = None,
        headers: dict | None = None, timeout: float = 5.0):
    """One request over stdlib http.client: (status, headers, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"content-type": "application/json",
                                                       **(headers or {})})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


AUTH = {"authorization": "Bearer sk-fake"}
CHAT = {"model": "m", "messages": HI}


def test_default_reply_echoes_the_last_user_message(fake):
    r = oa(fake).chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert r.choices[0].message.content == "fake reply to: hi there"
    assert r.choices[0].finish_reason == "stop"
    assert r.model == "gpt-4o-mini"
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0


def test_script_is_fifo_across_both_wire_formats(fake):
    fake.script(["one", "two"])
    first = oa(fake).chat.completions.create(model="m", messages=HI)
    second = an(fake).messages.create(model="c", max_tokens=10, messages=HI)
    third = oa(fake).chat.completions.create(model="m", messages=HI)
    assert first.choices[0].message.content == "one"
    assert second.content[0].text == "two"
    assert third.choices[0].message.content.startswith("fake reply to:")


def test_tool_call_reply_in_openai_shape(fake):
    fake.script([FakeReply(tool_calls=[("add", {"a": 1, "b": 2})])])
    r = oa(fake).chat.completions.create(model="m", messages=HI)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "add"
    assert json.loads(call.function.arguments) == {"a": 1, "b": 2}


def test_tool_use_reply_in_anthropic_shape(fake):
    fake.script([FakeReply(text="let me add", tool_calls=[("add", {"a": 1, "b": 2})])])
    m = an(fake).messages.create(model="c", max_tokens=10, messages=HI)
    assert m.stop_reason == "tool_use"
    assert [b.type for b in m.content] == ["text", "tool_use"]
    assert m.content[1].name == "add" and m.content[1].input == {"a": 1, "b": 2}


def test_usage_with_cached_tokens_in_both_formats(fake):
    reply = FakeReply(text="x", input_tokens=100, output_tokens=7, cached_tokens=40)
    fake.script([reply, reply])
    u = oa(fake).chat.completions.create(model="m", messages=HI).usage
    assert (u.prompt_tokens, u.completion_tokens, u.prompt_tokens_details.cached_tokens) == (
        100, 7, 40)
    v = an(fake).messages.create(model="c", max_tokens=10, messages=HI).usage
    # Anthropic reports cache reads apart from input_tokens.
    assert (v.input_tokens, v.output_tokens, v.cache_read_input_tokens) == (60, 7, 40)


def test_responder_answers_when_the_script_is_empty(fake):
    seen = []

    def responder(req):
        seen.append(req)
        return FakeReply(text=f"{req.api}:{req.model}:{','.join(req.tools)}")

    fake.responder = responder
    tools = [{"type": "function", "function": {"name": "add", "parameters": {}}}]
    r = oa(fake).chat.completions.create(model="m", messages=HI, tools=tools)
    assert r.choices[0].message.content == "openai:m:add"
    assert seen[0].messages == [{"role": "user", "content": "hi there"}]


def test_anthropic_requests_normalise_like_openai_ones(fake):
    an(fake).messages.create(
        model="c",
        max_tokens=10,
        system="be brief",
        messages=[
            {"role": "user", "content": "add"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "t1", "name": "add", "input": {"a": 1}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "3"}]},
        ],
    )
    assert fake.requests[-1].messages == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "add"},
        {"role": "assistant", "content": "",
         "tool_calls": [{"id": "t1", "name": "add", "arguments": {"a": 1}}]},
        {"role": "tool", "content": "3", "tool_call_id": "t1"},
    ]


def test_requests_record_redacted_headers(fake):
    oa(fake).chat.completions.create(model="m", messages=HI)
    req = fake.requests[0]
    assert req.api == "openai" and req.path == "/v1/chat/completions"
    assert req.headers["authorization"] == "<redacted>"
    assert "sk-fake" not in repr(fake.requests)


def test_embeddings_are_deterministic_unit_vectors(fake):
    client = oa(fake)
    a = client.embeddings.create(model="text-embedding-3-small", input=["cat", "dog"])
    b = client.embeddings.create(model="text-embedding-3-small", input="cat")
    assert len(a.data) == 2 and len(a.data[0].embedding) == EMBEDDING_DIM
    assert a.data[0].embedding == b.data[0].embedding != a.data[1].embedding
    assert math.isclose(sum(x * x for x in a.data[0].embedding), 1.0, rel_tol=1e-4)
    assert a.usage.prompt_tokens > 0


def test_models_list(fake):
    assert "gpt-4o-mini" in [m.id for m in oa(fake).models.list()]


@pytest.mark.parametrize(
    ("path", "shape"),
    [("/v1/chat/completions", "error"), ("/v1/messages", "type")],
)
def test_missing_auth_gets_401_in_vendor_shape(fake, path, shape):
    status, _, body = raw(fake, "POST", path, CHAT)
    assert status == 401
    payload = json.loads(body)
    assert shape in payload and payload["error"]["message"]
    if path == "/v1/messages":
        assert payload == {"type": "error", "error": {
            "type": "authentication_error", "message": payload["error"]["message"]}}


def test_anthropic_accepts_x_api_key(fake):
    status, _, _ = raw(fake, "POST", "/v1/messages", CHAT, {"x-api-key": "k"})
    assert status == 200


def test_429_carries_retry_after_header_then_recovers(fake):
    fake.fail_next(1, "429", retry_after=0.01)
    status, headers, body = raw(fake, "POST", "/v1/chat/completions", CHAT, AUTH)
    assert status == 429 and headers["retry-after"] == "0.01"
    assert json.loads(body)["error"]["type"] == "rate_limit_exceeded"
    assert raw(fake, "POST", "/v1/chat/completions", CHAT, AUTH)[0] == 200


@pytest.mark.parametrize("kind", ["500", "503", "400", "529"])
def test_status_faults_use_vendor_error_shapes(fake, kind):
    fake.fail_next(2, kind)
    status, _, body = raw(fake, "POST", "/v1/chat/completions", CHAT, AUTH)
    assert status == int(kind) and "message" in json.loads(body)["error"]
    status, _, body = raw(fake, "POST", "/v1/messages", CHAT, AUTH)
    assert status == int(kind) and json.loads(body)["type"] == "error"


def test_503_is_overloaded_in_anthropic_shape(fake):
    fake.fail_next(1, "503")
    _, headers, body = raw(fake, "POST", "/v1/messages", CHAT, AUTH)
    assert json.loads(body)["error"]["type"] == "overloaded_error"
    assert "retry-after" in headers


def test_malformed_fault_sends_invalid_json_with_200(fake):
    fake.fail_next(1, "malformed")
    status, _, body = raw(fake, "POST", "/v1/chat/completions", CHAT, AUTH)
    assert status == 200
    with pytest.raises(ValueError):
        json.loads(body)


def test_drop_fault_closes_the_connection_unanswered(fake):
    fake.fail_next(1, "drop")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        raw(fake, "POST", "/v1/chat/completions", CHAT, AUTH)
    assert fake.requests[0].fault == "drop"


def test_timeout_fault_hangs_past_the_client_timeout(fake):
    fake.fail_next(1, "timeout", hang=5)
    started = time.perf_counter()
    with pytest.raises(TimeoutError):
        raw(fake, "POST", "/v1/chat/completions", CHAT, AUTH, timeout=0.2)
    assert time.perf_counter() - started < 2


def test_faulted_requests_do_not_consume_the_script(fake):
    fake.script(["scripted"])
    fake.fail_next(1, "500")
    client = oa(fake)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m", messages=HI)
    assert client.chat.completions.create(model="m", messages=HI).choices[0].message.content == (
        "scripted")
    assert [r.fault for r in fake.requests] == ["500", None]


def test_fault_rates_are_deterministic_by_seed():
    def faults(seed: int) -> list[str | None]:
        with FakeProvider(seed=seed) as fake:
            fake.fault_rates(rate_429=0.3, rate_500=0.2)
            for _ in range(30):
                raw(fake, "POST", "/v1/chat/completions", CHAT, AUTH)
            return [r.fault for r in fake.requests]

    first = faults(7)
    assert first == faults(7)
    assert {"429", "500", None} == set(first)


def test_latency_function_is_applied_per_request():
    with FakeProvider(latency=lambda req: 0.15 if "slow" in req.last_user else 0.0) as fake:
        started = time.perf_counter()
        raw(fake, "POST", "/v1/chat/completions", CHAT, AUTH)
        fast = time.perf_counter() - started
        slow_body = {"model": "m", "messages": [{"role": "user", "content": "slow please"}]}
        started = time.perf_counter()
        raw(fake, "POST", "/v1/chat/completions", slow_body, AUTH)
        assert time.perf_counter() - started >= 0.15 > fast


def test_unknown_fault_kind_is_refused(fake):
    with pytest.raises(ValueError, match="unknown fault kind"):
        fake.fail_next(1, "explode")


def test_reset_forgets_everything(fake):
    fake.script(["x"]).fail_next(3, "500")
    fake.responder = lambda req: "r"
    raw(fake, "POST", "/v1/chat/completions", CHAT, AUTH)
    fake.reset()
    assert fake.requests == []
    _, _, body = raw(fake, "POST", "/v1/chat/completions", CHAT, AUTH)
    assert json.loads(body)["choices"][0]["message"]["content"].startswith("fake reply to:")


def test_env_points_both_sdks_here(fake, monkeypatch):
    for k, v in fake.env().items():
        monkeypatch.setenv(k, v)
    assert openai.OpenAI(max_retries=0).chat.completions.create(model="m", messages=HI).choices
    assert anthropic.Anthropic(max_retries=0).messages.create(
        model="c", max_tokens=5, messages=HI).content


def test_many_concurrent_keep_alive_requests(fake):
    async def main() -> list[str]:
        client = openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="k", max_retries=0)
        sem = asyncio.Semaphore(100)

        async def one(i: int) -> str:
            async with sem:
                msgs = [{"role": "user", "content": f"n{i}"}]
                r = await client.chat.completions.create(model="m", messages=msgs)
                return r.choices[0].message.content

        try:
            return await asyncio.gather(*(one(i) for i in range(300)))
        finally:
            await client.close()

    out = asyncio.run(main())
    assert out == [f"fake reply to: n{i}" for i in range(300)]


def test_stop_is_idempotent_and_restart_works():
    fake = FakeProvider()
    fake.start()
    fake.stop()
    fake.stop()
    with fake:
        assert raw(fake, "GET", "/v1/models", None, AUTH)[0] == 200


def test_importing_orchnb_testing_does_not_import_the_sdks():
    code = ("import sys, orchnb.testing; "
            "print(sorted(m for m in ('openai', 'anthropic') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_command_line_server_prints_its_port_first():
    with subprocess.Popen(
        [sys.executable, "-m", "orchnb.testing.fake_server", "--port", "0", "--latency", "0.01"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    ) as proc:
        try:
            port = int(proc.stdout.readline())
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k",
                                   max_retries=0)
            r = client.chat.completions.create(model="m", messages=HI)
            assert r.choices[0].message.content == "fake reply to: hi there"
        finally:
            proc.terminate()
            assert proc.wait(5) == 0


def test_a_raising_responder_becomes_a_500_naming_the_error(fake):
    fake.responder = lambda req: 1 / 0
    status, _, body = raw(fake, "POST", "/v1/messages", CHAT, AUTH)
    assert status == 500 and "ZeroDivisionError" in json.loads(body)["error"]["message"]


# -- streaming ------------------------------------------------------------------------------------
def sse(body: bytes) -> list[tuple[str | None, str]]:
    """(event, data) pairs of a server-sent events body."""
    out = []
    for block in body.decode().split("\n\n"):
        if not block.strip():
            continue
        event = None
        data = []
        for line in block.split("\n"):
            name, _, value = line.partition(": ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
        out.append((event, "\n".join(data)))
    return out


STREAM = {**CHAT, "stream": True}


def test_openai_stream_is_chunks_then_usage_then_done(fake):
    fake.script([FakeReply(text="hello big world", input_tokens=30, output_tokens=3)])
    status, headers, body = raw(fake, "POST", "/v1/chat/completions",
                                {**STREAM, "stream_options": {"include_usage": True}}, AUTH)
    assert status == 200 and headers["content-type"] == "text/event-stream"
    assert headers["transfer-encoding"] == "chunked"
    events = sse(body)
    assert events[-1] == (None, "[DONE]")
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "hello big world"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == 30
    assert all(c["usage"] is None for c in chunks[:-1])


def test_openai_stream_without_include_usage_has_no_usage_chunk(fake):
    _, _, body = raw(fake, "POST", "/v1/chat/completions", STREAM, AUTH)
    chunks = [json.loads(data) for _, data in sse(body)[:-1]]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c for c in chunks)


def test_anthropic_stream_event_sequence_with_text_and_tool_use(fake):
    fake.script([FakeReply(text="adding", tool_calls=[("add", {"a": 1, "b": 2})])])
    _, _, body = raw(fake, "POST", "/v1/messages", STREAM, AUTH)
    events = sse(body)
    names = [e for e, _ in events]
    assert all(json.loads(data)["type"] == e for e, data in events)
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_start") == names.count("content_block_stop") == 2
    deltas = [json.loads(d)["delta"] for e, d in events if e == "content_block_delta"]
    assert "".join(d["text"] for d in deltas if d["type"] == "text_delta") == "adding"
    partial = "".join(d["partial_json"] for d in deltas if d["type"] == "input_json_delta")
    assert json.loads(partial) == {"a": 1, "b": 2}
    stop = json.loads(events[-2][1])
    assert stop["delta"]["stop_reason"] == "tool_use" and stop["usage"]["output_tokens"] > 0


def test_the_sdks_own_stream_helpers_accept_the_streams(fake):
    """The SDKs' accumulators (not ours) rebuild the same answer as the plain call gives."""
    reply = FakeReply(text="let me add", tool_calls=[("add", {"a": 1, "b": 2})],
                      input_tokens=50, output_tokens=8, cached_tokens=20)
    fake.script([reply, reply])
    tools = [{"type": "function", "function": {"name": "add", "parameters": {}}}]
    with oa(fake).chat.completions.stream(model="m", messages=HI, tools=tools,
                                          stream_options={"include_usage": True}) as s:
        done = s.get_final_completion()
    message = done.choices[0].message
    assert message.content == "let me add" and done.choices[0].finish_reason == "tool_calls"
    assert json.loads(message.tool_calls[0].function.arguments) == {"a": 1, "b": 2}
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (50, 8)
    with an(fake).messages.stream(model="c", max_tokens=10, messages=HI) as s:
        final = s.get_final_message()
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert final.content[1].input == {"a": 1, "b": 2} and final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.cache_read_input_tokens,
            final.usage.output_tokens) == (30, 20, 8)


def test_chunk_delay_spaces_the_chunks(fake):
    fake.chunk_delay = 0.05
    raw(fake, "POST", "/v1/chat/completions", STREAM, AUTH)
    times = fake.requests[-1].chunk_times
    assert len(times) > 3
    assert all(later - earlier >= 0.04 for earlier, later in itertools.pairwise(times))


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_cut_fault_drops_the_stream_after_n_chunks(fake, path):
    fake.fail_next(1, "cut", cut_after=2)
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    try:
        conn.request("POST", path, body=json.dumps(STREAM), headers=AUTH)
        resp = conn.getresponse()
        assert resp.status == 200
        with pytest.raises(http.client.IncompleteRead) as info:
            resp.read()
    finally:
        conn.close()
    assert len(sse(info.value.partial)) == 2
    assert fake.requests[-1].fault == "cut"


def test_truncate_fault_ends_the_stream_cleanly_without_its_final_event(fake):
    fake.fail_next(2, "truncate", cut_after=10_000)
    _, _, body = raw(fake, "POST", "/v1/chat/completions", STREAM, AUTH)
    chunks = [json.loads(data) for _, data in sse(body)]
    assert chunks and all(c["choices"][0]["finish_reason"] is None for c in chunks)
    _, _, body = raw(fake, "POST", "/v1/messages", STREAM, AUTH)
    names = [e for e, _ in sse(body)]
    assert names[-1] == "message_delta" and "message_stop" not in names


def test_cut_and_truncate_on_plain_requests_stop_halfway(fake):
    fake.fail_next(1, "cut").fail_next(1, "truncate")
    with pytest.raises((http.client.IncompleteRead, ConnectionError)):
        raw(fake, "POST", "/v1/chat/completions", CHAT, AUTH)
    status, _, body = raw(fake, "POST", "/v1/chat/completions", CHAT, AUTH)
    assert status == 200
    with pytest.raises(ValueError):
        json.loads(body)


def test_sdk_streams_surface_the_cut_as_their_connection_errors(fake):
    fake.fail_next(1, "cut", cut_after=2)
    chunks = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in oa(fake).chat.completions.create(model="m", messages=HI, stream=True):
            chunks.append(chunk)
    assert len(chunks) == 2


def test_stream_faults_need_a_sensible_count(fake):
    with pytest.raises(ValueError, match="cut_after"):
        fake.fail_next(1, "cut", cut_after=-1)


def test_stream_fault_rates_are_drawn_too():
    with FakeProvider(seed=3) as fake:
        fake.fault_rates(rate_cut=0.5, rate_truncate=0.5)
        for _ in range(10):
            with contextlib.suppress(http.client.IncompleteRead):
                raw(fake, "POST", "/v1/chat/completions", STREAM, AUTH)
        assert {r.fault for r in fake.requests} == {"cut", "truncate"}


def test_stream_error_fault_sends_the_vendors_error_event(fake):
    fake.fail_next(2, "stream_error", cut_after=1)
    _, _, body = raw(fake, "POST", "/v1/messages", STREAM, AUTH)
    events = sse(body)
    assert [e for e, _ in events] == ["message_start", "error"]
    assert json.loads(events[-1][1])["error"]["type"] == "overloaded_error"
    _, _, body = raw(fake, "POST", "/v1/chat/completions", STREAM, AUTH)
    assert "error" in json.loads(sse(body)[-1][1])
    fake.fail_next(1, "stream_error")
    assert raw(fake, "POST", "/v1/messages", CHAT, AUTH)[0] == 529

