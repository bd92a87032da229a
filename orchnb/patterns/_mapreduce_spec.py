"""YAML for map-reduce::

    pattern: mapreduce
    map: step | pattern | fn_name
    reduce: step | pattern | fn_name          # optional: without it the output is the list
    concurrency: 8
    chunk_tokens: 3000
    overlap_tokens: 200
    reduce_tokens: 6000                       # optional: hierarchical reduce above this
    on_error: fail | skip | retry
    retries: 2
    chunker: fn_name                          # optional: fn(text) -> list of items
    executor: local | ray                     # ray: map on a Ray cluster (orchnb[ray])
    batch: true                               # map through the providers' batch APIs
"""

from __future__ import annotations

from typing import Any, Literal

from ..engine import MAX_CONCURRENCY, MAX_RETRIES, MAX_TOKENS_KNOB
from ._mapreduce import MapReduce
from ._spec import Count, PatternSpec, SpecContext, common_options, register_builder


class MapReduceSpec(PatternSpec):
    map: Any
    reduce: Any = None
    concurrency: int = Count(8, ge=1, le=MAX_CONCURRENCY)
    chunk_tokens: int = Count(3000, ge=1, le=MAX_TOKENS_KNOB)
    overlap_tokens: int = Count(200, ge=0, le=MAX_TOKENS_KNOB)
    reduce_tokens: int | None = Count(None, ge=1, le=MAX_TOKENS_KNOB)
    on_error: Literal["fail", "skip", "retry"] = "fail"
    retries: int = Count(2, ge=0, le=MAX_RETRIES)
    chunker: str | None = None
    executor: Literal["local", "ray"] = "local"
    batch: bool = False


def build_mapreduce(spec: MapReduceSpec, ctx: SpecContext, key: str, name: str) -> MapReduce:
    at = (lambda k: f"{key}.{k}" if key else k)  # noqa: E731
    map_node = ctx.node(spec.map, at("map"), "map")
    reduce_node = None if spec.reduce is None else ctx.node(spec.reduce, at("reduce"), "reduce")
    chunker = None if spec.chunker is None else ctx.callable(spec.chunker, at("chunker"))
    return ctx._build(lambda: MapReduce(
        name, map_node, reduce_node, concurrency=spec.concurrency,
        chunk_tokens=spec.chunk_tokens, overlap_tokens=spec.overlap_tokens,
        reduce_tokens=spec.reduce_tokens, on_error=spec.on_error, retries=spec.retries,
        chunker=chunker, executor=spec.executor, batch=spec.batch, **common_options(spec)),
        key)


register_builder("mapreduce", MapReduceSpec, build_mapreduce, MapReduce)
