"""Test doubles shipped with orchnb: a loopback server speaking the OpenAI and Anthropic APIs.

>>> from orchnb.testing import FakeProvider
>>> with FakeProvider() as fake, pointed_at(fake.env()):   # doctest: +SKIP
...     ...                                       # the real SDKs now talk to the fake

Importing this package never imports the ``openai`` or ``anthropic`` SDKs.
"""

from ._env import pointed_at
from ._fake_server import FAULT_KINDS, FakeProvider
from ._wire import EMBEDDING_DIM, FakeReply, FakeRequest, embedding_vector

__all__ = [
    "EMBEDDING_DIM",
    "FAULT_KINDS",
    "FakeProvider",
    "FakeReply",
    "FakeRequest",
    "embedding_vector",
    "pointed_at",
]
