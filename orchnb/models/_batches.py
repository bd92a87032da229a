"""Provider batch APIs: OpenAI's Batch API (a JSONL file upload, a batch, output and error
files) and Anthropic's Message Batches, behind one small interface the engine drives.

Like a provider, a batch client only turns our requests into the vendor's and the vendor's
answers into ours; when to submit, polling, budgets, spans and resume are the engine's
(``orchnb.engine._batch``). Answers are parsed line by line (bounded, linear time); a line that
is no answer becomes that request's error, never a crash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from ..exceptions import ProviderError
from ._anthropic import AnthropicProvider, from_anthropic, to_anthropic
from ._openai import OpenAIProvider, from_openai, to_openai
from ._types import ModelRequest, ModelResponse

Answers = dict[str, "ModelResponse | ProviderError"]
_MAX_LINES = 100_000
"""Most requests in one batch (OpenAI's limit is 50,000, Anthropic's 100,000)."""


@dataclass(frozen=True, slots=True)
class BatchStatus:
    """Where a provider batch is, in the provider's own counts."""

    id: str
    ended: bool
    """No request is processing any more (completed, cancelled, expired or failed)."""
    done: int
    """Requests that succeeded."""
    failed: int
    """Requests that errored, expired or were cancelled."""
    total: int
    state: str
    """The provider's own status word (``in_progress``, ``completed``, ``ended``...)."""


class BatchAPI(Protocol):
    """What the engine needs of a provider's batch API."""

    max_requests: int
    """Most requests one batch may hold (larger rounds are split)."""

    async def submit(self, model: str, items: list[tuple[str, ModelRequest]]) -> str:
        """Send ``(custom_id, request)`` pairs as one batch; returns the batch id."""
        ...

    async def poll(self, batch_id: str) -> BatchStatus: ...

    async def results(self, batch_id: str, model: str,
                      requests: dict[str, ModelRequest]) -> Answers:
        """Each custom id's answer, or its error (ids without a line are left out)."""
        ...

    async def cancel(self, batch_id: str) -> None: ...


def batch_api(provider: Any) -> BatchAPI | None:
    """The batch API of ``provider``; None when it has none (sim, compatible servers)."""
    if type(provider) is OpenAIProvider and provider.name == "openai":
        return OpenAIBatches(provider)
    if type(provider) is AnthropicProvider:
        return AnthropicBatches(provider)
    return None


def _failed(provider: str, model: str, cid: str, status: int | None, message: str
            ) -> ProviderError:
    return ProviderError(f"{provider}:{model}: batch request {cid} failed"
                         f"{f' ({status})' if status else ''}: {message[:300]}",
                         provider=provider, model=model, status=status, retryable=False)


class OpenAIBatches:
    """OpenAI's Batch API through ``openai.AsyncOpenAI`` (files + batches)."""

    max_requests = 50_000

    def __init__(self, provider: OpenAIProvider):
        self.provider = provider

    async def _client(self) -> Any:
        return await self.provider._clients.get()

    async def submit(self, model: str, items: list[tuple[str, ModelRequest]]) -> str:
        lines = [json.dumps({"custom_id": cid, "method": "POST", "url": "/v1/chat/completions",
                             "body": {"model": model, **to_openai(r)}}, ensure_ascii=False)
                 for cid, r in items]
        client = await self._client()
        try:
            file = await client.files.create(
                file=("orchnb-batch.jsonl", ("\n".join(lines) + "\n").encode(),
                      "application/jsonl"), purpose="batch")
            batch = await client.batches.create(input_file_id=file.id,
                                                endpoint="/v1/chat/completions",
                                                completion_window="24h")
        except Exception as e:
            raise self.provider._error(e, model, None) from e
        return str(batch.id)

    async def poll(self, batch_id: str) -> BatchStatus:
        client = await self._client()
        try:
            b = await client.batches.retrieve(batch_id)
        except Exception as e:
            raise self.provider._error(e, "batch", None) from e
        c = b.request_counts
        done, failed, total = (c.completed, c.failed, c.total) if c is not None else (0, 0, 0)
        ended = b.status in ("completed", "failed", "expired", "cancelled")
        return BatchStatus(batch_id, ended, done, failed, total, str(b.status))

    async def results(self, batch_id: str, model: str,
                      requests: dict[str, ModelRequest]) -> Answers:
        client = await self._client()
        try:
            b = await client.batches.retrieve(batch_id)
            texts = [(await client.files.content(fid)).text
                     for fid in (b.output_file_id, b.error_file_id) if fid]
        except Exception as e:
            raise self.provider._error(e, model, None) from e
        out: Answers = {}
        for text in texts:
            for line in text.splitlines()[:_MAX_LINES]:
                if line.strip():
                    self._line(line, model, requests, out)
        return out

    def _line(self, line: str, model: str, requests: dict[str, ModelRequest],
              out: Answers) -> None:
        from openai.types.chat import ChatCompletion

        try:
            item = json.loads(line)
            cid = str(item["custom_id"])
            response, error = item.get("response") or {}, item.get("error")
        except (ValueError, KeyError, TypeError, AttributeError):
            return  # no custom id: no request to give it to
        if cid not in requests:
            return
        status = response.get("status_code") if isinstance(response, dict) else None
        body = response.get("body") if isinstance(response, dict) else None
        if status == 200 and isinstance(body, dict):
            try:
                out[cid] = from_openai(ChatCompletion.model_validate(body), model,
                                       requests[cid])
            except (ValueError, TypeError, KeyError, AttributeError, ProviderError) as e:
                out[cid] = _failed("openai", model, cid, None, f"malformed answer: {e}")
            return
        message = (body or {}).get("error", {}).get("message") if isinstance(body, dict) else None
        if isinstance(error, dict):
            message = message or f"{error.get('code')}: {error.get('message')}"
        out[cid] = _failed("openai", model, cid, status, str(message or "no answer"))

    async def cancel(self, batch_id: str) -> None:
        client = await self._client()
        try:
            await client.batches.cancel(batch_id)
        except Exception as e:
            raise self.provider._error(e, "batch", None) from e


class AnthropicBatches:
    """Anthropic's Message Batches through ``anthropic.AsyncAnthropic``."""

    max_requests = 100_000

    def __init__(self, provider: AnthropicProvider):
        self.provider = provider

    async def submit(self, model: str, items: list[tuple[str, ModelRequest]]) -> str:
        requests = []
        for cid, r in items:
            params = to_anthropic(r)
            params.update(params.pop("extra_body", None) or {})  # temperature rides in params
            requests.append({"custom_id": cid, "params": {"model": model, **params}})
        client = await self.provider._clients.get()
        try:
            batch = await client.messages.batches.create(requests=requests)
        except Exception as e:
            raise self.provider._error(e, model, None) from e
        return str(batch.id)

    async def poll(self, batch_id: str) -> BatchStatus:
        client = await self.provider._clients.get()
        try:
            b = await client.messages.batches.retrieve(batch_id)
        except Exception as e:
            raise self.provider._error(e, "batch", None) from e
        c = b.request_counts
        failed = c.errored + c.canceled + c.expired
        total = c.processing + c.succeeded + failed
        return BatchStatus(batch_id, b.processing_status == "ended", c.succeeded, failed, total,
                           str(b.processing_status))

    async def results(self, batch_id: str, model: str,
                      requests: dict[str, ModelRequest]) -> Answers:
        client = await self.provider._clients.get()
        out: Answers = {}
        try:
            lines = await client.messages.batches.results(batch_id)
            async for item in lines:
                if len(out) >= _MAX_LINES:
                    break
                cid = str(item.custom_id)
                if cid in requests:
                    out[cid] = self._answer(item.result, model, cid, requests[cid])
        except Exception as e:
            raise self.provider._error(e, model, None) from e
        return out

    @staticmethod
    def _answer(result: Any, model: str, cid: str, request: ModelRequest
                ) -> ModelResponse | ProviderError:
        kind = getattr(result, "type", None)
        if kind == "succeeded":
            try:
                return from_anthropic(result.message, model, request)
            except (ValueError, TypeError, KeyError, AttributeError) as e:
                return _failed("anthropic", model, cid, None, f"malformed answer: {e}")
        if kind == "errored":
            err = getattr(getattr(result, "error", None), "error", None)
            text = f"{getattr(err, 'type', 'error')}: {getattr(err, 'message', '')}"
            return _failed("anthropic", model, cid, None, text)
        return _failed("anthropic", model, cid, None, f"request {kind or 'without result'}")

    async def cancel(self, batch_id: str) -> None:
        client = await self.provider._clients.get()
        try:
            await client.messages.batches.cancel(batch_id)
        except Exception as e:
            raise self.provider._error(e, "batch", None) from e
