"""An SDK client whose provider is dropped is closed on its own loop, not by the garbage collector.

The bug this guards against: a dropped provider's client (a reference cycle) was left to the
cyclic GC, which finalized its pooled transports (closing their sockets, freeing the fd numbers)
and, in the same pass, scheduled the client's close. That close later aborted the transports,
and each abort unregistered its stale fd number from the loop, which by then belonged to a new
connection: the new connection never saw its answer (the "loopback stall" of the budget tests).
"""

from __future__ import annotations

import asyncio
import gc
import socket

import pytest

from orchnb.models import Message, ModelRequest
from orchnb.models._anthropic import AnthropicProvider
from orchnb.models._openai import OpenAIProvider

PROVIDERS = {
    "openai": lambda fake: OpenAIProvider(base_url=fake.openai_base_url, api_key="sk-fake"),
    "anthropic": lambda fake: AnthropicProvider(base_url=fake.anthropic_base_url,
                                                api_key="sk-ant-fake"),
}
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5"}


async def _drop_then_listen(make, model: str) -> int:
    """Use a provider (a pooled connection stays open), drop it, collect garbage, then watch
    fresh sockets on the same loop; returns how many of them saw the byte written to them."""
    provider = make()
    for _ in range(3):
        await provider.request(model, ModelRequest([Message("user", "hi")]))
    del provider
    gc.collect()
    # Fresh sockets take the lowest free fd numbers: the ones a finalized transport freed.
    loop = asyncio.get_running_loop()
    pairs = [socket.socketpair() for _ in range(8)]
    seen: list[int] = []
    try:
        for i, (a, _b) in enumerate(pairs):
            a.setblocking(False)
            loop.add_reader(a.fileno(), seen.append, i)
        for _ in range(20):  # let the dropped client's close run first
            await asyncio.sleep(0)
        for _a, b in pairs:
            b.send(b"x")
        for _ in range(200):
            if len(seen) >= len(pairs):
                break
            await asyncio.sleep(0.01)
        return len(set(seen))
    finally:
        for a, b in pairs:
            loop.remove_reader(a.fileno())
            a.close()
            b.close()


@pytest.mark.parametrize("api", sorted(PROVIDERS))
def test_a_dropped_providers_client_does_not_unregister_newer_sockets(fake, api):
    # One long-lived loop, as a script's (or a kernel's) loop that many runs share.
    loop = asyncio.new_event_loop()
    try:
        seen = loop.run_until_complete(_drop_then_listen(lambda: PROVIDERS[api](fake),
                                                         MODELS[api]))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    assert seen == 8  # every fresh socket is still watched by its loop


def test_a_dropped_providers_client_is_closed_on_its_loop(fake):
    loop = asyncio.new_event_loop()
    try:
        provider = OpenAIProvider(base_url=fake.openai_base_url, api_key="sk-fake")
        loop.run_until_complete(provider.request("gpt-4o-mini",
                                                 ModelRequest([Message("user", "hi")])))
        client = loop.run_until_complete(provider._clients.get())
        del provider
        gc.collect()
        assert not client.is_closed()  # the close waits for the loop to run...
        loop.run_until_complete(asyncio.sleep(0.05))
        assert client.is_closed()  # ...and then happens there
    finally:
        loop.close()
