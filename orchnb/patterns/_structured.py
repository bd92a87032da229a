"""Structured output: a step's answer as a validated object (a pydantic model or a JSON schema).

::

    call (native schema, or the schema in the prompt) → parse + validate
        └ invalid → one repair call showing the answer and the error → validate
            └ invalid again → StructuredOutputError (with the raw text)

Providers with ``capabilities.structured_output`` get the schema on the wire (OpenAI
``response_format``, Anthropic forced tool use); the others are asked in the prompt and parsed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..engine import RunContext
from ..exceptions import ProviderError, SpecError, StructuredOutputError
from ..models import Message, Model, ModelResponse, ToolSpec

MAX_SCHEMA_CHARS = 20_000
"""Longest JSON schema (as JSON text) a step may carry: it rides in every call's prompt."""


class Invalid(ValueError):
    """An answer that does not fit the schema; the message says why, for the model to read."""


class OutputSchema:
    """What a step's answer must be: a pydantic model class or a JSON schema (a dict).

    A pydantic model gives instances of it; a JSON schema gives plain JSON values (dicts),
    validated with ``jsonschema`` when it is installed, else on types and required keys.

    >>> from pydantic import BaseModel
    >>> class Invoice(BaseModel):
    ...     amount: float
    >>> out = OutputSchema(Invoice)
    >>> out.name, out.validate('{"amount": "12.5"}').amount
    ('Invoice', 12.5)
    >>> OutputSchema({"type": "object", "required": ["a"]}).validate('{"a": 1}')
    {'a': 1}
    """

    def __init__(self, spec: Any, *, owner: str = ""):
        from pydantic import BaseModel

        self.model: type[BaseModel] | None = None
        if isinstance(spec, OutputSchema):
            self.model, self.schema, self.name = spec.model, spec.schema, spec.name
            return
        if isinstance(spec, type) and issubclass(spec, BaseModel):
            self.model = spec
            try:
                self.schema: dict[str, Any] = spec.model_json_schema()
            except Exception as e:  # e.g. a field type with no JSON schema
                raise SpecError(f"{owner}output model {spec.__name__} has no JSON schema: {e}",
                                key="output") from None
            self.name = spec.__name__
        elif isinstance(spec, Mapping):
            self.schema = dict(spec)
            _check_schema(self.schema, owner)
            self.name = str(self.schema.get("title") or "output")
        else:
            raise SpecError(f"{owner}output must be a pydantic model class or a JSON schema "
                            f"(a dict), got {type(spec).__name__} {spec!r:.60}", key="output")
        if len(json.dumps(self.schema, default=str)) > MAX_SCHEMA_CHARS:
            raise SpecError(f"{owner}output schema '{self.name}' is over {MAX_SCHEMA_CHARS:,} "
                            f"characters of JSON; give the model a smaller one", key="output")

    def instructions(self, lead: str = "Answer with") -> str:
        """What a model without native structured output is told (appended to the system)."""
        return (f"{lead} only a JSON value that fits this JSON schema: no prose, no code "
                f"fences.\nJSON schema ({self.name}):\n"
                f"{json.dumps(self.schema, ensure_ascii=False)}")

    def validate(self, text: str) -> Any:
        """The answer as an object; raises :class:`Invalid` saying what is wrong."""
        value = parse_json_answer(text)
        if self.model is not None:
            from pydantic import ValidationError

            try:
                return self.model.model_validate(value)
            except ValidationError as e:
                raise Invalid("; ".join(
                    f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
                    for err in e.errors()[:10])) from None
        _validate_json(value, self.schema)
        return value

    def __repr__(self) -> str:
        return f"OutputSchema({self.name!r})"


def _check_schema(schema: dict[str, Any], owner: str) -> None:
    try:
        import jsonschema
    except ImportError:
        if "type" not in schema and "properties" not in schema and "anyOf" not in schema:
            raise SpecError(f"{owner}output is not a JSON schema: it has no 'type', "
                            "'properties' or 'anyOf'", key="output") from None
        return
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as e:
        raise SpecError(f"{owner}output is not a valid JSON schema: {e.message}",
                        key="output") from None


def parse_json_answer(text: str) -> Any:
    """JSON from a model's answer, forgiving code fences and prose around one object or list;
    ``Invalid`` (a ValueError) when there is none. Structured output and eval scorers use it.

    >>> parse_json_answer('Sure: ```json\n{"a": 1}\n```')
    {'a': 1}
    """
    candidates = [text.strip()]
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    if fenced:
        candidates.append(fenced.group(1).strip())
    for opening, closing in (("{", "}"), ("[", "]")):
        start, end = text.find(opening), text.rfind(closing)
        if 0 <= start < end:
            candidates.append(text[start:end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except (ValueError, RecursionError):
            continue
    shown = text.strip()[:80] or "(an empty answer)"
    raise Invalid(f"the answer is not JSON: {shown!r}")


_TYPES: dict[str, Any] = {"object": dict, "array": list, "string": str, "boolean": bool,
                          "integer": int, "number": (int, float), "null": type(None)}


def _validate_json(value: Any, schema: dict[str, Any]) -> None:
    try:
        import jsonschema
    except ImportError:
        _basic(value, schema, "(root)")
        return
    errors = sorted(jsonschema.validators.validator_for(schema)(schema).iter_errors(value),
                    key=lambda e: list(e.path))
    if errors:
        raise Invalid("; ".join(
            f"{'.'.join(str(p) for p in e.path) or '(root)'}: {e.message}" for e in errors[:10]))


def _basic(value: Any, schema: dict[str, Any], where: str) -> None:
    """Types, required keys and nested properties/items: enough without ``jsonschema``."""
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    if kinds and not any(isinstance(value, _TYPES.get(k, object)) and
                         not (k in ("integer", "number") and isinstance(value, bool))
                         for k in kinds):
        raise Invalid(f"{where}: expected {' or '.join(kinds)}, got {type(value).__name__}")
    if isinstance(value, dict):
        missing = [k for k in schema.get("required", []) if k not in value]
        if missing:
            raise Invalid(f"{where}: missing required key(s) {', '.join(missing)}")
        for key, sub in (schema.get("properties") or {}).items():
            if key in value and isinstance(sub, dict):
                _basic(value[key], sub, key if where == "(root)" else f"{where}.{key}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _basic(item, schema["items"], f"{where}[{i}]")
    if "enum" in schema and value not in schema["enum"]:
        raise Invalid(f"{where}: {value!r} is not one of {schema['enum']!r}")


def native(model: Model) -> bool:
    """Whether ``model``'s provider constrains answers to a schema itself."""
    return bool(model.capabilities.structured_output)


def prompted(messages: Sequence[Message], output: OutputSchema) -> list[Message]:
    """``messages`` with the schema instructions added to the system message (or a new one)."""
    out = list(messages)
    if out and out[0].role == "system":
        out[0] = Message("system", f"{out[0].content}\n\n{output.instructions()}")
    else:
        out.insert(0, Message("system", output.instructions()))
    return out


async def call_structured(ctx: RunContext, model: Model, messages: Sequence[Message],
                          output: OutputSchema, *, step: str, tools: Sequence[ToolSpec] = (),
                          temperature: float | None = None, max_tokens: int | None = None,
                          stream: bool = False) -> tuple[Any, ModelResponse]:
    """One model call whose answer must fit ``output``: (the object, the response).

    A response with tool calls (an agent's turn) is returned as is, with ``None``.
    """
    use_native = native(model)
    msgs = list(messages) if use_native else prompted(messages, output)
    response = await _call(ctx, model, msgs, output, use_native, step=step, tools=tools,
                           temperature=temperature, max_tokens=max_tokens, stream=stream)
    if response.tool_calls:
        return None, response
    value = await conform(ctx, model, msgs, output, response.text, step=step,
                          temperature=temperature, max_tokens=max_tokens)
    return value, response


async def conform(ctx: RunContext, model: Model, messages: Sequence[Message],
                  output: OutputSchema, raw: str, *, step: str, tools: Sequence[ToolSpec] = (),
                  temperature: float | None = None, max_tokens: int | None = None) -> Any:
    """``raw`` validated against ``output``; if it does not fit, one repair call that shows the
    model its answer and the error; then :class:`StructuredOutputError` with the raw text.
    ``messages`` are those that produced ``raw`` (with the schema instructions when the
    provider has no native structured output)."""
    try:
        return output.validate(raw)
    except Invalid as e:
        problems = str(e)
    use_native = native(model)
    repair = [*messages, Message("assistant", raw), Message("user", (
        f"Your answer does not fit the required schema {output.name}: {problems}\n"
        "Reply with only the corrected JSON, nothing else."))]
    # An agent's conversation holds tool calls, which Anthropic accepts only beside the tools.
    response = await _call(ctx, model, repair, output, use_native, step=step, tools=tools,
                           temperature=temperature, max_tokens=max_tokens, stream=False)
    try:
        return output.validate(response.text)
    except Invalid as e:
        raise StructuredOutputError(
            f"step '{step}' ({model.id}): the answer does not fit output schema "
            f"'{output.name}', even after one repair call: {e}. The raw answer is in "
            f".raw; simplify the schema, improve the prompt or use a stronger model",
            raw=response.text, schema=output.name, problems=str(e), step=step) from None


async def _call(ctx: RunContext, model: Model, messages: list[Message], output: OutputSchema,
                use_native: bool, *, step: str, tools: Sequence[ToolSpec],
                temperature: float | None, max_tokens: int | None,
                stream: bool) -> ModelResponse:
    try:
        return await ctx.call(model, messages, step=step, tools=tools, temperature=temperature,
                              max_tokens=max_tokens, stream=stream,
                              output_schema=output.schema if use_native else None,
                              output_name=output.name)
    except ProviderError as e:
        if not use_native or e.status not in (400, 422):
            raise
        e.args = (f"{str(e).rstrip('.')}. The request of step '{step}' carried output schema "
                  f"'{output.name}', which the provider may have rejected: check it uses only "
                  "keywords the provider supports, or give the step a simpler pydantic model",)
        raise
