"""Tools from typed Python functions: name, docstring and type hints become a JSON schema."""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, get_type_hints

from ..exceptions import SpecError, ToolError
from ..models import ToolSpec

if TYPE_CHECKING:
    from pydantic import BaseModel


_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class Tool:
    """A Python function an agent can call; arguments are validated before it runs.

    >>> def add(a: int, b: int) -> int:
    ...     '''Add two integers.'''
    ...     return a + b
    >>> t = Tool(add)
    >>> t.spec.parameters["required"]
    ['a', 'b']
    >>> t.validate({"a": "2", "b": 3})
    {'a': 2, 'b': 3}
    """

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None,
                 description: str | None = None):
        if not callable(fn):
            raise SpecError(f"Tool: {fn!r} is not a function; pass a typed Python function")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "")
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise SpecError(
                f"tool name {self.name!r} is not allowed: model APIs take 1 to 64 letters, "
                f"digits, '_' or '-'; name it: orchnb.Tool(fn, name='lookup') or "
                f"@orchnb.tool(name='lookup')")
        if description is not None and not isinstance(description, str):
            raise SpecError(f"tool '{self.name}': description must be text, not {description!r}")
        doc = inspect.getdoc(fn) or ""
        self.description = description or doc.split("\n\n")[0].strip() or self.name
        self.is_async = asyncio.iscoroutinefunction(fn)
        self._args_model = _args_model(fn, self.name)
        schema = self._args_model.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        self.spec = ToolSpec(self.name, self.description, schema)

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Arguments coerced to the function's types; raises ToolError saying what is wrong."""
        from pydantic import ValidationError  # pydantic loads with the first tool, not at import

        try:
            model = self._args_model.model_validate(arguments)
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(arguments)'}: {err['msg']}"
                for err in e.errors()
            )
            raise ToolError(
                f"tool '{self.name}': invalid arguments {arguments!r}: {problems}") from None
        return {k: getattr(model, k) for k in type(model).model_fields}

    async def invoke(self, arguments: dict[str, Any]) -> Any:
        """Validate and run (sync functions run in a worker thread so the loop stays free)."""
        args = self.validate(arguments)
        if self.is_async:
            return await self.fn(**args)
        return await asyncio.to_thread(self.fn, **args)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"


def _args_model(fn: Callable[..., Any], name: str) -> type[BaseModel]:
    from pydantic import ConfigDict, create_model

    try:
        hints = get_type_hints(fn)
    except Exception:  # unresolved forward refs: fall back to the raw annotations
        hints = getattr(fn, "__annotations__", {})
    fields: dict[str, Any] = {}
    for pname, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = hints.get(pname, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (annotation, default)
    return create_model(f"{name}_args", __config__=ConfigDict(extra="forbid"), **fields)


def tool(fn: Callable[..., Any] | None = None, *, name: str | None = None,
         description: str | None = None) -> Any:
    """Decorator turning a typed function into a :class:`Tool`.

    >>> @tool
    ... def weather(city: str) -> str:
    ...     '''Current weather in a city.'''
    ...     return "sunny"
    >>> weather.spec.name
    'weather'
    """
    if fn is None:
        return lambda f: Tool(f, name=name, description=description)
    return Tool(fn, name=name, description=description)


def as_tool(obj: Any) -> Tool:
    """A Tool from a Tool or a plain callable."""
    if isinstance(obj, Tool):
        return obj
    if callable(obj):
        return Tool(obj)
    raise ToolError(f"{obj!r} is not a tool: pass a typed Python function or an orchnb.Tool")
