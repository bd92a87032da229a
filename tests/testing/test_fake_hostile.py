"""The fake server's hostile answers: bodies that are not UTF-8, lone surrogates and NULs in
JSON, and answers without token usage, on both wire formats, streamed and not."""

from __future__ import annotations

import http.client
import json

import pytest

from orchnb.testing import FakeProvider, FakeReply

HI = [{"role": "user", "content": "hi there"}]
AUTH = {"openai": {"authorization": "Bearer sk-fake"}, "anthropic": {"x-api-key": "sk-ant-fake"}}
PATH = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}


def post(fake: FakeProvider, api: str, stream: bool) -> bytes:
    body = {"model": "m", "messages": HI, "max_tokens": 10, "stream": stream}
    if api == "openai":
        body["stream_options"] = {"include_usage": True}
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    try:
        conn.request("POST", PATH[api], json.dumps(body).encode(),
                     {"content-type": "application/json", **AUTH[api]})
        resp = conn.getresponse()
        assert resp.status == 200
        return resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_bad_utf8_answers_200_with_bytes_no_decoder_takes(fake, api, stream):
    fake.fail_next(1, "bad_utf8", cut_after=1)
    data = post(fake, api, stream)
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert fake.requests[-1].fault == "bad_utf8"
    if stream:  # the chunk before the corrupted one arrives intact
        first = data.split(b"\n\n")[0]
        first.decode("utf-8")
    # the next answer is clean again
    post(fake, api, stream).decode("utf-8")


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_surrogates_and_nuls_in_a_reply_go_out_as_json_escapes(fake, api, stream):
    fake.script([FakeReply(text="a\ud800b\x00c")])
    data = post(fake, api, stream)
    text = data.decode("utf-8")  # valid UTF-8: the escapes are ASCII
    assert "\\ud800" in text and "\\u0000" in text


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_send_usage_false_leaves_every_usage_out(fake, api, stream):
    assert b"_tokens" in post(fake, api, stream)
    fake.send_usage = False
    data = post(fake, api, stream)
    assert b"usage" not in data and b"_tokens" not in data
    if stream:  # still a complete stream
        assert (b"[DONE]" if api == "openai" else b"message_stop") in data


def test_bad_utf8_is_a_fault_rate_too():
    with FakeProvider(seed=1) as fake:
        fake.fault_rates(rate_bad_utf8=1.0)
        with pytest.raises(UnicodeDecodeError):
            post(fake, "openai", False).decode("utf-8")
