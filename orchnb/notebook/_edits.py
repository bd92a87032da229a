"""Playground edits: a working copy of a pipeline, field edits checked like the YAML loader
checks them, writing them back, and the ``%%orch`` YAML that reproduces them."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from ..exceptions import SpecError
from ..models import Model, resolve_model
from ..patterns import FunctionStep, Pipeline, Prompt, Step

INT_FIELDS = ("max_iterations", "max_turns", "max_replans", "max_steps", "concurrency",
              "chunk_tokens", "overlap_tokens", "reduce_tokens", "retries", "max_tokens")
_MIN = {"max_replans": 0, "overlap_tokens": 0, "retries": 0}
TEXT_FIELDS = ("prompt", "system")
_NODE_TYPES = (Step, FunctionStep, Pipeline)


# -- working copy ------------------------------------------------------------------------------
def clone(pipe: Pipeline) -> Pipeline:
    """A copy of the pipeline's node tree that edits can change without touching ``pipe``.

    Models, tools and Python functions are shared; ``runs`` is shared too, so runs of the copy
    show up in ``pipe.runs`` / ``pipe.last_run``.
    """
    return _clone(pipe, {})


def _clone(obj: Any, memo: dict[int, Any]) -> Any:
    if isinstance(obj, _NODE_TYPES):
        if id(obj) in memo:
            return memo[id(obj)]
        new = copy.copy(obj)
        if isinstance(obj, Pipeline):
            new.runs = obj.runs  # copy.copy goes through __getstate__, which leaves runs out
        memo[id(obj)] = new
        for name, value in vars(new).items():
            if name != "runs":
                setattr(new, name, _clone(value, memo))
        return new
    if isinstance(obj, list) and any(isinstance(v, _NODE_TYPES) for v in obj):
        return [_clone(v, memo) for v in obj]
    if isinstance(obj, dict) and any(isinstance(v, _NODE_TYPES) for v in obj.values()):
        return {k: _clone(v, memo) for k, v in obj.items()}
    return obj


def index(pipe: Pipeline, desc: dict[str, Any]) -> dict[str, Any]:
    """Graph key (``root/child/...``) → the object behind it (steps, patterns, tools)."""
    return index_paths(pipe, desc)[0]


def index_paths(pipe: Pipeline, desc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """:func:`index`, and the aliases of keys whose objects have another name than their graph
    id (a team member ``writer`` that is ``Step("w", ...)``): the path of object names → key.
    Spans carry object names, so the live view needs these to find their nodes."""
    out: dict[str, Any] = {}
    aliases: dict[str, str] = {}

    def walk(obj: Any, d: dict[str, Any], key: str, real: str) -> None:
        out.setdefault(key, obj)
        if real != key:
            aliases[real] = key
        if obj is None:
            return
        kids = {getattr(c, "name", None): c for c in _children(obj)}
        named = {**(getattr(obj, "members", None) or {}), **(getattr(obj, "tools", None) or {})}
        for cd in d.get("children", []):
            cid = str(cd.get("id"))
            child = kids.get(cid) or named.get(cid)
            if child is None and (cid == getattr(obj, "name", None) or cd.get("kind") == "split"):
                out.setdefault(f"{key}/{cid}", obj)  # an agent's own model node, a map's split
                if real != key:
                    aliases[f"{real}/{cid}"] = f"{key}/{cid}"
                continue
            name = getattr(child, "name", cid) if child is not None else cid
            walk(child, cd, f"{key}/{cid}", f"{real}/{name}")

    root = str(desc.get("id"))
    walk(pipe, desc, root, root)
    return {k: v for k, v in out.items() if v is not None}, aliases


def _children(obj: Any) -> list[Any]:
    try:
        return list(obj.children()) if hasattr(obj, "children") else []
    except Exception:
        return []


# -- what can be edited ------------------------------------------------------------------------
def editable(obj: Any) -> list[dict[str, Any]]:
    """The fields of a node the playground can edit: name, type and current value."""
    fields: list[dict[str, Any]] = []
    if isinstance(getattr(obj, "prompt", None), Prompt):
        fields.append({"name": "prompt", "type": "text", "value": obj.prompt.source})
    if hasattr(obj, "system") and (obj.system is None or isinstance(obj.system, (Prompt, str))):
        fields.append({"name": "system", "type": "text", "value": _source(obj.system)})
    if isinstance(getattr(obj, "model", None), Model):
        fields.append({"name": "model", "type": "model", "value": obj.model.id})
    if hasattr(obj, "temperature") and isinstance(obj.temperature, (int, float, type(None))):
        fields.append({"name": "temperature", "type": "float", "value": obj.temperature})
    for name in INT_FIELDS:
        value = getattr(obj, name, "absent")
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            fields.append({"name": name, "type": "int", "value": value})
    return fields


def _source(value: Any) -> str:
    if value is None:
        return ""
    return value.source if isinstance(value, Prompt) else str(value)


def apply_edit(obj: Any, field: str, value: Any) -> Any:
    """Check ``value`` and set it on ``obj``; returns the value as stored in YAML.

    Raises :class:`~orchnb.SpecError` (or TemplateError / UnknownModelError) saying what is wrong.
    """
    name = getattr(obj, "name", "?")
    owner = f"step '{name}': "
    allowed = {f["name"] for f in editable(obj)}
    if field not in allowed:
        raise SpecError(f"{owner}'{field}' cannot be edited here; editable: "
                        f"{', '.join(sorted(allowed)) or '(nothing)'}", key=field)
    if field == "prompt":
        obj.prompt = Prompt(str(value), owner=owner)
        return str(value)
    if field == "system":
        text = str(value or "")
        if isinstance(obj.system, str):
            obj.system = text or None
        else:
            obj.system = Prompt(text, where="system", owner=owner) if text.strip() else None
        return text or None
    if field == "model":
        obj.model = resolve_model(str(value).strip())
        return obj.model.id
    if field == "temperature":
        t = _number(value, float, owner, field)
        if t is not None and not 0.0 <= t <= 2.0:
            raise SpecError(f"{owner}temperature must be between 0 and 2, got {t}", key=field)
        obj.temperature = t
        return t
    n = _number(value, int, owner, field)
    if n is None and getattr(obj, field) is not None:
        raise SpecError(f"{owner}{field} needs a value", key=field)
    low = _MIN.get(field, 1)
    if n is not None and n < low:
        raise SpecError(f"{owner}{field} must be a whole number ≥ {low}, got {n}", key=field)
    setattr(obj, field, n)
    return n


def _number(value: Any, kind: type, owner: str, field: str) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        if kind is int and isinstance(value, str) and not value.strip().lstrip("-").isdigit():
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        what = "a whole number" if kind is int else "a number"
        raise SpecError(f"{owner}{field} must be {what}, got {value!r}", key=field) from None


# -- YAML ---------------------------------------------------------------------------------
def _block(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(str, _block)


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def yaml_with_edits(source: str | None, desc: dict[str, Any],
                    edits: dict[str, dict[str, Any]]) -> str:
    """The ``%%orch`` body with ``edits`` (key → {field: value}) applied; without a YAML source,
    the edits alone as YAML, to transfer by hand."""
    if not edits:
        return source or ""
    if source:
        try:
            data = yaml.safe_load(source)
        except yaml.YAMLError:
            data = None
        if isinstance(data, dict):
            lost = []
            for key, fields in edits.items():
                target = _locate(data, desc, key)
                if target is None:
                    lost.append(key)
                    continue
                target.update(fields)
            head = "".join(f"# could not place the edits of {k} in the YAML\n" for k in lost)
            return head + dump_yaml(data)
    body = {key.split("/", 1)[-1]: fields for key, fields in edits.items()}
    return ("# no %%orch YAML for this pipeline: the edits, node by node\n" + dump_yaml(body))


def fork_note(parent_id: str, key: str, fields: dict[str, Any], source: str | None,
              desc: dict[str, Any], edits: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What "Edits and YAML" says about the last fork: the run and node it forked at, the
    fields it edited (for the fork only) and the YAML that would keep them; empty when the
    fork edited nothing."""
    if not fields:
        return {}
    merged = {k: dict(v) for k, v in edits.items()}
    merged.setdefault(key, {}).update(fields)
    return {"run_id": parent_id, "key": key, "at": key.split("/", 1)[-1],
            "fields": sorted(fields), "yaml": yaml_with_edits(source, desc, merged)}


_ROLES = ("classifier", "planner", "executor", "supervisor", "map", "reduce")


def _locate(data: dict[str, Any], desc: dict[str, Any], key: str) -> dict[str, Any] | None:
    names = key.split("/")[1:]
    node, d = data, desc
    for name in names:
        child = next((c for c in d.get("children", []) if str(c.get("id")) == name), None)
        if child is None:
            return None
        if name == str(d.get("id")) and child.get("kind") != "pattern":
            continue  # an agent's model node: its fields live on the agent itself
        found = _find(node, name, child.get("role"))
        if found is None:
            return None
        node, d = found, child
    return node


def _find(mapping: dict[str, Any], name: str, role: str | None) -> dict[str, Any] | None:
    for k, v in mapping.items():
        if role and k == role:
            if isinstance(v, str):
                mapping[k] = v = {"model": v}
            if isinstance(v, dict):
                return v
        if isinstance(v, dict):
            if v.get("name") == name or (k == name and "name" not in v):
                return v
            if "pattern" not in v:
                inner = _find(v, name, None)
                if inner is not None:
                    return inner
        if isinstance(v, list):
            for i, item in enumerate(v):
                if isinstance(item, dict) and (item.get("name") == name or (
                        "name" not in item and name == f"step{i + 1}")):
                    return item
    return None
