"""executor="ray" on a local Ray cluster: same outputs and reports as in the kernel, every
span in the store once, a killed worker loses nothing. Slow tier (a cluster start is seconds)."""

from __future__ import annotations

import os
import re
import time
from collections import Counter

import pandas as pd
import pytest

import orchnb
from orchnb import Budget, MapReduce, Step
from orchnb.exceptions import BudgetExceeded

pytest.importorskip("ray", reason="Ray is not installed: pip install 'orchnb[ray]'")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ITEMS = [f"word {i}" for i in range(24)]


def _mr(executor, **kw):
    orchnb.SimModel("ray-slow", latency=0.02).register()  # registered in the driver only
    return MapReduce("shout", map=Step("up", "sim:ray-slow", "{{ input | upper }}"),
                     reduce=" / ".join, executor=executor, **kw)


class Progress:
    def __init__(self):
        self.done = []

    def on_progress(self, *, label, done, total, **_):
        self.done.append(done)


def test_mapreduce_on_ray_matches_the_kernel_and_every_span_is_stored(ray_cluster):
    local = _mr(None)(ITEMS)
    bar = Progress()
    run = _mr("ray").new_run(ITEMS, hooks=[bar]).run_sync()
    assert run.output == local.output
    df = run.trace.df
    steps = df[(df.kind == "step") & (df.step == "up")]
    assert sorted(steps["item"]) == list(range(len(ITEMS)))  # every item, once
    assert steps["worker"].notna().all() and df.span_id.is_unique
    models = df[df.kind == "model"]
    assert len(models) == len(ITEMS) and models["worker"].notna().all()
    # Worker spans hang under the run like the kernel's, and the store has all of them.
    assert set(steps.parent_id) == set(df[df.kind == "run"].span_id)
    stored = orchnb.traces()
    assert set(stored[stored.run_id == run.id].span_id) == set(df.span_id)
    # Spans streamed in while the run went: progress moved in several steps.
    assert bar.done[-1] == len(ITEMS) and len(set(bar.done)) > 2


RULES = [(r"refund|charge|invoice|bill|paid|pay", "billing"),
         (r"crash|error|app|bug|api|wifi", "technical"),
         (r"password|account|login|log in|email", "account"),
         (r"deliver|order|ship|parcel|package|track", "shipping")]


def _answer(request):
    text = request.messages[-1].content.split("Message:", 1)[-1]
    return next((label for p, label in RULES if re.search(p, text, re.IGNORECASE)), "no idea")


def _router():
    orchnb.SimModel("ray-kw", fn=_answer, priced_as="openai:gpt-4o-mini").register()
    orchnb.SimModel("ray-small", default="Happy to help.", priced_as="openai:gpt-4o-mini"
                    ).register()
    routes = {label: Step(f"{label}_team", "sim:ray-small", label + ": {{ input }}")
              for label in ("billing", "technical", "account", "shipping", "other")}
    prompt = "Route to one of: {{ labels | join(', ') }}.\nMessage: {{ input }}"
    return orchnb.Router("triage", classifier=Step("classify", "sim:ray-kw", prompt),
                         routes=routes, default="other")


def test_router_eval_on_ray_gives_the_kernels_report(ray_cluster):
    from orchnb.evals import load_tickets

    data = load_tickets().groupby("label", group_keys=False).head(8).reset_index(drop=True)
    router = _router()
    local = orchnb.evaluate(router, data, progress=False, cache=False)
    remote = orchnb.evaluate(router, data, progress=False, cache=False, executor="ray")
    cols = ["text", "label", "route", "raw_label", "correct", "calls", "cost_usd"]
    assert remote.predictions[cols].equals(local.predictions[cols])
    assert remote.accuracy == local.accuracy
    stored = orchnb.traces()
    assert set(stored[stored.run_id == remote.run.id].span_id) == {
        s.span_id for s in remote.run.trace.spans}


def test_keys_reach_workers_by_the_runtime_env_and_never_a_trace(ray_cluster, monkeypatch,
                                                                  orchnb_home):
    from orchnb.models import _provider
    from orchnb.testing import FakeProvider

    secret = "sk-proj-" + "Q7k3y" * 8
    with FakeProvider(latency=0.0, seed=0) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", secret)  # set after the cluster started
        monkeypatch.setattr(_provider, "_INSTANCES", {})
        mr = MapReduce("keyed", map=Step("ask", "openai:gpt-4o-mini", "Say {{ input }}"),
                       executor="ray")
        run = mr(ITEMS[:8])
        answered = server.requests
    models = run.trace.df[run.trace.df.kind == "model"]
    assert len(answered) == 8 and (models.status == "ok").all()  # FakeProvider wants a key
    assert models["worker"].notna().all()
    assert secret not in run.trace.df.to_csv() and secret not in repr(run)
    for path in orchnb_home.rglob("*"):  # the store, its WAL, the cache
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_one_rate_limit_for_all_workers(ray_cluster):
    # 4 calls/s for both workers together, bursts of one second's worth (4): no second holds
    # more than 8 calls (+2 for scheduling jitter), where two workers at full speed would end
    # their 15 items each within milliseconds; and 30 calls need at least 6.5 s.
    ex = orchnb.patterns.RayExecutor(workers=2, batch_size=15, rate_limits={"sim:ray-fast": 4})
    orchnb.SimModel("ray-fast").register()
    mr = MapReduce("limited", map=Step("up", "sim:ray-fast", "{{ input }}"), executor=ex)
    run = mr([f"x{i}" for i in range(30)])
    models = run.trace.df[run.trace.df.kind == "model"]
    ends = models["end"].sort_values().reset_index(drop=True)
    in_a_second = [(ends.between(t, t + pd.Timedelta(seconds=1))).sum() for t in ends]
    assert max(in_a_second) <= 10, in_a_second
    assert len(models) == 30 and models["worker"].nunique() == 2
    assert (ends.iloc[-1] - models["start"].min()).total_seconds() >= 6.0


def test_the_playground_follows_a_ray_run_live(ray_cluster):
    from orchnb.notebook import Playground

    pg = Playground(_mr(orchnb.patterns.RayExecutor(batch_size=4), concurrency=2), input=ITEMS)
    pg.run()
    seen = set()
    while pg.busy:  # the widget's state, as the browser gets it, while the run goes
        seen.add(((pg.live.get("nodes") or {}).get("shout/up") or {}).get("n"))
        time.sleep(0.05)
    assert pg.wait(60).status == "ok"
    assert pg.live["nodes"]["shout/up"] == {"s": "ok", "c": 24, "e": 0, "n": 24, "i": 0}
    assert len({n for n in seen if n and 0 < n < len(ITEMS)}) >= 2  # items came in batches


def test_workers_stream_their_tokens_into_the_kernels_stream(ray_cluster):
    orchnb.SimModel("ray-words", default="one two three four five six", latency=0.02).register()
    mr = MapReduce("say", map=Step("up", "sim:ray-words", "{{ input }}"), reduce=" | ".join,
                   executor=orchnb.patterns.RayExecutor(batch_size=3))
    items = ITEMS[:9]
    with mr.stream(items) as chunks:
        got = list(chunks)
    run = chunks.run
    assert run.status == "ok" and run.output == mr(items, cache=False).output
    by_item = {}
    for c in got:
        by_item.setdefault(c.item, []).append(c.text)
    assert sorted(by_item) == list(range(len(items)))  # every worker item streamed
    assert all("".join(t) == "one two three four five six" for t in by_item.values())
    assert all(len(t) > 1 for t in by_item.values())  # in pieces, not once at the end
    models = run.trace.df[run.trace.df.kind == "model"]
    assert {c.span_id for c in got} == set(models.span_id)  # the chunks' spans are the trace's
    assert models["worker"].notna().all() and models["ttft_ms"].notna().all()
    quiet = mr(items, cache=False)  # nobody listens: the workers do not stream
    assert quiet.trace.df[quiet.trace.df.kind == "model"]["ttft_ms"].isna().all()


def _guess(text):
    return "billing" if re.search(r"refund|charge|bill|pay", text, re.IGNORECASE) else "other"


def test_compare_on_ray_gives_the_kernels_experiment(ray_cluster):
    from orchnb.evals import load_tickets

    data = load_tickets().groupby("label", group_keys=False).head(6).reset_index(drop=True)
    _router()  # registers the sim models
    kw = orchnb.Chain("kw", [Step("classify", "sim:ray-kw", "Message: {{ input }}")])
    candidates = {"kw": kw, "guess": _guess}
    kw_args = dict(expected="label", progress=False, cache=False, save=False, n_boot=200)
    local = orchnb.compare(candidates, data, **kw_args)
    remote = orchnb.compare(candidates, data, executor="ray", **kw_args)
    for name in candidates:
        cols = ["input", "expected", "output", "status", "exact", "calls", "cost_usd", "tokens"]
        assert remote[name].scores[cols].equals(local[name].scores[cols])
        run = remote[name].run
        assert run.trace.df["worker"].notna().any()  # rows really ran on workers
        stored = orchnb.traces()
        assert set(stored[stored.run_id == run.id].span_id) == {s.span_id for s in run.trace.spans}
    cols = ["exact", "exact_ci_low", "exact_ci_high", "cost_per_1k", "errors", "pareto"]
    assert remote.table[cols].equals(local.table[cols])
    assert remote.tests.drop(columns=[c for c in remote.tests if "ms" in c]).equals(
        local.tests.drop(columns=[c for c in local.tests if "ms" in c]))
    assert remote.decision == local.decision


def test_a_killed_worker_loses_no_item_and_doubles_no_span(ray_cluster, tmp_path):
    marker = str(tmp_path / "died-once")

    def flaky(text):
        if text == "word 9" and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)  # the worker process dies mid-batch
        return text.upper()

    mr = MapReduce("flaky", map=flaky, executor=orchnb.patterns.RayExecutor(batch_size=4))
    run = mr(ITEMS)
    assert os.path.exists(marker)
    assert run.output == [x.upper() for x in ITEMS]
    df = run.trace.df
    items = Counter(df[(df.kind == "step") & (df.step == "flaky")]["item"])
    assert items == Counter(range(len(ITEMS)))  # each item's span exactly once
    assert df.span_id.is_unique
    retried = df[df.step.str.startswith("ray: batch")]
    assert len(retried) == 1 and re.search(r"died", retried.error.iloc[0])


def test_one_budget_for_all_workers(ray_cluster):
    run_error = None
    try:
        _mr("ray")(ITEMS, budget=Budget(max_calls=5))
    except BudgetExceeded as e:
        run_error = e
    assert run_error is not None
    df = run_error.run.trace.df
    assert (df.kind == "model").sum() <= 5  # two workers, one cap, never overshot
