"""Pipelines from YAML (the ``%%orch`` body) or dicts, validated before any call is paid for.

Each pattern registers a pydantic schema and a builder. Errors name the key path and the line
of the cell body: ``line 7, key 'routes.refund.prompt': undefined template variable(s) ...``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..engine import MAX_TOKENS_KNOB
from ..exceptions import SpecError, TemplateError, UnknownModelError, YAMLError
from ..memory import Memory
from ..models import Model, resolve_model
from ._base import FunctionStep, Node, Pipeline, Step
from ._registry import BUILTIN, check_pattern
from ._spec_options import BudgetSpec, RetrySpec
from ._spec_options import common_options as common_options
from ._template import pattern_scope
from ._yaml_words import plain_yaml_error

MODEL_LIKE = re.compile(r"^[A-Za-z][\w.-]*:\S+$")
"""A ``provider:model`` string (a notebook name never has a colon)."""


def Count(default: int | None, *, ge: int | None = None, le: int | None = None) -> Any:
    """A whole-number YAML key: strict, so ``true`` and ``2.0`` are refused (a bool is an int
    to pydantic's lax mode, and to Python). Without ``ge``/``le`` the range is left to the
    constructor the value goes to (its message names the range, e.g. ``≥ 1 and ≤ 10,000``)."""
    return Field(default=default, ge=ge, le=le, strict=True)


def _shell_name(obj: Any) -> bool:
    """IPython's own callables in a notebook namespace (exit, quit, get_ipython, open)."""
    module = str(getattr(obj, "__module__", "") or "")
    return module.startswith(("IPython", "_sitebuiltins", "builtins")) or module in ("io", "_io")


class SpecModel(BaseModel):
    """Base of every pattern's YAML schema: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class StepSpec(SpecModel):
    """``{name?, model, prompt, system?, temperature?, max_tokens?, stream?, output?, memory?,
    fallback?}``

    ``output`` names a pydantic model in the notebook, or is an inline JSON schema; ``memory``
    names a Memory (one of that name in the notebook, else the store of that name).
    """

    name: str | None = None
    model: str
    prompt: str
    system: str | None = None
    temperature: float | None = Field(default=None, ge=0)
    max_tokens: int | None = Count(None, ge=1, le=MAX_TOKENS_KNOB)
    stream: bool = False
    output: str | dict[str, Any] | None = None
    memory: str | None = None
    fallback: list[str] | str | None = None
    """Models tried in order once the retries on ``model`` are spent."""
    cache_prompt: bool | Literal["5m", "1h"] = False
    """Prompt caching of the stable prefix: ``true`` (5 minutes) or ``"1h"``."""
    service_tier: Literal["auto", "default", "flex", "priority"] | None = None
    """OpenAI's service tier for this step's calls."""


Builder = Callable[[Any, "SpecContext", str, str], Pipeline]
_BUILDERS: dict[str, tuple[type[SpecModel], Builder]] = {}
_COMMON = {"pattern", "name", "description", "budget", "cache", "timeout", "stream", "retry",
           "service_tier"}


def register_builder(pattern: str, schema: type[SpecModel], build: Builder,
                     cls: type | None = None) -> None:
    """Teach the YAML loader a pattern: ``build(spec, ctx, key_prefix, name) -> Pipeline``.

    With ``cls`` (the pattern's class), the class is checked first: it must define every
    method tooling calls (preview, YAML, fork, preflight, graph), else ``TypeError`` says which.
    """
    if cls is not None:
        check_pattern(cls, Pipeline)
    _BUILDERS[pattern] = (schema, build)


@dataclass
class SpecContext:
    """What builders use: line lookup, user-namespace lookup, and node construction."""

    namespace: Mapping[str, Any] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)

    def line(self, key: str) -> int | None:
        while key:
            if key in self.lines:
                return self.lines[key]
            cut = max(key.rfind("."), key.rfind("["))
            key = key[:cut] if cut > 0 else ""
        return None

    def error(self, message: str, key: str, cls: type[SpecError] = SpecError) -> SpecError:
        err = cls(message, key=key, line=self.line(key))
        err.located = True  # type: ignore[attr-defined]  # key is a full path already
        return err

    def model(self, value: Any, key: str) -> Model:
        try:
            return resolve_model(value)
        except UnknownModelError as e:
            raise self.error(e.message, key, UnknownModelError) from None

    def callable(self, name: Any, key: str) -> Any:
        """A Python object named in YAML, looked up in the user namespace."""
        if not isinstance(name, str):
            raise self.error(f"expected the name of a Python function, got {name!r}", key)
        if name not in self.namespace:
            known = sorted(k for k, v in self.namespace.items() if callable(v)
                           and not k.startswith("_") and not _shell_name(v))[:12]
            close = difflib.get_close_matches(name, known, n=1)
            raise self.error(
                f"'{name}' is not defined in the notebook; "
                + (f"did you mean '{close[0]}'?" if close else "define it in a cell above")
                + (f" (callables defined: {', '.join(known)})" if known else ""), key)
        return self.namespace[name]

    def step(self, value: Any, key: str, name: str) -> Step:
        spec = self.validate(StepSpec, value, key)
        backups = [spec.fallback] if isinstance(spec.fallback, str) else spec.fallback or []
        fallback = [self.model(m, f"{key}.fallback[{i}]") for i, m in enumerate(backups)]
        output = self.output(spec.output, f"{key}.output")
        return self._build(lambda: Step(
            spec.name or name, self.model(spec.model, f"{key}.model"), spec.prompt,
            system=spec.system, temperature=spec.temperature, max_tokens=spec.max_tokens,
            stream=spec.stream, output=output, memory=self.memory(spec.memory),
            fallback=fallback, cache_prompt=spec.cache_prompt,
            service_tier=spec.service_tier), key)

    def output(self, value: Any, key: str) -> Any:
        """An ``output:`` value: the pydantic model it names in the notebook, or the inline
        JSON schema it is (checked here, so a bad one fails before any call)."""
        if value is None:
            return None
        from pydantic import BaseModel

        from ._structured import OutputSchema

        if isinstance(value, str):
            obj = self.namespace.get(value)
            if obj is None:
                models = sorted(k for k, v in self.namespace.items()
                                if isinstance(v, type) and issubclass(v, BaseModel))[:12]
                raise self.error(f"'{value}' is not defined in the notebook; define a pydantic "
                                 "model class in a cell above, or give an inline JSON schema"
                                 + (f" (models defined: {', '.join(models)})" if models else ""),
                                 key)
            if not (isinstance(obj, type) and issubclass(obj, BaseModel)):
                raise self.error(f"'{value}' is not a pydantic model class (it is "
                                 f"{type(obj).__name__}); output: names a class such as "
                                 "`class Invoice(BaseModel): ...`", key)
            value = obj
        try:
            return OutputSchema(value)
        except SpecError as e:
            raise self.error(e.message, key) from None

    def memory(self, name: str | None) -> Any:
        """``memory: NAME``: a Memory of that name in the notebook, else the store NAME."""
        if name is None:
            return None
        obj = self.namespace.get(name)
        return obj if isinstance(obj, Memory) else Memory(name)

    def node(self, value: Any, key: str, name: str) -> Node:
        """A step (``{model, prompt}``), a nested pattern (``{pattern: ...}``) or the name of a
        Python function / pipeline in the notebook."""
        if isinstance(value, str):
            if MODEL_LIKE.match(value):  # never a Python name (no ':' in identifiers)
                raise self.error(
                    f"'{value}' is a model, but this key takes a step: write "
                    f"{{model: {value}, prompt: '...'}}, a nested pattern, or the name of a "
                    "Python function or pipeline defined in the notebook", key)
            obj = self.callable(value, key)
            if isinstance(obj, (Pipeline, Step, FunctionStep)):
                return obj
            return FunctionStep(value, obj)
        if isinstance(value, Mapping) and "pattern" in value:
            return self.pipeline(value, key, str(value.get("name") or name))
        if isinstance(value, Mapping) and "python" in value:
            return FunctionStep(str(value.get("name") or name),
                                self.callable(value["python"], f"{key}.python"))
        return self.step(value, key, name)

    def validate(self, schema: type[SpecModel], value: Any, key: str) -> Any:
        if not isinstance(value, Mapping):
            raise self.error(f"expected a mapping of {', '.join(schema.model_fields)}, "
                             f"got {type(value).__name__}", key)
        try:
            return schema.model_validate(dict(value))
        except ValidationError as e:
            errors = sorted(e.errors(), key=lambda x: x["type"] != "extra_forbidden")
            err = errors[0]
            path = _join(key, err["loc"])
            if err["type"] == "extra_forbidden":
                msg = (f"unknown key '{err['loc'][-1]}'; allowed keys: "
                       f"{', '.join(sorted(_fields_at(schema, err['loc'][:-1])))}")
            elif err["type"] == "missing":
                msg = f"'{err['loc'][-1]}' is required"
            else:
                msg = f"{err['msg']} (got {err.get('input')!r})"
            raise self.error(msg, path) from None

    def _build(self, make: Callable[[], Any], key: str) -> Any:
        # Constructors raise with keys relative to themselves; make them full paths with lines.
        try:
            return make()
        except SpecError as e:
            if getattr(e, "located", False):
                raise
            sub = _join(key, tuple(_split(e.key))) if e.key else key
            line = self.lines.get(sub + "#value") if isinstance(e, TemplateError) else None
            if line is not None and e.line is not None:
                line += e.line - 1  # a template's own line inside a block scalar
            elif isinstance(e, TemplateError):
                line = self.line(sub)
            raise self.error(e.message, sub, type(e)) if line is None else _located(
                type(e)(e.message, key=sub, line=line)) from None

    def pipeline(self, value: Any, key: str, name: str) -> Pipeline:
        if not isinstance(value, Mapping):
            raise self.error("a pipeline must be a mapping with a 'pattern:' key", key)
        pattern = value.get("pattern")
        if pattern is None:
            where = key or "pattern"
            err = SpecError("the pipeline needs a 'pattern:' key; one of chain, router, "
                            "mapreduce, agent, plan_execute, team",
                            key=_join(key, ("pattern",)), line=self.line(where) or 1)
            raise _located(err)
        if pattern not in _BUILDERS:
            _load_builtin_builders()
        if pattern not in _BUILDERS:
            raise self.error(f"unknown pattern {pattern!r}; choose one of "
                             f"{', '.join(sorted(_BUILDERS))}", _join(key, ("pattern",)))
        schema, build = _BUILDERS[pattern]
        spec = self.validate(schema, value, key)
        with pattern_scope(pattern):  # a prompt's error names this pattern's variables
            return self._build(lambda: build(spec, self, key, name), key)


def _fields_at(schema: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed at ``loc`` inside ``schema`` (for 'allowed keys' in messages)."""
    import typing

    for part in loc:
        field = schema.model_fields.get(str(part))
        if field is None:
            break
        candidates = [field.annotation, *typing.get_args(field.annotation)]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            break
        schema = nested[0]
    return list(schema.model_fields)


def _located(err: SpecError) -> SpecError:
    err.located = True  # type: ignore[attr-defined]
    return err


def _split(key: str) -> list[Any]:
    out: list[Any] = []
    for part in key.replace("]", "").replace("[", ".").split("."):
        if part:
            out.append(int(part) if part.isdigit() else part)
    return out


def _join(prefix: str, loc: tuple[Any, ...]) -> str:
    out = prefix
    for part in loc:
        out = f"{out}[{part}]" if isinstance(part, int) else (f"{out}.{part}" if out else str(part))
    return out


def _line_map(node: yaml.Node, prefix: str = "",
              out: dict[str, int] | None = None) -> dict[str, int]:
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = f"{prefix}.{k.value}" if prefix else str(k.value)
            out[key] = k.start_mark.line + 1
            if isinstance(v, yaml.ScalarNode) and v.style in ("|", ">"):
                out[key + "#value"] = v.start_mark.line + 2
            _line_map(v, key, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            key = f"{prefix}[{i}]"
            out[key] = v.start_mark.line + 1
            _line_map(v, key, out)
    return out


MAX_YAML_CHARS = 1_000_000
"""Longest YAML document accepted, in characters: a pipeline spec is a page or two; longer
texts (examples, documents) belong in Python variables, named from the YAML."""
MAX_YAML_NODES = 100_000
"""Most nodes a YAML document may expand to through its aliases (``*name``); a few hundred
bytes of nested aliases (an "alias bomb") would otherwise expand to billions."""
MAX_YAML_DEPTH = 100
"""Deepest nesting of YAML collections accepted."""


def load_yaml(text: str, *, line_offset: int = 0) -> tuple[yaml.Node | None, Any]:
    """Parse ``text`` safely: the node tree (for line numbers) and the data.

    Refused with a :class:`YAMLError` naming the line: invalid YAML, duplicate keys in a
    mapping (naming both lines), an alias that contains itself, aliases expanding to more
    than :data:`MAX_YAML_NODES` nodes, nesting deeper than :data:`MAX_YAML_DEPTH`, a text
    longer than :data:`MAX_YAML_CHARS` (refused before parsing).

    >>> load_yaml("a: 1\\nb: [x, y]")[1]
    {'a': 1, 'b': ['x', 'y']}
    >>> load_yaml("a: 1\\na: 2")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    orchnb.exceptions.YAMLError: line 2: duplicate key 'a' (first on line 1); ...
    """
    if not isinstance(text, str):
        raise YAMLError(f"the YAML must be text, got {type(text).__name__}")
    if len(text) > MAX_YAML_CHARS:
        raise YAMLError(f"the YAML has {len(text):,} characters, more than the "
                        f"{MAX_YAML_CHARS:,} a pipeline spec may have; keep long texts "
                        "(documents, examples) in Python variables and pass them as input",
                        line=1 + line_offset)
    _check_flow_depth(text, line_offset)
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        _check_nodes(root, line_offset)
        return root, loader.construct_document(root)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = (mark.line + 1 + line_offset) if mark else None
        raise YAMLError(plain_yaml_error(e, text), line=line) from None
    except RecursionError:  # deep block nesting that the flow pre-check cannot see
        raise YAMLError(f"the YAML is nested more than {MAX_YAML_DEPTH} levels deep") from None
    finally:
        loader.dispose()


def _check_flow_depth(text: str, line_offset: int) -> None:
    # PyYAML's scanner is quadratic in the depth of flow collections ([[[[...), and its
    # composer recursive: measure the depth first, on the raw brackets (an over-estimate when
    # quoted text holds brackets, which needs a hundred unclosed ones to matter).
    if text.count("[") + text.count("{") <= MAX_YAML_DEPTH:
        return
    depth = 0
    for m in re.finditer(r"[\[{]|[\]}]", text):
        depth = depth + 1 if m.group() in "[{" else max(0, depth - 1)
        if depth > MAX_YAML_DEPTH:
            line = text.count("\n", 0, m.start()) + 1 + line_offset
            raise YAMLError(f"the YAML is nested more than {MAX_YAML_DEPTH} levels deep",
                            line=line)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_nodes(root: yaml.Node, line_offset: int) -> None:
    """Refuse duplicate keys, recursive aliases and alias bombs, in time linear in the
    document's size (expanded sizes are counted once per node, not per alias use)."""
    def line(node: yaml.Node) -> int:
        return node.start_mark.line + 1 + line_offset

    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 0, False)]
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in _children(node))
            if sizes[key] > MAX_YAML_NODES:
                raise YAMLError(f"aliases expand this value to more than {MAX_YAML_NODES:,} "
                                "nodes (an alias bomb?); write the values out instead",
                                line=line(node))
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise YAMLError("an alias refers to a value that contains it (a recursive alias); "
                            "orchnb cannot use recursive YAML", line=line(node))
        if depth > MAX_YAML_DEPTH:
            raise YAMLError(f"the YAML is nested more than {MAX_YAML_DEPTH} levels deep",
                            line=line(node))
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for k, _ in node.value:
                if not isinstance(k, yaml.ScalarNode) or k.tag == "tag:yaml.org,2002:merge":
                    continue
                if k.value in seen:
                    raise YAMLError(f"duplicate key '{k.value}' (first on line {seen[k.value]}); "
                                    "each key may appear once", line=line(k))
                seen[k.value] = line(k)
        on_path.add(key)
        stack.append((node, depth, True))
        for child in _children(node):
            if id(child) in on_path:
                raise YAMLError("an alias refers to a value that contains it (a recursive "
                                "alias); orchnb cannot use recursive YAML", line=line(node))
            if id(child) not in sizes:
                stack.append((child, depth + 1, False))


def from_yaml(text: str, name: str | None = None, namespace: Mapping[str, Any] | None = None,
              *, line_offset: int = 0) -> Pipeline:
    """Build a pipeline from a YAML document (the body of a ``%%orch`` cell).

    Names of tools, reducers and other callables are looked up in ``namespace``.

    >>> pipe = from_yaml('''
    ... pattern: chain
    ... steps:
    ...   - {name: shout, model: "sim:echo", prompt: "{{ input | upper }}"}
    ... ''', name="demo")
    >>> pipe("hi").output
    'HI'
    """
    root, data = load_yaml(text, line_offset=line_offset)
    if not isinstance(data, Mapping):
        raise YAMLError("the cell body must be a YAML mapping with a 'pattern:' key "
                        "(e.g. 'pattern: chain')", line=1 + line_offset)
    lines = {k: v + line_offset for k, v in _line_map(root).items()} if root else {}
    ctx = SpecContext(dict(namespace or {}), lines)
    pipe = ctx.pipeline(data, "", str(name or data.get("name") or "pipeline"))
    pipe.source = text
    return pipe


def from_dict(spec: Mapping[str, Any], name: str = "pipeline",
              namespace: Mapping[str, Any] | None = None) -> Pipeline:
    """Build a pipeline from a dict of the same shape as the YAML."""
    return SpecContext(dict(namespace or {})).pipeline(spec, "", name)


class PatternSpec(SpecModel):
    """Keys every pattern accepts."""

    pattern: str
    name: str | None = None
    description: str | None = None
    budget: BudgetSpec | None = None
    cache: bool | None = None
    timeout: float | None = Field(default=None, gt=0)
    """Seconds per attempt of a model call."""
    stream: bool | None = None
    """Stream every model call's text as it arrives (a live cell output, ``pipe.stream``)."""
    retry: RetrySpec | None = None
    """``retry: {max_attempts, backoff, max_backoff, max_retry_after, jitter}``."""
    service_tier: Literal["auto", "default", "flex", "priority"] | None = None
    """OpenAI's service tier for the calls whose step sets none."""


_BUILTIN_SPEC_MODULES = tuple(f"{module}_spec" for module, _ in BUILTIN.values())


def _load_builtin_builders() -> None:
    # Importing the pattern modules registers their builders (done lazily: YAML is optional).
    import importlib

    for module in _BUILTIN_SPEC_MODULES:
        try:
            importlib.import_module(f"{__package__}.{module}")
        except ModuleNotFoundError as e:
            if e.name != f"{__package__}.{module}":
                raise
