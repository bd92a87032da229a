"""Security measurements (issue 14): key leaks, hostile parser inputs, YAML bombs, scrub cost.

    python -m benchmarks.security [leaks|parsers|yaml|scrub|template] ...

Not a test: it prints numbers (times are machine-dependent). The tests pin the behaviour.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

KEYS = {
    "openai": "sk-canaryOPENAI0123456789abcdefXYZ",
    "anthropic": "sk-ant-canaryANTHROPIC0123456789abcdef",
    "compat": "compat-canary-0123456789abcdefghij",  # not key-shaped: only the registry knows it
}
STATUSES = (400, 401, 403, 429, 500)
BODIES = ("json_message", "json_type", "text")


def _body(kind: str, key: str) -> Any:
    if kind == "json_message":
        return {"error": {"message": f"Incorrect API key provided: {key}.", "type": "auth"}}
    if kind == "json_type":
        return {"error": {"message": "denied", "type": f"invalid_key {key}"}}
    return f"<html>401 Unauthorized: Authorization: Bearer {key}; x-api-key: {key}</html>"


def leaks() -> None:
    """Every (provider, status, body) scenario: where does the canary key show up?"""
    home = Path(tempfile.mkdtemp(prefix="orchnb-leaks-"))
    os.environ["ORCHNB_HOME"] = str(home)
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import orchnb
    from orchnb import Chain, RetryPolicy, Step
    from orchnb.testing import FakeProvider
    from orchnb.trace._export import to_csv, to_otel

    leaked_in: dict[str, int] = {}
    n_leaked = total = 0
    with FakeProvider() as fake:
        os.environ.update(OPENAI_BASE_URL=fake.openai_base_url, OPENAI_API_KEY=KEYS["openai"],
                          ANTHROPIC_BASE_URL=fake.anthropic_base_url,
                          ANTHROPIC_API_KEY=KEYS["anthropic"])
        orchnb.openai_compatible("compat", fake.openai_base_url, api_key=KEYS["compat"])
        models = {"openai": "openai:gpt-4o-mini", "anthropic": "anthropic:claude-haiku-4-5",
                  "compat": "compat:llama"}
        for prov, model in models.items():
            key = KEYS[prov]
            for status in STATUSES:
                for body in BODIES:
                    total += 1
                    fake.fail_next(1, str(status), body=_body(body, key), retry_after=0)
                    pipe = Chain(f"leak-{prov}-{status}-{body}", [Step("s", model, "{{ input }}")],
                                 retry=RetryPolicy(max_attempts=1), cache=False)
                    where = set()
                    try:
                        run = pipe("hi")
                        err = run.error
                    except Exception as e:
                        err = e
                        run = getattr(e, "run", None)
                    for name, text in (("str", str(err)), ("repr", repr(err))):
                        if key in text:
                            where.add(name)
                    if run is not None:
                        if key in str(run.error):
                            where.add("run.error")
                        if key in run._repr_html_():
                            where.add("html")
                        if key in run.trace.df.to_csv():
                            where.add("trace.df")
                        df = orchnb.traces(run_id=run.id)
                        if key in df.to_csv():
                            where.add("traces()")
                        out = home / "x.csv"
                        to_csv(run.trace.df, out)
                        if key in out.read_text():
                            where.add("to_csv")
                        exp = InMemorySpanExporter()
                        tp = TracerProvider()
                        tp.add_span_processor(SimpleSpanProcessor(exp))
                        to_otel(run.trace.df, tp, include_content=False)
                        if any(key in str(s.status.description) or key in str(s.attributes)
                               for s in exp.get_finished_spans()):
                            where.add("otel")
                    for where_name in where:
                        leaked_in[where_name] = leaked_in.get(where_name, 0) + 1
                    n_leaked += bool(where)
    from orchnb.trace._store import get_store

    get_store().close()
    raw = {p.name: p.read_bytes().count(k.encode()) for p in home.glob("traces.sqlite*")
           for k in KEYS.values() if p.read_bytes().count(k.encode())}
    copies = sum(b.count(k.encode()) for p in home.glob("traces.sqlite*")
                 for b in [p.read_bytes()] for k in KEYS.values())
    print(f"leak scenarios: {n_leaked} of {total} leaked; by artefact: {leaked_in}")
    print(f"key copies in SQLite files: {copies} {raw}")


def _time(fn: Any, *args: Any) -> tuple[float, str]:
    t = time.perf_counter()
    try:
        out = fn(*args)
        what = type(out).__name__
    except Exception as e:
        what = type(e).__name__
    return (time.perf_counter() - t) * 1000, what


HOSTILE = {
    "[ x 100000": "[" * 100_000,
    "[ x 2000": "[" * 2000,
    '{"label": x 50000': '{"label":' * 50_000,
    "{ x 100000": "{" * 100_000,
    "deep [1] x 5000": "[" * 5000 + "1" + "]" * 5000,
    "1 MB junk": ("lorem ipsum {dolor [sit 'amet\" " * 40_000)[:1_000_000],
    "1 MB quotes": '"' * 1_000_000,
    "unbalanced quotes": "plan: ['a, \"b] " * 30_000,
    "1 MB spaces in fence": "```" + " " * 1_000_000,
    "1 MB newlines": "\n" * 1_000_000,
    "1 MB digits": "1" * 1_000_000,
    "1 MB words": "a" * 1_000_000,
    "1 MB [] pairs": "[]" * 500_000,
    "label lines": "label: x\n" * 100_000,
}


def parsers() -> None:
    sys.setrecursionlimit(1000)
    from orchnb.patterns._labels import parse_confidence, parse_label
    from orchnb.patterns._plans import parse_decision, parse_plan, parse_replan
    from orchnb.patterns._react_text import parse_react

    fns = {"plan": parse_plan, "replan": parse_replan,
           "decision": lambda t: parse_decision(t, ["writer", "critic"]),
           "label": lambda t: parse_label(t, ["billing", "technical"]),
           "confidence": parse_confidence, "react": parse_react}
    worst = 0.0
    for name, text in HOSTILE.items():
        cells = []
        for fname, fn in fns.items():
            ms, what = _time(fn, text[:16_000] if os.environ.get("SHORT") else text)
            worst = max(worst, ms)
            cells.append(f"{fname}={ms:.0f}ms/{what}")
        print(f"{name:24s} " + " ".join(cells), flush=True)
    print(f"worst: {worst:.0f} ms")


def _bomb(levels: int) -> str:
    lines = ["pattern: chain", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 8)}]")
    lines.append(f"steps: *a{levels - 1}")
    return "\n".join(lines)


def yaml_bombs() -> None:
    from orchnb.patterns._spec import from_yaml

    for label, text in (("bomb 6 levels", _bomb(6)), ("bomb 9 levels", _bomb(9)),
                        ("recursive", "pattern: chain\nsteps: &s [*s]\n"),
                        ("deep", "pattern: chain\nsteps: " + "[" * 5000 + "]" * 5000 + "\n"),
                        ("duplicate", "pattern: chain\nsteps: []\nsteps: []\n")):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        ms, what = _time(from_yaml, text)
        grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        print(f"{label:16s} {len(text):5d} bytes: {ms:8.1f} ms, {what}, max RSS +{grew:.0f} MB",
              flush=True)


def _per_call_us(fn: Any, n: int) -> float:
    """Best of 7 repeats (the machine may be shared): µs per call."""
    import timeit

    return min(timeit.repeat(fn, number=n, repeat=7)) / n * 1e6


def scrub() -> None:
    import json
    import marshal

    from orchnb.models import remember_secret
    from orchnb.models import scrub_secrets as scrub_text
    from orchnb.trace._rows import _scrub_row
    from orchnb.trace._span import Span

    remember_secret(KEYS["compat"])
    texts = {"short": "Paris is the capital of France.",
             "1 KB": "lorem ipsum dolor sit amet " * 40,
             "with key": f"error: Bearer {KEYS['openai']}"}
    for name, text in texts.items():
        print(f"scrub({name}): {_per_call_us(lambda t=text: scrub_text(t), 20_000):.2f} µs")
    spans = [Span("r", f"s{i}", "p0", "p", "chain", "step", "model", status="ok",
                  start=time.time(), end=time.time(), latency_ms=1.0, cost_usd=float("nan"),
                  input="Summarize: a short text", output="A short summary.").to_row()
             for i in range(1000)]
    row = spans[0]
    print(f"store scrub per span: {_per_call_us(lambda: _scrub_row(row), 50_000):.2f} µs")
    from orchnb.trace._rows import encode as _encode

    for name, fn in (("marshal.dumps", marshal.dumps), ("json.dumps", json.dumps),
                     ("store _encode (orjson when installed)", _encode)):
        us = _per_call_us(lambda f=fn: f(spans), 20) / 1000
        print(f"{name} per span (the store's batch encoding, before/after): {us:.2f} µs")


def template() -> None:
    from orchnb.patterns._template import Prompt

    for src in ("{{ input.gi_frame }}", "{{ input.__class__ }}", "{{ 'x' * 30000000 }}"):
        ms, what = _time(lambda s: Prompt(s).render(input=(i for i in [])), src)
        print(f"{src:28s} {ms:.1f} ms {what}")


if __name__ == "__main__":
    which = sys.argv[1:] or ["leaks", "parsers", "yaml", "scrub", "template"]
    table = {"leaks": leaks, "parsers": parsers, "yaml": yaml_bombs, "scrub": scrub,
             "template": template}
    for w in which:
        print(f"== {w}", flush=True)
        table[w]()
