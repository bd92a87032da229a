"""orchnb's exceptions, one tree.

::

    OrchnbError
    ├── SpecError                 a pipeline definition is wrong (before any call is paid for)
    │   ├── YAMLError             the %%orch body is not valid YAML
    │   ├── TemplateError         a prompt template has a syntax error or an unknown variable
    │   ├── UnknownModelError     a model string names no provider, or a malformed one
    │   └── ForkError             run.fork / load_run: a step never reached, a changed pipeline,
    │                             an edit that does not apply
    ├── MissingAPIKeyError        a provider needs a key that is not set
    └── RunError                  something failed while a pipeline ran
        ├── ProviderError         the model API answered with an error (after retries)
        ├── CallTimeoutError      a model or tool call took longer than its timeout
        ├── BudgetExceeded        a calls / tokens / USD cap was reached
        ├── MaxIterationsExceeded an agent, re-planner or team hit its iteration cap
        ├── ToolError             a tool was called wrongly or failed where it cannot be observed
        ├── ReplayError           a replayed or forked run no longer matches its recording
        ├── StructuredOutputError a model's answer did not fit the step's output schema, twice
        └── RunCancelled          the run was cancelled (kernel interrupt, Stop button)

Every message says what was wrong, where (step, YAML key, line) and what to do. In IPython each
shows as that one block, not a traceback through orchnb's internals; ``%xmode verbose`` or
``orchnb.configure(debug=True)`` brings the traceback back.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = [
    "BudgetExceeded",
    "CallTimeoutError",
    "ForkError",
    "MaxIterationsExceeded",
    "MissingAPIKeyError",
    "OrchnbError",
    "OrchnbWarning",
    "ProviderError",
    "ReplayError",
    "RunCancelled",
    "RunError",
    "SpecError",
    "StructuredOutputError",
    "TemplateError",
    "ToolError",
    "UnknownModelError",
    "YAMLError",
]


class OrchnbError(Exception):
    """Base of every error orchnb raises on purpose.

    >>> try:
    ...     raise SpecError("steps[0]: 'model' is required")
    ... except OrchnbError as e:
    ...     print(e)
    steps[0]: 'model' is required
    """

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross processes (Ray workers): rebuilt without __init__ (whose keyword-only
        # arguments pickle cannot pass), minus the run they belong to (it stays in its process).
        state = {k: v for k, v in self.__dict__.items() if k != "run"}
        return _rebuild, (type(self), self.args, state)


def _rebuild(cls: type[OrchnbError], args: tuple[Any, ...], state: dict[str, Any]
             ) -> OrchnbError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class OrchnbWarning(UserWarning):
    """Warnings orchnb emits (unpriced model, simulated model, cache bypassed...)."""


class SpecError(OrchnbError, ValueError):
    """A pipeline definition is invalid; raised before any model call.

    ``key`` is the dotted path of the offending key (``steps[1].prompt``) and ``line`` the
    1-based line in the ``%%orch`` cell body, when known.
    """

    def __init__(self, message: str, *, key: str | None = None, line: int | None = None):
        self.key = key
        self.line = line
        where = []
        if line is not None:
            where.append(f"line {line}")
        if key:
            where.append(f"key '{key}'")
        prefix = f"{', '.join(where)}: " if where else ""
        super().__init__(prefix + message)
        self.message = message

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a traceback: a spec mistake is the user's, not ours.
        return _UserFacing._render_traceback_(self)  # type: ignore[arg-type]


class YAMLError(SpecError):
    """The ``%%orch`` cell body is not valid YAML (the line of the first problem is given)."""


class TemplateError(SpecError):
    """A Jinja2 prompt template has a syntax error or uses an undefined variable."""


class UnknownModelError(SpecError):
    """A model string is malformed (``provider:model``) or names an unknown provider."""


_DEBUG = [False]


def show_tracebacks(on: bool) -> None:
    """Show orchnb's errors in IPython with their full traceback (``configure(debug=True)``)."""
    _DEBUG[0] = bool(on)


def _shell() -> Any:
    ipython = sys.modules.get("IPython")  # never imported here: only if a shell is running
    return ipython.get_ipython() if ipython is not None else None


def _verbose(shell: Any) -> bool:
    mode = getattr(getattr(shell, "InteractiveTB", None), "mode", "")
    return _DEBUG[0] or mode == "Verbose"


class _UserFacing:
    """Errors a user causes or meets show as one clear block in IPython (what, where, what to
    do), not a traceback through orchnb's internals. IPython asks for this block instead of a
    traceback; ``%xmode verbose`` or ``orchnb.configure(debug=True)`` gets the traceback."""

    def _render_traceback_(self) -> list[str]:
        shell = _shell()
        if shell is not None and _verbose(shell):
            return shell.InteractiveTB.structured_traceback(  # type: ignore[no-any-return]
                type(self), self, self.__traceback__)
        lines = [f"\x1b[31m{type(self).__name__}\x1b[0m: {self}"]
        run = getattr(self, "run", None)
        if run is not None and getattr(run, "id", None):
            step = getattr(self, "step", None)
            named = not step or f"step '{step}'" in str(self)
            lines.append(f"  where: run {run.id} of '{run.pipeline}'"
                         + ("" if named else f", step '{step}'"))
        cause = self.__cause__
        if cause is not None and not isinstance(self, ProviderError | CallTimeoutError) \
                and not isinstance(cause, OrchnbError):
            lines.append(f"  caused by {type(cause).__name__}: {str(cause)[:500]}")
        lines.append("\x1b[2m  (full traceback: %xmode verbose, or "
                     "orchnb.configure(debug=True))\x1b[0m")
        return lines


class ForkError(SpecError):
    """``run.fork`` / ``orchnb.load_run`` cannot start: a step the run never reached, a stored
    run whose pipeline changed shape, an edit key the step does not have. Raised before any
    call."""


class MissingAPIKeyError(_UserFacing, OrchnbError):
    """A provider needs an API key that is not set. ``variable`` names the env var to set;
    ``missing`` maps every variable to set to its provider (a run checks all before paying).
    """

    def __init__(self, provider: str, variable: str, *, missing: dict[str, str] | None = None):
        self.provider = provider
        self.variable = variable
        self.missing = missing or {variable: provider}
        if len(self.missing) == 1:
            text = (f"{provider}: no API key. Set the environment variable {variable} "
                    f"(or pass api_key= to the provider), or use a 'sim:' model to run offline.")
        else:
            names = " and ".join(", ".join(self.missing).rsplit(", ", 1))
            providers = ", ".join(dict.fromkeys(self.missing.values()))
            text = (f"no API keys for {providers}: set the environment variables {names}, or "
                    f"use 'sim:' models to run offline. Nothing was called.")
        super().__init__(text)

    @classmethod
    def of(cls, missing: dict[str, str]) -> MissingAPIKeyError:
        """One error for several missing keys (``{variable: provider}``)."""
        variable, provider = next(iter(missing.items()))
        return cls(provider, variable, missing=missing)


class RunError(_UserFacing, OrchnbError):
    """A failure during a run. ``step`` names the step that failed, when known."""

    step: str | None = None


class ProviderError(RunError):
    """The provider's API returned an error that outlasted the retries.

    ``status`` is the HTTP status (None for connection errors / malformed bodies),
    ``retryable`` says whether the engine may retry it, ``retry_after`` is the server's hint in
    seconds.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        model: str = "",
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ):
        self.provider = provider
        self.model = model
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(message)


class CallTimeoutError(RunError):
    """A model or tool call exceeded its timeout (retried like a transient provider error)."""


class BudgetExceeded(RunError):
    """A budget cap (calls, tokens or USD) was reached. ``limit`` names which one."""

    def __init__(self, message: str, *, limit: str):
        self.limit = limit
        super().__init__(message)


class MaxIterationsExceeded(RunError):
    """An agent loop, re-planner or team reached its cap on iterations or turns."""


class ToolError(RunError):
    """A tool is unknown or failed in a way that cannot be handed back to the model."""


class StructuredOutputError(RunError):
    """A model's answer did not validate against the step's output schema, even after one
    repair call that showed it its answer and the error. ``raw`` is the last answer's text,
    ``schema`` the schema's name, ``problems`` the validation error; nothing is lost.

    >>> e = StructuredOutputError("step 'x': not JSON", raw="oops", schema="Invoice")
    >>> e.raw, e.schema
    ('oops', 'Invoice')
    """

    def __init__(self, message: str, *, raw: str = "", schema: str = "",
                 problems: str = "", step: str | None = None):
        self.raw = raw
        self.schema = schema
        self.problems = problems
        self.step = step
        super().__init__(message)


class RunCancelled(RunError):
    """The run was cancelled (kernel interrupt or Stop). The partial trace is kept."""


class ReplayError(RunError):
    """A replayed or forked run asked for a call its recording does not have (the pipeline or
    its code changed before the point where it may call for real)."""
