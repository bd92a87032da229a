"""The key scrubber: known keys, key-shaped strings, and what it must leave alone."""

from __future__ import annotations

import pytest

from orchnb.models import needs_scrub, refresh_secrets, remember_secret, scrub_secrets
from orchnb.models._redact import scrub_exception


@pytest.mark.parametrize(("text", "expected"), [
    ("Incorrect API key provided: sk-proj-abcdefghijklmnop1234.",
     "Incorrect API key provided: [REDACTED]."),
    ("key sk-ant-api03-AbCdEfGhIjKlMnOp_qr-st", "key [REDACTED]"),
    ("Authorization: Bearer eyJhbGciOi.JIUzI1NiJ9", "Authorization: Bearer [REDACTED]"),
    ("x-api-key: abcdefgh12345678", "x-api-key: [REDACTED]"),
    ('{"api_key": "abcdefgh12345678"}', '{"api_key": "[REDACTED]"}'),
    ("X-API-KEY=abcdefgh12345678;", "X-API-KEY=[REDACTED];"),
])
def test_key_shaped_strings_are_redacted(text, expected):
    assert scrub_secrets(text) == expected


@pytest.mark.parametrize("text", [
    "Paris is the capital of France.", "task-abcdefghijklmnopqrstu is a word, not a key",
    "use sk-learn", "pass api_key= to the provider", "api_key=None", "a bearer bond", "",
])
def test_ordinary_text_is_left_alone(text):
    assert scrub_secrets(text) == text


def test_non_strings_pass_through():
    for value in (None, 3, 1.5, b"sk-abcdefghijklmnopqrs"):
        assert scrub_secrets(value) is value


def test_configured_keys_are_redacted_whatever_their_shape():
    remember_secret("plain-token-that-is-not-key-shaped")
    assert scrub_secrets("bad token plain-token-that-is-not-key-shaped!") == "bad token [REDACTED]!"
    assert needs_scrub("... plain-token-that-is-not-key-shaped ...")


def test_short_placeholders_are_not_secrets():
    remember_secret("ollama")
    assert scrub_secrets("served by ollama") == "served by ollama"


def test_environment_keys_are_picked_up(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "env-token-0123456789")
    refresh_secrets()
    assert scrub_secrets("got env-token-0123456789") == "got [REDACTED]"


def test_a_key_containing_another_is_removed_whole():
    remember_secret("nested-key-12345678")
    remember_secret("nested-key-12345678-and-more")
    assert scrub_secrets("x nested-key-12345678-and-more y") == "x [REDACTED] y"


def test_sdk_exceptions_are_scrubbed_in_place():
    class Fake(Exception):
        def __init__(self):
            super().__init__("Error code: 401 - sk-abcdefghijklmnopqrstu")
            self.message = str(self.args[0])
            self.body = {"error": {"message": ["Bearer abcdefgh12345678"]}}

    e = Fake()
    scrub_exception(e)
    assert "sk-abc" not in str(e) and "sk-abc" not in e.message
    assert e.body == {"error": {"message": ["Bearer [REDACTED]"]}}


def test_a_hostile_deep_error_body_does_not_crash_the_scrubber():
    body: list = []
    for _ in range(5000):
        body = [body]

    class Fake(Exception):
        pass

    e = Fake("x")
    e.body = body
    scrub_exception(e)  # no RecursionError
