"""Hostile bytes for the fake server: answers whose body is not valid UTF-8.

A server (or a proxy in between) that mangles an encoding sends bytes no UTF-8 decoder takes;
the SDKs decode a body, or an SSE line, before they parse it. Lone surrogates and NULs need no
help here: a :class:`~orchnb.testing.FakeReply` text holding them is sent as the JSON escapes
``\\ud800`` and ``\\u0000``, which is what servers send.
"""

from __future__ import annotations

BAD_BYTES = b"\xff\xfe\xc3"
"""Never valid UTF-8: 0xFF and 0xFE start no sequence, 0xC3 is a lead byte left unfinished."""


def corrupt(data: bytes) -> bytes:
    """``data`` with :data:`BAD_BYTES` inside its first JSON string value (or at its end).

    >>> corrupt(b'{"id": "x"}')
    b'{"id": "\\xff\\xfe\\xc3x"}'
    """
    at = data.find(b'": "')
    if at < 0:
        return data + BAD_BYTES
    at += 4
    return data[:at] + BAD_BYTES + data[at:]


def corrupt_frames(frames: list[bytes], at: int) -> list[bytes]:
    """A streamed answer's frames with frame ``at`` (0-based; the last one when there are
    fewer) corrupted, so ``at`` frames arrive intact first.

    >>> corrupt_frames([b'a', b'b'], 5)
    [b'a', b'b\\xff\\xfe\\xc3']
    """
    if not frames:
        return [BAD_BYTES]
    at = min(at, len(frames) - 1)
    return [*frames[:at], corrupt(frames[at]), *frames[at + 1:]]
