"""The YAML keys every pattern accepts besides its own: budget, cache, timeout, stream, retry."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, as everywhere


class BudgetSpec(_Options):
    """``budget: {max_calls, max_tokens, max_usd}``"""

    max_calls: int | None = Field(default=None, ge=0, strict=True)
    max_tokens: int | None = Field(default=None, ge=0, strict=True)
    max_usd: float | None = Field(default=None, ge=0)


class RetrySpec(_Options):
    """``retry: {max_attempts, backoff, max_backoff, max_retry_after, jitter}`` (the fields of
    :class:`orchnb.RetryPolicy`; the ones left out keep their defaults)."""

    max_attempts: int | None = Field(default=None, ge=1, strict=True)
    backoff: float | None = Field(default=None, ge=0)
    max_backoff: float | None = Field(default=None, ge=0)
    max_retry_after: float | None = Field(default=None, ge=0)
    jitter: bool | None = None


def common_options(spec: Any) -> dict[str, Any]:
    """The options every pattern accepts in YAML (budget, cache, timeout, stream, retry)."""
    from ..engine import Budget, RetryPolicy

    opts: dict[str, Any] = {}
    if getattr(spec, "budget", None):
        opts["budget"] = Budget(**spec.budget.model_dump())
    if getattr(spec, "retry", None) is not None:
        opts["retry"] = RetryPolicy(**spec.retry.model_dump(exclude_none=True))
    for key in ("cache", "timeout", "stream", "service_tier"):
        if getattr(spec, key, None) is not None:
            opts[key] = getattr(spec, key)
    return opts
