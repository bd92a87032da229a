"""Test doubles shipped with orchnb: a loopback server speaking the OpenAI and Anthropic APIs.

>>> from orchnb.testing import FakeProvider
>>> with FakeProvider() as fake:                 # doctest: +SKIP
...     os.environ.update(fake.env())            # the real SDKs now talk to the fake

Importing this package never imports the ``openai`` or ``anthropic`` SDKs.
"""

from ._fake_server import FAULT_KINDS, FakeProvider
from ._wire import EMBEDDING_DIM, FakeReply, FakeRequest, embedding_vector

__all__ = [
    "EMBEDDING_DIM",
    "FAULT_KINDS",
    "FakeProvider",
    "FakeReply",
    "FakeRequest",
    "embedding_vector",
]
