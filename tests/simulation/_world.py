"""The simulated world: a scenario as plain data, the pipeline and models it builds, and a runner
that plays it under a wall-clock guard.

A :class:`Scenario` is a tree of pattern nodes (every pattern, nested), a fault schedule, a
budget, a retry policy and a timeout. Nothing in it is random at run time: each model call's
fault is a hash of the scenario's seed, the model, the message and how many times that message
was asked, so a scenario replays the same way from its JSON (``Scenario.from_json``) whatever
the order concurrent calls happen in. Checking what a run did is ``_checks.py``'s job.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import orchnb
from orchnb.exceptions import ProviderError
from orchnb.models import _sim
from orchnb.models._types import ModelRequest
from orchnb.testing import pointed_at

PATTERNS = ("step", "chain", "router", "mapreduce", "agent", "plan", "team")
SIM_FAULTS = ("429", "500", "400", "bad_text", "slow")
"""Faults of sim models: 429 with Retry-After, 500, a non-retryable 400, a reply holding a lone
surrogate and a NUL, and ``slow`` (an answer later than the timeout: a hang, cut short)."""
FAKE_FAULTS = ("429", "500", "503", "timeout", "malformed", "drop", "cut", "truncate",
               "stream_error")
"""FakeProvider's wire faults (``timeout`` is a hang of ``Scenario.hang`` seconds)."""
BAD_TEXT = "bad \ud800 byte \x00 end"
BAD_UTF8 = "BADUTF8MARK"
"""A FakeProvider reply holding this is sent with it replaced by invalid UTF-8 bytes."""


@dataclass(frozen=True)
class Node:
    """One node of a pipeline tree. ``kind`` is a pattern or ``step`` (one model call)."""

    kind: str
    children: tuple[Node, ...] = ()
    concurrency: int = 1
    on_error: str = "fail"
    retries: int = 0
    loops: int = 2
    """Agent max_iterations, plan max_steps, team max_turns."""
    stream: bool = False
    default_route: bool = True
    reduce: bool = False

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Node:
        kids = tuple(Node.from_dict(c) for c in d.get("children", ()))
        return Node(**{**d, "children": kids})


@dataclass(frozen=True)
class Scenario:
    """Everything one simulated run is: built, run and checked from this alone."""

    root: Node
    world: str = "sim"
    """``sim`` (sim: models) or ``fake`` (the SDKs against the loopback FakeProvider)."""
    seed: int = 0
    items: int = 3
    """Items of a top-level map-reduce (other roots get one text input)."""
    faults: tuple[tuple[str, float], ...] = ()
    retry_after: float = 0.0
    latency: float = 0.0
    """Sim answer latency (s); ``slow`` faults answer after ``hang`` seconds instead."""
    hang: float = 0.2
    timeout: float | None = 0.1
    max_attempts: int = 2
    backoff: float = 0.0
    max_retry_after: float = 1.0
    max_calls: int | None = None
    max_tokens: int | None = None
    max_usd: float | None = None
    usage_less: bool = False
    """FakeProvider: streamed answers carry no usage chunk (llama.cpp's server)."""
    mode: str = "background"
    """``background`` (``pipe.background`` + ``run.wait``) or ``call`` (``pipe(x)`` in a thread)."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), ensure_ascii=True)

    @staticmethod
    def from_json(text: str) -> Scenario:
        d = json.loads(text)
        d["root"] = Node.from_dict(d["root"])
        d["faults"] = tuple(tuple(f) for f in d["faults"])
        return Scenario(**d)

    @property
    def budget(self) -> orchnb.Budget:
        return orchnb.Budget(max_calls=self.max_calls, max_tokens=self.max_tokens,
                             max_usd=self.max_usd)

    @property
    def retry(self) -> orchnb.RetryPolicy:
        return orchnb.RetryPolicy(max_attempts=self.max_attempts, backoff=self.backoff,
                                  max_backoff=max(self.backoff, 0.02), jitter=True,
                                  max_retry_after=self.max_retry_after)

    def input(self) -> Any:
        if self.root.kind == "mapreduce":
            return [f"item {i} of {self.seed}" for i in range(self.items)]
        return f"task {self.seed}"


# -- how long a scenario may take ----------------------------------------------------------------
def worst_calls(node: Node, items: int) -> int:
    """The most model calls ``node`` can make (retries of map items and loops included)."""
    kids = [worst_calls(c, 3) for c in node.children]
    if node.kind == "step":
        return 1
    if node.kind == "chain":
        return sum(kids)
    if node.kind == "router":
        return 1 + max(kids)
    if node.kind == "mapreduce":
        reduce = items if node.reduce else 0
        return items * (node.retries + 1) * kids[0] + reduce
    if node.kind == "agent":
        return node.loops + 1
    if node.kind == "plan":
        return 2 + node.loops * kids[0]
    if node.kind == "team":
        return 1 + node.loops * (1 + max(kids))
    raise ValueError(node.kind)


def per_call_s(s: Scenario) -> float:
    """The longest one call can take: every attempt as slow as a fault allows (a hang cut at
    the timeout), each followed by the longest wait before the next."""
    slow = s.hang if s.timeout is None else min(s.timeout, s.hang)
    attempt = max(slow, s.latency) + 0.02
    wait = s.retry.max_backoff + min(s.retry_after, s.max_retry_after)
    return s.max_attempts * (attempt + wait)


def bound_s(s: Scenario) -> float:
    """Seconds the run may take at most: every call it can make, each as long as
    :func:`per_call_s`, one after another (concurrency only shortens this), with a factor and a
    floor for a loaded machine."""
    return 10.0 + 2.0 * worst_calls(s.root, s.items) * per_call_s(s)


def stall_s(s: Scenario) -> float:
    """The longest a run may go without any span starting or ending and without a model being
    asked: one call's worth (nothing else is slow in a sim world), with a floor and a factor.
    Longer than this is a deadlock, found well before the whole :func:`bound_s`. The floor is
    generous: a 2-core machine under load can starve a process for seconds, a deadlock is for
    ever."""
    return 8.0 + 3.0 * per_call_s(s)


# -- faults --------------------------------------------------------------------------------------
def draw(seed: int, *parts: Any) -> float:
    """A number in [0, 1) fixed by ``seed`` and ``parts``."""
    h = hashlib.blake2b(repr((seed, *parts)).encode("utf-8", "backslashreplace"),
                        digest_size=8).digest()
    return int.from_bytes(h, "big") / 2 ** 64


def pick(faults: tuple[tuple[str, float], ...], u: float) -> str | None:
    for kind, rate in faults:
        if u < rate:
            return kind
        u -= rate
    return None


class World:
    """The models of one scenario: answers by role, faults by hash, every attempt counted."""

    def __init__(self, s: Scenario, tag: str):
        self.s = s
        self.tag = tag
        self.asked: Counter[tuple[str, str]] = Counter()
        self.attempts = 0
        """Requests the models saw (for sim: ``fn`` calls; a ``slow`` one counts too)."""
        self.names: list[str] = []
        self.watch = Watch()
        self._lock = threading.Lock()

    def model(self, role: str, idx: int) -> str:
        """A model id for a node of ``role`` (``text``, ``router:<labels>``, ``agent``,
        ``planner``, ``supervisor:<members>``)."""
        if self.s.world == "fake":
            return "anthropic:claude-haiku-4-5" if idx % 2 else "openai:gpt-4o-mini"
        name = f"{self.tag}_{idx}"
        priced = "openai:gpt-4o-mini" if self.s.max_usd is not None or idx % 3 == 0 else None
        _sim.SimModel(name, fn=lambda req, n=name: self.answer(n, role, req),
                      latency=self.s.latency, priced_as=priced).register()
        self.names.append(name)
        return f"sim:{name}"

    def fault(self, model: str, text: str) -> tuple[str | None, int]:
        self.watch.beat()
        with self._lock:
            self.attempts += 1
            self.asked[(model, text)] += 1
            n = self.asked[(model, text)]
        kind = pick(self.s.faults, draw(self.s.seed, model, text, n))
        # ``slow`` is a step whose model hangs (Builder.slow_model), not a per-call fault.
        return (None if kind == "slow" else kind), n

    def answer(self, model: str, role: str, req: ModelRequest) -> Any:
        text = _last_user(req)
        kind, n = self.fault(model, text)
        if kind in ("429", "500", "400"):
            status = int(kind)
            raise ProviderError(f"sim {status}", provider="sim", model=model, status=status,
                                retryable=status != 400,
                                retry_after=self.s.retry_after if status == 429 else None)
        reply = reply_for(role, req, self.s.seed, model, n)
        if kind == "bad_text" and isinstance(reply, str):
            return reply + " " + BAD_TEXT
        return reply

    def close(self) -> None:
        for name in self.names:
            _sim._REGISTRY.pop(name, None)


def _last_user(req: ModelRequest) -> str:
    for m in reversed(req.messages):
        if m.role in ("user", "tool"):
            return m.content
    return ""


def reply_for(role: str, req: ModelRequest, seed: int, model: str, n: int) -> Any:
    """What a model of ``role`` answers (before faults)."""
    text = _last_user(req)
    u = draw(seed, "reply", model, text, n)
    if role.startswith("router:"):
        labels = role.split(":", 1)[1].split(",")
        return labels[int(u * len(labels))] if u < 0.9 else "no such route"
    if role == "agent":
        tools_seen = sum(1 for m in req.messages if m.role == "tool")
        if tools_seen < int(u * 3):
            return {"tool": "add", "args": {"a": tools_seen, "b": 2}}
        return f"agent done after {tools_seen} tools"
    if role == "planner":
        return json.dumps([f"part {i}" for i in range(1 + int(u * 3))])
    if role.startswith("supervisor:"):
        members = role.split(":", 1)[1].split(",")
        if u < 0.4:
            return "FINISH: done"
        return members[int(u * 10) % len(members)] + ": go on"
    return f"answer {int(u * 1000)} to {text[:40]}"


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


# -- building the pipeline -------------------------------------------------------------------------
class Builder:
    """Turns a scenario's node tree into orchnb patterns, with models from its world."""

    def __init__(self, s: Scenario, world: World):
        self.s, self.world, self.n = s, world, 0

    def _idx(self) -> int:
        self.n += 1
        return self.n

    def build(self) -> orchnb.Pipeline:
        s = self.s
        opts = {"budget": None, "cache": False, "timeout": s.timeout, "retry": s.retry}
        node = self.node(s.root, "root", opts)
        if isinstance(node, orchnb.Pipeline):
            return node
        return orchnb.Chain("root", [node], **opts)

    def node(self, n: Node, name: str, opts: dict[str, Any] | None = None) -> Any:
        opts = opts or {}
        i = self._idx()
        kids = [self.node(c, f"{n.kind}{i}_{k}") for k, c in enumerate(n.children)]
        if n.kind == "step":
            model = self.world.model("text", i)
            slow = self.slow_model(i)
            return orchnb.Step(name, slow or model, "{{ input }} /" + name, stream=n.stream,
                               fallback=())
        if n.kind == "chain":
            return orchnb.Chain(name, kids, **opts)
        if n.kind == "router":
            routes = {f"r{k}": kid for k, kid in enumerate(kids)}
            model = self.world.model("router:" + ",".join(routes), i)
            return orchnb.Router(name, model, routes, default="r0" if n.default_route else None,
                                 **opts)
        if n.kind == "mapreduce":
            reduce = (orchnb.Step(f"reduce{i}", self.world.model("text", 1000 + i),
                                  "Combine: {{ input }}") if n.reduce else None)
            return orchnb.MapReduce(name, kids[0], reduce, concurrency=n.concurrency,
                                    on_error=n.on_error, retries=n.retries,
                                    chunker=_three_words, **opts)
        if n.kind == "agent":
            return orchnb.Agent(name, self.world.model("agent", i), [add],
                                max_iterations=n.loops, prompt="{{ input }} /" + name, **opts)
        if n.kind == "plan":
            return orchnb.PlanExecute(name, self.world.model("planner", i), kids[0],
                                      max_steps=n.loops, **opts)
        if n.kind == "team":
            members = {f"m{k}": kid for k, kid in enumerate(kids)}
            sup = self.world.model("supervisor:" + ",".join(members), i)
            return orchnb.Team(name, sup, members, max_turns=n.loops, **opts)
        raise ValueError(n.kind)

    def slow_model(self, i: int) -> str | None:
        """A sim step whose model hangs (answers after ``hang`` s) when ``slow`` faults are on
        and the draw says so: a hang per step, not per call, as sim latency is per model."""
        s = self.s
        rate = dict(s.faults).get("slow", 0.0)
        if s.world != "sim" or rate <= 0 or draw(s.seed, "slow", i) >= rate:
            return None
        name = f"{self.world.tag}_slow{i}"
        _sim.SimModel(name, fn=lambda req, n=name: self.world.answer(n, "text", req),
                      latency=s.hang).register()
        self.world.names.append(name)
        return f"sim:{name}"


def _three_words(text: str) -> list[str]:
    """A nested map-reduce's chunker: at most three items, so scenarios stay small."""
    words = str(text).split()
    return words[:3] or [str(text)]


# -- the loopback server --------------------------------------------------------------------------
def fake_provider(seed: int = 0, hang: float = 0.2, retry_after: float = 0.0) -> Any:
    """A FakeProvider that can also send invalid UTF-8 and usage-less streams (test-only)."""
    from orchnb.testing import FakeProvider
    from orchnb.testing._http import HttpResponse

    class HostileFake(FakeProvider):
        usage_less = False

        def _frames(self, api: Any, req: Any, reply: Any, n: int) -> Any:
            if self.usage_less:  # a server that ignores stream_options.include_usage
                req.body.pop("stream_options", None)
            return FakeProvider._frames(api, req, reply, n)

        def _answer(self, api: Any, path: str, req: Any, n: int) -> Any:
            resp = super()._answer(api, path, req, n)
            body = getattr(resp, "body", None)
            if isinstance(body, bytes) and BAD_UTF8.encode() in body:
                return HttpResponse(resp.status, body.replace(BAD_UTF8.encode(), b"\xff\xfe\xc0"),
                                    dict(resp.headers))
            return resp

    return HostileFake(seed=seed, hang=hang, retry_after=retry_after)


@contextlib.contextmanager
def fake_env(fake: Any) -> Iterator[None]:
    """Point both SDKs at ``fake`` (and forget provider instances made for another server)."""
    with pointed_at(fake.env()):
        yield


def arm_fake(fake: Any, s: Scenario, world: World) -> None:
    """Set the server's faults and answers for scenario ``s``."""
    fake.reset()
    fake.hang, fake.retry_after, fake.usage_less = s.hang, s.retry_after, s.usage_less
    rates = {f"rate_{k}": r for k, r in s.faults if k in FAKE_FAULTS}
    fake.fault_rates(**rates)
    bad = dict(s.faults)

    def respond(req: Any) -> str:
        u = draw(s.seed, "fake", req.last_user)
        text = f"answer {int(u * 1000)} to {req.last_user[:40]}"
        if u < bad.get("bad_text", 0.0):
            return text + " " + BAD_TEXT
        if u < bad.get("bad_text", 0.0) + bad.get("bad_utf8", 0.0):
            return text + " " + BAD_UTF8
        return text

    fake.responder = respond


@dataclass
class Outcome:
    """What happened when a scenario ran."""

    run: Any = None
    finished: bool = False
    elapsed: float = 0.0
    raised: BaseException | None = None
    attempts_seen: int = 0
    stalled: float | None = None
    """Seconds without progress after which the run was given up as stuck, if it was."""
    notes: list[str] = field(default_factory=list)


class Watch:
    """A run listener stamping the time of its last sign of life (any span starting or
    ending); the world's models stamp it too when asked."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def beat(self) -> None:
        self.last = time.monotonic()

    def on_span_start(self, *, span: Any, **_: Any) -> None:
        self.last = time.monotonic()

    def on_span_end(self, *, span: Any, **_: Any) -> None:
        self.last = time.monotonic()


def wait_alive(done: Any, watch: Watch, limit: float, stall: float, out: Outcome) -> bool:
    """Wait for ``done()`` up to ``limit`` seconds, giving up early when ``watch`` saw no sign
    of life for ``stall`` seconds. Returns whether it is done."""
    t0 = time.monotonic()
    while not done():
        now = time.monotonic()
        if now - watch.last > stall:
            out.stalled = now - watch.last
            return False
        if now - t0 > limit:
            return False
        time.sleep(0.01)
    return True


_TAGS = iter(range(10**9))


def play(s: Scenario, fake: Any = None) -> tuple[Outcome, float]:
    """Build and run scenario ``s`` under a wall-clock guard of :func:`bound_s` seconds (or
    :func:`stall_s` without a sign of life); a run still going then is cancelled (and reported
    as a hang by the checks)."""
    world = World(s, f"w{os.getpid()}_{next(_TAGS)}")
    limit = bound_s(s)
    out = Outcome()
    try:
        if fake is not None:
            arm_fake(fake, s, world)
        pipe = Builder(s, world).build()
        t0 = time.perf_counter()
        world.watch.beat()
        if s.mode == "background":
            _background(pipe, s, limit, out, world.watch)
        else:
            _in_thread(pipe, s, limit, out, world.watch)
        out.elapsed = time.perf_counter() - t0
        out.attempts_seen = len(fake.requests) if fake is not None else world.attempts
    finally:
        world.close()
    return out, limit


def _background(pipe: Any, s: Scenario, limit: float, out: Outcome, watch: Watch) -> None:
    try:
        run = pipe.background(s.input(), budget=s.budget, hooks=[watch])
    except BaseException as e:  # refused before it began: must be orchnb's own error too
        out.raised, out.finished = e, True
        return
    out.run = run
    out.finished = wait_alive(lambda: run.done, watch, limit, stall_s(s), out)
    if not out.finished:
        run.cancel()
        run.wait(5)
        out.notes.append(f"cancelled; ended after cancel: {run.done}")


def _in_thread(pipe: Any, s: Scenario, limit: float, out: Outcome, watch: Watch) -> None:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["run"] = pipe(s.input(), budget=s.budget, hooks=[watch])
        except BaseException as e:
            box["error"] = e

    thread = threading.Thread(target=target, name="sim-scenario", daemon=True)
    thread.start()
    out.finished = wait_alive(lambda: not thread.is_alive(), watch, limit, stall_s(s), out)
    if not out.finished and pipe.runs:
        pipe.runs[-1].cancel()
        thread.join(5)
        out.notes.append(f"cancelled; ended after cancel: {not thread.is_alive()}")
    out.raised = box.get("error")
    out.run = box.get("run") or getattr(out.raised, "run", None) or (
        pipe.runs[-1] if pipe.runs else None)
